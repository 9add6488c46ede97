//! Idempotent sends against the real broker: a send numbered by a
//! producer id and a sequence is stored once however often it is retried,
//! the retry answered with the original offsets, across a SIGKILL too;
//! what the broker cannot tell is refused by name. The broker is built
//! with its fail points: `send::before_answer` loses or holds back the
//! answer of a send it stored.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_test_support::controllers::free_port;
use mq_test_support::{ServerProcess, mqbench, workspace_binary};
use tonic::transport::Channel;

const PRODUCER: u64 = 0x1d3;

/// A standalone broker on fixed ports (a restarted one is found where its
/// clients left it), storing in `dir` with sync flush.
fn start(dir: &std::path::Path, ports: (u16, u16), env: &[(&str, &str)]) -> ServerProcess {
    let (listen, namesrv) = (
        format!("127.0.0.1:{}", ports.0),
        format!("127.0.0.1:{}", ports.1),
    );
    let mut env = env.to_vec();
    env.push(("MQ_BROKER_STORE__FLUSH", "sync"));
    ServerProcess::start_until(
        workspace_binary("broker"),
        &[
            "--standalone",
            "--store-dir",
            dir.to_str().unwrap(),
            "--listen",
            &listen,
            "--namesrv-listen",
            &namesrv,
        ],
        &env,
        "broker listening",
    )
}

async fn client(broker: &ServerProcess) -> BrokerClient<Channel> {
    BrokerClient::connect(broker.url()).await.unwrap()
}

fn message(body: &str) -> pb::Message {
    mq_test_support::cluster::message("orders", body)
}

async fn send(
    rpc: &mut BrokerClient<Channel>,
    body: &str,
    producer_id: u64,
    sequence: u64,
) -> Result<pb::SendResult, tonic::Status> {
    rpc.send_message(pb::SendMessageRequest {
        message: Some(message(body)),
        queue_id: 0,
        producer_id,
        sequence,
    })
    .await
    .map(|r| r.into_inner().result.unwrap())
}

