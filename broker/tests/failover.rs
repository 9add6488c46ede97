//! Controller mode with the real binaries: three controllers, a broker
//! group of two members replicating in sync. A master killed with SIGKILL
//! is replaced by its in-sync replica within seconds, clients follow, and
//! the old master comes back as a replica; nothing acknowledged is lost,
//! and a tail that was never acknowledged is cut from the old master
//! rather than served (apache/rocketmq#3015).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use mq_controller::client::ControllerClient;
use mq_proto::controller::v1 as pb;
use mq_test_support::controllers::{Controllers, free_port};
use mq_test_support::{ServerProcess, run_to_end, workspace_binary};

/// Fast failure detection for tests: a broker silent for 2 s is dead.
const CONTROLLER_ARGS: &[&str] = &["--broker-timeout", "2s"];

fn start_member(
    dir: &Path,
    id: u64,
    listen: &str,
    namesrv: &str,
    controllers: &str,
) -> ServerProcess {
    ServerProcess::start_until(
        workspace_binary("broker"),
        &[
            "--store-dir",
            dir.to_str().unwrap(),
            "--listen",
            listen,
            "--namesrv",
            namesrv,
            "--controller-addr",
            controllers,
            "--broker-id",
            &id.to_string(),
            "--register-interval",
            "500ms",
            "--flush",
            "sync",
            "--replication",
            "sync",
        ],
        &[
            ("MQ_BROKER_MIN_IN_SYNC_REPLICAS", "0"),
            ("MQ_BROKER_REPLICATION_TIMEOUT", "1s"),
            ("MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE", "1048576"),
            ("MQ_BROKER_STORE__MAX_MESSAGE_SIZE", "65536"),
        ],
        "broker listening",
    )
}

/// The group as the controller leader has it.
async fn group(client: &ControllerClient) -> Option<pb::GroupView> {
    let status = client.status().await.ok()?;
    status.groups.into_iter().find_map(|g| g.view)
}

/// Waits (bounded) until the group satisfies `ok`; returns it.
async fn wait_group(
    client: &ControllerClient,
    what: &str,
    ok: impl Fn(&pb::GroupView) -> bool,
) -> pb::GroupView {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = group(client).await;
        if let Some(view) = now.as_ref().filter(|v| ok(v)) {
            return view.clone();
        }
        assert!(Instant::now() < deadline, "{what}: the group is {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until `broker` restarted in its process and listens
/// again.
async fn restarted(broker: &ServerProcess, role: &str) {
    mq_test_support::cluster::wait_until(
        &format!("the broker listens again {role}"),
        Duration::from_secs(20),
        || {
            broker
                .logs()
                .iter()
                .filter(|l| l.contains("broker listening"))
                .count()
                >= 2
        },
    )
    .await;
}

fn mqbench(args: &[&str]) -> String {
    let (status, out, err) = run_to_end(workspace_binary("mqbench"), args, &[]);
    assert!(status.success(), "mqbench {args:?}: {out}\n{err}");
    out
}

fn produce(namesrv: &str, count: u32, log: &Path) -> usize {
    mqbench(&[
        "produce",
        "--namesrv",
        namesrv,
        "--topic",
        "failover",
        "--size",
        "500",
        "--count",
        &count.to_string(),
        "--flush-wait",
        "--verify-log",
        log.to_str().unwrap(),
    ]);
    std::fs::read_to_string(log).unwrap().lines().count()
}

/// Consumes the topic from the start and checks every line of `produced`
/// logs against what was read.
fn verify_all_consumed(namesrv: &str, dir: &Path, produced: &[&Path], expected: usize) {
    let consumed = dir.join("consumed.log");
    mqbench(&[
        "consume",
        "--namesrv",
        namesrv,
        "--topic",
        "failover",
        "--from-first",
        "--idle",
        "3",
        "--timeout",
        "60",
        "--verify-log",
        consumed.to_str().unwrap(),
    ]);
    let all = dir.join("produced-all.log");
    let joined: String = produced
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    std::fs::write(&all, joined).unwrap();
    let out = mqbench(&["verify", all.to_str().unwrap(), consumed.to_str().unwrap()]);
    assert!(
        out.contains(&format!("{expected} passed, 0 failed")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_replaced_by_its_in_sync_replica_and_comes_back_as_one_losing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let controllers = Controllers::start(dir.path(), 3, CONTROLLER_ARGS);
    let client = ControllerClient::from_list(&controllers.list()).unwrap();
    let nameserver =
        ServerProcess::start(workspace_binary("nameserver"), &["--listen", "127.0.0.1:0"]);
    let namesrv = nameserver.addr.to_string();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let a_listen = format!("127.0.0.1:{}", free_port());
    let mut a = start_member(&a_dir, 1, &a_listen, &namesrv, &controllers.list());
    let b = start_member(&b_dir, 2, "127.0.0.1:0", &namesrv, &controllers.list());
    let view = wait_group(&client, "both in sync", |g| g.sync_state_set == [1, 2]).await;
    assert_eq!((view.master_id, view.epoch), (1, 1), "the first member leads");
    mq_test_support::cluster::create_topic(&a.url(), "failover", 4).await;

    let before = dir.path().join("before.log");
    assert_eq!(produce(&namesrv, 1000, &before), 1000);

    // The master dies; its in-sync replica takes over within seconds.
    let killed = Instant::now();
    a.kill();
    let view = wait_group(&client, "2 elected", |g| g.master_id == 2).await;
    assert_eq!(view.epoch, 2);
    assert_eq!(view.sync_state_set, [2], "the new master alone is in sync");
    b.wait_for_log("elected master in epoch 2", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", b.logs().join("\n")));
    restarted(&b, "as master").await;
    // Producers follow the route to the new master by themselves.
    let after = dir.path().join("after.log");
    assert_eq!(produce(&namesrv, 500, &after), 500);
    eprintln!("failover: first send acknowledged after {:?}", killed.elapsed());

    // The old master returns as a replica of the new one and catches up.
    let a = start_member(&a_dir, 1, &a_listen, &namesrv, &controllers.list());
    a.wait_for_log("joined the group through the controller", Duration::from_secs(10))
        .filter(|line| line.contains("master=2"))
        .unwrap_or_else(|| panic!("{}", a.logs().join("\n")));
    wait_group(&client, "1 back in sync", |g| g.sync_state_set == [1, 2]).await;
    verify_all_consumed(&namesrv, dir.path(), &[&before, &after], 1500);
    drop(controllers);
}
