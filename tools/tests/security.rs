//! Authentication and authorization with the real binaries: a broker (and
//! nameservers) with `--auth`, users and policies made with `mqadmin`,
//! clients signing with the SDKs, and raw calls with forged, stale,
//! replayed and missing signatures.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime};

use mq_auth::signature;
use mq_proto::broker::v1 as broker_pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_proto::nameserver::v1 as ns_pb;
use mq_proto::nameserver::v1::name_server_client::NameServerClient as RawNames;
use mq_test_support::{ServerProcess, run_to_end, workspace_binary};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

const MQADMIN: &str = env!("CARGO_BIN_EXE_mqadmin");
const ADMIN_SECRET: &str = "admin-S3cret-9f2c";
const ALICE_SECRET: &str = "alice-S3cret-71ab";

fn admin_env() -> [(&'static str, &'static str); 2] {
    [("MQ_ACCESS_KEY", "admin"), ("MQ_SECRET_KEY", ADMIN_SECRET)]
}

/// A standalone broker with authentication on; `env` adds settings.
fn secure_broker(dir: &std::path::Path, env: &[(&str, &str)]) -> (ServerProcess, String) {
    let mut all = vec![
        ("MQ_BROKER_AUTH_ENABLED", "true"),
        ("MQ_BROKER_AUTH_ACCESS_KEY", "admin"),
        ("MQ_BROKER_AUTH_SECRET_KEY", ADMIN_SECRET),
    ];
    all.extend_from_slice(env);
    mq_test_support::standalone_broker_with_env(dir, &all)
}

/// Runs mqadmin against `namesrv` as `env`'s user; (success, stdout, stderr).
fn mqadmin(namesrv: &str, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["--namesrv", namesrv];
    all.extend_from_slice(args);
    let (status, stdout, stderr) = run_to_end(MQADMIN, &all, env);
    (status.success(), stdout, stderr)
}

/// Runs mqadmin as the administrator and insists that it succeeds.
fn admin_does(namesrv: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = mqadmin(namesrv, &admin_env(), args);
    assert!(ok, "mqadmin {args:?} failed: {stderr}");
    stdout
}

/// A raw client whose every call carries exactly `headers`.
type Raw = InterceptedService<
    Channel,
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>,
>;

async fn raw(addr: &str, headers: Vec<(&'static str, String)>) -> Raw {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    InterceptedService::new(
        channel,
        Box::new(move |mut request: tonic::Request<()>| {
            for (key, value) in &headers {
                request
                    .metadata_mut()
                    .insert(*key, MetadataValue::try_from(value.as_str()).unwrap());
            }
            Ok(request)
        }),
    )
}

/// The two signature headers of `user` with `secret`, dated `at`.
fn signed_at(user: &str, secret: &str, at: SystemTime) -> Vec<(&'static str, String)> {
    let (authorization, date_time) =
        signature::headers(&mq_auth::Credentials::new(user, secret), at);
    vec![
        (signature::AUTHORIZATION, authorization),
        (signature::DATE_TIME, date_time),
    ]
}

async fn query_route(
    addr: &str,
    headers: Vec<(&'static str, String)>,
) -> Result<(), tonic::Status> {
    RawNames::new(raw(addr, headers).await)
        .query_route(ns_pb::QueryRouteRequest {
            topic: "orders".into(),
        })
        .await
        .map(|_| ())
}

fn assert_refused(result: Result<(), tonic::Status>, code: Code, says: &str) {
    let status = result.expect_err("expected a refusal");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(says),
        "expected {says:?} in {:?}",
        status.message()
    );
}

/// Asserts that no line of `logs` holds any of `secrets`.
fn assert_no_secret(logs: &[String], secrets: &[&str]) {
    for line in logs {
        for secret in secrets {
            assert!(
                !line.contains(secret),
                "a secret leaked into the logs: {line}"
            );
        }
    }
}

