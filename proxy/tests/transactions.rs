//! Transactional messages for RocketMQ 5 clients through the proxy in a
//! real broker: commit, rollback, and an orphaned transaction recovered
//! over the producer's Telemetry stream.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use support::*;

/// Checks open transactions after 300 ms, every 300 ms.
const ENV: &[(&str, &str)] = &[
    ("MQ_BROKER_TRANSACTION_TIMEOUT", "300ms"),
    ("MQ_BROKER_TRANSACTION_CHECK_INTERVAL", "300ms"),
    ("MQ_BROKER_POP_MIN_INVISIBLE", "1s"),
];

async fn send_transactional(
    rpc: &mut v2::messaging_service_client::MessagingServiceClient<tonic::transport::Channel>,
    body: &str,
) -> v2::SendResultEntry {
    let sent = send(
        rpc,
        vec![message("orders", body, v2::MessageType::Transaction)],
    )
    .await;
    assert_eq!(code(&sent.status), Code::Ok, "{sent:?}");
    let entry = sent.entries.into_iter().next().unwrap();
    assert!(entry.transaction_id.contains('@'), "{entry:?}");
    entry
}

async fn end(
    rpc: &mut v2::messaging_service_client::MessagingServiceClient<tonic::transport::Channel>,
    entry: &v2::SendResultEntry,
    resolution: v2::TransactionResolution,
    source: v2::TransactionSource,
) -> v2::Status {
    let ended = rpc
        .end_transaction(request(v2::EndTransactionRequest {
            topic: resource("orders"),
            message_id: entry.message_id.clone(),
            transaction_id: entry.transaction_id.clone(),
            resolution: resolution as i32,
            source: source as i32,
            trace_context: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    ended.status.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transactions_are_received_and_rolled_back_ones_never() {
    let cluster = Cluster::start(ENV);
    create_topic(&cluster, "orders", 1, "TRANSACTION").await;
    let mut rpc = client(&cluster).await;
    let queue = some_queue(&mut rpc, &cluster, "orders").await;

    let kept = send_transactional(&mut rpc, "kept").await;
    let dropped = send_transactional(&mut rpc, "dropped").await;
    let nothing = receive(&mut rpc, "g", &queue, 32, 10_000, 0).await;
    assert_eq!(
        nothing.code(),
        Code::MessageNotFound,
        "half messages are invisible"
    );

    let (commit, rollback, client) = (
        v2::TransactionResolution::Commit,
        v2::TransactionResolution::Rollback,
        v2::TransactionSource::SourceClient,
    );
    assert_eq!(
        end(&mut rpc, &kept, commit, client).await.code,
        Code::Ok as i32
    );
    assert_eq!(
        end(&mut rpc, &dropped, rollback, client).await.code,
        Code::Ok as i32
    );
    let got = receive(&mut rpc, "g", &queue, 32, 10_000, 2_000).await;
    assert_eq!(got.bodies(), ["kept"]);

    // Ended already, or not an id of ours: refused with the reason.
    let again = end(&mut rpc, &kept, commit, client).await;
    assert_ne!(again.code, Code::Ok as i32);
    assert!(again.message.contains("already committed"), "{again:?}");
    let bogus = v2::SendResultEntry {
        transaction_id: "not-an-id".into(),
        ..kept.clone()
    };
    let refused = end(&mut rpc, &bogus, commit, client).await;
    assert_eq!(
        refused.code,
        Code::InvalidTransactionId as i32,
        "{refused:?}"
    );
    // A NORMAL topic takes no transactional message.
    create_topic(&cluster, "plain", 1, "").await;
    let sent = send(
        &mut rpc,
        vec![message("plain", "x", v2::MessageType::Transaction)],
    )
    .await;
    assert_eq!(code(&sent.status), Code::MessagePropertyConflictWithType);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphaned_transaction_is_recovered_through_the_producers_telemetry() {
    let cluster = Cluster::start(ENV);
    create_topic(&cluster, "orders", 1, "TRANSACTION").await;
    let mut rpc = client(&cluster).await;
    let queue = some_queue(&mut rpc, &cluster, "orders").await;
    let producer = v2::Settings {
        client_type: Some(v2::ClientType::Producer as i32),
        pub_sub: Some(v2::settings::PubSub::Publishing(v2::Publishing {
            topics: vec![resource("orders").unwrap()],
            ..Default::default()
        })),
        ..Default::default()
    };
    let (_, mut telemetry) = handshake(&mut rpc, producer).await;

    let orphan = send_transactional(&mut rpc, "orphan").await;
    let command = tokio::time::timeout(Duration::from_secs(10), telemetry.message())
        .await
        .expect("a recovery command within 10 s")
        .unwrap()
        .unwrap();
    let Some(v2::telemetry_command::Command::RecoverOrphanedTransactionCommand(recover)) =
        command.command
    else {
        panic!("a recovery command expected: {command:?}");
    };
    assert_eq!(recover.transaction_id, orphan.transaction_id);
    let message = recover.message.unwrap();
    assert_eq!(message.body, "orphan".as_bytes());
    // The client answers as the official ones do: from the check.
    let answer = v2::SendResultEntry {
        transaction_id: recover.transaction_id,
        ..orphan
    };
    let ended = end(
        &mut rpc,
        &answer,
        v2::TransactionResolution::Commit,
        v2::TransactionSource::SourceServerCheck,
    )
    .await;
    assert_eq!(ended.code, Code::Ok as i32, "{ended:?}");
    let got = receive(&mut rpc, "g", &queue, 32, 10_000, 2_000).await;
    assert_eq!(got.bodies(), ["orphan"]);
}
