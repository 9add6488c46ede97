//! Faults with real processes: a broker killed mid-traffic, a nameserver
//! gone after routes are cached, a sync-flush broker killed after
//! acknowledging.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mq_producer::{FaultPolicy, Message, Producer};
use support::*;
use tokio::sync::Mutex;

#[derive(Default)]
struct Traffic {
    to_a: AtomicUsize,
    to_b: AtomicUsize,
    failed: AtomicUsize,
    stop: AtomicBool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_broker_is_avoided_without_failed_sends_and_gets_traffic_back() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let a = Broker::start("broker-a", &namesrv, root.path(), &[]);
    let mut b = Broker::start("broker-b", &namesrv, root.path(), &[]);
    for broker in [&a, &b] {
        broker.create_topic("failover", 4).await;
    }
    wait_for_route(&namesrv, "failover", 2).await;

    // Not idempotent: a send in flight to the broker killed is retried on
    // the other one at once. (Idempotent, it would wait for the killed
    // broker to come back, since it may have stored it: see
    // tests/idempotence.rs and the broker's.)
    let producer = Arc::new(
        Producer::builder()
            .namesrv(&namesrv)
            .retries(2)
            .idempotent(false)
            .fault_policy(FaultPolicy {
                isolation_ms: 2_000,
                ..FaultPolicy::default()
            })
            .probe_interval(Duration::from_millis(100))
            .build()
            .unwrap(),
    );
    let traffic = Arc::new(Traffic::default());
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sender = {
        let (producer, traffic, errors) = (
            Arc::clone(&producer),
            Arc::clone(&traffic),
            Arc::clone(&errors),
        );
        tokio::spawn(async move {
            let mut i = 0u64;
            while !traffic.stop.load(Ordering::Acquire) {
                i += 1;
                match producer
                    .send(Message::new("failover", format!("m-{i}")))
                    .await
                {
                    Ok(result) if result.broker_name == "broker-a" => {
                        traffic.to_a.fetch_add(1, Ordering::AcqRel)
                    }
                    Ok(_) => traffic.to_b.fetch_add(1, Ordering::AcqRel),
                    Err(err) => {
                        errors.lock().await.push(err.to_string());
                        traffic.failed.fetch_add(1, Ordering::AcqRel)
                    }
                };
            }
        })
    };

    // Both brokers take traffic.
    wait_until("both brokers get traffic", || {
        traffic.to_a.load(Ordering::Acquire) > 50 && traffic.to_b.load(Ordering::Acquire) > 50
    })
    .await;

    b.process.kill();
    let b_before = traffic.to_b.load(Ordering::Acquire);
    let a_at_kill = traffic.to_a.load(Ordering::Acquire);
    // With retries = 2 and a healthy broker-a, the application sees no
    // failed send at all: the bound is 0.
    wait_until("broker-b is isolated", || {
        !producer.is_broker_available("broker-b")
    })
    .await;
    wait_until("traffic moves to broker-a", || {
        traffic.to_a.load(Ordering::Acquire) > a_at_kill + 300
    })
    .await;
    assert!(
        traffic.to_b.load(Ordering::Acquire) <= b_before + 1,
        "nothing is stored on a dead broker"
    );
    let isolated = producer
        .fault_table()
        .into_iter()
        .find(|f| f.broker_name == "broker-b")
        .unwrap();
    assert!(isolated.isolated, "{isolated:?}");

    // Back on the same port: the probe lets it in again.
    b.restart();
    let b_at_restart = traffic.to_b.load(Ordering::Acquire);
    wait_until("broker-b gets traffic again", || {
        traffic.to_b.load(Ordering::Acquire) > b_at_restart + 50
    })
    .await;
    assert!(producer.is_broker_available("broker-b"));

    traffic.stop.store(true, Ordering::Release);
    sender.await.unwrap();
    assert_eq!(
        traffic.failed.load(Ordering::Acquire),
        0,
        "failed sends: {:?}",
        errors.lock().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_go_on_when_the_nameserver_is_gone_after_routes_are_cached() {
    let root = tempfile::tempdir().unwrap();
    let mut nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = Broker::start("broker-a", &namesrv, root.path(), &[]);
    broker.create_topic("cached", 2).await;
    wait_for_route(&namesrv, "cached", 1).await;
    let producer = Producer::builder()
        .namesrv(&namesrv)
        .route_refresh(Duration::from_millis(100))
        .build()
        .unwrap();
    for i in 0..10 {
        producer
            .send(Message::new("cached", format!("before-{i}")))
            .await
            .unwrap();
    }
    nameserver.kill();
    // Several refreshes fail meanwhile; the cached route keeps serving.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..100 {
        producer
            .send(Message::new("cached", format!("after-{i}")))
            .await
            .unwrap();
    }
    // A topic never cached has no route without a nameserver.
    let err = producer
        .send(Message::new("never_cached", "x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no route"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_a_sigkill_of_a_sync_flush_broker() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let mut broker = Broker::start("broker-a", &namesrv, root.path(), &["--flush", "sync"]);
    broker.create_topic("durable", 4).await;
    wait_for_route(&namesrv, "durable", 1).await;
    let producer = Arc::new(
        Producer::builder()
            .namesrv(&namesrv)
            .retries(0)
            .build()
            .unwrap(),
    );
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let senders: Vec<_> = (0..8)
        .map(|task| {
            let (producer, acked) = (Arc::clone(&producer), Arc::clone(&acked));
            tokio::spawn(async move {
                for i in 0.. {
                    let body = format!("t{task}-{i}");
                    match producer.send(Message::new("durable", body.clone())).await {
                        Ok(_) => {
                            acked.lock().await.insert(body);
                        }
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while acked.lock().await.len() < 500 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    broker.process.kill();
    for sender in senders {
        sender.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(acked.len() >= 500, "only {} acknowledged", acked.len());
    let stored: HashSet<String> = read_store(&broker.store_dir)
        .values()
        .flatten()
        .map(text)
        .collect();
    let missing: Vec<_> = acked.difference(&stored).take(5).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}

/// Waits up to 30 s for `condition`.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    mq_test_support::cluster::wait_until(what, Duration::from_secs(30), condition).await;
}
