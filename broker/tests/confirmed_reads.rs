//! Reads only what the group confirmed, with the real binaries: a broker
//! group of three members in controller mode, all in the SyncStateSet.
//! While one replica is frozen, a message the master and the other
//! replica hold (but the frozen one lacks) is served by neither: had a
//! consumer read it, a failover to the frozen member would give its queue
//! offset to another message, which that consumer would then skip (one
//! acknowledged message lost in the docker cluster test this way). Once
//! the frozen replica catches up, both serve it, waking held pulls.

#![allow(clippy::unwrap_used)]

mod controlled;

use std::time::{Duration, Instant};

use controlled::*;
use mq_proto::broker::v1 as bpb;
use mq_test_support::ServerProcess;

/// Long enough that the frozen replica stays in the SyncStateSet for the
/// whole test (a replica out of sync for this long is dropped from it).
const IN_SYNC_LAG_TIME: (&str, &str) = ("MQ_BROKER_IN_SYNC_LAG_TIME", "120s");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_member_serves_a_message_an_in_sync_replica_lacks_until_it_has_it() {
    let c = Cluster::sized(3, "sync", &["--broker-timeout", "2s"]);
    let controllers = c.controllers.list();
    let start = |id| c.member_via(id, &controllers, &[IN_SYNC_LAG_TIME]);
    let (a, b, third) = (start(1), start(2), start(3));
    wait_group(&c.client, "all three in sync", |g| {
        g.master_id == 1 && g.sync_state_set == [1, 2, 3]
    })
    .await;
    mq_test_support::cluster::create_topic(&a.url(), "failover", 4).await;
    assert_eq!(
        send_direct(&a, "acked").await.unwrap(),
        bpb::SendStatus::SendOk as i32
    );
    assert_eq!(bodies(&pull(&a, 0, 0).await), ["acked"]);
    // Topics reach replicas by the periodic state sync.
    let deadline = Instant::now() + Duration::from_secs(20);
    while try_pull(&b.url(), 0, 0).await.is_err() {
        assert!(Instant::now() < deadline, "the topic reaches the replica");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The third member freezes: the next send reaches the master and the
    // second member, but not every member of the SyncStateSet.
    signal(&third, "STOP");
    let status = send_direct(&a, "unconfirmed").await.unwrap();
    assert_ne!(status, bpb::SendStatus::SendOk as i32, "not acknowledged");
    let end = log_end(&a).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while log_end(&b).await < end {
        assert!(
            Instant::now() < deadline,
            "the second member has the message"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for member in [&a, &b] {
        let held = pull(member, 1, 0).await;
        assert_eq!(
            held.status,
            bpb::PullStatus::NoNewMsg as i32,
            "{}: {held:?}",
            member.url()
        );
        assert!(held.messages.is_empty());
        assert_eq!(max_offset(member).await, 1, "the readable end");
    }
    assert!(
        unconfirmed_bytes(&a) > 0,
        "the metric shows the held-back bytes"
    );

    // Pulls held on both; the frozen member thaws, catches up and the
    // held pulls are answered at once (they would wait out 30 s).
    let held: Vec<_> = [&a, &b]
        .map(|member| {
            let url = member.url();
            tokio::spawn(async move {
                let began = Instant::now();
                (pull_at(&url, 1, 30_000).await, began.elapsed())
            })
        })
        .into();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        held.iter().all(|p| !p.is_finished()),
        "held until confirmed"
    );
    signal(&third, "CONT");
    for pull in held {
        let (answer, took) = pull.await.unwrap();
        assert_eq!(bodies(&answer), ["unconfirmed"]);
        assert!(
            took < Duration::from_secs(15),
            "woken, not timed out: {took:?}"
        );
    }
    assert_eq!(max_offset(&a).await, 2);
    assert_eq!(unconfirmed_bytes(&a), 0);
    drop(third);
}

async fn pull(broker: &ServerProcess, offset: u64, suspend_ms: u64) -> bpb::PullMessageResponse {
    pull_at(&broker.url(), offset, suspend_ms).await
}

async fn pull_at(url: &str, offset: u64, suspend_ms: u64) -> bpb::PullMessageResponse {
    try_pull(url, offset, suspend_ms)
        .await
        .unwrap_or_else(|status| panic!("pull from {url}: {status}"))
}

/// Queue 0 of the test topic from `offset`, held up to `suspend_ms`.
async fn try_pull(
    url: &str,
    offset: u64,
    suspend_ms: u64,
) -> Result<bpb::PullMessageResponse, tonic::Status> {
    let mut client = bpb::broker_client::BrokerClient::connect(url.to_owned())
        .await
        .unwrap();
    client
        .pull_message(bpb::PullMessageRequest {
            group: "readers".into(),
            topic: "failover".into(),
            queue_id: 0,
            offset,
            max_messages: 32,
            suspend_timeout_ms: suspend_ms,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

fn bodies(answer: &bpb::PullMessageResponse) -> Vec<String> {
    answer
        .messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

/// Queue 0's readable end on `broker`.
async fn max_offset(broker: &ServerProcess) -> u64 {
    let mut client = bpb::broker_client::BrokerClient::connect(broker.url())
        .await
        .unwrap();
    client
        .get_queue_offsets(bpb::GetQueueOffsetsRequest {
            topic: "failover".into(),
            queue_id: 0,
            timestamp_ms: None,
        })
        .await
        .unwrap()
        .into_inner()
        .max_offset
}

/// `mq_broker_unconfirmed_bytes` of `broker`.
fn unconfirmed_bytes(broker: &ServerProcess) -> u64 {
    let metrics = metrics_of(broker);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("mq_broker_unconfirmed_bytes "))
        .unwrap_or_else(|| panic!("no mq_broker_unconfirmed_bytes in:\n{metrics}"))
        .parse()
        .unwrap()
}
