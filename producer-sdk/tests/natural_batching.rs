//! Natural batching against a real broker: sends that arrive while a
//! broker's lane is full leave together (the broker's `SendMany` counters
//! show it), each with its own result or error; a lone sender goes alone;
//! a waiting send that gives up is never sent.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_producer::{Message, Producer, ProducerError};
use mq_test_support::{ServerProcess, standalone_broker_with_env};

/// Messages stored in the topic's `queues` queues.
async fn stored(broker: &ServerProcess, topic: &str, queues: u32) -> u64 {
    use mq_proto::broker::v1 as pb;
    let mut rpc = pb::broker_client::BrokerClient::connect(broker.url())
        .await
        .unwrap();
    let mut total = 0;
    for queue_id in 0..queues {
        total += rpc
            .get_queue_offsets(pb::GetQueueOffsetsRequest {
                topic: topic.into(),
                queue_id,
                timestamp_ms: None,
            })
            .await
            .unwrap()
            .into_inner()
            .max_offset;
    }
    total
}

async fn broker_with(env: &[(&str, &str)]) -> (ServerProcess, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (broker, namesrv) = standalone_broker_with_env(dir.path(), env);
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 4).await;
    mq_test_support::cluster::wait_for_route(&namesrv, "orders", 1).await;
    (broker, namesrv, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_leave_together_each_with_its_own_answer() {
    let (broker, namesrv, _dir) = broker_with(&[]).await;
    let producer = Arc::new(
        Producer::builder()
            .namesrv(&namesrv)
            .max_in_flight(1)
            .build()
            .unwrap(),
    );
    let sends: Vec<_> = (0..200)
        .map(|i| {
            let producer = Arc::clone(&producer);
            tokio::spawn(async move {
                let body = format!("m{i}");
                (
                    body.clone(),
                    producer.send(Message::new("orders", body)).await,
                )
            })
        })
        .collect();
    // One the broker refuses (no such delay level), among them.
    let refused = producer
        .send(Message::new("orders", "late").with_delay_level(99))
        .await
        .unwrap_err();
    let mut places = std::collections::HashSet::new();
    let mut ids = std::collections::HashSet::new();
    for send in sends {
        let (body, result) = send.await.unwrap();
        let result = result.unwrap_or_else(|e| panic!("{body}: {e}"));
        assert!(
            places.insert((result.queue_id, result.queue_offset)),
            "{body}: {result:?}"
        );
        assert!(ids.insert(result.message_id), "{body}");
    }
    match &refused {
        ProducerError::Refused { code, message, .. } => {
            assert_eq!(*code, tonic::Code::InvalidArgument, "{refused}");
            assert!(message.contains("delay_level"), "{refused}");
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert_eq!(stored(&broker, "orders", 4).await, 200);
    let requests = broker.metric("mq_broker_send_many_requests_total").unwrap();
    let together = broker.metric("mq_broker_send_many_sends_total").unwrap();
    assert!(requests > 0.0, "no send left together with another");
    assert!(
        together >= 2.0 * requests,
        "{together} sends in {requests} SendMany requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_sender_always_goes_alone() {
    let (broker, namesrv, _dir) = broker_with(&[]).await;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    for i in 0..20 {
        producer
            .send(Message::new("orders", format!("m{i}")))
            .await
            .unwrap();
    }
    assert_eq!(stored(&broker, "orders", 4).await, 20);
    assert_eq!(
        broker.metric("mq_broker_send_many_requests_total"),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_send_that_gives_up_is_never_sent() {
    // The first send's answer is held for 3 s: the lane stays full.
    let (broker, namesrv, _dir) =
        broker_with(&[("FAILPOINTS", "send::before_answer=1*sleep(3000)")]).await;
    let producer = Arc::new(
        Producer::builder()
            .namesrv(&namesrv)
            .max_in_flight(1)
            .send_timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
    );
    let first = {
        let producer = Arc::clone(&producer);
        tokio::spawn(async move { producer.send(Message::new("orders", "held")).await })
    };
    // Stored, its answer held: the lane is full.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored(&broker, "orders", 4).await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // This one waits behind the held send, and gives up at its timeout.
    let began = Instant::now();
    let gave_up = producer
        .send_with_timeout(
            Message::new("orders", "gave-up"),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(gave_up.is_retryable(), "{gave_up}");
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "waited {:?} for the held send",
        began.elapsed()
    );
    first.await.unwrap().unwrap();
    // The lane was free again once the held send's answer came: only it
    // was stored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stored(&broker, "orders", 4).await, 1);
}
