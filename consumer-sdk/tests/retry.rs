//! Retries and dead letters against real processes: failed messages come
//! back through the group's retry topic with growing counts, become dead
//! letters after the maximum, can be read and resent; ordered consumers
//! retry in place and keep their order.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_consumer::{
    ConsumeFrom, ConsumeMode, ConsumeResult, PullConsumer, PushConsumer, ReceivedMessage,
};
use mq_producer::{Message, Producer};
use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use support::*;

/// (body, topic the handler saw, reconsume count, unique id) per delivery.
type Log = Arc<Mutex<Vec<(String, String, u32, String)>>>;

fn record(log: &Log, msg: &ReceivedMessage) -> String {
    let body = String::from_utf8(msg.body.to_vec()).unwrap();
    log.lock().unwrap().push((
        body.clone(),
        msg.topic.clone(),
        msg.reconsume_times,
        msg.unique_id.clone(),
    ));
    body
}

fn deliveries(log: &Log, body: &str) -> Vec<(String, u32, String)> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(b, ..)| b == body)
        .map(|(_, topic, count, id)| (topic.clone(), *count, id.clone()))
        .collect()
}

fn builder(namesrv: &str, group: &str, topic: &str) -> mq_consumer::PushConsumerBuilder {
    PushConsumer::builder()
        .namesrv(namesrv)
        .group(group)
        .client_id(format!("{group}-member"))
        .subscribe(topic, "*")
        .consume_from(ConsumeFrom::FirstOffset)
        .heartbeat_interval(Duration::from_millis(300))
        .rebalance_interval(Duration::from_millis(500))
        .commit_interval(Duration::from_millis(100))
        .suspend(Duration::from_secs(1))
        .retry_delay(Duration::from_millis(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_messages_come_back_through_the_retry_topic_then_die_as_dead_letters() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0");
    create_topic(&broker, "orders", 1).await;
    wait_for_route(&namesrv, "orders", 1).await;

    // "flaky" panics, then asks for a retry, then succeeds; "poison"
    // always fails until `healed`.
    let log: Log = Arc::default();
    let healed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = {
        let (log, healed) = (Arc::clone(&log), Arc::clone(&healed));
        builder(&namesrv, "g-retry", "orders")
            .max_reconsume_times(2)
            .handler(move |batch| {
                let (log, healed) = (Arc::clone(&log), Arc::clone(&healed));
                async move {
                    let mut result = ConsumeResult::Success;
                    for msg in &batch {
                        match record(&log, msg).as_str() {
                            "flaky" if msg.reconsume_times == 0 => panic!("handler panics"),
                            "flaky" if msg.reconsume_times == 1 => {
                                result = ConsumeResult::ReconsumeLater
                            }
                            "poison" if !healed.load(std::sync::atomic::Ordering::Acquire) => {
                                result = ConsumeResult::ReconsumeLater
                            }
                            _ => {}
                        }
                    }
                    result
                }
            })
            .start()
            .await
            .unwrap()
    };
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    let flaky = producer
        .send(Message::new("orders", "flaky"))
        .await
        .unwrap();
    let poison = producer
        .send(Message::new("orders", "poison"))
        .await
        .unwrap();
    producer.send(Message::new("orders", "fine")).await.unwrap();

    wait_until(
        "flaky succeeds on its third delivery",
        Duration::from_secs(20),
        || deliveries(&log, "flaky").len() >= 3,
    )
    .await;
    wait_until(
        "poison is delivered three times",
        Duration::from_secs(20),
        || deliveries(&log, "poison").len() >= 3,
    )
    .await;
    // Nothing more comes: poison is a dead letter now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let expected = |id: &str| {
        (0..3)
            .map(|count| ("orders".to_owned(), count, id.to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(deliveries(&log, "flaky"), expected(&flaky.message_id));
    assert_eq!(deliveries(&log, "poison"), expected(&poison.message_id));
    assert_eq!(deliveries(&log, "fine").len(), 1);

    // The dead letter, read with a pull consumer: original id and topic.
    let dlq = PullConsumer::builder()
        .namesrv(&namesrv)
        .group("g-dlq-reader")
        .subscribe("%DLQ%g-retry", "*")
        .consume_from(ConsumeFrom::FirstOffset)
        .start()
        .await
        .unwrap();
    let mut letters = Vec::new();
    for _ in 0..50 {
        letters.extend(dlq.poll(Duration::from_millis(200)).await);
        if !letters.is_empty() {
            break;
        }
    }
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].unique_id, poison.message_id);
    assert_eq!(letters[0].properties["RETRY_TOPIC"], "orders");
    assert_eq!(&letters[0].body[..], b"poison");
    dlq.shutdown().await;

    // Offsets moved past everything: the original queue and the retry queue.
    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();
    let committed = |topic: &str| pb::QueryOffsetRequest {
        group: "g-retry".into(),
        topic: topic.into(),
        queue_id: 0,
    };
    wait_until_async("offsets are committed past every message", || {
        let mut rpc = rpc.clone();
        let (orders, retry) = (committed("orders"), committed("%RETRY%g-retry"));
        async move {
            let orders = rpc.query_offset(orders).await.unwrap().into_inner().offset;
            let retry = rpc.query_offset(retry).await.unwrap().into_inner().offset;
            orders == Some(3) && retry == Some(4)
        }
    })
    .await;

    // An admin resends the dead letter: it comes back to "orders", count 0.
    healed.store(true, std::sync::atomic::Ordering::Release);
    let resent = rpc
        .resend_dead_letters(pb::ResendDeadLettersRequest {
            group: "g-retry".into(),
            unique_id: poison.message_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .resent;
    assert_eq!(resent, 1);
    wait_until(
        "the resent dead letter is consumed",
        Duration::from_secs(20),
        || deliveries(&log, "poison").len() == 4,
    )
    .await;
    assert_eq!(
        deliveries(&log, "poison")[3],
        ("orders".to_owned(), 0, poison.message_id.clone())
    );
    let status = rpc
        .resend_dead_letters(pb::ResendDeadLettersRequest {
            group: "g-retry".into(),
            unique_id: "no-such-id".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    consumer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_consumers_retry_in_place_keep_order_and_dead_letter_past_the_limit() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0");
    create_topic(&broker, "ledger", 1).await;
    wait_for_route(&namesrv, "ledger", 1).await;

    // m2 fails twice then succeeds; m4 always fails: a dead letter after
    // its third delivery, and the queue goes on with m5.
    let log: Log = Arc::default();
    let consumer = {
        let log = Arc::clone(&log);
        builder(&namesrv, "g-ordered", "ledger")
            .mode(ConsumeMode::Ordered { batch: 1 })
            .max_reconsume_times(2)
            .handler(move |batch| {
                let log = Arc::clone(&log);
                async move {
                    let msg = &batch[0];
                    match record(&log, msg).as_str() {
                        "m2" if msg.reconsume_times < 2 => ConsumeResult::ReconsumeLater,
                        "m4" => ConsumeResult::ReconsumeLater,
                        _ => ConsumeResult::Success,
                    }
                }
            })
            .start()
            .await
            .unwrap()
    };
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    for i in 0..6 {
        producer
            .send_ordered(Message::new("ledger", format!("m{i}")), "account-7")
            .await
            .unwrap();
    }
    wait_until("m5 is consumed", Duration::from_secs(20), || {
        !deliveries(&log, "m5").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sequence: Vec<(String, u32)> = log
        .lock()
        .unwrap()
        .iter()
        .map(|(body, _, count, _)| (body.clone(), *count))
        .collect();
    let expected: Vec<(String, u32)> = [
        ("m0", 0),
        ("m1", 0),
        ("m2", 0),
        ("m2", 1),
        ("m2", 2),
        ("m3", 0),
        ("m4", 0),
        ("m4", 1),
        ("m4", 2),
        ("m5", 0),
    ]
    .iter()
    .map(|(b, c)| (b.to_string(), *c))
    .collect();
    assert_eq!(sequence, expected);

    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();
    let offsets = rpc
        .get_queue_offsets(pb::GetQueueOffsetsRequest {
            topic: "%DLQ%g-ordered".into(),
            queue_id: 0,
            timestamp_ms: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(offsets.max_offset, 1, "m4 is the one dead letter");
    consumer.shutdown().await;
    // The dead letter is done with: the group's offset passes it.
    let committed = rpc
        .query_offset(pb::QueryOffsetRequest {
            group: "g-ordered".into(),
            topic: "ledger".into(),
            queue_id: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .offset;
    assert_eq!(committed, Some(6), "committed past m4 and m5");
}

#[tokio::test]
async fn send_back_refuses_what_it_cannot_find() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0");
    create_topic(&broker, "orders", 1).await;
    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();
    let request = |offset: u64, id: &str| pb::ConsumerSendBackRequest {
        group: "g".into(),
        topic: "orders".into(),
        queue_id: 0,
        queue_offset: offset,
        unique_id: id.into(),
        max_reconsume_times: 0,
        dead_letter: false,
    };
    let status = rpc.consumer_send_back(request(5, "")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert!(
        status.message().contains("offset 5"),
        "{}",
        status.message()
    );

    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    wait_for_route(&namesrv, "orders", 1).await;
    producer.send(Message::new("orders", "x")).await.unwrap();
    wait_until_async("the message is indexed", || {
        let mut rpc = rpc.clone();
        async move {
            rpc.consumer_send_back(request(0, "not-its-id"))
                .await
                .is_err_and(|s| s.code() == tonic::Code::InvalidArgument)
        }
    })
    .await;
    let mut bad_group = request(0, "");
    bad_group.group = "no spaces".into();
    let status = rpc.consumer_send_back(bad_group).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("group"), "{}", status.message());
}

/// Polls an async condition until it holds (20 s at most).
async fn wait_until_async<F, Fut>(what: &str, condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
