//! Sends a few messages to a topic and prints where each went.
//!
//! Start the system first (`cargo run -p mq-broker -- --standalone`), then:
//!
//! ```text
//! cargo run -p mq-producer --example send -- [NAMESRV] [TOPIC] [COUNT]
//! ```
//!
//! Defaults: `127.0.0.1:9876`, `TopicTest`, 10. The standalone broker
//! creates the topic on first send.

use mq_producer::{Message, Producer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let namesrv = args.next().unwrap_or_else(|| "127.0.0.1:9876".into());
    let topic = args.next().unwrap_or_else(|| "TopicTest".into());
    let count: u32 = args.next().map_or(Ok(10), |n| n.parse())?;

    let producer = Producer::builder()
        .namesrv(namesrv)
        // MQ_ACCESS_KEY/MQ_SECRET_KEY and MQ_TLS_CA_FILE, for a secured cluster.
        .connector(mq_producer::Connector::from_env()?)
        .group("example_producer")
        .build()?;
    for i in 0..count {
        let message = Message::new(topic.clone(), format!("Hello mq {i}"))
            .with_tags("TagA")
            .with_key(format!("order-{i}"));
        let sent = producer.send(message).await?;
        println!(
            "{:?} id={} broker={} queue={} offset={} offset_id={}",
            sent.status,
            sent.message_id,
            sent.broker_name,
            sent.queue_id,
            sent.queue_offset,
            sent.offset_message_id
        );
    }
    Ok(())
}
