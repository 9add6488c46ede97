//! A broker on a disk that really fills up (a small tmpfs): it refuses
//! sends with a clear disk-full status instead of dying with SIGBUS, keeps
//! serving reads, starts again on the full disk after a SIGKILL, and every
//! acknowledged message survives.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_test_support::tmpfs::Tmpfs;
use mq_test_support::{ServerProcess, run_to_end, standalone_broker_with_env, workspace_binary};

const DISK: u64 = 48 << 20;

/// Small files, so that the CommitLog is what fills the disk.
const SMALL_STORE: &[(&str, &str)] = &[
    ("MQ_BROKER_STORE__FLUSH", "sync"),
    ("MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE", "8388608"),
    ("MQ_BROKER_STORE__CONSUME_QUEUE_ENTRIES_PER_FILE", "20000"),
    ("MQ_BROKER_STORE__INDEX_SLOTS_PER_FILE", "10000"),
    ("MQ_BROKER_STORE__INDEX_ENTRIES_PER_FILE", "50000"),
];

fn mqbench(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    run_to_end(workspace_binary("mqbench"), args, &[])
}

async fn send_one(broker: &ServerProcess, topic: &str) -> Result<(), tonic::Status> {
    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();
    rpc.send_message(numbered(topic, 0, 0)).await.map(|_| ())
}

/// A 4 KiB send to queue 0 of `topic`; `producer` 0 does not number it.
fn numbered(topic: &str, producer_id: u64, sequence: u64) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        message: Some(pb::Message {
            topic: topic.into(),
            body: vec![1; 4096].into(),
            ..pb::Message::default()
        }),
        queue_id: 0,
        producer_id,
        sequence,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_sends_keeps_every_acknowledged_message_and_restarts() {
    fill_crash_and_restart("0.90").await;
}

/// Without headroom the disk really runs out: `fallocate` refuses the
/// segment, where a sparse file would have taken the broker down (SIGBUS).
#[tokio::test(flavor = "multi_thread")]
async fn without_headroom_fallocate_refuses_the_segment_the_disk_cannot_hold() {
    fill_crash_and_restart("1.0").await;
}

