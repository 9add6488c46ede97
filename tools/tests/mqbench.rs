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

/// Lines of a verify log, each checked to be a whole JSON object.
fn whole_lines(path: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "a torn last line");
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("{e}: {line:?} is not a whole line"));
    }
    text.lines().count()
}

/// Starts mqbench with `args`, its stdout into `out` and its stderr (the
/// progress lines) into `err`.
fn spawn(args: &[&str], out: &std::path::Path, err: &std::path::Path) -> std::process::Child {
    std::process::Command::new(MQBENCH)
        .args(args)
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(std::fs::File::create(err).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn a_signal_ends_produce_and_consume_with_whole_logs_and_a_summary() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let (_broker, namesrv) = standalone(&dir.path().join("store"));
    let (sent, got) = (dir.path().join("sent.jsonl"), dir.path().join("got.jsonl"));
    let (out, err) = (dir.path().join("out.txt"), dir.path().join("err.txt"));
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // A long paced run, ended by SIGTERM once it is under way.
    let producing = spawn(
        &[
            "produce",
            "--namesrv",
            &namesrv,
            "--topic",
            "sig",
            "--count",
            "1000000",
            "--rate",
            "2000",
            "--producers",
            "16",
            "--json",
            "--verify-log",
            sent.to_str().unwrap(),
        ],
        &out,
        &err,
    );
    wait_for("nothing was sent", &|| {
        std::fs::metadata(&sent).is_ok_and(|m| m.len() > 10_000)
    });
    let status = mq_test_support::terminate_and_wait(producing);
    assert!(status.success(), "{status:?}");
    let produced = summary(&std::fs::read_to_string(&out).unwrap());
    let acknowledged = produced["sent"].as_u64().unwrap();
    assert!((1..1_000_000).contains(&acknowledged), "{produced}");
    assert_eq!(produced["failed"].as_u64(), Some(0), "{produced}");
    assert_eq!(whole_lines(&sent) as u64, acknowledged);

    // A consumer without a count, ended by SIGTERM once it has it all.
    let consuming = spawn(
        &[
            "consume",
            "--namesrv",
            &namesrv,
            "--topic",
            "sig",
            "--group",
            "sig",
            "--from-first",
            "--timeout",
            "300",
            "--json",
            "--verify-log",
            got.to_str().unwrap(),
        ],
        &out,
        &err,
    );
    // Its progress line (one a second) says when all of it is in.
    let all_in = format!("received: {acknowledged} (");
    wait_for("not everything arrived", &|| {
        std::fs::read_to_string(&err).is_ok_and(|t| t.contains(&all_in))
    });
    let began = Instant::now();
    let status = mq_test_support::terminate_and_wait(consuming);
    assert!(status.success(), "{status:?}");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    let summary = summary(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(
        summary["received"].as_u64(),
        Some(acknowledged),
        "{summary}"
    );
    whole_lines(&got);
    let (status, stdout, stderr) = run_to_end(
        MQBENCH,
        &["verify", sent.to_str().unwrap(), got.to_str().unwrap()],
        &[],
    );
    assert!(status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{acknowledged} passed, 0 failed")),
        "{stdout}"
    );
}
