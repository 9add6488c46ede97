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
        stdout.contains("created topic orders") && stdout.contains("broker-a  "),
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
    assert_one_line_error(status, &stderr, "queue count 0");
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

/// Runs mqadmin with `--namesrv` and `--json`; the parsed output.
fn admin_json(namesrv: &str, args: &[&str]) -> serde_json::Value {
    try_admin_json(namesrv, args).unwrap_or_else(|stderr| panic!("mqadmin {args:?}: {stderr}"))
}

/// [`admin_json`], or its error line.
fn try_admin_json(namesrv: &str, args: &[&str]) -> Result<serde_json::Value, String> {
    let mut all = vec!["--namesrv", namesrv, "--json"];
    all.extend_from_slice(args);
    let (status, stdout, stderr) = run_to_end(MQADMIN, &all, &[]);
    if !status.success() {
        return Err(stderr);
    }
    Ok(serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}")))
}

/// Runs mqadmin with `--namesrv`; the table it printed.
fn admin_table(namesrv: &str, args: &[&str]) -> String {
    let mut all = vec!["--namesrv", namesrv];
    all.extend_from_slice(args);
    let (status, stdout, stderr) = run_to_end(MQADMIN, &all, &[]);
    assert!(status.success(), "mqadmin {args:?}: {stderr}");
    stdout
}

