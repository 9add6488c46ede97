//! `mqadmin` and `mqhealth` as real processes against a real broker (with
//! its embedded nameserver): what they do, and one readable line and a
//! non-zero exit for every bad input.

#![allow(clippy::unwrap_used)]

use mq_nameserver_client::NameServerClient;
use mq_test_support::cluster::wait_for_route;
use mq_test_support::{run_to_end, standalone_broker};

const MQADMIN: &str = env!("CARGO_BIN_EXE_mqadmin");
const MQHEALTH: &str = env!("CARGO_BIN_EXE_mqhealth");

/// Asserts a failed run that printed exactly one line containing `needle`.
fn assert_one_line_error(status: std::process::ExitStatus, stderr: &str, needle: &str) {
    assert!(!status.success(), "expected a failure: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

#[tokio::test]
async fn topic_create_by_cluster_and_by_broker_reaches_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, namesrv) = standalone_broker(dir.path());
    let broker_addr = broker.logged_addr("broker listening").unwrap().to_string();

    let (status, stdout, stderr) = run_to_end(
        MQADMIN,
        &[
            "--namesrv",
            &namesrv,
            "topic",
            "create",
            "--topic",
            "orders",
            "--queues",
            "3",
            "--cluster",
            "DefaultCluster",
        ],
        &[],
    );
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("created topic orders with 3 queues on broker-a"),
        "{stdout}"
    );
    wait_for_route(&namesrv, "orders", 1).await;
    let route = NameServerClient::from_list(&namesrv)
        .unwrap()
        .query_route("orders")
        .await
        .unwrap();
    assert_eq!(route.queues[0].write_queue_count, 3);
    assert_eq!(route.queues[0].perm, 6);

    // Straight to one broker, read-only, with the nameserver from the env.
    let (status, _, stderr) = run_to_end(
        MQADMIN,
        &[
            "topic",
            "create",
            "--topic",
            "audit",
            "--queues",
            "2",
            "--perm",
            "r",
            "--broker",
            &broker_addr,
        ],
        &[("MQ_NAMESRV", &namesrv)],
    );
    assert!(status.success(), "{stderr}");
    wait_for_route(&namesrv, "audit", 1).await;
    let route = NameServerClient::from_list(&namesrv)
        .unwrap()
        .query_route("audit")
        .await
        .unwrap();
    assert_eq!(
        (route.queues[0].read_queue_count, route.queues[0].perm),
        (2, 4)
    );
}

#[test]
fn topic_create_rejects_bad_input_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, namesrv) = standalone_broker(dir.path());
    let create = |extra: &[&str]| {
        let mut args = vec!["--namesrv", namesrv.as_str(), "topic", "create"];
        args.extend_from_slice(extra);
        run_to_end(MQADMIN, &args, &[])
    };

    let (status, _, stderr) = create(&["--topic", "no spaces", "--cluster", "DefaultCluster"]);
    assert_one_line_error(status, &stderr, "--topic");
    let (status, _, stderr) = create(&[
        "--topic",
        "t",
        "--queues",
        "0",
        "--cluster",
        "DefaultCluster",
    ]);
    assert_one_line_error(status, &stderr, "--queues");
    let (status, _, stderr) =
        create(&["--topic", "t", "--perm", "x", "--cluster", "DefaultCluster"]);
    assert_one_line_error(status, &stderr, "--perm");
    let (status, _, stderr) = create(&["--topic", "t", "--cluster", "Nowhere"]);
    assert_one_line_error(status, &stderr, "no cluster \"Nowhere\"");
    let (status, _, stderr) = create(&["--topic", "t", "--broker", "not-an-address"]);
    assert_one_line_error(status, &stderr, "--broker");
    let (status, _, stderr) = create(&["--topic", "t", "--broker", "127.0.0.1:1"]);
    assert_one_line_error(status, &stderr, "unreachable");
    let (status, _, stderr) = create(&["--topic", "TBW102", "--cluster", "DefaultCluster"]);
    assert!(!status.success() && stderr.lines().count() == 1, "{stderr}");

    let (status, _, stderr) = run_to_end(
        MQADMIN,
        &[
            "--namesrv",
            "127.0.0.1:1",
            "topic",
            "create",
            "--topic",
            "t",
            "--cluster",
            "c",
        ],
        &[],
    );
    assert_one_line_error(status, &stderr, "no nameserver reachable");

    // Usage errors come from clap: exit 2.
    let (status, _, stderr) = create(&["--topic", "t"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
}

#[test]
fn mqhealth_reports_serving_and_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, namesrv) = standalone_broker(dir.path());
    let broker_addr = broker.logged_addr("broker listening").unwrap().to_string();

    for addr in [&broker_addr, &namesrv] {
        let (status, stdout, stderr) = run_to_end(MQHEALTH, &[addr], &[]);
        assert!(status.success(), "{addr}: {stderr}");
        assert_eq!(stdout.trim(), "SERVING");
    }
    let (status, _, stderr) = run_to_end(
        MQHEALTH,
        &[&broker_addr, "--service", "no.such.Service"],
        &[],
    );
    assert_one_line_error(status, &stderr, &broker_addr);
    let (status, _, stderr) = run_to_end(MQHEALTH, &["127.0.0.1:1", "--timeout", "500ms"], &[]);
    assert_one_line_error(status, &stderr, "unreachable");
    let (status, _, stderr) = run_to_end(MQHEALTH, &["no port"], &[]);
    assert_one_line_error(status, &stderr, "no port");
}
