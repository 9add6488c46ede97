//! A broker group of real processes (master and replica) under a consumer:
//! when the master is killed the consumer reads from the replica, starting
//! where the group's offsets stood (synced from the master), and commits
//! there; when the master returns it takes those commits, and consumption
//! resumes where it stopped.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_consumer::{ConsumeFrom, ConsumeResult, PushConsumer};
use mq_producer::{Message, Producer};
use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_test_support::ServerProcess;
use support::*;

const TOPIC: &str = "failover";
const GROUP: &str = "g-failover";
const QUEUES: u32 = 4;

type Seen = Arc<Mutex<Vec<String>>>;

async fn consumer(namesrv: &str, id: &str, seen: &Seen) -> PushConsumer {
    let sink = Arc::clone(seen);
    PushConsumer::builder()
        .namesrv(namesrv)
        .group(GROUP)
        .client_id(id)
        .subscribe(TOPIC, "*")
        .consume_from(ConsumeFrom::FirstOffset)
        .heartbeat_interval(Duration::from_millis(300))
        .rebalance_interval(Duration::from_secs(1))
        .commit_interval(Duration::from_millis(200))
        .suspend(Duration::from_secs(1))
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
        .unwrap()
}

async fn produce(producer: &Producer, batch: &str, count: usize) -> BTreeSet<String> {
    let mut sent = BTreeSet::new();
    for i in 0..count {
        let body = format!("{batch}-{i}");
        producer
            .send(Message::new(TOPIC, body.clone()))
            .await
            .unwrap();
        sent.insert(body);
    }
    sent
}

async fn stats(broker: &ServerProcess) -> pb::GetBrokerStatsResponse {
    let mut client = BrokerClient::connect(broker.url()).await.unwrap();
    client
        .get_broker_stats(pb::GetBrokerStatsRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// Waits until the replica's log ends where the master's does.
async fn caught_up(master: &ServerProcess, replica: &ServerProcess) {
    let end = stats(master).await.commitlog_max_offset;
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats(replica).await.commitlog_max_offset != end {
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The group's committed offset of every queue on `broker`.
async fn committed(broker: &ServerProcess) -> Vec<Option<u64>> {
    let mut client = BrokerClient::connect(broker.url()).await.unwrap();
    let mut all = Vec::new();
    for queue_id in 0..QUEUES {
        let answer = client
            .query_offset(pb::QueryOffsetRequest {
                group: GROUP.into(),
                topic: TOPIC.into(),
                queue_id,
            })
            .await;
        all.push(answer.ok().and_then(|a| a.into_inner().offset));
    }
    all
}

/// The end of every queue on `broker`.
async fn queue_ends(broker: &ServerProcess) -> Vec<Option<u64>> {
    let mut client = BrokerClient::connect(broker.url()).await.unwrap();
    let mut all = Vec::new();
    for queue_id in 0..QUEUES {
        let answer = client
            .get_queue_offsets(pb::GetQueueOffsetsRequest {
                topic: TOPIC.into(),
                queue_id,
                timestamp_ms: None,
            })
            .await
            .unwrap();
        all.push(Some(answer.into_inner().max_offset));
    }
    all
}

/// Waits until the group's offsets on `broker` are at the queues' ends.
async fn offsets_at_end(what: &str, broker: &ServerProcess, ends: &[Option<u64>]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = committed(broker).await;
        if now == ends {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {now:?}, not {ends:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn received(seen: &Seen) -> (BTreeSet<String>, usize) {
    let seen = seen.lock().unwrap();
    (seen.iter().cloned().collect(), seen.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_turn_to_the_replica_when_the_master_dies_and_their_offsets_follow_back() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let master = start_member("broker-a", 0, None, &namesrv, root.path(), "127.0.0.1:0");
    let master_addr = master.addr.to_string();
    let replica = start_member(
        "broker-a",
        1,
        Some(&master_addr),
        &namesrv,
        root.path(),
        "127.0.0.1:0",
    );
    create_topic(&master, TOPIC, QUEUES).await;
    wait_for_route(&namesrv, TOPIC, 1).await;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();

    // Batch A, consumed from the master; the replica takes the offsets.
    let first = produce(&producer, "a", 400).await;
    let seen: Seen = Arc::default();
    let reader = consumer(&namesrv, "first", &seen).await;
    wait_until("batch a consumed", Duration::from_secs(20), || {
        received(&seen).0 == first
    })
    .await;
    reader.shutdown().await;
    let ends = queue_ends(&master).await;
    offsets_at_end("master offsets", &master, &ends).await;
    offsets_at_end("offsets synced to the replica", &replica, &ends).await;

    // Batch B reaches the replica; the master dies.
    let second = produce(&producer, "b", 400).await;
    caught_up(&master, &replica).await;
    let mut master = master;
    master.kill();

    // Read from the replica, from where the group stood: all of B, none
    // of A again.
    let seen: Seen = Arc::default();
    let began = Instant::now();
    let reader = consumer(&namesrv, "second", &seen).await;
    wait_until(
        "batch b consumed from the replica",
        Duration::from_secs(20),
        || received(&seen).0.is_superset(&second),
    )
    .await;
    let gap = began.elapsed();
    let (bodies, count) = received(&seen);
    assert_eq!(bodies, second, "none of batch a again");
    assert_eq!(count, second.len(), "no duplicates");
    assert!(gap < Duration::from_secs(15), "took {gap:?}");
    reader.shutdown().await;
    let ends = queue_ends(&replica).await;
    offsets_at_end("offsets committed on the replica", &replica, &ends).await;

    // The master returns and takes the commits made on the replica.
    let master = start_member("broker-a", 0, None, &namesrv, root.path(), &master_addr);
    offsets_at_end("offsets handed back to the master", &master, &ends).await;

    // Consumption resumes where it stopped: only what is new.
    let seen: Seen = Arc::default();
    let reader = consumer(&namesrv, "third", &seen).await;
    wait_until(
        "the consumer owns every queue",
        Duration::from_secs(20),
        || reader.assignment().len() == QUEUES as usize,
    )
    .await;
    let third = produce(&producer, "c", 40).await;
    wait_until("batch c consumed", Duration::from_secs(20), || {
        received(&seen).0.is_superset(&third)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (bodies, count) = received(&seen);
    assert_eq!(bodies, third, "nothing of a or b again");
    assert_eq!(count, third.len(), "no duplicates");
    reader.shutdown().await;
    drop((master, replica, nameserver));
}
