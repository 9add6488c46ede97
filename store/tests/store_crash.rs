//! Crashes for real: a child process appends in sync-flush mode and prints
//! every acknowledged message; it is killed with SIGKILL mid-write; the
//! store is reopened and every acknowledged message must be there, intact,
//! with nothing unreadable left. Repeated with different timings on the same
//! directory, so that each recovery also recovers the previous ones.
//!
//! The child is this same test binary, re-run with `--exact crash_child
//! --ignored`: the `crash_child` test is the appender.

#![allow(clippy::unwrap_used)]

mod store_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mq_store::{FlushMode, MessageStore, PutStatus};
use store_support::*;

const DIR_ENV: &str = "MQ_CRASH_CHILD_DIR";
const ROUND_ENV: &str = "MQ_CRASH_CHILD_ROUND";
const POOL_ENV: &str = "MQ_CRASH_CHILD_POOL";
const TOPIC: &str = "crash";
const QUEUES: u32 = 3;
const APPENDERS: u32 = 4;

/// The body of message `seq`: its number, then filler derived from it, so
/// that a torn or mixed-up body cannot pass the check.
fn body(seq: u64) -> Vec<u8> {
    let len = 50 + (seq % 700) as usize;
    let mut body = seq.to_le_bytes().to_vec();
    body.extend((0..len).map(|i| (seq as usize * 31 + i) as u8));
    body
}

#[test]
#[ignore = "the appender child of the crash test; run by it, not on its own"]
fn crash_child() {
    let dir = std::env::var(DIR_ENV).expect("run by the crash test");
    let round: u64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let pool = std::env::var(POOL_ENV).unwrap() == "1";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let config = mq_store::StoreConfig {
            transient_store_pool: pool,
            transient_store_pool_buffers: 2,
            ..small_config(FlushMode::Sync)
        };
        let (store, _) = MessageStore::open(dir.as_ref(), config, store_host()).unwrap();
        let store = Arc::new(store);
        // Says how it writes, so that the test knows the round is what it
        // claims to be.
        println!("READY pool={pool}");
        let tasks: Vec<_> = (0..APPENDERS)
            .map(|task| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for i in 0u64.. {
                        let seq = round * 1_000_000 + u64::from(task) * 100_000 + i;
                        let queue = (seq % u64::from(QUEUES)) as u32;
                        let result = store
                            .put(message(TOPIC, queue, None, body(seq)))
                            .await
                            .unwrap();
                        assert_eq!(result.status, PutStatus::Ok);
                        // One line per acknowledgement, written at once.
                        println!("ACK {seq} {queue} {}", result.appended[0].queue_offset);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// Runs the child until `after` has passed since it was ready, kills it
/// with SIGKILL and returns its acknowledgements: seq -> (queue, offset).
fn run_child_and_kill(
    dir: &std::path::Path,
    round: u64,
    after: Duration,
) -> HashMap<u64, (u32, u64)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(DIR_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        // Odd rounds write through the transient store pool.
        .env(POOL_ENV, if round % 2 == 1 { "1" } else { "0" })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut acks = HashMap::new();
    let mut ready_at = None;
    let start = Instant::now();
    loop {
        if let Some(ready) = ready_at
            && ready + after <= Instant::now()
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the child never became ready"
        );
        match received.recv_timeout(Duration::from_millis(1)) {
            // libtest prints "test crash_child ... " before the first line.
            Ok(line) if line.contains("READY pool=") => {
                let pool = round % 2 == 1;
                assert!(
                    line.ends_with(&format!("READY pool={pool}")),
                    "round {round} should write with pool={pool}: {line}"
                );
                ready_at = Some(Instant::now());
            }
            Ok(line) => record_ack(&line, &mut acks),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the child exited before it was killed")
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    // Acknowledgements printed before the kill are still in the pipe.
    for line in received.try_iter() {
        record_ack(&line, &mut acks);
    }
    acks
}

fn record_ack(line: &str, acks: &mut HashMap<u64, (u32, u64)>) {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if let ["ACK", seq, queue, offset] = fields[..] {
        acks.insert(
            seq.parse().unwrap(),
            (queue.parse().unwrap(), offset.parse().unwrap()),
        );
    }
}

#[test]
fn acknowledged_messages_survive_sigkill_in_sync_flush_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged: HashMap<u64, (u32, u64)> = HashMap::new();
    // Different timings: right after start-up, mid-flow, after rollovers.
    let timings = [5, 40, 90, 15, 150, 60, 250, 120];
    for (round, millis) in timings.into_iter().enumerate() {
        let acks = run_child_and_kill(dir.path(), round as u64 + 1, Duration::from_millis(millis));
        assert!(
            !acks.is_empty() || millis < 20,
            "round {round}: the child acknowledged nothing in {millis} ms"
        );
        acknowledged.extend(acks);

        let (store, report) =
            MessageStore::open(dir.path(), small_config(FlushMode::Sync), store_host()).unwrap();
        eprintln!(
            "round {round}: killed after {millis} ms, {} acknowledged in all, recovery: {:?}",
            acknowledged.len(),
            report.truncation
        );
        assert!(
            report.crashed,
            "round {round}: a SIGKILL must be seen as a crash"
        );
        let mut by_position = HashMap::new();
        for queue in 0..QUEUES {
            let (min, max) = store.queue_offsets(TOPIC, queue).unwrap_or((0, 0));
            let messages = read_all(&store, TOPIC, queue, (max - min) as usize);
            // Nothing unreadable remains: every indexed offset reads back.
            assert_eq!(
                messages.len() as u64,
                max - min,
                "round {round}, queue {queue}: holes in the queue"
            );
            for (n, msg) in messages.iter().enumerate() {
                assert_eq!(msg.queue_offset, min + n as u64);
                let seq = u64::from_le_bytes(msg.body[..8].try_into().unwrap());
                assert_eq!(
                    &msg.body[..],
                    &body(seq)[..],
                    "round {round}: body of {seq} is damaged"
                );
                by_position.insert((queue, msg.queue_offset), seq);
            }
        }
        for (seq, (queue, offset)) in &acknowledged {
            assert_eq!(
                by_position.get(&(*queue, *offset)),
                Some(seq),
                "round {round}: acknowledged message {seq} (queue {queue}, offset {offset}) is missing"
            );
        }
        drop(store);
    }
    assert!(
        acknowledged.len() > 100,
        "only {} acknowledgements in all rounds",
        acknowledged.len()
    );
}
