//! `mqbench` against a real nameserver and broker: produce, consume and
//! verify with the verify logs, e2e, and bad input.

#![allow(clippy::unwrap_used)]

use mq_test_support::{run_to_end, standalone_broker as standalone};

const MQBENCH: &str = env!("CARGO_BIN_EXE_mqbench");

/// The JSON object on the last line of stdout.
fn summary(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn produce_consume_and_verify_prove_nothing_was_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, namesrv) = standalone(&dir.path().join("store"));
    let produced = dir.path().join("produced.jsonl");
    let consumed = dir.path().join("consumed.jsonl");
    let (status, stdout, stderr) = run_to_end(
        MQBENCH,
        &[
            "produce",
            "--namesrv",
            &namesrv,
            "--topic",
            "bench",
            "--count",
            "500",
            "--producers",
            "4",
            "--batch",
            "5",
            "--size",
            "100",
            "--json",
            "--verify-log",
            produced.to_str().unwrap(),
        ],
        &[],
    );
    assert!(status.success(), "{stdout}{stderr}");
    let sent = summary(&stdout);
    assert_eq!(
        (sent["sent"].as_u64(), sent["failed"].as_u64()),
        (Some(500), Some(0)),
        "{sent}"
    );
    for key in [
        "msgs_per_sec",
        "mb_per_sec",
        "p50_us",
        "p99_us",
        "p999_us",
        "max_us",
    ] {
        assert!(sent[key].as_f64().is_some(), "{key} missing: {sent}");
    }
    assert!(
        stderr.contains("sent:"),
        "plain progress lines when not a terminal: {stderr}"
    );

    let (status, stdout, stderr) = run_to_end(
        MQBENCH,
        &[
            "consume",
            "--namesrv",
            &namesrv,
            "--topic",
            "bench",
            "--count",
            "500",
            "--from-first",
            "--timeout",
            "30",
            "--pull-batch",
            "64",
            "--json",
            "--verify-log",
            consumed.to_str().unwrap(),
        ],
        &[],
    );
    assert!(status.success(), "{stdout}{stderr}");
    assert_eq!(summary(&stdout)["received"].as_u64(), Some(500));

    let (status, stdout, _) = run_to_end(
        MQBENCH,
        &[
            "verify",
            produced.to_str().unwrap(),
            consumed.to_str().unwrap(),
        ],
        &[],
    );
    assert!(status.success(), "{stdout}");
    assert!(
        stdout.lines().any(|l| l == "500 passed, 0 failed"),
        "{stdout}"
    );

    // A consumed log missing one message fails verification.
    let lines: Vec<String> = std::fs::read_to_string(&consumed)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect();
    std::fs::write(&consumed, lines.join("\n")).unwrap();
    let (status, stdout, _) = run_to_end(
        MQBENCH,
        &[
            "verify",
            produced.to_str().unwrap(),
            consumed.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!status.success());
    assert!(
        stdout.lines().any(|l| l == "499 passed, 1 failed"),
        "{stdout}"
    );
}

#[test]
fn e2e_reports_send_to_handler_latency() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, namesrv) = standalone(&dir.path().join("store"));
    let (status, stdout, stderr) = run_to_end(
        MQBENCH,
        &[
            "e2e",
            "--namesrv",
            &namesrv,
            "--topic",
            "e2e",
            "--count",
            "300",
            "--rate",
            "1000",
            "--json",
            "--timeout",
            "30",
        ],
        &[],
    );
    assert!(status.success(), "{stdout}{stderr}");
    let received = summary(&stdout);
    assert_eq!(received["received"].as_u64(), Some(300), "{received}");
    let p99 = received["p99_us"].as_u64().unwrap();
    assert!(p99 > 0 && p99 < 1_000_000, "p99 {p99} us");
}

#[test]
fn bad_input_fails_with_one_readable_line() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _, stderr) = run_to_end(
        MQBENCH,
        &[
            "produce",
            "--namesrv",
            "127.0.0.1:1",
            "--topic",
            "bad topic",
        ],
        &[],
    );
    assert!(!status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--topic"), "{stderr}");

    let (status, _, stderr) = run_to_end(MQBENCH, &["produce", "--topic", "t", "--bogus"], &[]);
    assert_eq!(status.code(), Some(2), "{stderr}");

    let (status, _, stderr) = run_to_end(
        MQBENCH,
        &[
            "consume",
            "--namesrv",
            "127.0.0.1:1",
            "--topic",
            "t",
            "--pull-batch",
            "0",
        ],
        &[],
    );
    assert!(!status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("pull_batch 0"), "{stderr}");

    let missing = dir.path().join("missing.jsonl");
    let (status, _, stderr) = run_to_end(
        MQBENCH,
        &[
            "verify",
            missing.to_str().unwrap(),
            missing.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!status.success());
    assert!(
        stderr.contains("missing.jsonl") && stderr.lines().count() == 1,
        "{stderr}"
    );

    // Nothing answers on the nameserver address: every send fails, by kind.
    let (status, stdout, _) = run_to_end(
        MQBENCH,
        &[
            "produce",
            "--namesrv",
            "127.0.0.1:1",
            "--topic",
            "t",
            "--count",
            "3",
            "--json",
        ],
        &[],
    );
    assert!(!status.success());
    let result = summary(&stdout);
    assert_eq!(result["failed"].as_u64(), Some(3), "{result}");
    assert_eq!(result["failures"]["no_route"].as_u64(), Some(3), "{result}");
}

#[test]
fn e2e_with_a_delay_measures_lateness_from_the_due_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, namesrv) = standalone(&dir.path().join("store"));
    let (status, stdout, stderr) = run_to_end(
        MQBENCH,
        &[
            "e2e",
            "--namesrv",
            &namesrv,
            "--topic",
            "later",
            "--count",
            "200",
            "--rate",
            "400",
            "--delay-ms",
            "1500",
            "--json",
            "--timeout",
            "30",
        ],
        &[],
    );
    assert!(status.success(), "{stdout}{stderr}");
    let received = summary(&stdout);
    assert_eq!(received["received"].as_u64(), Some(200), "{received}");
    assert_eq!(
        received["failed"].as_u64(),
        Some(0),
        "none early: {received}"
    );
    // Measured from the due time, not the send: well under the 1.5 s delay.
    let max = received["max_us"].as_u64().unwrap();
    assert!(max < 1_000_000, "at most 1 s late: {max} us");
}