#[tokio::test]
async fn unsigned_forged_and_stale_requests_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, namesrv) = secure_broker(dir.path(), &[]);
    admin_does(
        &namesrv,
        &[
            "topic",
            "create",
            "--topic",
            "orders",
            "--cluster",
            "DefaultCluster",
        ],
    );
    // The broker registers its new topic with the nameserver a moment
    // after it answers: wait for the route, signed, before the refusals.
    let deadline = Instant::now() + Duration::from_secs(10);
    while query_route(
        &namesrv,
        signed_at("admin", ADMIN_SECRET, SystemTime::now()),
    )
    .await
    .is_err_and(|s| s.code() == Code::NotFound)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = SystemTime::now();

    assert_eq!(
        query_route(&namesrv, signed_at("admin", ADMIN_SECRET, now))
            .await
            .map_err(|s| s.code()),
        Ok(())
    );
    assert_refused(
        query_route(&namesrv, vec![]).await,
        Code::Unauthenticated,
        "not signed",
    );
    assert_refused(
        query_route(&namesrv, signed_at("admin", "guess", now)).await,
        Code::Unauthenticated,
        "wrong secret key",
    );
    assert_refused(
        query_route(&namesrv, signed_at("mallory", "x", now)).await,
        Code::Unauthenticated,
        "\"mallory\" does not exist",
    );
    for off in [-120i64, 120] {
        let at = if off < 0 {
            now - Duration::from_secs(120)
        } else {
            now + Duration::from_secs(120)
        };
        assert_refused(
            query_route(&namesrv, signed_at("admin", ADMIN_SECRET, at)).await,
            Code::Unauthenticated,
            "away from the server's clock",
        );
    }
    let mut garbled = signed_at("admin", ADMIN_SECRET, now);
    garbled[0].1 = "Basic YWRtaW4=".into();
    assert_refused(
        query_route(&namesrv, garbled).await,
        Code::Unauthenticated,
        "malformed",
    );

    // The broker's own port checks the same way.
    let broker_addr = broker.logged_addr("broker listening").unwrap().to_string();
    let anonymous = BrokerClient::new(raw(&broker_addr, vec![]).await)
        .list_topics(broker_pb::ListTopicsRequest {})
        .await
        .map(|_| ());
    assert_refused(anonymous, Code::Unauthenticated, "not signed");

    // Health needs no credentials (container checks, load balancers).
    let (status, _, stderr) = run_to_end(env!("CARGO_BIN_EXE_mqhealth"), &[&broker_addr], &[]);
    assert!(status.success(), "{stderr}");

    // Every refusal left an audit line, and no secret is in any line.
    let logs = broker.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("request not authenticated") && l.contains("wrong secret key")),
        "no audit line: {logs:#?}"
    );
    assert_no_secret(&logs, &[ADMIN_SECRET, "guess"]);
}

#[tokio::test]
async fn a_captured_header_is_refused_once_the_clock_skew_window_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, namesrv) = secure_broker(dir.path(), &[("MQ_BROKER_AUTH_MAX_CLOCK_SKEW", "2s")]);
    admin_does(
        &namesrv,
        &[
            "topic",
            "create",
            "--topic",
            "orders",
            "--cluster",
            "DefaultCluster",
        ],
    );
    let captured = signed_at("admin", ADMIN_SECRET, SystemTime::now());
    query_route(&namesrv, captured.clone()).await.unwrap();
    // The signature covers whole seconds: 2 s of skew end at most 4 s on.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_refused(
        query_route(&namesrv, captured).await,
        Code::Unauthenticated,
        "away from the server's clock",
    );
}

/// A producer signing as alice.
fn producer_as_alice(namesrv: &str) -> mq_producer::Producer {
    mq_producer::Producer::builder()
        .namesrv(namesrv)
        .credentials("alice", ALICE_SECRET)
        .retries(0)
        .build()
        .unwrap()
}

