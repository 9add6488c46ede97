//! A secured cluster in controller mode, as real processes: three
//! controllers, a nameserver and a broker group of two members, all with
//! authentication on. The members register, replicate (the replica's
//! stream to its master is signed) and fail over with the administrator's
//! credentials; anonymous callers are refused at every door.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use mq_controller::client::ControllerClient;
use mq_proto::controller::v1 as pb;
use mq_test_support::controllers::{Controllers, free_port};
use mq_test_support::{ServerProcess, run_to_end, workspace_binary};

const ADMIN_SECRET: &str = "admin-S3cret-cluster-4d1e";

fn admin_env() -> [(&'static str, &'static str); 2] {
    [("MQ_ACCESS_KEY", "admin"), ("MQ_SECRET_KEY", ADMIN_SECRET)]
}

/// Member `id` of broker-a, in controller mode with authentication on.
fn member(
    dir: &std::path::Path,
    id: u64,
    listen: &str,
    namesrv: &str,
    controllers: &str,
) -> ServerProcess {
    ServerProcess::start_until(
        workspace_binary("broker"),
        &[
            "--store-dir",
            dir.join(format!("member-{id}")).to_str().unwrap(),
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
            "--replication",
            "sync",
            "--auth",
            "--auth-access-key",
            "admin",
        ],
        &[
            ("MQ_BROKER_AUTH_SECRET_KEY", ADMIN_SECRET),
            ("MQ_BROKER_MIN_IN_SYNC_REPLICAS", "0"),
            ("MQ_BROKER_REPLICATION_TIMEOUT", "1s"),
        ],
        "broker listening",
    )
}

async fn wait_group(
    client: &ControllerClient,
    what: &str,
    ok: impl Fn(&pb::GroupView) -> bool,
) -> pb::GroupView {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = client
            .status()
            .await
            .ok()
            .and_then(|s| s.groups.into_iter().find_map(|g| g.view));
        if let Some(view) = view.as_ref().filter(|v| ok(v)) {
            return view.clone();
        }
        assert!(Instant::now() < deadline, "{what}: the group is {view:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `mqbench produce` of `count` messages as the administrator; the number acknowledged.
fn produce(namesrv: &str, count: u32, log: &std::path::Path) -> usize {
    let (status, out, err) = run_to_end(
        workspace_binary("mqbench"),
        &[
            "produce",
            "--namesrv",
            namesrv,
            "--topic",
            "secure",
            "--size",
            "200",
            "--count",
            &count.to_string(),
            "--verify-log",
            log.to_str().unwrap(),
        ],
        &admin_env(),
    );
    assert!(status.success(), "mqbench produce: {out}\n{err}");
    std::fs::read_to_string(log).unwrap().lines().count()
}

#[tokio::test]
async fn members_register_replicate_and_fail_over_signed_while_strangers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("admin.secret");
    std::fs::write(&secret_file, format!("{ADMIN_SECRET}\n")).unwrap();
    let secret_path = secret_file.to_str().unwrap();
    let nameserver = ServerProcess::start(
        workspace_binary("nameserver"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--auth",
            "--auth-access-key",
            "admin",
            "--auth-secret-file",
            secret_path,
        ],
    );
    let namesrv = nameserver.addr.to_string();
    let controllers = Controllers::start(
        dir.path(),
        3,
        &[
            "--broker-timeout",
            "2s",
            "--auth",
            "--auth-access-key",
            "admin",
            "--auth-secret-file",
            secret_path,
            "--namesrv",
            &namesrv,
        ],
    );
    let list = controllers.list();
    let admin = mq_auth::Credentials::new("admin", ADMIN_SECRET);
    let client =
        ControllerClient::from_list_with(&list, &mq_auth::Connector::signing(Some(admin))).unwrap();

    // Strangers are refused by the controllers.
    let stranger = ControllerClient::from_list(&list).unwrap();
    let refused = stranger.status().await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let forged = pb::BrokerHeartbeat {
        group: "broker-a".into(),
        broker_id: 9,
        addr: "10.66.6.6:10911".into(),
        ..Default::default()
    };
    let mut raw = pb::controller_client::ControllerClient::connect(format!(
        "http://{}",
        list.split(';').next().unwrap()
    ))
    .await
    .unwrap();
    let refused = raw.register_broker(forged).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    let (listen_1, listen_2) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let first = member(dir.path(), 1, &listen_1, &namesrv, &list);
    let second = member(dir.path(), 2, &listen_2, &namesrv, &list);
    let view = wait_group(&client, "both members in sync", |g| {
        g.sync_state_set == [1, 2]
    })
    .await;
    let (status, _, stderr) = run_to_end(
        workspace_binary("mqadmin"),
        &[
            "--namesrv",
            &namesrv,
            "topic",
            "create",
            "--topic",
            "secure",
            "--cluster",
            "DefaultCluster",
        ],
        &admin_env(),
    );
    assert!(status.success(), "{stderr}");
    // Sync replication: every acknowledgement means the replica, following
    // its master over a signed stream, has the message.
    assert_eq!(produce(&namesrv, 200, &dir.path().join("before.log")), 200);

    // The master dies; the controllers elect the other member.
    let (mut master, survivor) = if view.master_id == 1 {
        (first, second)
    } else {
        (second, first)
    };
    master.kill();
    let elected = wait_group(&client, "the survivor elected", |g| {
        g.master_id != view.master_id && g.master_id != 0
    })
    .await;
    assert_ne!(elected.master_id, view.master_id);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sent = 0;
    while sent < 100 {
        let log = dir.path().join("after.log");
        let _ = std::fs::remove_file(&log);
        let (status, _, _) = run_to_end(
            workspace_binary("mqbench"),
            &[
                "produce",
                "--namesrv",
                &namesrv,
                "--topic",
                "secure",
                "--size",
                "200",
                "--count",
                "100",
                "--verify-log",
                log.to_str().unwrap(),
            ],
            &admin_env(),
        );
        sent = if status.success() {
            std::fs::read_to_string(&log).unwrap().lines().count()
        } else {
            0
        };
        assert!(Instant::now() < deadline, "the new master never took sends");
        if sent < 100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // The operator's view needs credentials too.
    let (status, out, stderr) = run_to_end(
        workspace_binary("mqadmin"),
        &["controller", "status", "--controller", &list],
        &admin_env(),
    );
    assert!(status.success(), "{stderr}");
    assert!(out.contains("broker-a"), "{out}");
    let (status, _, stderr) = run_to_end(
        workspace_binary("mqadmin"),
        &["controller", "status", "--controller", &list],
        &[],
    );
    assert!(
        !status.success() && stderr.contains("not signed"),
        "{stderr}"
    );

    for logs in [survivor.logs(), nameserver.logs()] {
        assert!(
            logs.iter().all(|l| !l.contains(ADMIN_SECRET)),
            "a secret leaked"
        );
    }
}
