//! Waiting on a cluster of real processes from async tests.

use std::time::{Duration, Instant};

use mq_proto::broker::v1 as pb;

/// Waits until the nameservers route `topic` to at least `brokers` brokers.
pub async fn wait_for_route(namesrv: &str, topic: &str, brokers: usize) {
    let client = mq_nameserver_client::NameServerClient::from_list(namesrv).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(route) = client.query_route(topic).await
            && route.queues.len() >= brokers
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} never got {brokers} broker(s)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a read-write topic with `queues` queues on the broker at `url`.
pub async fn create_topic(url: &str, topic: &str, queues: u32) {
    let mut rpc = pb::broker_client::BrokerClient::connect(url.to_owned())
        .await
        .unwrap();
    rpc.create_topic(pb::CreateTopicRequest {
        config: Some(pb::TopicConfig {
            topic: topic.into(),
            read_queue_count: queues,
            write_queue_count: queues,
            perm: 6,
            message_type: String::new(),
        }),
    })
    .await
    .unwrap();
}

/// Waits until `condition` holds, failing the test after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A message of `body` to `topic`, with the unique id `id-<body>` for
/// tests to recognise it by.
pub fn message(topic: &str, body: &str) -> pb::Message {
    pb::Message {
        topic: topic.into(),
        body: body.as_bytes().to_vec().into(),
        unique_id: format!("id-{body}"),
        ..Default::default()
    }
}