async fn send(producer: &mq_producer::Producer, topic: &str) -> Result<(), String> {
    producer
        .send(mq_producer::Message::new(topic, "body"))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn policies_allow_prefixes_and_deny_wins_and_no_policy_means_no() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, namesrv) = secure_broker(dir.path(), &[]);
    for topic in ["orders-eu", "orders-secret", "payments", "orders-lan"] {
        admin_does(
            &namesrv,
            &[
                "topic",
                "create",
                "--topic",
                topic,
                "--cluster",
                "DefaultCluster",
            ],
        );
    }
    admin_does(
        &namesrv,
        &[
            "user",
            "create",
            "--user",
            "alice",
            "--secret",
            ALICE_SECRET,
        ],
    );
    let alice = producer_as_alice(&namesrv);

    // No policy: nothing is allowed.
    let refused = send(&alice, "orders-eu").await.unwrap_err();
    assert!(refused.contains("may not"), "{refused}");

    admin_does(
        &namesrv,
        &[
            "acl",
            "create",
            "--user",
            "alice",
            "--resource",
            "Topic:orders-*",
            "--actions",
            "Pub",
        ],
    );
    send(&alice, "orders-eu").await.unwrap();
    let refused = send(&alice, "payments").await.unwrap_err();
    assert!(
        refused.contains("may not") && refused.contains("Topic:payments"),
        "{refused}"
    );

    // A deny on one topic beats the prefix's allow.
    admin_does(
        &namesrv,
        &[
            "acl",
            "create",
            "--user",
            "alice",
            "--resource",
            "Topic:orders-secret",
            "--actions",
            "Pub",
            "--decision",
            "Deny",
        ],
    );
    let refused = send(&alice, "orders-secret").await.unwrap_err();
    assert!(refused.contains("may not"), "{refused}");
    send(&alice, "orders-eu").await.unwrap();

    // A policy for another address range does not apply from loopback.
    admin_does(
        &namesrv,
        &[
            "acl",
            "update",
            "--user",
            "alice",
            "--resource",
            "Topic:orders-*",
            "--actions",
            "Pub",
            "--source-ips",
            "10.0.0.0/8",
        ],
    );
    let refused = send(&alice, "orders-lan").await.unwrap_err();
    assert!(refused.contains("may not"), "{refused}");

    // Publishing is not consuming: a pull as alice is refused.
    let broker_addr = broker.logged_addr("broker listening").unwrap().to_string();
    let pull = BrokerClient::new(
        raw(
            &broker_addr,
            signed_at("alice", ALICE_SECRET, SystemTime::now()),
        )
        .await,
    )
    .pull_message(broker_pb::PullMessageRequest {
        group: "g1".into(),
        topic: "orders-eu".into(),
        queue_id: 0,
        offset: 0,
        max_messages: 1,
        max_bytes: 1 << 20,
        tag_expression: "*".into(),
        suspend_timeout_ms: 0,
        sql_expression: String::new(),
    })
    .await
    .map(|_| ());
    assert_refused(pull, Code::PermissionDenied, "may not Sub");

    // The broker's own topics stay out of reach whatever a wildcard says.
    admin_does(
        &namesrv,
        &[
            "acl",
            "create",
            "--user",
            "alice",
            "--resource",
            "*",
            "--actions",
            "All",
        ],
    );
    let refused = send(&alice, "SCHEDULE_TOPIC_XXXX").await.unwrap_err();
    assert!(
        refused.contains("may not") || refused.contains("reserved"),
        "{refused}"
    );

    let logs = broker.logs();
    assert!(
        logs.iter().any(
            |l| l.contains("request denied") && l.contains("user=\"alice\"")
                || l.contains("request denied") && l.contains("alice")
        ),
        "no audit line for the denials"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("auth change") && l.contains("create user alice"))
    );
    assert_no_secret(&logs, &[ADMIN_SECRET, ALICE_SECRET]);
}

