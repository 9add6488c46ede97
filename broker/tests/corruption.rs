//! A corrupted record in the middle of the CommitLog, with the real broker:
//! it is never mistaken for a torn tail (nothing after it is deleted), the
//! broker says which file and offset are damaged and what to do, and with
//! `recovery_mode = skip_corrupted` every message but the damaged ones is
//! served; with `recovery_mode = strict` not even a torn tail is cut.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use mq_test_support::{run_to_end, standalone_broker_with_env, workspace_binary};

/// 1 MiB segments, so that 3,000 messages of 1 KiB span three of them.
const SMALL_SEGMENTS: &[(&str, &str)] = &[
    ("MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE", "1048576"),
    ("MQ_BROKER_STORE__MAX_MESSAGE_SIZE", "65536"),
];
const MESSAGES: u32 = 3_000;
/// Where the damage goes: inside the first segment.
const DAMAGE_AT: usize = 512 << 10;

fn mqbench(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    run_to_end(workspace_binary("mqbench"), args, &[])
}

/// Fills a store with 3,000 acknowledged messages, stops the broker
/// cleanly, and returns the verify log of what was acknowledged.
fn fill(store: &Path, produced: &Path) {
    let (mut broker, namesrv) = standalone_broker_with_env(store, SMALL_SEGMENTS);
    let (status, out, err) = mqbench(&[
        "produce",
        "--namesrv",
        &namesrv,
        "--topic",
        "damaged",
        "--size",
        "1024",
        "--count",
        &MESSAGES.to_string(),
        "--verify-log",
        produced.to_str().unwrap(),
    ]);
    assert!(status.success(), "{out}\n{err}");
    assert!(
        broker
            .terminate(std::time::Duration::from_secs(10))
            .is_some()
    );
}

/// Flips 64 bytes inside the first segment.
fn damage(store: &Path) -> std::path::PathBuf {
    let segment = store.join("commitlog").join(format!("{:020}", 0));
    let mut bytes = std::fs::read(&segment).unwrap();
    for b in &mut bytes[DAMAGE_AT..DAMAGE_AT + 64] {
        *b ^= 0x5A;
    }
    std::fs::write(&segment, &bytes).unwrap();
    segment
}

fn start_fails(store: &Path) -> String {
    start_fails_with(store, SMALL_SEGMENTS)
}

fn start_fails_with(store: &Path, env: &[(&str, &str)]) -> String {
    let (status, out, err) = run_to_end(
        workspace_binary("broker"),
        &[
            "--standalone",
            "--store-dir",
            store.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--namesrv-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        env,
    );
    assert!(
        !status.success(),
        "the broker must refuse to start\n{out}\n{err}"
    );
    err
}

/// Consumes everything left and verifies it against what was acknowledged;
/// returns how many acknowledged messages were not received.
fn consume_and_count_missing(namesrv: &str, produced: &Path, consumed: &Path) -> u32 {
    mq_test_support::mqbench::consume_all(namesrv, "damaged", "after-damage", consumed);
    let (_, out) = mq_test_support::mqbench::verify(produced, consumed);
    let line = out
        .lines()
        .find(|l| l.ends_with(" failed"))
        .unwrap_or_else(|| panic!("{out}"));
    let (passed, failed) = line.split_once(" passed, ").unwrap();
    let failed: u32 = failed.trim_end_matches(" failed").parse().unwrap();
    assert_eq!(passed.parse::<u32>().unwrap() + failed, MESSAGES, "{out}");
    failed
}

fn settings_with_skip() -> Vec<(&'static str, &'static str)> {
    SMALL_SEGMENTS
        .iter()
        .copied()
        .chain([("MQ_BROKER_STORE__RECOVERY_MODE", "skip_corrupted")])
        .collect()
}

#[test]
fn a_corrupt_record_without_checkpoint_is_reported_then_skipped_keeping_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (produced, consumed) = (dir.path().join("p.log"), dir.path().join("c.log"));
    fill(&store, &produced);
    let segment = damage(&store);
    std::fs::remove_file(store.join("checkpoint")).unwrap();
    let segments_before = std::fs::read_dir(store.join("commitlog")).unwrap().count();
    assert!(segments_before >= 3);

    let err = start_fails(&store);
    assert!(err.contains("CommitLog corrupted in"), "{err}");
    assert!(err.contains(&segment.display().to_string()), "{err}");
    assert!(err.contains("recovery_mode=skip_corrupted"), "{err}");
    assert_eq!(
        std::fs::read_dir(store.join("commitlog")).unwrap().count(),
        segments_before,
        "no segment was deleted"
    );

    let (broker, namesrv) = standalone_broker_with_env(&store, &settings_with_skip());
    assert!(
        broker
            .wait_for_log("CommitLog damage skipped", std::time::Duration::ZERO)
            .is_some(),
        "{}",
        broker.logs().join("\n")
    );
    let missing = consume_and_count_missing(&namesrv, &produced, &consumed);
    assert!(
        (1..=2).contains(&missing),
        "only the damaged records are gone: {missing}"
    );
}