/// The lag of one queue in `consumer progress --json`, if it is listed
/// (no panic: this runs inside waits).
fn lag_of(progress: &serde_json::Value, topic: &str, queue: u64) -> Option<u64> {
    progress["queues"]
        .as_array()?
        .iter()
        .find(|q| q["topic"] == topic && q["queue"] == queue)?["lag"]
        .as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_against_a_real_broker() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use mq_consumer::{ConsumeFrom, ConsumeResult, PushConsumer};
    use mq_producer::{Message, Producer};
    use mq_proto::broker::v1 as pb;
    use mq_test_support::cluster::wait_until;

    let dir = tempfile::tempdir().unwrap();
    let (broker, namesrv) = mq_test_support::standalone_broker_with_env(
        dir.path(),
        &[("MQ_BROKER_DELAY_LEVELS", "100ms 200ms 300ms")],
    );
    let broker_addr = broker.logged_addr("broker listening").unwrap().to_string();
    let ns = namesrv.as_str();

    // Create, and see the route and the topic list.
    admin_json(
        ns,
        &[
            "topic",
            "create",
            "--topic",
            "orders",
            "--queues",
            "2",
            "--cluster",
            "DefaultCluster",
        ],
    );
    wait_for_route(ns, "orders", 1).await;
    let route = admin_json(ns, &["topic", "route", "--topic", "orders"]);
    assert_eq!(route["brokers"][0]["address"], broker_addr.as_str());
    assert_eq!(route["brokers"][0]["write_queues"], 2);
    let list = admin_json(ns, &["topic", "list"]);
    assert!(
        list["topics"]
            .as_array()
            .unwrap()
            .contains(&"orders".into()),
        "{list}"
    );
    let table = admin_table(ns, &["topic", "route", "--topic", "orders"]);
    assert!(
        table.starts_with("BROKER") && table.contains("broker-a"),
        "{table}"
    );

    // Ten messages into queue 0; topic status shows them.
    let producer = Producer::builder().namesrv(ns).build().unwrap();
    let mut sent = Vec::new();
    for i in 0..10 {
        let result = producer
            .send_with_selector(
                Message::new("orders", format!("m{i}")).with_key(format!("k{i}")),
                &|_| 0,
            )
            .await
            .unwrap();
        sent.push(result);
    }
    let status = admin_json(ns, &["topic", "status", "--topic", "orders"]);
    assert_eq!(status["queues"][0]["max_offset"], 10, "{status}");
    assert_eq!(status["queues"][1]["max_offset"], 0, "{status}");
    assert!(status["queues"][0]["last_updated_ms"].as_u64().unwrap() > 0);

    // A group that consumed four: lag 6, exactly.
    let mut rpc = pb::broker_client::BrokerClient::connect(format!("http://{broker_addr}"))
        .await
        .unwrap();
    rpc.commit_offset(pb::CommitOffsetRequest {
        group: "g1".into(),
        topic: "orders".into(),
        queue_id: 0,
        offset: 4,
        offset_reset_version: 0,
    })
    .await
    .unwrap();
    let progress = admin_json(ns, &["consumer", "progress", "--group", "g1"]);
    assert_eq!(lag_of(&progress, "orders", 0), Some(6), "{progress}");
    assert_eq!(progress["total_lag"], 6);
    let table = admin_table(ns, &["consumer", "progress", "--group", "g1"]);
    assert!(table.contains("total lag: 6"), "{table}");

    // A group with a member that committed nothing yet: every queue of its
    // topic is listed, and all that is stored counts as lag.
    rpc.heartbeat(pb::HeartbeatRequest {
        group: "g3".into(),
        client_id: "g3-member".into(),
        subscriptions: vec![pb::Subscription {
            topic: "orders".into(),
            tag_expression: "*".into(),
            sql_expression: String::new(),
        }],
        consume_model: pb::ConsumeModel::Clustering as i32,
        held: vec![],
        client_kind: String::new(),
    })
    .await
    .unwrap();
    let fresh = admin_json(ns, &["consumer", "progress", "--group", "g3"]);
    assert_eq!(lag_of(&fresh, "orders", 0), Some(10), "{fresh}");
    assert_eq!(lag_of(&fresh, "orders", 1), Some(0), "{fresh}");
    assert_eq!(fresh["total_lag"], 10, "{fresh}");
    assert!(fresh["queues"][0]["consumer_offset"].is_null(), "{fresh}");

    // Resets take effect: latest, then earliest.
    admin_json(
        ns,
        &[
            "offset", "reset", "--group", "g1", "--topic", "orders", "--to", "latest",
        ],
    );
    assert_eq!(
        admin_json(ns, &["consumer", "progress", "--group", "g1"])["total_lag"],
        0
    );
    let reset = admin_json(
        ns,
        &[
            "offset", "reset", "--group", "g1", "--topic", "orders", "--to", "earliest",
        ],
    );
    assert_eq!(reset["queues"][0]["offset"], 0);
    assert_eq!(
        admin_json(ns, &["consumer", "progress", "--group", "g1"])["total_lag"],
        10
    );

    // A running consumer picks a reset up without a restart.
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let consumer = {
        let seen = Arc::clone(&seen);
        PushConsumer::builder()
            .namesrv(ns)
            .group("g2")
            .client_id("g2-member")
            .subscribe("orders", "*")
            .consume_from(ConsumeFrom::FirstOffset)
            .heartbeat_interval(Duration::from_millis(200))
            .commit_interval(Duration::from_millis(100))
            .handler(move |batch| {
                let seen = Arc::clone(&seen);
                async move {
                    for msg in batch {
                        *seen
                            .lock()
                            .unwrap()
                            .entry(String::from_utf8(msg.body.to_vec()).unwrap())
                            .or_default() += 1;
                    }
                    ConsumeResult::Success
                }
            })
            .start()
            .await
            .unwrap()
    };
    let count = |times: u32| {
        let seen = Arc::clone(&seen);
        move || {
            seen.lock()
                .unwrap()
                .values()
                .filter(|&&n| n >= times)
                .count()
                == 10
        }
    };
    wait_until("g2 consumed the ten", Duration::from_secs(20), count(1)).await;
    wait_until("g2 committed", Duration::from_secs(20), || {
        try_admin_json(ns, &["consumer", "progress", "--group", "g2"]).is_ok_and(|progress| {
            progress["total_lag"] == 0 && lag_of(&progress, "orders", 0) == Some(0)
        })
    })
    .await;
    let connections = admin_json(ns, &["consumer", "connections", "--group", "g2"]);
    assert_eq!(
        connections["members"][0]["client_id"], "g2-member",
        "{connections}"
    );
    assert_eq!(connections["members"][0]["consume_model"], "CLUSTERING");
    admin_json(
        ns,
        &[
            "offset", "reset", "--group", "g2", "--topic", "orders", "--to", "earliest",
        ],
    );
    wait_until(
        "g2 consumed the ten again after the reset",
        Duration::from_secs(20),
        count(2),
    )
    .await;
    consumer.shutdown().await;

    // Find messages by key, by unique id and by offset id.
    let found = admin_json(
        ns,
        &["message", "query", "--topic", "orders", "--key", "k3"],
    );
    assert_eq!(found["messages"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(
        found["messages"][0]["unique_id"],
        sent[3].message_id.as_str()
    );
    let by_id = admin_json(ns, &["message", "get", "--id", &sent[7].message_id]);
    assert_eq!(by_id["body"], "m7");
    let by_offset = admin_json(ns, &["message", "get", "--id", &sent[7].offset_message_id]);
    assert_eq!(by_offset["unique_id"], sent[7].message_id.as_str());

    // A dead letter, resent to its topic.
    rpc.consumer_send_back(pb::ConsumerSendBackRequest {
        group: "g3".into(),
        topic: "orders".into(),
        queue_id: 0,
        queue_offset: 2,
        unique_id: sent[2].message_id.clone(),
        max_reconsume_times: 0,
        dead_letter: true,
    })
    .await
    .unwrap();
    let resent = admin_json(
        ns,
        &[
            "message",
            "resend-dlq",
            "--group",
            "g3",
            "--id",
            &sent[2].message_id,
        ],
    );
    assert_eq!(resent["resent"], 1);
    wait_until(
        "the resent letter is back in orders",
        Duration::from_secs(10),
        || {
            admin_json(ns, &["topic", "status", "--topic", "orders"])["queues"][0]["max_offset"]
                == 11
        },
    )
    .await;

    let cluster = admin_json(ns, &["cluster", "list"]);
    assert_eq!(cluster["brokers"][0]["broker"], "broker-a");
    assert_eq!(cluster["brokers"][0]["address"], broker_addr.as_str());
    // Producers sent ten (dead letters and resends are the broker's own);
    // g2 read the ten twice.
    assert_eq!(cluster["brokers"][0]["messages_in"], 10, "{cluster}");
    assert!(
        cluster["brokers"][0]["messages_out"].as_u64().unwrap() >= 20,
        "{cluster}"
    );
    let table = admin_table(ns, &["cluster", "list"]);
    assert!(
        table.contains("IN MSG/S") && table.contains("DefaultCluster"),
        "{table}"
    );

    // Update: fewer write queues, read-only elsewhere stays.
    admin_json(
        ns,
        &[
            "topic",
            "update",
            "--topic",
            "orders",
            "--queues",
            "2",
            "--write-queues",
            "1",
            "--broker",
            &broker_addr,
        ],
    );
    wait_until(
        "the route shows the update",
        Duration::from_secs(10),
        || {
            try_admin_json(ns, &["topic", "route", "--topic", "orders"])
                .is_ok_and(|route| route["brokers"][0]["write_queues"] == 1)
        },
    )
    .await;

    admin_json(ns, &["topic", "delete", "--topic", "orders"]);
    let list = admin_json(ns, &["topic", "list"]);
    assert!(
        !list["topics"]
            .as_array()
            .unwrap()
            .contains(&"orders".into()),
        "{list}"
    );
}

#[test]
fn every_subcommand_refuses_bad_input_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, namesrv) = standalone_broker(dir.path());
    let ns = namesrv.as_str();
    let cases: [(&[&str], &str); 13] = [
        (
            &[
                "topic",
                "update",
                "--topic",
                "t",
                "--perm",
                "x",
                "--cluster",
                "DefaultCluster",
            ],
            "--perm",
        ),
        (
            &[
                "topic",
                "update",
                "--topic",
                "t",
                "--write-queues",
                "2000",
                "--cluster",
                "DefaultCluster",
            ],
            "queue count 2000",
        ),
        (
            &["topic", "route", "--topic", "nope"],
            "unknown topic \"nope\"",
        ),
        (
            &["topic", "status", "--topic", "nope"],
            "unknown topic \"nope\"",
        ),
        (&["topic", "delete", "--topic", "bad topic"], "--topic"),
        (&["consumer", "progress", "--group", "nobody"], "no offset"),
        (
            &["consumer", "connections", "--group", "nobody"],
            "no live member",
        ),
        (
            &[
                "offset", "reset", "--group", "g", "--topic", "nope", "--to", "latest",
            ],
            "unknown topic",
        ),
        (
            &[
                "offset", "reset", "--group", "g", "--topic", "t", "--to", "middle",
            ],
            "--to \"middle\"",
        ),
        (
            &[
                "offset",
                "reset",
                "--group",
                "g",
                "--topic",
                "t",
                "--timestamp",
                "yesterday",
            ],
            "--timestamp",
        ),
        (
            &["message", "get", "--id", "NOSUCHID"],
            "no message with id",
        ),
        (
            &["message", "query", "--topic", "nope", "--key", "k"],
            "unknown topic",
        ),
        (
            &["message", "resend-dlq", "--group", "g", "--all"],
            "no dead letters",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["--namesrv", ns];
        all.extend_from_slice(args);
        let (status, _, stderr) = run_to_end(MQADMIN, &all, &[]);
        assert_one_line_error(status, &stderr, needle);
    }
    // Usage errors (clap): exit 2.
    for args in [
        &["offset", "reset", "--group", "g", "--topic", "t"][..],
        &["message", "resend-dlq", "--group", "g"],
        &["cluster", "explode"],
    ] {
        let (status, _, stderr) = run_to_end(MQADMIN, args, &[]);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
    }
    let (status, _, stderr) = run_to_end(
        MQADMIN,
        &["--namesrv", "127.0.0.1:1", "cluster", "list"],
        &[],
    );
    assert_one_line_error(status, &stderr, "no nameserver reachable");
}
