//! Transactional messages on a real broker: commit, rollback, checks back
//! to a producer's session, discarding after the last check, crashes on
//! either side of the end, and bad input.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_test_support::{ServerProcess, standalone_broker_with_env};
use tonic::transport::Channel;
use tonic::{Code, Status};

const GROUP: &str = "tx-producers";

/// Checks soon and often, and gives up after three.
const FAST_CHECKS: [(&str, &str); 4] = [
    ("MQ_BROKER_TRANSACTION_TIMEOUT", "300ms"),
    ("MQ_BROKER_TRANSACTION_CHECK_INTERVAL", "300ms"),
    ("MQ_BROKER_TRANSACTION_CHECK_MAX", "3"),
    ("MQ_BROKER_STORE__FLUSH", "sync"),
];

fn start(dir: &std::path::Path, extra: &[(&str, &str)]) -> ServerProcess {
    let mut env = FAST_CHECKS.to_vec();
    env.extend_from_slice(extra);
    standalone_broker_with_env(dir, &env).0
}

async fn client(broker: &ServerProcess) -> BrokerClient<Channel> {
    BrokerClient::connect(broker.url()).await.unwrap()
}

fn message(topic: &str, body: &str) -> pb::Message {
    pb::Message {
        topic: topic.into(),
        body: body.to_owned().into(),
        tags: "T".into(),
        unique_id: format!("id-{body}"),
        properties: [("order".to_owned(), body.to_owned())].into(),
        ..pb::Message::default()
    }
}

