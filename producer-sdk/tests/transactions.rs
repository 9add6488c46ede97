//! The transactional producer against a real nameserver and broker:
//! commit, rollback, an unknown outcome settled by a check, and a producer
//! that dies after its half message, whose transaction another member of
//! the group settles.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mq_producer::{Message, TransactionProducer, TransactionState};
use support::*;

const GROUP: &str = "order-service";

/// A broker that checks open transactions after 300 ms, every 300 ms.
async fn cluster(root: &std::path::Path) -> (mq_test_support::ServerProcess, String, Broker) {
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let config = root.join("broker.toml");
    std::fs::write(
        &config,
        "transaction_timeout = \"300ms\"\ntransaction_check_interval = \"300ms\"\n",
    )
    .unwrap();
    let broker = Broker::start(
        "broker-a",
        &namesrv,
        root,
        &["--config", config.to_str().unwrap()],
    );
    broker.create_topic("tx", 2).await;
    mq_test_support::cluster::wait_for_route(&namesrv, "tx", 1).await;
    (nameserver, namesrv, broker)
}

/// A checker that commits messages keyed `keep` and counts its calls.
fn checker(
    asked: Arc<AtomicUsize>,
) -> impl Fn(mq_producer::OrphanedTransaction) -> std::future::Ready<TransactionState>
+ Send
+ Sync
+ 'static {
    move |orphan| {
        asked.fetch_add(1, Ordering::SeqCst);
        std::future::ready(if orphan.message.key() == Some("keep") {
            TransactionState::Commit
        } else {
            TransactionState::Rollback
        })
    }
}

async fn producer(namesrv: &str, asked: Arc<AtomicUsize>) -> TransactionProducer {
    TransactionProducer::builder()
        .namesrv(namesrv)
        .group(GROUP)
        .topics(["tx"])
        .checker(checker(asked))
        .start()
        .await
        .unwrap()
}

/// The bodies stored in `tx` once the broker stops.
fn delivered(broker: &mut Broker) -> Vec<String> {
    let stored = broker.stop_and_read();
    let mut bodies: Vec<String> = stored
        .iter()
        .filter(|((topic, _), _)| topic == "tx")
        .flat_map(|(_, messages)| messages.iter().map(text))
        .collect();
    bodies.sort();
    bodies
}

async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_rolled_back_and_checked_transactions_deliver_exactly_the_committed() {
    let root = tempfile::tempdir().unwrap();
    let (_nameserver, namesrv, mut broker) = cluster(root.path()).await;
    let asked = Arc::new(AtomicUsize::new(0));
    let producer = producer(&namesrv, Arc::clone(&asked)).await;

    let committed = producer
        .send_in_transaction(Message::new("tx", "committed"), |half| {
            assert!(!half.message_id.is_empty());
            async { TransactionState::Commit }
        })
        .await
        .unwrap();
    assert_eq!(committed.state, TransactionState::Commit);
    producer
        .send_in_transaction(Message::new("tx", "rolled-back"), |_| async {
            TransactionState::Rollback
        })
        .await
        .unwrap();
    // Unknown: the broker asks, the checker commits (keyed keep) or
    // rolls back.
    for (body, key) in [("checked-keep", "keep"), ("checked-drop", "drop")] {
        let sent = producer
            .send_in_transaction(Message::new("tx", body).with_key(key), |_| async {
                TransactionState::Unknown
            })
            .await
            .unwrap();
        assert_eq!(sent.state, TransactionState::Unknown);
    }
    wait_for("both checks", || asked.load(Ordering::SeqCst) >= 2).await;
    // Once the answers are in, nothing is asked again (a slow answer may
    // have been asked twice before it landed).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let answered = asked.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(asked.load(Ordering::SeqCst), answered);
    drop(producer);
    assert_eq!(delivered(&mut broker), ["checked-keep", "committed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_producer_died_is_settled_by_another_of_its_group() {
    let root = tempfile::tempdir().unwrap();
    let (_nameserver, namesrv, mut broker) = cluster(root.path()).await;
    // Until it dies it cannot tell (a check that reaches it in time is
    // answered "unknown").
    let first = TransactionProducer::builder()
        .namesrv(&namesrv)
        .group(GROUP)
        .topics(["tx"])
        .checker(|_| async { TransactionState::Unknown })
        .start()
        .await
        .unwrap();
    // The local transaction never finishes: the producer dies in it.
    let sending = {
        let msg = Message::new("tx", "orphan").with_key("keep");
        async move {
            first
                .send_in_transaction(msg, |_| std::future::pending::<TransactionState>())
                .await
        }
    };
    let died = tokio::time::timeout(Duration::from_millis(500), sending).await;
    assert!(
        died.is_err(),
        "the local transaction is still running when the producer dies"
    );

    let asked_second = Arc::new(AtomicUsize::new(0));
    let second = producer(&namesrv, Arc::clone(&asked_second)).await;
    wait_for("the second producer to be asked", || {
        asked_second.load(Ordering::SeqCst) >= 1
    })
    .await;
    drop(second);
    assert_eq!(delivered(&mut broker), ["orphan"]);
}