async fn fill_crash_and_restart(disk_hard_ratio: &str) {
    let Some(disk) = Tmpfs::mount(DISK) else {
        return;
    };
    let settings: Vec<(&str, &str)> = SMALL_STORE
        .iter()
        .copied()
        .chain([("MQ_BROKER_STORE__DISK_HARD_RATIO", disk_hard_ratio)])
        .collect();
    let store = disk.path().join("store");
    let work = tempfile::tempdir().unwrap();
    let produced = work.path().join("produced.log");
    let consumed = work.path().join("consumed.log");

    let (mut broker, namesrv) = standalone_broker_with_env(&store, &settings);
    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();
    const PRODUCER: u64 = 0xd15c;
    let first = rpc
        .send_message(numbered("full", PRODUCER, 0))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    // About 60 MiB of 4 KiB messages: more than the disk holds.
    let (status, out, err) = mqbench(&[
        "produce",
        "--namesrv",
        &namesrv,
        "--topic",
        "full",
        "--size",
        "4096",
        "--count",
        "15000",
        "--producers",
        "4",
        "--verify-log",
        produced.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        !status.success(),
        "some sends must be refused\n{out}\n{err}"
    );
    assert!(
        broker
            .wait_for_log(
                "no disk space for the next CommitLog segment",
                Duration::ZERO
            )
            .is_some(),
        "the refusal is logged:\n{}",
        broker.logs().join("\n")
    );
    let acknowledged = std::fs::read_to_string(&produced).unwrap().lines().count();
    assert!(
        (2_000..15_000).contains(&acknowledged),
        "{acknowledged} acknowledged\n{out}"
    );

    // Alive, refusing with a status that says why.
    let refused = send_one(&broker, "full").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("disk full"), "{refused:?}");

    // Sends stored together share the append's failure, but a retry of
    // a send stored before is still answered with where it is: told that
    // nothing was stored, its producer would number it anew, a duplicate.
    let outcomes = rpc
        .send_many(pb::SendManyRequest {
            sends: [0, 1]
                .map(|sequence| pb::SendItem {
                    send: Some(pb::send_item::Send::Message(numbered(
                        "full", PRODUCER, sequence,
                    ))),
                })
                .into(),
        })
        .await
        .unwrap()
        .into_inner()
        .outcomes;
    assert_eq!(outcomes[0].refusal, None, "{outcomes:?}");
    assert_eq!(
        outcomes[0].results[0].offset_message_id, first.offset_message_id,
        "{outcomes:?}"
    );
    let refused = outcomes[1].refusal.as_ref().expect("the fresh send fails");
    assert_eq!(refused.code, tonic::Code::Unavailable as i32, "{refused:?}");
    assert!(refused.message.contains("disk full"), "{refused:?}");
    assert!(refused.nothing_stored, "{refused:?}");

    // Something else takes the last bytes; then the broker crashes.
    disk.fill("filler");
    broker.kill();
    let (broker, namesrv) = standalone_broker_with_env(&store, &settings);
    let refused = send_one(&broker, "full").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");

    // Every acknowledged message is still there, readable on the full disk.
    let (status, out, err) = mqbench(&[
        "consume",
        "--namesrv",
        &namesrv,
        "--topic",
        "full",
        "--group",
        "after-full",
        "--from-first",
        "--count",
        &acknowledged.to_string(),
        "--timeout",
        "20",
        "--verify-log",
        consumed.to_str().unwrap(),
    ]);
    assert!(
        status.success(),
        "{out}\n{err}\nbroker:\n{}",
        broker.logs().join("\n")
    );
    let (status, out, err) = mqbench(&[
        "verify",
        produced.to_str().unwrap(),
        consumed.to_str().unwrap(),
    ]);
    assert!(status.success(), "{out}\n{err}");
    assert!(
        out.contains(&format!("{acknowledged} passed, 0 failed")),
        "{out}"
    );
    drop(broker);
}

/// `disk_full_policy = delete_oldest` (RocketMQ's behaviour, chosen
/// explicitly): the oldest segments go, unexpired, to make room, loudly.
#[tokio::test(flavor = "multi_thread")]
async fn delete_oldest_makes_room_and_says_what_it_deleted() {
    let Some(disk) = Tmpfs::mount(DISK) else {
        return;
    };
    let settings: Vec<(&str, &str)> = SMALL_STORE
        .iter()
        .copied()
        .chain([
            ("MQ_BROKER_STORE__DISK_FULL_POLICY", "delete_oldest"),
            ("MQ_BROKER_STORE__HOUSEKEEPING_INTERVAL", "200ms"),
            ("MQ_BROKER_STORE__CHECKPOINT_INTERVAL", "100ms"),
        ])
        .collect();
    let (broker, namesrv) = standalone_broker_with_env(&disk.path().join("store"), &settings);
    // About 55 MiB through a 48 MiB disk (sends refused until housekeeping
    // made room may fail; this is about what goes).
    let (_, out, err) = mqbench(&[
        "produce",
        "--namesrv",
        &namesrv,
        "--topic",
        "rolling",
        "--size",
        "4096",
        "--count",
        "14000",
        "--producers",
        "4",
    ]);
    let deleted = broker
        .wait_for_log("deleted an unexpired CommitLog segment", Duration::ZERO)
        .unwrap_or_else(|| {
            panic!(
                "nothing deleted\n{out}\n{err}\n{}",
                broker.logs().join("\n")
            )
        });
    assert!(
        deleted.contains("lost_from=0"),
        "the lost range is logged: {deleted}"
    );
    assert!(deleted.contains("WARN"), "{deleted}");
    // Sends go on once room is made.
    send_one(&broker, "rolling").await.unwrap();
}
