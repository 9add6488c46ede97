//! Push consumers against real processes.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_consumer::{ConsumeFrom, ConsumeMode, ConsumeResult, PushConsumer};
use mq_producer::{Message, Producer};
use support::*;

type Seen = Arc<Mutex<HashMap<String, usize>>>;

async fn member(namesrv: &str, group: &str, topic: &str, id: &str, seen: Seen) -> PushConsumer {
    PushConsumer::builder()
        .namesrv(namesrv)
        .group(group)
        .client_id(id)
        .subscribe(topic, "*")
        .consume_from(ConsumeFrom::FirstOffset)
        .heartbeat_interval(Duration::from_millis(300))
        .rebalance_interval(Duration::from_secs(2))
        .commit_interval(Duration::from_millis(200))
        .suspend(Duration::from_secs(2))
        .handler(move |batch| {
            let seen = Arc::clone(&seen);
            async move {
                let mut seen = seen.lock().unwrap();
                for msg in batch {
                    *seen
                        .entry(String::from_utf8(msg.body.to_vec()).unwrap())
                        .or_default() += 1;
                }
                ConsumeResult::Success
            }
        })
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_eight_queues_and_handle_twenty_thousand_messages_once() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let brokers = [
        start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0"),
        start_broker("broker-b", &namesrv, root.path(), "127.0.0.1:0"),
    ];
    for broker in &brokers {
        create_topic(broker, "shared", 4).await;
    }
    wait_for_route(&namesrv, "shared", 2).await;

    let seen: Seen = Arc::default();
    let mut members = Vec::new();
    for id in ["c1", "c2", "c3"] {
        members.push(member(&namesrv, "g-shared", "shared", id, Arc::clone(&seen)).await);
    }
    wait_until(
        "the 8 queues are shared by 3 members",
        Duration::from_secs(20),
        || {
            let sizes: Vec<usize> = members.iter().map(|m| m.assignment().len()).collect();
            sizes.iter().sum::<usize>() == 8 && sizes.iter().all(|&s| s >= 2)
        },
    )
    .await;

    let producer = Arc::new(Producer::builder().namesrv(&namesrv).build().unwrap());
    let senders: Vec<_> = (0..8)
        .map(|t| {
            let producer = Arc::clone(&producer);
            tokio::spawn(async move {
                for i in (t..20_000).step_by(8) {
                    producer
                        .send(Message::new("shared", format!("m-{i}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    wait_until("every message is handled", Duration::from_secs(60), || {
        seen.lock().unwrap().len() == 20_000
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let duplicates: usize = seen.lock().unwrap().values().map(|n| n - 1).sum();
    assert_eq!(duplicates, 0, "no fault, no duplicate");
    for member in members {
        member.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_joining_and_leaving_lose_nothing_and_end_evenly_shared() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let brokers = [
        start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0"),
        start_broker("broker-b", &namesrv, root.path(), "127.0.0.1:0"),
    ];
    for broker in &brokers {
        create_topic(broker, "churn", 4).await;
    }
    wait_for_route(&namesrv, "churn", 2).await;
    let seen: Seen = Arc::default();
    let first = member(&namesrv, "g-churn", "churn", "c1", Arc::clone(&seen)).await;
    let second = member(&namesrv, "g-churn", "churn", "c2", Arc::clone(&seen)).await;
    wait_until(
        "two members own all queues",
        Duration::from_secs(20),
        || first.assignment().len() + second.assignment().len() == 8,
    )
    .await;

    let producer = Arc::new(Producer::builder().namesrv(&namesrv).build().unwrap());
    let sending = {
        let producer = Arc::clone(&producer);
        tokio::spawn(async move {
            for i in 0..6_000 {
                producer
                    .send(Message::new("churn", format!("m-{i}")))
                    .await
                    .unwrap();
                if i % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let third = member(&namesrv, "g-churn", "churn", "c3", Arc::clone(&seen)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    first.shutdown().await;
    sending.await.unwrap();
    wait_until("every message is handled", Duration::from_secs(60), || {
        seen.lock().unwrap().len() == 6_000
    })
    .await;
    wait_until(
        "the queues end evenly shared",
        Duration::from_secs(20),
        || second.assignment().len() == 4 && third.assignment().len() == 4,
    )
    .await;
    let duplicates: usize = seen.lock().unwrap().values().map(|n| n - 1).sum();
    eprintln!("duplicates during the churn: {duplicates}");
    // Hand-overs commit before releasing: duplicates come only from
    // batches in flight at a hand-over, at most one pull batch per queue.
    assert!(duplicates <= 8 * 32, "{duplicates} duplicates");
    second.shutdown().await;
    third.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_consumers_see_each_keys_messages_in_send_order_across_a_rebalance() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0");
    create_topic(&broker, "orders", 4).await;
    wait_for_route(&namesrv, "orders", 1).await;
    let log: Arc<Mutex<HashMap<String, Vec<u32>>>> = Arc::default();
    let start = |id: &'static str| {
        let (namesrv, log) = (namesrv.clone(), Arc::clone(&log));
        async move {
            PushConsumer::builder()
                .namesrv(namesrv)
                .group("g-ordered")
                .client_id(id)
                .subscribe("orders", "*")
                .consume_from(ConsumeFrom::FirstOffset)
                .mode(ConsumeMode::Ordered { batch: 1 })
                .heartbeat_interval(Duration::from_millis(300))
                .rebalance_interval(Duration::from_secs(2))
                .commit_interval(Duration::from_millis(100))
                .suspend(Duration::from_secs(2))
                .handler(move |batch| {
                    let log = Arc::clone(&log);
                    async move {
                        for msg in batch {
                            let text = String::from_utf8(msg.body.to_vec()).unwrap();
                            let (key, step) = text.split_once(':').unwrap();
                            log.lock()
                                .unwrap()
                                .entry(key.to_owned())
                                .or_default()
                                .push(step.parse().unwrap());
                        }
                        ConsumeResult::Success
                    }
                })
                .start()
                .await
                .unwrap()
        }
    };
    let first = start("o1").await;
    let mut second = None;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    let keys = ["k1", "k2", "k3", "k4", "k5", "k6"];
    for step in 0..150u32 {
        for key in keys {
            producer
                .send_ordered(Message::new("orders", format!("{key}:{step}")), key)
                .await
                .unwrap();
        }
        if step == 50 {
            // A second member joins mid-stream: queues move between them.
            second = Some(start("o2").await);
        }
    }
    wait_until("every message is handled", Duration::from_secs(60), || {
        log.lock().unwrap().values().map(Vec::len).sum::<usize>() >= 6 * 150
    })
    .await;
    // Hand-overs commit before they unlock: no message is repeated, none
    // reordered, none lost.
    for (key, steps) in log.lock().unwrap().iter() {
        assert_eq!(steps, &(0..150).collect::<Vec<_>>(), "{key} out of order");
    }
    let second = second.expect("joined");
    assert_eq!(
        (first.assignment().len(), second.assignment().len()),
        (2, 2),
        "the queues were shared"
    );
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasting_members_each_get_everything_and_new_groups_start_at_the_end() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0");
    create_topic(&broker, "news", 2).await;
    wait_for_route(&namesrv, "news", 1).await;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    for i in 0..10 {
        producer
            .send(Message::new("news", format!("old-{i}")))
            .await
            .unwrap();
    }
    let mut members = Vec::new();
    let mut seen = Vec::new();
    for id in ["b1", "b2"] {
        let got: Seen = Arc::default();
        let sink = Arc::clone(&got);
        members.push(
            PushConsumer::builder()
                .namesrv(&namesrv)
                .group("g-news")
                .client_id(id)
                .subscribe("news", "*")
                .broadcasting(true)
                .offset_dir(root.path().join("offsets"))
                .heartbeat_interval(Duration::from_millis(300))
                .suspend(Duration::from_secs(2))
                .handler(move |batch| {
                    let sink = Arc::clone(&sink);
                    async move {
                        for msg in batch {
                            *sink
                                .lock()
                                .unwrap()
                                .entry(String::from_utf8(msg.body.to_vec()).unwrap())
                                .or_default() += 1;
                        }
                        ConsumeResult::Success
                    }
                })
                .start()
                .await
                .unwrap(),
        );
        seen.push(got);
    }
    wait_until(
        "both members own both queues",
        Duration::from_secs(20),
        || members.iter().all(|m| m.assignment().len() == 2),
    )
    .await;
    let sent_at = Instant::now();
    for i in 0..100 {
        producer
            .send(Message::new("news", format!("new-{i}")))
            .await
            .unwrap();
    }
    let new_ones = |got: &Seen| {
        got.lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with("new-"))
            .count()
    };
    wait_until("each member got all 100", Duration::from_secs(30), || {
        seen.iter().all(|s| new_ones(s) == 100)
    })
    .await;
    eprintln!("broadcast of 100 took {:?}", sent_at.elapsed());
    for got in &seen {
        // A new group starts at the end: the 10 old messages are not delivered.
        let old: Vec<String> = got
            .lock()
            .unwrap()
            .keys()
            .filter(|k| !k.starts_with("new-"))
            .cloned()
            .collect();
        assert!(
            old.is_empty(),
            "a new group got messages sent before it started: {old:?}"
        );
    }
    for member in members {
        member.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_started_before_its_topic_exists_consumes_it_once_created() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0");

    let seen: Seen = Arc::default();
    let consumer = member(
        &namesrv,
        "g-early",
        "later-topic",
        "early",
        Arc::clone(&seen),
    )
    .await;
    assert!(consumer.assignment().is_empty(), "nothing to own yet");

    create_topic(&broker, "later-topic", 2).await;
    wait_for_route(&namesrv, "later-topic", 1).await;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    for i in 0..20 {
        producer
            .send(Message::new("later-topic", format!("m{i}")))
            .await
            .unwrap();
    }
    wait_until("the consumer got all 20", Duration::from_secs(30), || {
        seen.lock().unwrap().len() == 20
    })
    .await;
    consumer.shutdown().await;
}