#[test]
fn a_corrupt_record_below_the_checkpoint_names_its_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (produced, consumed) = (dir.path().join("p.log"), dir.path().join("c.log"));
    fill(&store, &produced);
    let segment = damage(&store);

    // Recovery trusts what the checkpoint says is on disk; the reader that
    // meets the damage (the scheduler's start-up scan) says where it is.
    let err = start_fails(&store);
    assert!(err.contains("CommitLog corrupted in"), "{err}");
    assert!(err.contains(&segment.display().to_string()), "{err}");
    assert!(
        err.contains("at offset 52"),
        "an offset near {DAMAGE_AT}: {err}"
    );
    assert!(err.contains("recovery_mode=skip_corrupted"), "{err}");

    let (_broker, namesrv) = standalone_broker_with_env(&store, &settings_with_skip());
    let missing = consume_and_count_missing(&namesrv, &produced, &consumed);
    assert!(
        (1..=2).contains(&missing),
        "only the damaged records are gone: {missing}"
    );
}

#[test]
fn strict_recovery_refuses_a_torn_tail_that_the_default_mode_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (produced, consumed) = (dir.path().join("p.log"), dir.path().join("c.log"));
    fill(&store, &produced);
    // A crash mid-append: half a record's worth of bytes after the data
    // of the last segment, and no checkpoint.
    std::fs::remove_file(store.join("checkpoint")).unwrap();
    let mut segments: Vec<_> = std::fs::read_dir(store.join("commitlog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    // The segment the data ends in (an empty one may follow it).
    let (last, mut bytes, end) = segments
        .iter()
        .rev()
        .find_map(|path| {
            let bytes = std::fs::read(path).unwrap();
            let end = bytes.iter().rposition(|&b| b != 0)? + 1;
            Some((path, bytes, end))
        })
        .unwrap();
    bytes[end..end + 500].fill(0x33);
    std::fs::write(last, &bytes).unwrap();

    let strict: Vec<(&str, &str)> = SMALL_SEGMENTS
        .iter()
        .copied()
        .chain([("MQ_BROKER_STORE__RECOVERY_MODE", "strict")])
        .collect();
    let err = start_fails_with(&store, &strict);
    assert!(
        err.contains("CommitLog recovery would cut data in"),
        "{err}"
    );
    assert!(err.contains(&last.display().to_string()), "{err}");
    assert!(err.contains("recovery_mode=fail"), "{err}");
    assert_eq!(std::fs::read(last).unwrap(), bytes, "nothing was changed");

    let (_broker, namesrv) = standalone_broker_with_env(&store, SMALL_SEGMENTS);
    assert_eq!(
        consume_and_count_missing(&namesrv, &produced, &consumed),
        0,
        "the torn bytes held no acknowledged message"
    );
}
