//! `mqadmin controller status` and `mqadmin broker elect-master` against
//! three real controllers and a broker group of two real brokers in
//! controller mode, and the controller API's answers to bad requests.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use mq_controller::client::{ControllerClient, LEADER_HEADER};
use mq_proto::controller::v1 as pb;
use mq_test_support::controllers::Controllers;
use mq_test_support::{ServerProcess, run_to_end, workspace_binary};

const MQADMIN: &str = env!("CARGO_BIN_EXE_mqadmin");

fn member(dir: &Path, id: u64, namesrv: &str, controllers: &str) -> ServerProcess {
    ServerProcess::start_until(
        workspace_binary("broker"),
        &[
            "--store-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--namesrv",
            namesrv,
            "--controller-addr",
            controllers,
            "--broker-id",
            &id.to_string(),
            "--replication",
            "sync",
        ],
        &[("MQ_BROKER_MIN_IN_SYNC_REPLICAS", "0")],
        "broker listening",
    )
}

fn admin(controllers: &str, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut all = vec!["--namesrv", "127.0.0.1:1"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--controller", controllers]);
    run_to_end(MQADMIN, &all, &[])
}

/// broker-a's row of `mqadmin --json controller status`.
fn group_a(controllers: &str) -> Option<serde_json::Value> {
    let (status, out, _) = admin(controllers, &["--json", "controller", "status"]);
    if !status.success() {
        return None;
    }
    let status: serde_json::Value = serde_json::from_str(&out).ok()?;
    status["groups"]
        .as_array()?
        .iter()
        .find(|g| g["group"] == "broker-a")
        .cloned()
}

fn wait_group_a(controllers: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let group = group_a(controllers);
        if let Some(group) = group.as_ref().filter(|g| ok(g)) {
            return group.clone();
        }
        assert!(Instant::now() < deadline, "broker-a is {group:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `mqadmin broker elect-master` of member `id` of `group`, with more
/// options.
fn elect(
    controllers: &str,
    group: &str,
    id: &str,
    more: &[&str],
) -> (std::process::ExitStatus, String, String) {
    let mut args = vec![
        "broker",
        "elect-master",
        "--broker-name",
        group,
        "--broker-id",
        id,
    ];
    args.extend_from_slice(more);
    admin(controllers, &args)
}

fn assert_one_line_error(status: std::process::ExitStatus, stderr: &str, needle: &str) {
    assert!(!status.success(), "expected a failure: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_leader_and_groups_and_elect_master_switches_over() {
    let dir = tempfile::tempdir().unwrap();
    let controllers = Controllers::start(dir.path(), 3, &["--broker-timeout", "2s"]);
    let list = controllers.list();
    let nameserver =
        ServerProcess::start(workspace_binary("nameserver"), &["--listen", "127.0.0.1:0"]);
    let namesrv = nameserver.addr.to_string();
    let a = member(&dir.path().join("a"), 1, &namesrv, &list);
    let b = member(&dir.path().join("b"), 2, &namesrv, &list);
    let group = wait_group_a(&list, |g| g["sync_state_set"] == serde_json::json!([1, 2]));
    assert_eq!(
        (group["master"].as_u64(), group["epoch"].as_u64()),
        (Some(1), Some(1))
    );

    let (status, out, err) = admin(&list, &["controller", "status"]);
    assert!(status.success(), "{err}");
    assert_eq!(
        out.matches(" leader ").count() + out.matches(" leader\n").count(),
        1,
        "one leader:\n{out}"
    );
    assert!(out.contains("broker-a") && out.contains("1,2"), "{out}");

    // Bad inputs: one line each, non-zero exit.
    let (status, _, err) = elect(&list, "broker-a", "7", &[]);
    assert_one_line_error(status, &err, "not an alive member");
    let (status, _, err) = elect(&list, "nope", "1", &[]);
    assert_one_line_error(status, &err, "no broker group");
    let (status, _, err) = elect(&list, "broker-a", "2", &["--timeout", "0s"]);
    assert_one_line_error(status, &err, "--timeout must be above 0");
    let (status, _, err) = admin("127.0.0.1:1", &["controller", "status"]);
    assert_one_line_error(status, &err, "no controller answers");

    // A switch-over to the in-sync member.
    let (status, out, err) = elect(&list, "broker-a", "2", &[]);
    assert!(status.success(), "{err}");
    assert!(
        out.contains("broker 2") && out.contains("epoch 2") && out.contains("sealed at offset"),
        "{out}"
    );
    a.wait_for_log(
        "the controller made broker 2 master",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|| panic!("{}", a.logs().join("\n")));
    b.wait_for_log(
        "began the epoch the controller elected it in",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|| panic!("{}", b.logs().join("\n")));
    wait_group_a(&list, |g| {
        g["master"] == 2 && g["sync_state_set"] == serde_json::json!([1, 2])
    });
    // The new master takes writes; the old one, now its replica, refuses them.
    let create = |broker: &ServerProcess| {
        run_to_end(
            MQADMIN,
            &[
                "--namesrv",
                &namesrv,
                "topic",
                "create",
                "--topic",
                "switched",
                "--queues",
                "2",
                "--broker",
                &broker.addr.to_string(),
            ],
            &[],
        )
    };
    let (status, _, err) = create(&a);
    assert_one_line_error(status, &err, "takes no writes");
    let (status, _, err) = create(&b);
    assert!(status.success(), "{err}");
    mq_test_support::cluster::wait_for_route(&namesrv, "switched", 1).await;
    let (status, out, err) = run_to_end(
        workspace_binary("mqbench"),
        &[
            "produce",
            "--namesrv",
            &namesrv,
            "--topic",
            "switched",
            "--count",
            "50",
            "--flush-wait",
        ],
        &[],
    );
    assert!(status.success(), "{out}{err}");

    // A forced switch-over back: elected at once, nothing sealed.
    let (status, out, err) = elect(&list, "broker-a", "1", &["--json", "--force"]);
    assert!(status.success(), "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&answer["master"], &answer["epoch"], &answer["sealed_at"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(3),
            &serde_json::Value::Null
        ),
        "{out}"
    );
    assert!(
        !b.logs().iter().any(|l| l.contains("log sealed")),
        "a forced switch-over seals nothing"
    );
    a.wait_for_log("elected master in epoch 3", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", a.logs().join("\n")));
}

/// Bad requests are refused naming what is wrong, racing SyncStateSet
/// changes commit one at a time, and followers point at the leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_api_refuses_bad_requests_by_name_and_followers_point_at_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let controllers = Controllers::start(dir.path(), 3, &[]);
    let client = ControllerClient::from_list(&controllers.list()).unwrap();
    let heartbeat = |group: &str, id: u64, addr: &str| pb::BrokerHeartbeat {
        group: group.into(),
        broker_id: id,
        addr: addr.into(),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let view = loop {
        match client.register(heartbeat("g", 1, "127.0.0.1:10911")).await {
            Ok(view) => break view,
            Err(status) => assert!(Instant::now() < deadline, "{status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((view.master_id, view.epoch), (1, 1));

    for (hb, field) in [
        (heartbeat("g", 0, "127.0.0.1:10911"), "broker_id"),
        (heartbeat("g", 2, "nowhere"), "addr"),
        (heartbeat("", 2, "127.0.0.1:10912"), "group"),
        (heartbeat("g/x", 2, "127.0.0.1:10912"), "group"),
    ] {
        let status = client.heartbeat(hb).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains(field),
            "{field}: {}",
            status.message()
        );
    }
    let alter = |master, epoch, set: Vec<u64>| pb::AlterSyncStateSetRequest {
        group: "g".into(),
        master_id: master,
        master_epoch: epoch,
        sync_state_epoch: 1,
        new_sync_state_set: set,
    };
    for (request, says) in [
        (alter(2, 1, vec![1]), "is not its master"),
        (alter(1, 0, vec![1]), "stale"),
        (alter(1, 1, vec![1, 9]), "members only"),
    ] {
        let status = client.alter_sync_state_set(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
        assert!(
            status.message().contains(says),
            "{says}: {}",
            status.message()
        );
    }

    // apache/rocketmq#5663: changes of the SyncStateSet racing each other
    // (a shrink and an expansion computed from the same set) through the
    // real Raft group: exactly one commits, the other is refused as
    // stale, and the set is the winner's.
    for (id, addr) in [(2, "127.0.0.1:10912"), (3, "127.0.0.1:10913")] {
        client.register(heartbeat("g", id, addr)).await.unwrap();
    }
    let alter_at = |sync_state_epoch: u64, set: Vec<u64>| pb::AlterSyncStateSetRequest {
        sync_state_epoch,
        ..alter(1, 1, set)
    };
    let mut set_epoch = 1;
    for round in 0..10 {
        let view = client
            .alter_sync_state_set(alter_at(set_epoch, vec![1, 2]))
            .await
            .unwrap();
        set_epoch = view.sync_state_epoch;
        let (shrink, expand) = tokio::join!(
            client.alter_sync_state_set(alter_at(set_epoch, vec![1])),
            client.alter_sync_state_set(alter_at(set_epoch, vec![1, 2, 3])),
        );
        let winner = match (&shrink, &expand) {
            (Ok(_), Err(lost)) | (Err(lost), Ok(_)) => {
                assert_eq!(lost.code(), tonic::Code::FailedPrecondition, "{lost:?}");
                assert!(lost.message().contains("stale"), "{}", lost.message());
                if shrink.is_ok() {
                    vec![1]
                } else {
                    vec![1, 2, 3]
                }
            }
            _ => panic!("round {round}: both or neither committed: {shrink:?} {expand:?}"),
        };
        let now = client.leader_status().await.unwrap();
        let group = now
            .groups
            .iter()
            .find_map(|g| g.view.as_ref().filter(|v| v.group == "g"))
            .unwrap();
        assert_eq!(group.sync_state_set, winner, "round {round}");
        assert_eq!(group.sync_state_epoch, set_epoch + 1, "round {round}");
        set_epoch = group.sync_state_epoch;
    }

    // A follower answers UNAVAILABLE and names the leader.
    let leader = client.leader_status().await.unwrap();
    let follower = leader
        .controllers
        .iter()
        .find(|(id, _)| **id != leader.leader_id)
        .unwrap()
        .1;
    let mut stub = pb::controller_client::ControllerClient::connect(format!("http://{follower}"))
        .await
        .unwrap();
    let status = stub
        .heartbeat(heartbeat("g", 1, "127.0.0.1:10911"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        status.message().contains(&leader.leader_addr),
        "{}",
        status.message()
    );
    assert_eq!(
        status
            .metadata()
            .get(LEADER_HEADER)
            .unwrap()
            .to_str()
            .unwrap(),
        leader.leader_addr
    );
}