#[tokio::test]
async fn mqadmin_manages_users_and_policies_and_names_every_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, namesrv) = secure_broker(dir.path(), &[]);
    let out = admin_does(
        &namesrv,
        &[
            "user",
            "create",
            "--user",
            "alice",
            "--secret",
            ALICE_SECRET,
        ],
    );
    assert!(out.contains("created user alice"), "{out}");
    admin_does(
        &namesrv,
        &[
            "user", "create", "--user", "root2", "--secret", "r00t-pw", "--type", "super",
        ],
    );
    let listed = admin_does(&namesrv, &["user", "list"]);
    assert!(
        listed.contains("alice") && listed.contains("normal"),
        "{listed}"
    );
    assert!(
        listed.contains("root2") && listed.contains("super"),
        "{listed}"
    );
    assert!(
        !listed.contains(ALICE_SECRET),
        "a listing shows no secret: {listed}"
    );
    admin_does(
        &namesrv,
        &[
            "acl",
            "create",
            "--user",
            "alice",
            "--resource",
            "Group:g-*",
            "--resource",
            "Topic:t",
            "--actions",
            "Sub,Get",
        ],
    );
    let acls = admin_does(&namesrv, &["--json", "acl", "list", "--user", "alice"]);
    let acls: serde_json::Value = serde_json::from_str(acls.trim()).unwrap();
    let policies = acls["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 2, "{acls}");
    assert!(
        policies
            .iter()
            .any(|p| p["resource"] == "Group:g-*" && p["actions"] == "Sub,Get"),
        "{acls}"
    );

    // Bad input: one line, non-zero exit, naming what is wrong.
    for (args, says) in [
        (
            vec!["user", "create", "--user", "alice", "--secret", "x"],
            "already exists",
        ),
        (
            vec!["user", "create", "--user", "bad name", "--secret", "x"],
            "illegal character",
        ),
        (
            vec!["user", "create", "--user", "bob"],
            "--secret or --secret-file is required",
        ),
        (
            vec!["user", "update", "--user", "ghost", "--secret", "x"],
            "\"ghost\" does not exist",
        ),
        (
            vec!["user", "delete", "--user", "admin"],
            "configured administrator",
        ),
        (
            vec![
                "acl",
                "create",
                "--user",
                "alice",
                "--resource",
                "Queue:x",
                "--actions",
                "Pub",
            ],
            "not a resource",
        ),
        (
            vec![
                "acl",
                "create",
                "--user",
                "alice",
                "--resource",
                "Topic:t2",
                "--actions",
                "Publish",
            ],
            "\"Publish\" is not an action",
        ),
        (
            vec![
                "acl",
                "create",
                "--user",
                "alice",
                "--resource",
                "Topic:t2",
                "--actions",
                "Pub",
                "--source-ips",
                "10.0.0.0/33",
            ],
            "10.0.0.0/33",
        ),
        (
            vec![
                "acl",
                "create",
                "--user",
                "alice",
                "--resource",
                "Topic:t",
                "--actions",
                "Pub",
            ],
            "already has a policy on Topic:t",
        ),
        (
            vec![
                "acl",
                "create",
                "--user",
                "ghost",
                "--resource",
                "Topic:t",
                "--actions",
                "Pub",
            ],
            "\"ghost\" does not exist",
        ),
        (
            vec![
                "acl",
                "delete",
                "--user",
                "alice",
                "--resource",
                "Topic:nope",
            ],
            "no policy on Topic:nope",
        ),
    ] {
        let (ok, _, stderr) = mqadmin(&namesrv, &admin_env(), &args);
        assert!(!ok, "{args:?} should fail");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?}: expected {says:?} in {stderr}"
        );
    }

    // A normal user cannot manage users; an anonymous one is not let in.
    let (ok, _, stderr) = mqadmin(
        &namesrv,
        &[("MQ_ACCESS_KEY", "alice"), ("MQ_SECRET_KEY", ALICE_SECRET)],
        &["user", "list"],
    );
    assert!(!ok && stderr.contains("not a super user"), "{stderr}");
    let (ok, _, stderr) = mqadmin(&namesrv, &[], &["topic", "list"]);
    assert!(!ok && stderr.contains("not signed"), "{stderr}");
    let (ok, _, stderr) = mqadmin(&namesrv, &[("MQ_ACCESS_KEY", "alice")], &["topic", "list"]);
    assert!(!ok && stderr.contains("needs a secret key"), "{stderr}");

    // Update, then delete: the policies go with the user.
    admin_does(
        &namesrv,
        &["user", "update", "--user", "alice", "--type", "super"],
    );
    let (ok, _, stderr) = mqadmin(
        &namesrv,
        &[("MQ_ACCESS_KEY", "alice"), ("MQ_SECRET_KEY", ALICE_SECRET)],
        &["user", "list"],
    );
    assert!(ok, "alice is a super user now: {stderr}");
    admin_does(&namesrv, &["user", "delete", "--user", "alice"]);
    let acls = admin_does(&namesrv, &["acl", "list"]);
    assert!(!acls.contains("alice"), "{acls}");

    // The copy is kept in the store directory, readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("auth.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_no_secret(&broker.logs(), &[ADMIN_SECRET, ALICE_SECRET, "r00t-pw"]);
}

/// A nameserver with authentication on, keeping its copy in `data_dir`.
fn secure_nameserver(data_dir: Option<&std::path::Path>, listen: &str) -> ServerProcess {
    let mut args = vec!["--listen", listen, "--auth", "--auth-access-key", "admin"];
    if let Some(dir) = data_dir {
        args.extend(["--data-dir", dir.to_str().unwrap()]);
    }
    ServerProcess::start_with_env(
        workspace_binary("nameserver"),
        &args,
        &[("MQ_NAMESRV_AUTH_SECRET_KEY", ADMIN_SECRET)],
    )
}