async fn half(
    rpc: &mut BrokerClient<Channel>,
    topic: &str,
    body: &str,
) -> pb::SendHalfMessageResponse {
    rpc.send_half_message(pb::SendHalfMessageRequest {
        message: Some(message(topic, body)),
        queue_id: 0,
        producer_group: GROUP.into(),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn end(
    rpc: &mut BrokerClient<Channel>,
    group: &str,
    begun: &pb::SendHalfMessageResponse,
    outcome: pb::TransactionOutcome,
) -> Result<pb::EndTransactionResponse, Status> {
    rpc.end_transaction(pb::EndTransactionRequest {
        producer_group: group.into(),
        transaction_id: begun.transaction_id.clone(),
        message_id: begun.result.as_ref().unwrap().message_id.clone(),
        outcome: outcome as i32,
        from_check: false,
    })
    .await
    .map(tonic::Response::into_inner)
}

/// Every body of `topic`'s queue 0, once a plain `fence` message sent now
/// is visible: anything stored before it is visible too.
async fn bodies(rpc: &mut BrokerClient<Channel>, topic: &str, fence: &str) -> Vec<String> {
    rpc.send_message(pb::SendMessageRequest {
        message: Some(pb::Message {
            topic: topic.into(),
            body: fence.to_owned().into(),
            ..pb::Message::default()
        }),
        queue_id: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pulled = rpc
            .pull_message(pb::PullMessageRequest {
                group: "readers".into(),
                topic: topic.into(),
                queue_id: 0,
                offset: 0,
                max_messages: 1024,
                max_bytes: 0,
                tag_expression: "*".into(),
                suspend_timeout_ms: 0,
                sql_expression: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let bodies: Vec<String> = pulled
            .messages
            .iter()
            .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
            .collect();
        if bodies.iter().any(|b| b == fence) {
            return bodies
                .into_iter()
                .filter(|b| !b.starts_with("fence"))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "the fence never became visible: {bodies:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn session(
    rpc: &mut BrokerClient<Channel>,
    client_id: &str,
) -> tonic::Streaming<pb::TransactionCheck> {
    rpc.producer_session(pb::ProducerSessionRequest {
        producer_group: GROUP.into(),
        client_id: client_id.into(),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn next_check(
    checks: &mut tonic::Streaming<pb::TransactionCheck>,
    within: Duration,
) -> Option<pb::TransactionCheck> {
    tokio::time::timeout(within, checks.message())
        .await
        .ok()
        .map(|m| m.unwrap().expect("the session ended"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_transaction_is_delivered_once_and_a_rolled_back_one_never() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]);
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 1).await;
    let mut rpc = client(&broker).await;

    let kept = half(&mut rpc, "orders", "kept").await;
    let dropped = half(&mut rpc, "orders", "dropped").await;
    assert_eq!(
        kept.result.as_ref().unwrap().status,
        pb::SendStatus::SendOk as i32
    );
    assert_ne!(kept.transaction_id, dropped.transaction_id);
    assert!(
        bodies(&mut rpc, "orders", "fence-1").await.is_empty(),
        "half messages are invisible"
    );

    let committed = end(&mut rpc, GROUP, &kept, pb::TransactionOutcome::Commit)
        .await
        .unwrap();
    let at = committed.result.unwrap();
    assert_eq!(at.message_id, "id-kept");
    end(&mut rpc, GROUP, &dropped, pb::TransactionOutcome::Rollback)
        .await
        .unwrap();
    assert_eq!(bodies(&mut rpc, "orders", "fence-2").await, ["kept"]);

    // The committed message is the producer's: tag, properties, id.
    let view = rpc
        .view_message(pb::ViewMessageRequest {
            id: Some(pb::view_message_request::Id::OffsetMessageId(
                at.offset_message_id.clone(),
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!((view.topic.as_str(), view.tags.as_str()), ("orders", "T"));
    assert_eq!(
        view.properties.get("order").map(String::as_str),
        Some("kept")
    );
    assert_eq!(
        view.properties.get("TRAN_MSG").map(String::as_str),
        Some("true")
    );

    // Ending again, either way, is refused and changes nothing.
    for (begun, outcome, how) in [
        (&kept, pb::TransactionOutcome::Commit, "already committed"),
        (&kept, pb::TransactionOutcome::Rollback, "already committed"),
        (
            &dropped,
            pb::TransactionOutcome::Commit,
            "already rolled back",
        ),
    ] {
        let err = end(&mut rpc, GROUP, begun, outcome).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        assert!(err.message().contains(how), "{}", err.message());
    }
    assert_eq!(bodies(&mut rpc, "orders", "fence-3").await, ["kept"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_is_checked_back_answered_and_the_unanswered_one_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]);
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 1).await;
    let mut rpc = client(&broker).await;
    // A producer that will vanish, and one that stays.
    let gone = session(&mut rpc, "producer-gone").await;
    drop(gone);
    let mut checks = session(&mut rpc, "producer-b").await;

    let open = half(&mut rpc, "orders", "open").await;
    let check = next_check(&mut checks, Duration::from_secs(10))
        .await
        .expect("a check of the open transaction");
    assert_eq!(check.transaction_id, open.transaction_id);
    assert_eq!(check.check, 1);
    let asked = check.message.unwrap();
    assert_eq!(
        (asked.topic.as_str(), asked.unique_id.as_str()),
        ("orders", "id-open")
    );
    // The producer answers the check: committed.
    rpc.end_transaction(pb::EndTransactionRequest {
        producer_group: GROUP.into(),
        transaction_id: check.transaction_id,
        message_id: asked.unique_id,
        outcome: pb::TransactionOutcome::Commit as i32,
        from_check: true,
    })
    .await
    .unwrap();
    assert_eq!(bodies(&mut rpc, "orders", "fence-1").await, ["open"]);

    // Never answered: asked three times, then discarded, never delivered.
    let silent = half(&mut rpc, "orders", "silent").await;
    let mut counts = Vec::new();
    while let Some(check) = next_check(&mut checks, Duration::from_secs(3)).await {
        assert_eq!(
            check.transaction_id, silent.transaction_id,
            "the committed one is never asked again"
        );
        counts.push(check.check);
    }
    assert_eq!(counts, [1, 2, 3]);
    let err = end(&mut rpc, GROUP, &silent, pb::TransactionOutcome::Commit)
        .await
        .unwrap_err();
    assert!(
        err.message().contains("discarded after its last check"),
        "{}",
        err.message()
    );
    assert_eq!(bodies(&mut rpc, "orders", "fence-2").await, ["open"]);
    let (_, metrics) = mq_test_support::http_get(
        broker.logged_addr("metrics endpoint ready").unwrap(),
        "/metrics",
    );
    assert!(
        metrics.contains("mq_broker_transactions_discarded_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_on_either_side_of_the_end_neither_loses_nor_repeats_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    // Dies after the commit is appended (and flushed) but before the book
    // knows.
    let mut broker = start(
        dir.path(),
        &[("FAILPOINTS", "transaction::end_appended=return")],
    );
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 1).await;
    let mut rpc = client(&broker).await;
    let after = half(&mut rpc, "orders", "after").await;
    let before = half(&mut rpc, "orders", "before").await;
    assert!(
        end(&mut rpc, GROUP, &after, pb::TransactionOutcome::Commit)
            .await
            .is_err()
    );
    assert!(
        broker.wait_for_exit(Duration::from_secs(10)).is_some(),
        "the fail point did not fire (built with --features mq-broker/failpoints?)"
    );

    // Dies before the next commit is appended.
    broker = start(
        dir.path(),
        &[("FAILPOINTS", "transaction::before_end=return")],
    );
    let mut rpc = client(&broker).await;
    assert!(
        end(&mut rpc, GROUP, &before, pb::TransactionOutcome::Commit)
            .await
            .is_err()
    );
    assert!(broker.wait_for_exit(Duration::from_secs(10)).is_some());

    // Restarted: the first is committed (once), the second is open and is
    // checked back; the first is never asked about.
    broker = start(dir.path(), &[]);
    let mut rpc = client(&broker).await;
    let err = end(&mut rpc, GROUP, &after, pb::TransactionOutcome::Commit)
        .await
        .unwrap_err();
    assert!(
        err.message().contains("already committed"),
        "{}",
        err.message()
    );
    let mut checks = session(&mut rpc, "producer").await;
    let check = next_check(&mut checks, Duration::from_secs(10))
        .await
        .expect("a check of the open one");
    assert_eq!(check.transaction_id, before.transaction_id);
    end(&mut rpc, GROUP, &before, pb::TransactionOutcome::Commit)
        .await
        .unwrap();
    assert_eq!(
        bodies(&mut rpc, "orders", "fence-1").await,
        ["after", "before"]
    );
    // Nothing more is asked: both ended.
    while let Some(check) = next_check(&mut checks, Duration::from_secs(1)).await {
        assert_ne!(check.transaction_id, after.transaction_id);
        assert_ne!(check.transaction_id, before.transaction_id);
    }
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactions_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]);
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 1).await;
    let mut rpc = client(&broker).await;
    let begun = half(&mut rpc, "orders", "x").await;

    let mut cases: Vec<(pb::EndTransactionRequest, Code, &str)> = Vec::new();
    let good = pb::EndTransactionRequest {
        producer_group: GROUP.into(),
        transaction_id: begun.transaction_id.clone(),
        message_id: "id-x".into(),
        outcome: pb::TransactionOutcome::Commit as i32,
        from_check: false,
    };
    let with = |f: &dyn Fn(&mut pb::EndTransactionRequest)| {
        let mut r = good.clone();
        f(&mut r);
        r
    };
    cases.push((
        with(&|r| r.transaction_id = "nope".into()),
        Code::InvalidArgument,
        "transaction_id: \"nope\" is not a transaction id",
    ));
    cases.push((
        with(&|r| r.transaction_id = "00000000000000FF".into()),
        Code::NotFound,
        "no transaction 00000000000000FF",
    ));
    cases.push((
        with(&|r| r.producer_group = "others".into()),
        Code::FailedPrecondition,
        "belongs to producer group \"tx-producers\", not \"others\"",
    ));
    cases.push((
        with(&|r| r.message_id = "id-y".into()),
        Code::FailedPrecondition,
        "is message \"id-x\", not \"id-y\"",
    ));
    cases.push((
        with(&|r| r.outcome = 0),
        Code::InvalidArgument,
        "outcome: must be COMMIT or ROLLBACK",
    ));
    cases.push((
        with(&|r| r.producer_group = String::new()),
        Code::InvalidArgument,
        "producer_group",
    ));
    for (request, code, needle) in cases {
        let err = rpc.end_transaction(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        assert!(
            err.message().contains(needle),
            "{:?} should say {needle:?}",
            err.message()
        );
    }

    let mut delayed = message("orders", "later");
    delayed.delay_level = 2;
    for (request, needle) in [
        (
            pb::SendHalfMessageRequest {
                message: Some(delayed),
                queue_id: 0,
                producer_group: GROUP.into(),
            },
            "cannot be delayed",
        ),
        (
            pb::SendHalfMessageRequest {
                message: Some(message("orders", "y")),
                queue_id: 0,
                producer_group: String::new(),
            },
            "producer_group",
        ),
        (
            pb::SendHalfMessageRequest {
                message: Some(message("orders", "y")),
                queue_id: 7,
                producer_group: GROUP.into(),
            },
            "queue_id",
        ),
        (
            pb::SendHalfMessageRequest {
                message: Some(message("RMQ_SYS_TRANS_HALF_TOPIC", "y")),
                queue_id: 0,
                producer_group: GROUP.into(),
            },
            "reserved",
        ),
        (
            pb::SendHalfMessageRequest {
                message: None,
                queue_id: 0,
                producer_group: GROUP.into(),
            },
            "message: is required",
        ),
    ] {
        let err = rpc.send_half_message(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(
            err.message().contains(needle),
            "{:?} should say {needle:?}",
            err.message()
        );
    }
    // Half messages are the broker's: nobody reads them as a topic.
    let err = rpc
        .pull_message(pb::PullMessageRequest {
            group: "g".into(),
            topic: "RMQ_SYS_TRANS_HALF_TOPIC".into(),
            queue_id: 0,
            max_messages: 1,
            tag_expression: "*".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    // The good request still works after all the bad ones.
    rpc.end_transaction(good).await.unwrap();
}
