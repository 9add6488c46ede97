//! A push consumer: prints every message of a topic until Ctrl-C.
//!
//! Start the system (`cargo run -p mq-broker -- --standalone`), send some
//! messages (`cargo run -p mq-producer --example send`), then:
//!
//! ```text
//! cargo run -p mq-consumer --example push -- [NAMESRV] [TOPIC] [GROUP]
//! ```
//!
//! A new group starts at the end of each queue, so send again while it
//! runs; or add `first` as a fourth argument to read from the beginning.

use mq_consumer::{ConsumeFrom, ConsumeResult, PushConsumer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let namesrv = args.next().unwrap_or_else(|| "127.0.0.1:9876".into());
    let topic = args.next().unwrap_or_else(|| "TopicTest".into());
    let group = args.next().unwrap_or_else(|| "example_push_group".into());
    let from = match args.next().as_deref() {
        Some("first") => ConsumeFrom::FirstOffset,
        _ => ConsumeFrom::LastOffset,
    };
    let consumer = PushConsumer::builder()
        .namesrv(namesrv)
        // MQ_ACCESS_KEY/MQ_SECRET_KEY and MQ_TLS_CA_FILE, for a secured cluster.
        .connector(mq_consumer::Connector::from_env()?)
        .group(group)
        .subscribe(topic, "*")
        .consume_from(from)
        .handler(|batch| async move {
            for msg in batch {
                println!(
                    "{} offset={} tags={:?} body={}",
                    msg.queue,
                    msg.queue_offset,
                    msg.tags,
                    String::from_utf8_lossy(&msg.body)
                );
            }
            ConsumeResult::Success
        })
        .start()
        .await?;
    tokio::signal::ctrl_c().await?;
    consumer.shutdown().await;
    Ok(())
}
