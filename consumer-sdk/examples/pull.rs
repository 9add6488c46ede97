//! A lite pull consumer: polls a topic from its first message and commits
//! by hand after each batch, for ten seconds.
//!
//! ```text
//! cargo run -p mq-consumer --example pull -- [NAMESRV] [TOPIC] [GROUP]
//! ```

use std::time::{Duration, Instant};

use mq_consumer::{ConsumeFrom, PullConsumer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let namesrv = args.next().unwrap_or_else(|| "127.0.0.1:9876".into());
    let topic = args.next().unwrap_or_else(|| "TopicTest".into());
    let group = args.next().unwrap_or_else(|| "example_pull_group".into());
    let consumer = PullConsumer::builder()
        .namesrv(namesrv)
        // MQ_ACCESS_KEY/MQ_SECRET_KEY and MQ_TLS_CA_FILE, for a secured cluster.
        .connector(mq_consumer::Connector::from_env()?)
        .group(group)
        .subscribe(topic, "*")
        .consume_from(ConsumeFrom::FirstOffset)
        .auto_commit(false)
        .start()
        .await?;
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let batch = consumer.poll(Duration::from_secs(1)).await;
        for msg in &batch {
            println!(
                "{} offset={} body={}",
                msg.queue,
                msg.queue_offset,
                String::from_utf8_lossy(&msg.body)
            );
        }
        if !batch.is_empty() {
            consumer.commit().await;
        }
    }
    consumer.shutdown().await;
    Ok(())
}
