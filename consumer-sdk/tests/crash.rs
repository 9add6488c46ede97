//! A consumer process killed with SIGKILL, or frozen with SIGSTOP (a
//! machine that died without closing its connections): its queues move to
//! the other member, and nothing is lost. The broker here expires silent
//! members and lapses queue locks only after ten minutes, so the only
//! thing that can free the dead member's queues in time is the end of its
//! session: its connection closing with the process, or the broker's
//! keepalive ping going unanswered (1 s and 1 s here).
//!
//! The killed consumer is this test binary re-run as `consumer_child`.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_consumer::{ConsumeFrom, ConsumeResult, PushConsumer};
use mq_producer::{Message, Producer};
use support::*;

const NAMESRV_ENV: &str = "MQ_CONSUMER_CHILD_NAMESRV";

fn builder(namesrv: &str, id: &str) -> mq_consumer::PushConsumerBuilder {
    PushConsumer::builder()
        .namesrv(namesrv)
        .group("g-crash")
        .client_id(id)
        .subscribe("crash", "*")
        .consume_from(ConsumeFrom::FirstOffset)
        .heartbeat_interval(Duration::from_millis(300))
        .rebalance_interval(Duration::from_secs(1))
        .commit_interval(Duration::from_millis(200))
        .suspend(Duration::from_secs(1))
}

#[test]
#[ignore = "the consumer child of the crash test; run by it, not on its own"]
fn consumer_child() {
    let namesrv = std::env::var(NAMESRV_ENV).expect("run by the crash test");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let consumer = builder(&namesrv, "child")
            .handler(|batch| async move {
                for msg in batch {
                    println!("GOT {}", String::from_utf8(msg.body.to_vec()).unwrap());
                }
                ConsumeResult::Success
            })
            .start()
            .await
            .unwrap();
        loop {
            println!("OWNS {}", consumer.assignment().len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// How the other member goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Death {
    Killed,
    Frozen,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_consumers_queues_move_to_the_survivor_and_nothing_is_lost() {
    queues_move_to_the_survivor(Death::Killed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_consumers_queues_move_to_the_survivor_and_nothing_is_lost() {
    queues_move_to_the_survivor(Death::Frozen).await;
}

async fn queues_move_to_the_survivor(death: Death) {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let keepalive = [
        ("MQ_BROKER_CLIENT_KEEPALIVE_INTERVAL", "1s"),
        ("MQ_BROKER_CLIENT_KEEPALIVE_TIMEOUT", "1s"),
    ];
    let broker = start_broker_without_expiry("broker-a", &namesrv, root.path(), &keepalive);
    create_topic(&broker, "crash", 4).await;
    wait_for_route(&namesrv, "crash", 1).await;

    let handled: Arc<Mutex<HashSet<String>>> = Arc::default();
    let owns_child = Arc::new(Mutex::new(0usize));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "consumer_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(NAMESRV_ENV, &namesrv)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (seen, owns) = (Arc::clone(&handled), Arc::clone(&owns_child));
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(body) = line.split("GOT ").nth(1) {
                seen.lock().unwrap().insert(body.to_owned());
            } else if let Some(n) = line.split("OWNS ").nth(1) {
                *owns.lock().unwrap() = n.trim().parse().unwrap_or(0);
            }
        }
    });

    let sink = Arc::clone(&handled);
    let survivor = builder(&namesrv, "survivor")
        .handler(move |batch| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().unwrap().extend(
                    batch
                        .into_iter()
                        .map(|m| String::from_utf8(m.body.to_vec()).unwrap()),
                );
                ConsumeResult::Success
            }
        })
        .start()
        .await
        .unwrap();
    wait_until("both members own queues", Duration::from_secs(20), || {
        *owns_child.lock().unwrap() == 2 && survivor.assignment().len() == 2
    })
    .await;

    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    for i in 0..500 {
        producer
            .send(Message::new("crash", format!("m-{i}")))
            .await
            .unwrap();
    }
    let killed = std::time::Instant::now();
    match death {
        Death::Killed => child.kill().unwrap(),
        Death::Frozen => {
            let stopped = Command::new("kill")
                .args(["-STOP", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(stopped.success());
        }
    }
    for i in 500..1000 {
        producer
            .send(Message::new("crash", format!("m-{i}")))
            .await
            .unwrap();
    }
    // The session ends with the process (or its unanswered keepalive);
    // the survivor hears of it on its own session and rebalances at once
    // (its rebalance timer is 1 s, but the dead member's locks would hold
    // it off for ten minutes).
    wait_until(
        "the survivor owns every queue",
        Duration::from_secs(15),
        || survivor.assignment().len() == 4,
    )
    .await;
    println!(
        "the survivor owned every queue {:?} after the consumer was {death:?}",
        killed.elapsed()
    );
    wait_until(
        "every message is handled by someone",
        Duration::from_secs(20),
        || handled.lock().unwrap().len() == 1000,
    )
    .await;
    survivor.shutdown().await;
    if death == Death::Frozen {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    reader.join().unwrap();
}
