//! The producer against real processes: a nameserver and two brokers.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use mq_producer::{Message, Producer, SendStatus};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_are_stored_once_and_spread_over_both_brokers() {
    // Named bindings keep the nameserver and the directory alive.
    let TwoBrokers {
        root: _root,
        nameserver: _nameserver,
        namesrv,
        mut brokers,
    } = two_brokers("load", 4).await;

    let producer = Arc::new(Producer::builder().namesrv(&namesrv).build().unwrap());
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let producer = Arc::clone(&producer);
            tokio::spawn(async move {
                let mut per_broker: HashMap<String, usize> = HashMap::new();
                for i in (task..10_000).step_by(16) {
                    let result = producer
                        .send(Message::new("load", format!("m-{i}")).with_key(format!("k{i}")))
                        .await
                        .unwrap();
                    assert_eq!(result.status, SendStatus::Ok);
                    *per_broker.entry(result.broker_name).or_default() += 1;
                }
                per_broker
            })
        })
        .collect();
    let mut per_broker: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        for (broker, count) in task.await.unwrap() {
            *per_broker.entry(broker).or_default() += count;
        }
    }
    assert_eq!(per_broker.values().sum::<usize>(), 10_000);

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut stored_per_broker = Vec::new();
    for broker in &mut brokers {
        let stored = broker.stop_and_read();
        let count: usize = stored.values().map(Vec::len).sum();
        stored_per_broker.push(count);
        assert_eq!(
            count, per_broker[&broker.name],
            "{} stored what it acknowledged",
            broker.name
        );
        for msg in stored.values().flatten() {
            *seen.entry(text(msg)).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 10_000, "every message is stored");
    assert!(seen.values().all(|&n| n == 1), "and stored once");
    for count in stored_per_broker {
        assert!(count > 3_000, "both brokers share the load: {per_broker:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_sends_keep_each_keys_order_in_one_queue() {
    // Named bindings keep the nameserver and the directory alive.
    let TwoBrokers {
        root: _root,
        nameserver: _nameserver,
        namesrv,
        mut brokers,
    } = two_brokers("ordered", 4).await;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    let keys = ["order-1", "order-2", "order-3", "order-4", "order-5"];
    for step in 0..40 {
        for key in keys {
            producer
                .send_ordered(Message::new("ordered", format!("{key}:{step}")), key)
                .await
                .unwrap();
        }
    }
    // Queues by (broker, queue id): both brokers have queues 0..4.
    let mut stored = HashMap::new();
    for broker in &mut brokers {
        for ((_, queue), messages) in broker.stop_and_read() {
            stored.insert((broker.name.clone(), queue), messages);
        }
    }
    for key in keys {
        let queues: Vec<_> = stored
            .iter()
            .filter(|(_, messages)| {
                messages
                    .iter()
                    .any(|m| text(m).starts_with(&format!("{key}:")))
            })
            .collect();
        assert_eq!(queues.len(), 1, "{key} went to one queue");
        let steps: Vec<u32> = queues[0]
            .1
            .iter()
            .map(text)
            .filter(|t| t.starts_with(&format!("{key}:")))
            .map(|t| t.rsplit(':').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(steps, (0..40).collect::<Vec<_>>(), "{key} kept its order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_async_oneway_and_compressed_sends_are_stored() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let mut broker = Broker::start("broker-a", &namesrv, root.path(), &[]);
    broker.create_topic("kinds", 2).await;
    wait_for_route(&namesrv, "kinds", 1).await;
    let producer = Producer::builder()
        .namesrv(&namesrv)
        .compress_threshold(1024)
        .build()
        .unwrap();

    let batch: Vec<Message> = (0..10)
        .map(|i| Message::new("kinds", format!("batch-{i}")))
        .collect();
    let results = producer.send_batch(batch).await.unwrap();
    assert_eq!(results.len(), 10);
    let queue = results[0].queue_id;
    assert!(results.iter().all(|r| r.queue_id == queue));
    assert!(
        results
            .windows(2)
            .all(|w| w[0].queue_offset + 1 == w[1].queue_offset),
        "consecutive"
    );

    // A caller-supplied selector: always the last queue.
    let picked = producer
        .send_with_selector(
            Message::new("kinds", "selected"),
            &|queues: &[mq_producer::MessageQueue]| queues.len() - 1,
        )
        .await
        .unwrap();
    assert_eq!(
        (picked.broker_name.as_str(), picked.queue_id),
        ("broker-a", 1)
    );

    let handle = producer.send_async(Message::new("kinds", "async"));
    assert_eq!(handle.await.unwrap().unwrap().status, SendStatus::Ok);
    producer
        .send_oneway(Message::new("kinds", "oneway"))
        .unwrap();
    let big = "compressible ".repeat(1000);
    producer
        .send(Message::new("kinds", big.clone()))
        .await
        .unwrap();
    // One-way sends are not awaited: give it a moment before stopping.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let stored: Vec<_> = broker.stop_and_read().into_values().flatten().collect();
    let bodies: Vec<String> = stored
        .iter()
        .map(|m| {
            let body = mq_producer::compress::decompress(&m.body, m.flags).unwrap();
            String::from_utf8(body.to_vec()).unwrap()
        })
        .collect();
    for expected in ["batch-0", "batch-9", "selected", "async", "oneway"] {
        assert!(bodies.iter().any(|b| b == expected), "{expected} missing");
    }
    let compressed = stored
        .iter()
        .find(|m| m.flags & mq_producer::compress::FLAG_COMPRESSED != 0)
        .unwrap();
    assert!(compressed.body.len() < big.len() / 4, "stored compressed");
    assert!(bodies.contains(&big));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_topic_is_created_on_first_send_by_an_auto_creating_broker() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let _broker = Broker::start(
        "broker-a",
        &namesrv,
        root.path(),
        &["--auto-create-topic", "true"],
    );
    wait_for_route(&namesrv, mq_common::AUTO_CREATE_TOPIC, 1).await;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    let sent = producer
        .send(Message::new("brand_new", "first"))
        .await
        .unwrap();
    assert_eq!(sent.queue_offset, 0);
    // The broker registers the new topic under its own name.
    wait_for_route(&namesrv, "brand_new", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lingering_sends_go_out_in_batches_and_each_gets_its_result() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let mut broker = Broker::start("broker-a", &namesrv, root.path(), &[]);
    broker.create_topic("linger", 4).await;
    wait_for_route(&namesrv, "linger", 1).await;
    let producer = Arc::new(
        Producer::builder()
            .namesrv(&namesrv)
            .linger(std::time::Duration::from_millis(5))
            .build()
            .unwrap(),
    );
    let sends: Vec<_> = (0..1000)
        .map(|i| producer.send_async(Message::new("linger", format!("m-{i}"))))
        .collect();
    let mut results = Vec::new();
    for send in sends {
        results.push(send.await.unwrap().unwrap());
    }
    // Messages of one batch share a queue and have consecutive offsets.
    let batches: std::collections::HashSet<(u32, u64)> = results
        .iter()
        .map(|r| (r.queue_id, r.queue_offset))
        .collect();
    assert_eq!(batches.len(), 1000, "every message has its own place");
    // Without batching, round-robin would switch queue at every send; a
    // batch goes to one queue, so sends in order switch far less.
    let switches = results
        .windows(2)
        .filter(|w| w[0].queue_id != w[1].queue_id)
        .count();
    assert!(
        switches < 500,
        "{switches} queue switches in 1000 sends: not batched"
    );
    let stored: usize = broker.stop_and_read().values().map(Vec::len).sum();
    assert_eq!(stored, 1000);
}
