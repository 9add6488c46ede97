//! A broker group with the real binaries: a replica follows its master's
//! CommitLog (catch-up, then live, then again after a SIGKILL) into a
//! byte-identical log, refuses writes naming its master, and bad group
//! settings are refused at start.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_test_support::{
    ServerProcess, commitlog_segments_below, run_to_end, standalone_broker_with_env,
    workspace_binary,
};

/// Small segments, so that the log spans several.
const SETTINGS: &[(&str, &str)] = &[
    ("MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE", "1048576"),
    ("MQ_BROKER_STORE__MAX_MESSAGE_SIZE", "65536"),
    ("MQ_BROKER_METRICS_LISTEN", "127.0.0.1:0"),
    // Pulls reading over 1 MiB behind the head are sent to a replica.
    ("MQ_BROKER_REPLICA_READ_BEHIND_BYTES", "1048576"),
];

fn replica_settings(master: &ServerProcess) -> Vec<(String, String)> {
    replica_settings_of(&master.addr.to_string())
}

fn replica_settings_of(master_addr: &str) -> Vec<(String, String)> {
    SETTINGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([
            ("MQ_BROKER_BROKER_ID".to_string(), "1".to_string()),
            ("MQ_BROKER_MASTER_ADDR".to_string(), master_addr.to_string()),
        ])
        .collect()
}

fn start_replica(dir: &Path, master: &ServerProcess) -> ServerProcess {
    start_replica_of(dir, &master.addr.to_string())
}

fn start_replica_of(dir: &Path, master_addr: &str) -> ServerProcess {
    let env = replica_settings_of(master_addr);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    standalone_broker_with_env(dir, &env).0
}

fn produce(namesrv: &str, count: u32) {
    let (status, out, err) = run_to_end(
        workspace_binary("mqbench"),
        &[
            "produce",
            "--namesrv",
            namesrv,
            "--topic",
            "replicated",
            "--size",
            "700",
            "--count",
            &count.to_string(),
        ],
        &[],
    );
    assert!(status.success(), "{out}\n{err}");
}

async fn log_end(broker: &ServerProcess) -> u64 {
    let mut client = BrokerClient::connect(broker.url()).await.unwrap();
    client
        .get_broker_stats(pb::GetBrokerStatsRequest {})
        .await
        .unwrap()
        .into_inner()
        .commitlog_max_offset
}

