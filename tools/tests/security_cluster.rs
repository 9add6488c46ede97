//! A secured cluster in controller mode, as real processes: three
//! controllers, a nameserver and a broker group of two members, all with
//! authentication and mutual TLS on (certificates made at run time). The
//! members register, replicate (the replica's stream to its master is
//! signed and encrypted) and fail over with the administrator's
//! credentials and their own certificates; anonymous callers are refused
//! at every door.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use mq_controller::client::ControllerClient;
use mq_proto::controller::v1 as pb;
use mq_test_support::certs::Pki;
use mq_test_support::controllers::{Controllers, free_port};
use mq_test_support::{ServerProcess, run_to_end, workspace_binary};

const ADMIN_SECRET: &str = "admin-S3cret-cluster-4d1e";

/// The tools' settings: the administrator, over mutual TLS.
fn admin_env(pki: &Pki) -> Vec<(&'static str, String)> {
    vec![
        ("MQ_ACCESS_KEY", "admin".into()),
        ("MQ_SECRET_KEY", ADMIN_SECRET.into()),
        ("MQ_TLS_CA_FILE", pki.ca.display().to_string()),
        ("MQ_TLS_CERT_FILE", pki.client_cert.display().to_string()),
        ("MQ_TLS_KEY_FILE", pki.client_key.display().to_string()),
    ]
}

fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The flags every server takes: authentication with the administrator
/// in `secret_file`, its certificate, clients (and peers) must present
/// one, `pki`'s CA trusted.
fn secure_args(pki: &Pki, secret_file: &std::path::Path) -> Vec<String> {
    let mut args: Vec<String> = ["--auth", "--auth-access-key", "admin"]
        .map(str::to_owned)
        .into();
    for (flag, path) in [
        ("--auth-secret-file", secret_file),
        ("--tls-cert-file", pki.server_cert.as_path()),
        ("--tls-key-file", pki.server_key.as_path()),
        ("--tls-client-ca-file", pki.ca.as_path()),
        ("--tls-ca-file", pki.ca.as_path()),
    ] {
        args.push(flag.to_owned());
        args.push(path.display().to_string());
    }
    args
}

/// Member `id` of broker-a, in controller mode, with `secure` flags.
fn member(
    dir: &std::path::Path,
    secure: &[String],
    id: u64,
    listen: &str,
    namesrv: &str,
    controllers: &str,
) -> ServerProcess {
    let store = dir.join(format!("member-{id}"));
    let id = id.to_string();
    let mut args = vec![
        "--store-dir",
        store.to_str().unwrap(),
        "--listen",
        listen,
        "--namesrv",
        namesrv,
        "--controller-addr",
        controllers,
        "--broker-id",
        &id,
        "--register-interval",
        "500ms",
        "--replication",
        "sync",
    ];
    args.extend(secure.iter().map(String::as_str));
    ServerProcess::start_until(
        workspace_binary("broker"),
        &args,
        &[
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

/// `mqbench produce` of `count` messages as the administrator; the number
/// acknowledged (0 when the run failed).
fn produce(namesrv: &str, pki: &Pki, count: u32, log: &std::path::Path) -> usize {
    let _ = std::fs::remove_file(log);
    let (status, _, _) = run_to_end(
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
        &refs(&admin_env(pki)),
    );
    if !status.success() {
        return 0;
    }
    std::fs::read_to_string(log).unwrap().lines().count()
}

#[tokio::test]
async fn members_register_replicate_and_fail_over_over_mutual_tls_while_strangers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let secret_file = dir.path().join("admin.secret");
    std::fs::write(&secret_file, format!("{ADMIN_SECRET}\n")).unwrap();
    let secure = secure_args(&pki, &secret_file);
    let secure_refs: Vec<&str> = secure.iter().map(String::as_str).collect();

    let mut nameserver_args = vec!["--listen", "127.0.0.1:0"];
    nameserver_args.extend(&secure_refs);
    let nameserver = ServerProcess::start(workspace_binary("nameserver"), &nameserver_args);
    let namesrv = nameserver.addr.to_string();
    let mut controller_args = vec!["--broker-timeout", "2s", "--namesrv", &namesrv];
    controller_args.extend(&secure_refs);
    let controllers = Controllers::start(dir.path(), 3, &controller_args);
    let list = controllers.list();
    let tls = mq_auth::ClientTls::from_files(
        Some(&pki.ca),
        Some(&pki.client_cert),
        Some(&pki.client_key),
        None,
    )
    .unwrap();
    let admin = mq_auth::Connector {
        credentials: Some(mq_auth::Credentials::new("admin", ADMIN_SECRET)),
        tls: Some(tls.clone()),
    };
    let client = ControllerClient::from_list_with(&list, &admin).unwrap();

    // Strangers are refused by the controllers: without credentials...
    let anonymous = mq_auth::Connector {
        credentials: None,
        tls: Some(tls),
    };
    let refused = ControllerClient::from_list_with(&list, &anonymous)
        .unwrap()
        .status()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    // ...and without a client certificate.
    let no_certificate = mq_auth::Connector {
        credentials: admin.credentials.clone(),
        tls: Some(mq_auth::ClientTls::from_files(Some(&pki.ca), None, None, None).unwrap()),
    };
    let refused = ControllerClient::from_list_with(&list, &no_certificate)
        .unwrap()
        .status()
        .await;
    assert!(refused.is_err(), "no client certificate must be refused");

    let (listen_1, listen_2) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let first = member(dir.path(), &secure, 1, &listen_1, &namesrv, &list);
    let second = member(dir.path(), &secure, 2, &listen_2, &namesrv, &list);
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
        &refs(&admin_env(&pki)),
    );
    assert!(status.success(), "{stderr}");
    // Sync replication: every acknowledgement means the replica, following
    // its master over a signed TLS stream, has the message.
    assert_eq!(
        produce(&namesrv, &pki, 200, &dir.path().join("before.log")),
        200
    );

    // The master dies; the controllers elect the other member.
    let (mut master, survivor) = if view.master_id == 1 {
        (first, second)
    } else {
        (second, first)
    };
    master.kill();
    wait_group(&client, "the survivor elected", |g| {
        g.master_id != view.master_id && g.master_id != 0
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while produce(&namesrv, &pki, 100, &dir.path().join("after.log")) < 100 {
        assert!(Instant::now() < deadline, "the new master never took sends");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The operator's view needs credentials too.
    let (status, out, stderr) = run_to_end(
        workspace_binary("mqadmin"),
        &["controller", "status", "--controller", &list],
        &refs(&admin_env(&pki)),
    );
    assert!(status.success(), "{stderr}");
    assert!(out.contains("broker-a"), "{out}");
    let mut unsigned = admin_env(&pki);
    unsigned.retain(|(k, _)| !k.starts_with("MQ_ACCESS") && !k.starts_with("MQ_SECRET"));
    let (status, _, stderr) = run_to_end(
        workspace_binary("mqadmin"),
        &["controller", "status", "--controller", &list],
        &refs(&unsigned),
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