/// A broker registering with `namesrv`, syncing the users every 300 ms.
fn secure_member(dir: &std::path::Path, namesrv: &str) -> ServerProcess {
    ServerProcess::start_until(
        workspace_binary("broker"),
        &[
            "--namesrv",
            namesrv,
            "--store-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--auth",
            "--auth-access-key",
            "admin",
            "--auth-sync-interval",
            "300ms",
        ],
        &[("MQ_BROKER_AUTH_SECRET_KEY", ADMIN_SECRET)],
        "broker listening",
    )
}

/// A nameserver (keeping its copy in a directory) and a broker registered
/// with it, both with authentication on; the topic `orders`; the user
/// alice with `actions` on `resource`.
struct SecuredPair {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    nameserver: ServerProcess,
    namesrv: String,
    broker: ServerProcess,
}

fn secured_pair(resource: &str, actions: &str) -> SecuredPair {
    let (ns_dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let nameserver = secure_nameserver(Some(ns_dir.path()), "127.0.0.1:0");
    let namesrv = nameserver.addr.to_string();
    let broker = secure_member(store.path(), &namesrv);
    admin_does(
        &namesrv,
        &[
            "topic",
            "create",
            "--topic",
            "orders",
            "--cluster",
            "DefaultCluster",
        ],
    );
    admin_does(
        &namesrv,
        &[
            "user",
            "create",
            "--user",
            "alice",
            "--secret",
            ALICE_SECRET,
        ],
    );
    admin_does(
        &namesrv,
        &[
            "acl",
            "create",
            "--user",
            "alice",
            "--resource",
            resource,
            "--actions",
            actions,
        ],
    );
    SecuredPair {
        _dirs: (ns_dir, store),
        nameserver,
        namesrv,
        broker,
    }
}

/// Sends as alice until `expect(result)` holds, for at most `within`.
async fn until_alice(
    namesrv: &str,
    within: Duration,
    expect: impl Fn(&Result<(), String>) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let alice = producer_as_alice(namesrv);
        let result = send(&alice, "orders").await;
        if expect(&result) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still {result:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_change_on_the_nameservers_reaches_the_broker_and_a_deleted_user_is_refused_within_the_sync_interval()
 {
    let SecuredPair {
        _dirs,
        nameserver,
        namesrv,
        broker,
    } = secured_pair("Topic:orders", "Pub");

    // The broker learns alice from the nameserver within a sync or two.
    let learned = until_alice(&namesrv, Duration::from_secs(5), Result::is_ok).await;
    assert!(learned < Duration::from_secs(2), "took {learned:?}");

    // Deleted while its producer is connected: refused from then on.
    let alice = producer_as_alice(&namesrv);
    send(&alice, "orders").await.unwrap();
    admin_does(&namesrv, &["user", "delete", "--user", "alice"]);
    let started = Instant::now();
    loop {
        match send(&alice, "orders").await {
            Ok(()) => assert!(
                started.elapsed() < Duration::from_secs(2),
                "alice still sends"
            ),
            Err(refused) => {
                assert!(refused.contains("\"alice\" does not exist"), "{refused}");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        broker
            .logs()
            .iter()
            .any(|l| l.contains("adopted a newer copy")),
        "the broker never synced"
    );
    assert_no_secret(&broker.logs(), &[ADMIN_SECRET, ALICE_SECRET]);
    assert_no_secret(&nameserver.logs(), &[ADMIN_SECRET, ALICE_SECRET]);
}

#[tokio::test]
async fn a_nameserver_that_lost_its_copy_gets_it_back_from_the_brokers() {
    let store = tempfile::tempdir().unwrap();
    let port = mq_test_support::controllers::free_port();
    let listen = format!("127.0.0.1:{port}");
    // No data directory: the nameserver keeps the users in memory only.
    let mut nameserver = secure_nameserver(None, &listen);
    let broker = secure_member(store.path(), &listen);
    admin_does(
        &listen,
        &[
            "user",
            "create",
            "--user",
            "alice",
            "--secret",
            ALICE_SECRET,
        ],
    );
    // Wait until the broker holds the copy.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !broker
        .logs()
        .iter()
        .any(|l| l.contains("adopted a newer copy"))
    {
        assert!(Instant::now() < deadline, "the broker never synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nameserver.kill();
    let _nameserver = secure_nameserver(None, &listen);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (ok, stdout, _) = mqadmin(&listen, &admin_env(), &["user", "list"]);
        if ok && stdout.contains("alice") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted nameserver never got alice back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_forged_broker_registration_is_refused_and_the_real_route_stands() {
    let SecuredPair {
        _dirs,
        nameserver,
        namesrv,
        broker,
    } = secured_pair("*", "Pub,Sub,Get");
    let real = broker.logged_addr("broker listening").unwrap().to_string();

    let forged = ns_pb::RegisterBrokerRequest {
        cluster_name: "DefaultCluster".into(),
        broker_name: "broker-a".into(),
        broker_id: 0,
        broker_addr: "10.66.6.6:10911".into(),
        topics: vec![],
        data_version: Some(ns_pb::DataVersion {
            timestamp_ms: u64::MAX / 2,
            counter: 1,
        }),
        master_epoch: u64::MAX / 2,
        proxy_addr: String::new(),
    };
    let anonymous = RawNames::new(raw(&namesrv, vec![]).await)
        .register_broker(forged.clone())
        .await
        .map(|_| ());
    assert_refused(anonymous, Code::Unauthenticated, "not signed");
    let as_alice = RawNames::new(
        raw(
            &namesrv,
            signed_at("alice", ALICE_SECRET, SystemTime::now()),
        )
        .await,
    )
    .register_broker(forged)
    .await
    .map(|_| ());
    assert_refused(as_alice, Code::PermissionDenied, "may not Admin on Cluster");
    let unregister = RawNames::new(raw(&namesrv, vec![]).await)
        .unregister_broker(ns_pb::UnregisterBrokerRequest {
            cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_id: 0,
            broker_addr: real.clone(),
        })
        .await
        .map(|_| ());
    assert_refused(unregister, Code::Unauthenticated, "not signed");

    let route = admin_does(&namesrv, &["topic", "route", "--topic", "orders"]);
    assert!(
        route.contains(&real) && !route.contains("10.66.6.6"),
        "{route}"
    );
    let logs = nameserver.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("request denied") && l.contains("RegisterBroker")),
        "the refused registration was not audited: {logs:#?}"
    );
}

#[test]
fn secrets_never_show_in_help_or_metrics() {
    const SECRET: &str = "do-not-print-7c41";
    let env = [
        ("MQ_SECRET_KEY", SECRET),
        ("MQ_BROKER_AUTH_SECRET_KEY", SECRET),
        ("MQ_NAMESRV_AUTH_SECRET_KEY", SECRET),
        ("MQ_CONTROLLER_AUTH_SECRET_KEY", SECRET),
    ];
    for (binary, args) in [
        (workspace_binary("broker"), vec!["--help"]),
        (workspace_binary("nameserver"), vec!["--help"]),
        (workspace_binary("controller"), vec!["--help"]),
        (MQADMIN.into(), vec!["--help"]),
        (MQADMIN.into(), vec!["user", "create", "--help"]),
        (
            env!("CARGO_BIN_EXE_mqbench").into(),
            vec!["produce", "--help"],
        ),
        (env!("CARGO_BIN_EXE_mqhealth").into(), vec!["--help"]),
    ] {
        let (status, out, err) = run_to_end(&binary, &args, &env);
        assert!(status.success(), "{binary:?} {args:?}: {err}");
        assert!(
            !out.contains(SECRET) && !err.contains(SECRET),
            "{binary:?} {args:?} printed the secret:\n{out}"
        );
    }

    // A secured broker's metrics hold no secret either.
    let dir = tempfile::tempdir().unwrap();
    let (broker, namesrv) = secure_broker(dir.path(), &[]);
    admin_does(
        &namesrv,
        &[
            "user",
            "create",
            "--user",
            "alice",
            "--secret",
            ALICE_SECRET,
        ],
    );
    let metrics = broker.logged_addr("metrics endpoint ready").unwrap();
    let (_, body) = mq_test_support::http_get(metrics, "/metrics");
    assert!(body.contains("mq_"), "{body}");
    assert!(!body.contains(ADMIN_SECRET) && !body.contains(ALICE_SECRET));
}