/// Waits until the replica's CommitLog ends where the master's does.
async fn caught_up(master: &ServerProcess, replica: &ServerProcess) -> u64 {
    let end = log_end(master).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let at = log_end(replica).await;
        if at == end {
            return end;
        }
        assert!(
            Instant::now() < deadline,
            "replica at {at}, master at {end}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops master and replica cleanly and checks that the replica's
/// CommitLog is byte for byte the master's up to `end`.
fn stop_and_compare(
    (mut master, master_dir): (ServerProcess, &Path),
    (mut replica, replica_dir): (ServerProcess, &Path),
    end: u64,
) {
    let stopped = |server: &mut ServerProcess| {
        server
            .terminate(Duration::from_secs(20))
            .is_some_and(|s| s.success())
    };
    assert!(stopped(&mut replica), "the replica stops cleanly");
    assert!(stopped(&mut master), "the master stops cleanly");
    assert!(
        commitlog_segments_below(master_dir, end) == commitlog_segments_below(replica_dir, end),
        "the replica's CommitLog up to {end} is byte for byte the master's"
    );
}

/// Waits (bounded) until `series` reads `value`.
async fn wait_metric(server: &ServerProcess, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = server.metric(series);
        if now == Some(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} is {now:?}, not {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_follows_its_master_into_a_byte_identical_log_serves_reads_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (master_dir, replica_dir) = (dir.path().join("master"), dir.path().join("replica"));
    let (master, namesrv) = standalone_broker_with_env(&master_dir, SETTINGS);
    produce(&namesrv, 3000);

    // Catch-up from nothing, then live.
    let mut replica = start_replica(&replica_dir, &master);
    caught_up(&master, &replica).await;
    produce(&namesrv, 1000);
    caught_up(&master, &replica).await;

    // Writes go to the master.
    let mut client = BrokerClient::connect(replica.url()).await.unwrap();
    let refused = client
        .send_message(pb::SendMessageRequest {
            message: Some(pb::Message {
                topic: "replicated".into(),
                body: b"no".to_vec().into(),
                ..Default::default()
            }),
            queue_id: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("replica 1 of broker-a")
            && refused.message().contains(&master.addr.to_string()),
        "{}",
        refused.message()
    );

    // So do an operator's changes.
    let refused = client
        .create_topic(pb::CreateTopicRequest {
            config: Some(pb::TopicConfig {
                topic: "elsewhere".into(),
                read_queue_count: 1,
                write_queue_count: 1,
                perm: 6,
                message_type: String::new(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);

    // A replica killed mid-stream resumes from its own end.
    replica.kill();
    produce(&namesrv, 1000);
    let replica = start_replica(&replica_dir, &master);
    let end = caught_up(&master, &replica).await;
    assert!(end > 3 << 20, "the log spans several segments: {end}");

    // The replica takes the master's topics and serves reads.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut on_replica = BrokerClient::connect(replica.url()).await.unwrap();
    while !on_replica
        .list_topics(pb::ListTopicsRequest {})
        .await
        .unwrap()
        .into_inner()
        .topics
        .iter()
        .any(|t| t.topic == "replicated")
    {
        assert!(
            Instant::now() < deadline,
            "the replica never took the topic"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pull = |client: &mut BrokerClient<tonic::transport::Channel>, offset: u64| {
        let mut client = client.clone();
        async move {
            client
                .pull_message(pb::PullMessageRequest {
                    group: "reader".into(),
                    topic: "replicated".into(),
                    queue_id: 0,
                    offset,
                    max_messages: 16,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let mut on_master = BrokerClient::connect(master.url()).await.unwrap();
    let from_replica = pull(&mut on_replica, 0).await;
    assert_eq!(from_replica.messages.len(), 16);
    assert_eq!(
        from_replica.messages,
        pull(&mut on_master, 0).await.messages
    );

    // A reader far behind the head (over 1 MiB) is sent to the in-sync
    // replica, which keeps it; one at the head is sent to the master.
    wait_metric(&master, "mq_broker_replicas_in_sync", 1.0).await;
    assert_eq!(pull(&mut on_master, 0).await.suggested_broker_id, 1);
    assert_eq!(from_replica.suggested_broker_id, 1);
    let head = from_replica.max_offset - 1;
    assert_eq!(pull(&mut on_master, head).await.suggested_broker_id, 0);
    assert_eq!(pull(&mut on_replica, head).await.suggested_broker_id, 0);

    // The scheduler's progress reaches the replica.
    let delayed = pb::Message {
        topic: "replicated".into(),
        body: b"later".to_vec().into(),
        delay_level: 1,
        ..Default::default()
    };
    on_master
        .send_message(pb::SendMessageRequest {
            message: Some(delayed),
            queue_id: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    let progress = |dir: &Path| -> Option<serde_json::Value> {
        let text = std::fs::read(dir.join("schedule_progress.json")).ok()?;
        let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
        (value["offsets"].as_object()?.values().any(|v| v == 1)).then_some(value)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while progress(&master_dir).is_none() || progress(&master_dir) != progress(&replica_dir) {
        assert!(
            Instant::now() < deadline,
            "schedule progress: master {:?}, replica {:?}",
            progress(&master_dir),
            progress(&replica_dir)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Both sides say how replication goes.
    wait_metric(&master, "mq_broker_replica_lag_bytes{replica=\"1\"}", 0.0).await;
    wait_metric(&master, "mq_broker_replica_lag_seconds{replica=\"1\"}", 0.0).await;
    wait_metric(&replica, "mq_broker_replication_connected", 1.0).await;
    wait_metric(&replica, "mq_broker_replication_lag_bytes", 0.0).await;
    wait_metric(&replica, "mq_broker_replication_lag_seconds", 0.0).await;
    assert!(replica.metric("mq_broker_replicated_bytes").unwrap() > 0.0);
    assert!(
        replica
            .metric("mq_broker_replication_catch_up_bytes_per_second")
            .unwrap()
            > 0.0
    );

    let segments = commitlog_segments_below(&master_dir, end).len();
    assert!(segments >= 4, "{segments} segments");
    stop_and_compare((master, &master_dir), (replica, &replica_dir), end);
}

async fn send(broker: &ServerProcess, body: &str) -> pb::SendResult {
    let mut client = BrokerClient::connect(broker.url()).await.unwrap();
    client
        .send_message(pb::SendMessageRequest {
            message: Some(pb::Message {
                topic: "replicated".into(),
                body: body.as_bytes().to_vec().into(),
                ..Default::default()
            }),
            queue_id: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_replication_acknowledges_what_a_replica_has_and_says_so_when_none_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let (master_dir, replica_dir) = (dir.path().join("master"), dir.path().join("replica"));
    let sync: Vec<(&str, &str)> = SETTINGS
        .iter()
        .copied()
        .chain([
            ("MQ_BROKER_REPLICATION", "sync"),
            ("MQ_BROKER_REPLICATION_TIMEOUT", "1s"),
        ])
        .collect();
    let (master, _) = standalone_broker_with_env(&master_dir, &sync);
    let ok = pb::SendStatus::SendOk as i32;

    // No replica yet: stored on the master only, and said so.
    let began = Instant::now();
    let alone = send(&master, "alone").await;
    assert_eq!(alone.status, pb::SendStatus::SlaveNotAvailable as i32);
    assert!(
        began.elapsed() >= Duration::from_secs(1),
        "it waited for a replica"
    );

    let mut replica = start_replica(&replica_dir, &master);
    caught_up(&master, &replica).await;
    wait_metric(&master, "mq_broker_replicas_in_sync", 1.0).await;
    for i in 0..50 {
        let result = send(&master, &format!("m{i}")).await;
        assert_eq!(result.status, ok, "send {i}");
        // Acknowledged means the replica has it, already.
        assert_eq!(log_end(&replica).await, log_end(&master).await, "send {i}");
    }

    replica.kill();
    let gone = send(&master, "gone").await;
    assert_eq!(gone.status, pb::SendStatus::SlaveNotAvailable as i32);

    let replica = start_replica(&replica_dir, &master);
    caught_up(&master, &replica).await;
    wait_metric(&master, "mq_broker_replicas_in_sync", 1.0).await;
    assert_eq!(send(&master, "back").await.status, ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_lists_each_member_with_its_role_replication_and_lag() {
    let dir = tempfile::tempdir().unwrap();
    let sync: Vec<(&str, &str)> = SETTINGS
        .iter()
        .copied()
        .chain([("MQ_BROKER_REPLICATION", "sync")])
        .collect();
    let (master, namesrv) = standalone_broker_with_env(&dir.path().join("master"), &sync);
    // The replica registers with the master's nameserver.
    let env = replica_settings(&master);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("MQ_BROKER_NAMESRV", &namesrv));
    let replica_dir = dir.path().join("replica");
    let replica = ServerProcess::start_until(
        workspace_binary("broker"),
        &[
            "--store-dir",
            replica_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &env,
        "broker listening",
    );
    wait_metric(&master, "mq_broker_replicas_in_sync", 1.0).await;
    assert_eq!(
        send(&master, "one").await.status,
        pb::SendStatus::SendOk as i32
    );
    caught_up(&master, &replica).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let brokers = loop {
        let (status, out, err) = run_to_end(
            workspace_binary("mqadmin"),
            &["--namesrv", &namesrv, "--json", "cluster", "list"],
            &[],
        );
        assert!(status.success(), "{out}\n{err}");
        let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
        let brokers = listed["brokers"].as_array().unwrap().clone();
        let settled = brokers.len() == 2
            && brokers
                .iter()
                .all(|b| b["lag_bytes"] == 0 && b["lag_ms"] == 0)
            && brokers
                .iter()
                .any(|b| b["replication"] == "sync, 1/1 in sync");
        if settled {
            break brokers;
        }
        assert!(Instant::now() < deadline, "{out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let by_id = |id: u64| brokers.iter().find(|b| b["id"] == id).unwrap();
    assert_eq!(by_id(0)["role"], "master");
    assert_eq!(by_id(0)["replicas"][0]["id"], 1);
    assert_eq!(by_id(1)["role"], "replica");
    assert_eq!(by_id(1)["replication"], "following");
    assert_eq!(by_id(1)["broker"], "broker-a");
}

#[test]
fn a_replica_with_another_segment_size_is_told_why_it_cannot_follow() {
    let dir = tempfile::tempdir().unwrap();
    let (master, _) = standalone_broker_with_env(&dir.path().join("master"), SETTINGS);
    let mut env = replica_settings(&master);
    env[0].1 = "2097152".into();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (replica, _) = standalone_broker_with_env(&dir.path().join("replica"), &env);
    let line = replica
        .wait_for_log("cannot follow the master", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", replica.logs().join("\n")));
    assert!(
        line.contains("commitlog_segment_size is 2097152, the master's 1048576"),
        "{line}"
    );
}

#[test]
fn bad_group_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let start = |env: &[(&str, &str)]| {
        let (status, out, err) = run_to_end(
            workspace_binary("broker"),
            &[
                "--standalone",
                "--store-dir",
                dir.path().to_str().unwrap(),
                "--listen",
                "127.0.0.1:19876",
                "--namesrv-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ],
            env,
        );
        assert!(!status.success(), "{out}\n{err}");
        err
    };
    let err = start(&[("MQ_BROKER_BROKER_ID", "1")]);
    assert!(
        err.contains("master_addr") && err.contains("required for a replica"),
        "{err}"
    );
    let err = start(&[("MQ_BROKER_MASTER_ADDR", "127.0.0.1:10911")]);
    assert!(
        err.contains("master_addr") && err.contains("replicas only"),
        "{err}"
    );
    let err = start(&[
        ("MQ_BROKER_BROKER_ID", "1"),
        ("MQ_BROKER_MASTER_ADDR", "127.0.0.1:19876"),
    ]);
    assert!(err.contains("is this broker itself"), "{err}");
    let err = start(&[
        ("MQ_BROKER_BROKER_ID", "1"),
        ("MQ_BROKER_MASTER_ADDR", "no-port"),
    ]);
    assert!(err.contains("master_addr"), "{err}");
}

#[test]
fn a_second_master_of_a_group_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (master, namesrv) = standalone_broker_with_env(&dir.path().join("master"), SETTINGS);
    let (status, out, err) = run_to_end(
        workspace_binary("broker"),
        &[
            "--store-dir",
            dir.path().join("second").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--namesrv",
            &namesrv,
        ],
        &[],
    );
    assert!(!status.success(), "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("cannot join the cluster")
            && all.contains("\"broker-a\" id 0 is already registered from")
            && all.contains(&master.addr.to_string()),
        "{all}"
    );
}

/// Zeroes `from..to` of the CommitLog in `store_dir` (segments of 1 MiB):
/// pages a crash lost before they reached the disk.
fn lose(store_dir: &Path, from: u64, to: u64) {
    const SEGMENT: u64 = 1 << 20;
    use std::os::unix::fs::FileExt;
    let mut at = from;
    while at < to {
        let base = at - at % SEGMENT;
        let upto = to.min(base + SEGMENT);
        let path = store_dir.join("commitlog").join(format!("{base:020}"));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&vec![0; (upto - at) as usize], at - base)
            .unwrap();
        at = upto;
    }
}

fn start_master_at(dir: &Path, addr: &str) -> (ServerProcess, String) {
    let master = ServerProcess::start_until(
        workspace_binary("broker"),
        &[
            "--standalone",
            "--store-dir",
            dir.to_str().unwrap(),
            "--listen",
            addr,
            "--namesrv-listen",
            "127.0.0.1:0",
        ],
        SETTINGS,
        "broker listening",
    );
    let namesrv = master
        .logged_addr("nameserver listening")
        .unwrap()
        .to_string();
    (master, namesrv)
}

/// Also apache/rocketmq#10666: a cut that happened only in memory would
/// come back after a crash; here the process dies right after applying it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_tail_diverged_cuts_it_back_durably_and_follows_again() {
    let dir = tempfile::tempdir().unwrap();
    let (master_dir, replica_dir) = (dir.path().join("master"), dir.path().join("replica"));
    let (mut master, namesrv) = standalone_broker_with_env(&master_dir, SETTINGS);
    let master_addr = master.addr.to_string();
    produce(&namesrv, 2000);
    let mut replica = start_replica(&replica_dir, &master);
    let end = caught_up(&master, &replica).await;
    assert!(
        replica
            .terminate(Duration::from_secs(20))
            .unwrap()
            .success()
    );

    // The master crashes and loses the last 100 KB it had written (and the
    // replica had copied); it starts a new epoch where its log now ends
    // and takes new messages there.
    master.kill();
    lose(&master_dir, end - 100_000, end);
    let (master, namesrv) = start_master_at(&master_dir, &master_addr);
    let cut = log_end(&master).await;
    assert!(cut < end - 99_000, "the master's log ends at {cut}");
    produce(&namesrv, 300);
    assert!(
        log_end(&master).await > end,
        "the new epoch overwrites the lost range"
    );

    // The replica learns that its tail past `cut` is not the master's,
    // records the cut, restarts to apply it, and dies right after (fail
    // point): the cut must already be on disk.
    let mut env = replica_settings(&master);
    env.push(("FAILPOINTS".into(), "truncate::applied=return".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut crashing = standalone_broker_with_env(&replica_dir, &env).0;
    let status = crashing.wait_for_exit(Duration::from_secs(30)).unwrap_or_else(|| {
        panic!(
            "the fail point did not fire (is the broker built with --features mq-broker/failpoints?):\n{}",
            crashing.logs().join("\n")
        )
    });
    assert!(!status.success(), "it died at the fail point: {status:?}");
    let logs = crashing.logs().join("\n");
    assert!(
        logs.contains(&format!("cut_back_to={cut}")) && logs.contains("CommitLog cut back"),
        "{logs}"
    );
    mq_test_support::assert_commitlog_holds_nothing_past(&replica_dir, cut);

    // Started again, it follows from the cut into the master's log.
    let replica = start_replica(&replica_dir, &master);
    let end = caught_up(&master, &replica).await;
    stop_and_compare((master, &master_dir), (replica, &replica_dir), end);
}

/// A broker of group broker-a registered with `namesrv`, flushing and
/// replicating in sync.
fn start_sync_member(
    dir: &Path,
    namesrv: &str,
    listen: &str,
    master: Option<&str>,
) -> ServerProcess {
    let mut env: Vec<(&str, &str)> = SETTINGS.to_vec();
    env.push(("MQ_BROKER_REPLICATION", "sync"));
    if let Some(master) = master {
        env.extend([
            ("MQ_BROKER_BROKER_ID", "1"),
            ("MQ_BROKER_MASTER_ADDR", master),
        ]);
    }
    ServerProcess::start_until(
        workspace_binary("broker"),
        &[
            "--store-dir",
            dir.to_str().unwrap(),
            "--listen",
            listen,
            "--namesrv",
            namesrv,
            "--register-interval",
            "500ms",
            "--flush",
            "sync",
        ],
        &env,
        "broker listening",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_that_lost_its_disk_loses_no_acknowledged_message_and_never_cuts_its_replica() {
    let dir = tempfile::tempdir().unwrap();
    let (master_dir, replica_dir) = (dir.path().join("master"), dir.path().join("replica"));
    let nameserver =
        ServerProcess::start(workspace_binary("nameserver"), &["--listen", "127.0.0.1:0"]);
    let namesrv = nameserver.addr.to_string();
    let mut master = start_sync_member(&master_dir, &namesrv, "127.0.0.1:0", None);
    let master_addr = master.addr.to_string();
    let replica = start_sync_member(&replica_dir, &namesrv, "127.0.0.1:0", Some(&master_addr));
    mq_test_support::cluster::create_topic(&master.url(), "kept", 4).await;
    wait_metric(&master, "mq_broker_replicas_in_sync", 1.0).await;

    let (produced, consumed) = (
        dir.path().join("produced.log"),
        dir.path().join("consumed.log"),
    );
    let (status, out, err) = run_to_end(
        workspace_binary("mqbench"),
        &[
            "produce",
            "--namesrv",
            &namesrv,
            "--topic",
            "kept",
            "--size",
            "700",
            "--count",
            "1500",
            "--flush-wait",
            "--verify-log",
            produced.to_str().unwrap(),
        ],
        &[],
    );
    assert!(status.success(), "{out}\n{err}");
    let acknowledged = std::fs::read_to_string(&produced).unwrap().lines().count();
    assert_eq!(acknowledged, 1500, "{out}");
    let end = log_end(&replica).await;

    // The master's disk is lost while it is down.
    master.kill();
    std::fs::remove_dir_all(&master_dir).unwrap();

    // Everything acknowledged is read from the replica.
    mq_test_support::mqbench::consume_all(&namesrv, "kept", "mqbench", &consumed);
    let (status, out) = mq_test_support::mqbench::verify(&produced, &consumed);
    assert!(
        status.success() && out.contains("1500 passed, 0 failed"),
        "{out}"
    );

    // A master started on the empty disk is older than its replica's log:
    // it is refused, and the replica keeps every byte.
    let fresh = start_sync_member(&master_dir, &namesrv, &master_addr, None);
    let refused = replica
        .wait_for_log("shares no epoch", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", replica.logs().join("\n")));
    assert!(refused.contains("the replica keeps its log"), "{refused}");
    assert_eq!(log_end(&replica).await, end);
    assert_eq!(log_end(&fresh).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_again_and_again_under_load_converges_to_the_masters_log() {
    let dir = tempfile::tempdir().unwrap();
    let (master_dir, replica_dir) = (dir.path().join("master"), dir.path().join("replica"));
    let (master, namesrv) = standalone_broker_with_env(&master_dir, SETTINGS);
    produce(&namesrv, 200);
    let load = {
        let namesrv = namesrv.clone();
        std::thread::spawn(move || {
            let (status, out, err) = run_to_end(
                workspace_binary("mqbench"),
                &[
                    "produce",
                    "--namesrv",
                    &namesrv,
                    "--topic",
                    "replicated",
                    "--size",
                    "900",
                    "--count",
                    "8000",
                    "--rate",
                    "3000",
                    "--producers",
                    "8",
                ],
                &[],
            );
            assert!(status.success(), "{out}\n{err}");
        })
    };
    let mut kills = 0;
    while !load.is_finished() {
        let mut replica = start_replica(&replica_dir, &master);
        tokio::time::sleep(Duration::from_millis(150 + 100 * (kills % 3))).await;
        replica.kill();
        kills += 1;
    }
    load.join().unwrap();
    assert!(kills >= 4, "{kills} kills during the load");

    let replica = start_replica(&replica_dir, &master);
    let end = caught_up(&master, &replica).await;
    stop_and_compare((master, &master_dir), (replica, &replica_dir), end);
}

#[test]
fn a_replica_pointed_at_the_wrong_master_says_why_it_cannot_follow() {
    let dir = tempfile::tempdir().unwrap();
    let (master, _) = standalone_broker_with_env(&dir.path().join("master"), SETTINGS);
    // Another group's master.
    let mut env = replica_settings(&master);
    env.push(("MQ_BROKER_BROKER_NAME".into(), "broker-b".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (other_group, _) = standalone_broker_with_env(&dir.path().join("other"), &env);
    let line = other_group
        .wait_for_log("cannot follow the master", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", other_group.logs().join("\n")));
    assert!(line.contains("is not a replica of broker-a"), "{line}");

    // Nothing listens there.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = nobody.local_addr().unwrap().to_string();
    drop(nobody);
    let mut env = replica_settings(&master);
    for (key, value) in &mut env {
        if key == "MQ_BROKER_MASTER_ADDR" {
            *value = nowhere.clone();
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (lost, _) = standalone_broker_with_env(&dir.path().join("lost"), &env);
    let line = lost
        .wait_for_log("cannot follow the master", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", lost.logs().join("\n")));
    assert!(line.contains(&nowhere), "{line}");
}

/// A replica serves no reads until its master confirmed its log: a deposed
/// master back as a replica may hold a tail the group never had, and a
/// consumer reading queue offsets there would skip the group's messages
/// at the same offsets (found by the cluster test's repeated failovers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_no_reads_until_its_master_confirms_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let (master_dir, replica_dir) = (dir.path().join("master"), dir.path().join("replica"));
    let addr = format!("127.0.0.1:{}", mq_test_support::controllers::free_port());
    let (mut master, namesrv) = start_master_at(&master_dir, &addr);
    produce(&namesrv, 200);
    let replica = start_replica(&replica_dir, &master);
    let end = caught_up(&master, &replica).await;
    assert!(end > 0);
    assert!(master.terminate(Duration::from_secs(20)).unwrap().success());
    drop(replica);

    // Started again while its master is away: it cannot learn whether its
    // log is the group's, so it refuses reads, saying why.
    let replica = start_replica_of(&replica_dir, &addr);
    let mut client = BrokerClient::connect(replica.url()).await.unwrap();
    let pull = pb::PullMessageRequest {
        group: "reader".into(),
        topic: "replicated".into(),
        queue_id: 0,
        max_messages: 16,
        ..Default::default()
    };
    let refused = client.pull_message(pull.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("until its master confirms its log"),
        "{}",
        refused.message()
    );

    // The master returns and confirms it: reads are served.
    let (_master, _) = start_master_at(&master_dir, &addr);
    replica
        .wait_for_log(
            "the master agrees with this replica's log",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|| panic!("{}", replica.logs().join("\n")));
    let served = client.pull_message(pull).await.unwrap().into_inner();
    assert_eq!(served.messages.len(), 16);
}
