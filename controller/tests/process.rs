//! The real `controller` binary: help, one-line start-up errors, metrics,
//! a graceful stop on SIGTERM, and a group that keeps its state when every
//! controller restarts from its disk.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use mq_controller::client::ControllerClient;
use mq_proto::controller::v1 as pb;
use mq_test_support::controllers::Controllers;
use mq_test_support::run_to_end;

const BINARY: &str = env!("CARGO_BIN_EXE_controller");

#[test]
fn help_documents_every_option() {
    let (status, stdout, _) = run_to_end(BINARY, &["--help"], &[]);
    assert!(status.success());
    for option in [
        "--config",
        "--id",
        "--peers",
        "--listen",
        "--metrics-listen",
        "--data-dir",
        "--broker-timeout",
        "--allow-unclean-election",
        "--raft-election-timeout",
        "--log-level",
        "MQ_CONTROLLER_",
    ] {
        assert!(
            stdout.contains(option),
            "--help does not mention {option}:\n{stdout}"
        );
    }
}

#[test]
fn bad_settings_fail_with_one_line_naming_them() {
    for (args, needle) in [
        (&["--peers", "1=127.0.0.1:1"][..], "id"),
        (&["--id", "1"][..], "peers"),
        (
            &["--id", "1", "--peers", "2=127.0.0.1:1"][..],
            "does not list this controller's id 1",
        ),
        (
            &[
                "--id",
                "1",
                "--peers",
                "1=127.0.0.1:1",
                "--broker-timeout",
                "1ms",
            ][..],
            "broker_timeout",
        ),
    ] {
        let (status, _, stderr) = run_to_end(BINARY, args, &[]);
        assert!(!status.success(), "{args:?} should fail");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line expected:\n{stderr}"
        );
        assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    }
}

async fn register(client: &ControllerClient) -> pb::GroupView {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = client
            .register(pb::BrokerHeartbeat {
                group: "broker-a".into(),
                broker_id: 1,
                addr: "127.0.0.1:10911".into(),
                max_offset: 4096,
                ..Default::default()
            })
            .await;
        match answer {
            Ok(view) => return view,
            Err(status) => assert!(Instant::now() < deadline, "{status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_outlives_a_restart_of_every_controller_and_sigterm_stops_them_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut controllers = Controllers::start(dir.path(), 3, &[]);
    let client = ControllerClient::from_list(&controllers.list()).unwrap();
    let view = register(&client).await;
    assert_eq!(
        (view.master_id, view.epoch, view.epoch_start_offset),
        (1, 1, 4096)
    );

    let status = client.leader_status().await.unwrap();
    let leader = status.leader_id;
    assert!(controllers.running.contains_key(&leader), "{status:?}");
    let metrics_addr = controllers.running[&leader]
        .logged_addr("metrics endpoint ready")
        .unwrap();
    let (_, body) = mq_test_support::http_get(metrics_addr, "/metrics");
    assert!(body.contains("mq_controller_is_leader 1"), "{body}");
    assert!(
        body.contains("mq_controller_group_epoch{group=\"broker-a\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("mq_controller_sync_state_set_size{group=\"broker-a\"} 1"),
        "{body}"
    );

    for id in 1..=3 {
        let process = controllers.running.get_mut(&id).unwrap();
        let status = process.terminate(Duration::from_secs(10)).unwrap();
        assert!(
            status.success(),
            "controller {id} stops cleanly: {status:?}"
        );
        assert!(
            process
                .logs()
                .iter()
                .any(|l| l.contains("controller stopped"))
        );
    }
    controllers.running.clear();
    for id in 1..=3 {
        controllers.start_one(id);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let groups = loop {
        if let Ok(status) = client.status().await
            && status.leader_id != 0
        {
            break status.groups;
        }
        assert!(Instant::now() < deadline, "no leader after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let view = groups[0].view.clone().unwrap();
    assert_eq!(
        (view.group.as_str(), view.master_id, view.epoch),
        ("broker-a", 1, 1),
        "the group came back from the controllers' disks"
    );
}