async fn send_batch(
    rpc: &mut BrokerClient<Channel>,
    bodies: &[&str],
    sequence: u64,
) -> Result<Vec<u64>, tonic::Status> {
    rpc.send_batch(pb::SendBatchRequest {
        topic: "orders".into(),
        queue_id: 0,
        messages: bodies.iter().map(|b| message(b)).collect(),
        producer_id: PRODUCER,
        sequence,
    })
    .await
    .map(|r| {
        r.into_inner()
            .results
            .iter()
            .map(|r| r.queue_offset)
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_send_is_stored_once_and_answered_with_its_first_place() {
    let dir = tempfile::tempdir().unwrap();
    let ports = (free_port(), free_port());
    // The first send's answer is lost after it was stored.
    let mut broker = start(
        dir.path(),
        ports,
        &[("FAILPOINTS", "send::before_answer=1*return")],
    );
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 1).await;
    let mut rpc = client(&broker).await;

    let lost = send(&mut rpc, "a", PRODUCER, 0).await.unwrap_err();
    assert_eq!(lost.code(), tonic::Code::Internal, "{lost:?}");
    assert!(
        lost.metadata()
            .get(mq_common::message::NOTHING_STORED)
            .is_none(),
        "a lost answer must not claim that nothing was stored"
    );
    let retried = send(&mut rpc, "a", PRODUCER, 0).await.unwrap();
    assert_eq!(retried.queue_offset, 0);
    assert_eq!(retried.status, pb::SendStatus::SendOk as i32);
    assert_eq!(retried.message_id, "id-a");
    let again = send(&mut rpc, "a", PRODUCER, 0).await.unwrap();
    assert_eq!(again.offset_message_id, retried.offset_message_id);
    // The next number is a new message; so is one not numbered.
    assert_eq!(
        send(&mut rpc, "b", PRODUCER, 1).await.unwrap().queue_offset,
        1
    );
    assert_eq!(send(&mut rpc, "c", 0, 0).await.unwrap().queue_offset, 2);
    assert_eq!(send(&mut rpc, "c", 0, 0).await.unwrap().queue_offset, 3);

    // Batches: numbers 2, 3, 4; a retry of the whole batch stores
    // nothing; one that overlaps its end stores only what is new.
    assert_eq!(
        send_batch(&mut rpc, &["d", "e", "f"], 2).await.unwrap(),
        [4, 5, 6]
    );
    assert_eq!(
        send_batch(&mut rpc, &["d", "e", "f"], 2).await.unwrap(),
        [4, 5, 6]
    );
    assert_eq!(
        send_batch(&mut rpc, &["f", "g", "h"], 4).await.unwrap(),
        [6, 7, 8]
    );
    assert_eq!(
        broker.metric("mq_broker_duplicate_sends_dropped_total"),
        Some(6.0)
    );

    // A batch whose numbers overflow is refused by name.
    let err = send_batch(&mut rpc, &["x", "y"], u64::MAX)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("sequence"), "{err:?}");

    // Killed and started again: the windows are rebuilt from the
    // CommitLog, so a late retry is still recognised.
    broker.kill();
    let broker = start(dir.path(), ports, &[]);
    let mut rpc = client(&broker).await;
    let late = send(&mut rpc, "b", PRODUCER, 1).await.unwrap();
    assert_eq!(late.queue_offset, 1);
    assert_eq!(send_batch(&mut rpc, &["g", "h"], 5).await.unwrap(), [7, 8]);
    assert_eq!(
        send(&mut rpc, "i", PRODUCER, 7).await.unwrap().queue_offset,
        9
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_older_than_the_window_is_refused_not_stored_again() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(
        dir.path(),
        (free_port(), free_port()),
        &[("MQ_BROKER_STORE__IDEMPOTENCE_WINDOW_ENTRIES", "4")],
    );
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 1).await;
    let mut rpc = client(&broker).await;
    for seq in 0..8 {
        send(&mut rpc, &format!("m{seq}"), PRODUCER, seq)
            .await
            .unwrap();
    }
    let err = send(&mut rpc, "m1", PRODUCER, 1).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
    assert!(
        err.message()
            .contains("older than this broker remembers (sequences from 4 on"),
        "{err:?}"
    );
    // The last four are still known.
    assert_eq!(
        send(&mut rpc, "m4", PRODUCER, 4)
            .await
            .unwrap()
            .queue_offset,
        4
    );
    assert_eq!(
        send(&mut rpc, "m8", PRODUCER, 8)
            .await
            .unwrap()
            .queue_offset,
        8
    );
    assert_eq!(
        broker.metric("mq_broker_rejected_requests_total{reason=\"sequence_forgotten\"}"),
        Some(1.0)
    );
}

fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// The verifiable producer against a broker killed (SIGKILL) while it
/// holds back the answers of sends it stored: the producer retries them
/// on the restarted broker, which answers them from its rebuilt windows.
/// Sync flush: nothing acknowledged is lost, nothing is stored twice.
/// (With `--no-idempotence` the same run stores the held-back sends twice.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (produced, consumed) = (work.path().join("produced"), work.path().join("consumed"));
    let ports = (free_port(), free_port());
    let namesrv = format!("127.0.0.1:{}", ports.1);
    // After 300 answers, the broker stores sends and holds their answers.
    let mut broker = start(
        dir.path(),
        ports,
        &[("FAILPOINTS", "send::before_answer=300*off->sleep(60000)")],
    );
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 4).await;
    let producer: Child = Command::new(workspace_binary("mqbench"))
        .args([
            "produce",
            "--namesrv",
            &namesrv,
            "--topic",
            "orders",
            "--count",
            "1000",
            "--producers",
            "4",
            "--send-timeout-ms",
            "30000",
            "--verify-log",
            produced.to_str().unwrap(),
            "--json",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The log is buffered: 150 lines on disk are well into the 300.
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(&produced) < 150 {
        assert!(
            Instant::now() < deadline,
            "the first sends were not answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // By now the 300 are answered and the sends in flight are stored
    // (sync flush), waiting for answers that never come.
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.kill();
    let broker = start(dir.path(), ports, &[]);

    let output = producer.wait_with_output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{out}\n{err}");
    assert_eq!(lines(&produced), 1000, "{out}");
    let dropped = broker.metric("mq_broker_duplicate_sends_dropped_total");
    assert!(
        dropped.is_some_and(|n| n > 0.0),
        "no retry met a send the killed broker had stored: the test proves nothing"
    );

    mqbench::consume_all(&namesrv, "orders", "after-kill", &consumed);
    let (status, out) = mqbench::verify(&produced, &consumed);
    assert!(status.success(), "{out}");
    assert!(out.contains("1000 passed, 0 failed"), "{out}");
    assert!(
        out.contains("duplicates: 0, received but never acknowledged: 0"),
        "{out}"
    );
}
