//! The idempotent producer (on by default) against a real broker whose
//! fail point loses the answer of the first send it stores: the SDK's
//! retry carries the same number and the broker answers it from what it
//! stored. The same run with `idempotent(false)` stores the message twice,
//! which is what the numbering prevents.

#![allow(clippy::unwrap_used)]

use mq_producer::{Message, Producer, SendStatus};
use mq_test_support::{ServerProcess, standalone_broker_with_env};

/// What a run saw: the queue offsets of "a" (answer lost, retried) and
/// then "b", and the broker (with its directory).
struct Run {
    offsets: (u64, u64),
    broker: ServerProcess,
    _dir: tempfile::TempDir,
}

async fn offsets_after_a_lost_answer(idempotent: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (broker, namesrv) = standalone_broker_with_env(
        dir.path(),
        &[("FAILPOINTS", "send::before_answer=1*return")],
    );
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 1).await;
    mq_test_support::cluster::wait_for_route(&namesrv, "orders", 1).await;
    let producer = Producer::builder()
        .namesrv(&namesrv)
        .idempotent(idempotent)
        .build()
        .unwrap();
    assert_eq!(producer.producer_id().is_some(), idempotent);
    let a = producer.send(Message::new("orders", "a")).await.unwrap();
    assert_eq!(a.status, SendStatus::Ok);
    let b = producer.send(Message::new("orders", "b")).await.unwrap();
    Run {
        offsets: (a.queue_offset, b.queue_offset),
        broker,
        _dir: dir,
    }
}

fn duplicates_dropped(broker: &ServerProcess) -> String {
    let (_, metrics) = mq_test_support::http_get(
        broker.logged_addr("metrics endpoint ready").unwrap(),
        "/metrics",
    );
    metrics
        .lines()
        .find(|l| l.starts_with("mq_broker_duplicate_sends_dropped_total"))
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_answer_was_lost_is_stored_once() {
    let run = offsets_after_a_lost_answer(true).await;
    assert_eq!(
        run.offsets,
        (0, 1),
        "the retry of a was answered as stored at 0"
    );
    assert_eq!(
        duplicates_dropped(&run.broker),
        "mq_broker_duplicate_sends_dropped_total 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_numbers_the_retry_stores_it_twice() {
    let run = offsets_after_a_lost_answer(false).await;
    assert_eq!(run.offsets, (1, 2), "a was stored at 0 and again at 1");
    assert_eq!(
        duplicates_dropped(&run.broker),
        "mq_broker_duplicate_sends_dropped_total 0"
    );
}
