//! The lite pull consumer, offsets across restarts, tags, latency, and bad
//! settings, against real processes.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_consumer::{
    ConsumeFrom, ConsumeResult, ConsumerError, MessageQueue, PullConsumer, PushConsumer,
};
use mq_producer::{Message, Producer};
use support::*;

fn pull_consumer(
    namesrv: &str,
    group: &str,
    topic: &str,
    expression: &str,
) -> mq_consumer::PullConsumerBuilder {
    PullConsumer::builder()
        .namesrv(namesrv)
        .group(group)
        .subscribe(topic, expression)
        .consume_from(ConsumeFrom::FirstOffset)
        .heartbeat_interval(Duration::from_millis(300))
        .suspend(Duration::from_secs(1))
}

async fn poll_until(consumer: &PullConsumer, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut bodies = Vec::new();
    while bodies.len() < count && Instant::now() < deadline {
        for msg in consumer.poll(Duration::from_millis(500)).await {
            bodies.push(String::from_utf8(msg.body.to_vec()).unwrap());
        }
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lite_pull_polls_filters_tags_seeks_and_resumes_from_committed_offsets_after_a_broker_restart()
 {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let mut broker = start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0");
    create_topic(&broker, "lite", 1).await;
    wait_for_route(&namesrv, "lite", 1).await;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    for i in 0..30 {
        let tag = if i % 3 == 0 { "keep" } else { "skip" };
        producer
            .send(Message::new("lite", format!("m-{i}")).with_tags(tag))
            .await
            .unwrap();
    }

    // Tags filter on the broker (hash) and in the client (exact).
    let consumer = pull_consumer(&namesrv, "g-lite", "lite", "keep")
        .auto_commit(false)
        .start()
        .await
        .unwrap();
    let kept = poll_until(&consumer, 10).await;
    assert_eq!(
        kept,
        (0..30)
            .step_by(3)
            .map(|i| format!("m-{i}"))
            .collect::<Vec<_>>()
    );

    // Seek back, and to an illegal offset: the pull recovers to the end.
    let queue: MessageQueue = consumer.assignment().remove(0);
    consumer.seek(&queue, 0).unwrap();
    assert_eq!(poll_until(&consumer, 10).await.len(), 10);
    consumer.seek(&queue, 1_000_000).unwrap();
    // The pull recovers to the queue's end (where it is when the broker
    // answers OFFSET_ILLEGAL): messages sent from then on arrive, nothing
    // from before the seek comes back.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut recovered = Vec::new();
    let mut probe = 0;
    while recovered.is_empty() && Instant::now() < deadline {
        producer
            .send(Message::new("lite", format!("after-seek-{probe}")).with_tags("keep"))
            .await
            .unwrap();
        probe += 1;
        for msg in consumer.poll(Duration::from_millis(500)).await {
            recovered.push(String::from_utf8(msg.body.to_vec()).unwrap());
        }
    }
    assert!(
        !recovered.is_empty(),
        "the consumer never recovered from the illegal offset"
    );
    assert!(
        recovered.iter().all(|b| b.starts_with("after-seek-")),
        "{recovered:?}"
    );
    consumer.commit().await;
    consumer.shutdown().await;

    // The committed offset survives a broker restart; the group resumes there.
    assert!(broker.terminate(Duration::from_secs(20)).unwrap().success());
    let listen = broker.addr.to_string();
    broker = start_broker("broker-a", &namesrv, root.path(), &listen);
    producer
        .send(Message::new("lite", "after-restart").with_tags("keep"))
        .await
        .unwrap();
    let resumed = pull_consumer(&namesrv, "g-lite", "lite", "keep")
        .start()
        .await
        .unwrap();
    assert_eq!(poll_until(&resumed, 1).await, ["after-restart"]);
    resumed.shutdown().await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_consumer_gets_messages_milliseconds_after_they_are_sent() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0");
    create_topic(&broker, "latency", 4).await;
    wait_for_route(&namesrv, "latency", 1).await;
    let arrivals: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let sink = Arc::clone(&arrivals);
    let consumer = PushConsumer::builder()
        .namesrv(&namesrv)
        .group("g-latency")
        .subscribe("latency", "*")
        .heartbeat_interval(Duration::from_millis(300))
        .handler(move |batch| {
            let sink = Arc::clone(&sink);
            async move {
                let now = Instant::now();
                sink.lock().unwrap().extend(
                    batch
                        .into_iter()
                        .map(|m| (String::from_utf8(m.body.to_vec()).unwrap(), now)),
                );
                ConsumeResult::Success
            }
        })
        .start()
        .await
        .unwrap();
    wait_until(
        "the consumer owns the queues",
        Duration::from_secs(20),
        || consumer.assignment().len() == 4,
    )
    .await;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    let mut sent = Vec::new();
    for i in 0..200 {
        let body = format!("t-{i}");
        sent.push((body.clone(), Instant::now()));
        producer.send(Message::new("latency", body)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_until("all 200 arrive", Duration::from_secs(20), || {
        arrivals.lock().unwrap().len() == 200
    })
    .await;
    let arrived: std::collections::HashMap<String, Instant> =
        arrivals.lock().unwrap().iter().cloned().collect();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .map(|(body, at)| arrived[body].duration_since(*at))
        .collect();
    latencies.sort();
    let (p50, p99) = (latencies[99], latencies[197]);
    eprintln!("send-to-handler latency over 200 messages: p50 {p50:?}, p99 {p99:?}");
    // The pulls are held for up to 15 s; polling would show in seconds.
    assert!(p99 < Duration::from_secs(1), "p50 {p50:?}, p99 {p99:?}");
    consumer.shutdown().await;
}

#[tokio::test]
async fn bad_consumer_settings_are_refused_by_name() {
    let base = || {
        PullConsumer::builder()
            .namesrv("127.0.0.1:1")
            .group("g")
            .subscribe("t", "*")
    };
    let cases: Vec<(mq_consumer::PullConsumerBuilder, &str)> = vec![
        (
            PullConsumer::builder()
                .namesrv("127.0.0.1:1")
                .subscribe("t", "*"),
            "group",
        ),
        (base().group("bad group"), "group"),
        (base().subscribe("bad topic", "*"), "topic"),
        (base().subscribe("t2", "a ||"), "expression"),
        (base().pull_batch(0), "pull_batch"),
        (base().pull_batch(1_000_000), "pull_batch"),
        (base().suspend(Duration::from_secs(3600)), "suspend"),
        (base().namesrv(""), "nameserver"),
    ];
    for (builder, needle) in cases {
        let err = builder.start().await.unwrap_err();
        assert!(
            err.to_string().contains(needle),
            "{err} should name {needle}"
        );
    }
    let err = PushConsumer::builder()
        .namesrv("127.0.0.1:1")
        .group("g")
        .subscribe("t", "*")
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConsumerError::Config(_)) && err.to_string().contains("handler"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_pull_consumer_reads_only_its_queues() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0");
    create_topic(&broker, "assigned", 2).await;
    wait_for_route(&namesrv, "assigned", 1).await;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    for i in 0..20 {
        producer
            .send(Message::new("assigned", format!("m-{i}")))
            .await
            .unwrap();
    }
    let consumer = pull_consumer(&namesrv, "g-assigned", "assigned", "*")
        .start()
        .await
        .unwrap();
    let queue = MessageQueue {
        topic: "assigned".into(),
        broker_name: "broker-a".into(),
        queue_id: 1,
    };
    consumer.assign(vec![queue.clone()]).await;
    wait_until("only queue 1 is owned", Duration::from_secs(10), || {
        consumer.assignment() == vec![queue.clone()]
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < 10 && Instant::now() < deadline {
        got.extend(consumer.poll(Duration::from_millis(300)).await);
    }
    assert_eq!(got.len(), 10, "round-robin put half of the 20 in queue 1");
    assert!(got.iter().all(|m| m.queue == queue));
    consumer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_consumer_keeps_pulling_past_its_cache_limit_as_batches_are_polled() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0");
    create_topic(&broker, "cached", 1).await;
    wait_for_route(&namesrv, "cached", 1).await;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    let batch: Vec<Message> = (0..100)
        .map(|i| Message::new("cached", format!("m-{i}")))
        .collect();
    producer.send_batch(batch).await.unwrap();
    // Ten messages may wait unpolled; polling frees the room for more.
    let consumer = pull_consumer(&namesrv, "g-cached", "cached", "*")
        .max_cached_messages(10)
        .pull_batch(4)
        .buffer(1)
        .start()
        .await
        .unwrap();
    let bodies = poll_until(&consumer, 100).await;
    assert_eq!(
        bodies,
        (0..100).map(|i| format!("m-{i}")).collect::<Vec<_>>()
    );
    consumer.shutdown().await;
}
