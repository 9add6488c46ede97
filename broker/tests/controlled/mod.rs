//! What the controller-mode tests share: three real controllers, a
//! nameserver and broker-a's two members in controller mode, started as
//! real processes; verifiable producing and consuming through `mqbench`.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use mq_controller::client::ControllerClient;
use mq_proto::controller::v1 as pb;
use mq_test_support::controllers::{Controllers, free_port};
use mq_test_support::{ServerProcess, run_to_end, workspace_binary};

/// Fast failure detection for tests: a broker silent for 2 s is dead.
const CONTROLLER_ARGS: &[&str] = &["--broker-timeout", "2s"];

/// Who a member of broker-a is and how it replicates.
struct Member<'a> {
    dir: &'a Path,
    id: u64,
    listen: &'a str,
    replication: &'a str,
    flush: &'a str,
}

/// A member of broker-a in controller mode, with more `MQ_BROKER_*` settings.
fn start_member_with(
    member: &Member<'_>,
    namesrv: &str,
    controllers: &str,
    env: &[(&str, &str)],
) -> ServerProcess {
    let mut settings = vec![
        ("MQ_BROKER_MIN_IN_SYNC_REPLICAS", "0"),
        ("MQ_BROKER_REPLICATION_TIMEOUT", "1s"),
        ("MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE", "1048576"),
        ("MQ_BROKER_STORE__MAX_MESSAGE_SIZE", "65536"),
    ];
    settings.extend_from_slice(env);
    ServerProcess::start_until(
        workspace_binary("broker"),
        &[
            "--store-dir",
            member.dir.to_str().unwrap(),
            "--listen",
            member.listen,
            "--namesrv",
            namesrv,
            "--controller-addr",
            controllers,
            "--broker-id",
            &member.id.to_string(),
            "--register-interval",
            "500ms",
            "--flush",
            member.flush,
            "--replication",
            member.replication,
        ],
        &settings,
        "broker listening",
    )
}

/// Three controllers, a nameserver, and where broker-a's two members keep
/// their stores and listen (the same across restarts).
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub controllers: Controllers,
    pub client: ControllerClient,
    _nameserver: ServerProcess,
    pub namesrv: String,
    /// Member id - 1 -> (store, listen address).
    pub members: Vec<(std::path::PathBuf, String)>,
    /// `--replication` of the members: sync or async.
    replication: &'static str,
    /// `--flush` of the members: sync unless a test says otherwise.
    pub flush: &'static str,
}

impl Cluster {
    /// Members replicating in sync; a broker silent for 2 s is dead.
    pub fn start() -> Cluster {
        Cluster::start_with("sync", CONTROLLER_ARGS)
    }

    pub fn start_with(replication: &'static str, controller_args: &[&str]) -> Cluster {
        Cluster::sized(2, replication, controller_args)
    }

    /// A group of `members` members.
    pub fn sized(members: u64, replication: &'static str, controller_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let controllers = Controllers::start(dir.path(), 3, controller_args);
        let client = ControllerClient::from_list(&controllers.list()).unwrap();
        let nameserver =
            ServerProcess::start(workspace_binary("nameserver"), &["--listen", "127.0.0.1:0"]);
        let namesrv = nameserver.addr.to_string();
        let member = |name: &str| (dir.path().join(name), format!("127.0.0.1:{}", free_port()));
        let members = (0..members)
            .map(|i| member(&char::from(b'a' + u8::try_from(i).unwrap()).to_string()))
            .collect();
        Cluster {
            dir,
            controllers,
            client,
            _nameserver: nameserver,
            namesrv,
            members,
            replication,
            flush: "sync",
        }
    }

    /// Starts member `id` (from 1).
    pub fn member(&self, id: u64) -> ServerProcess {
        self.member_via(id, &self.controllers.list(), &[])
    }

    /// Starts member `id` reaching the controllers at `controllers`, with
    /// more settings.
    pub fn member_via(&self, id: u64, controllers: &str, env: &[(&str, &str)]) -> ServerProcess {
        let (dir, listen) = &self.members[usize::try_from(id - 1).unwrap()];
        let member = Member {
            dir,
            id,
            listen,
            replication: self.replication,
            flush: self.flush,
        };
        start_member_with(&member, &self.namesrv, controllers, env)
    }

    /// Waits until both members are in the SyncStateSet; creates the topic
    /// on `master`.
    pub async fn in_sync_with_topic(&self, master: &ServerProcess) -> pb::GroupView {
        let view = wait_group(&self.client, "both in sync", |g| g.sync_state_set == [1, 2]).await;
        mq_test_support::cluster::create_topic(&master.url(), "failover", 4).await;
        view
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// The group as the controller leader has it.
pub async fn group(client: &ControllerClient) -> Option<pb::GroupView> {
    let status = client.status().await.ok()?;
    status.groups.into_iter().find_map(|g| g.view)
}

/// Waits (bounded) until the group satisfies `ok`; returns it.
pub async fn wait_group(
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

/// Waits (bounded) until `broker` logged a line with `event` and, after
/// it, that it listens (it may have restarted in its process on the way).
pub async fn listening_after(broker: &ServerProcess, event: &str) {
    mq_test_support::cluster::wait_until(
        &format!("the broker listens after {event:?}"),
        Duration::from_secs(20),
        || {
            let logs = broker.logs();
            logs.iter()
                .position(|l| l.contains(event))
                .is_some_and(|at| logs[at..].iter().any(|l| l.contains("broker listening")))
        },
    )
    .await;
}

/// A new master logs this once its epoch began.
pub const MASTER_EPOCH_BEGAN: &str = "began the epoch the controller elected it in";

pub fn mqbench(args: &[&str]) -> String {
    let (status, out, err) = run_to_end(workspace_binary("mqbench"), args, &[]);
    assert!(status.success(), "mqbench {args:?}: {out}\n{err}");
    out
}

pub fn produce(namesrv: &str, count: u32, log: &Path) -> usize {
    let (status, out, err) = produce_unchecked(namesrv, count, log);
    assert!(status.success(), "mqbench produce: {out}\n{err}");
    std::fs::read_to_string(log).unwrap().lines().count()
}

/// `mqbench produce` of `count` messages to the test topic, logging the
/// acknowledged ones to `log`, with more options.
pub fn produce_args(namesrv: &str, count: u32, log: &Path, more: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "produce",
        "--namesrv",
        namesrv,
        "--topic",
        "failover",
        "--size",
        "500",
        "--count",
        &count.to_string(),
        "--verify-log",
        log.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .into();
    args.extend(more.iter().map(|a| (*a).to_owned()));
    args
}

/// Sends `count` messages with `--flush-wait`, logging the acknowledged
/// ones to `log`; whether any failed is for the caller to judge.
pub fn produce_unchecked(
    namesrv: &str,
    count: u32,
    log: &Path,
) -> (std::process::ExitStatus, String, String) {
    let args = produce_args(namesrv, count, log, &["--flush-wait"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_to_end(workspace_binary("mqbench"), &args, &[])
}

/// Consumes the topic from the start and checks every line of `produced`
/// logs against what was read.
pub fn verify_all_consumed(namesrv: &str, dir: &Path, produced: &[&Path], expected: usize) {
    let consumed = dir.join("consumed.log");
    mq_test_support::mqbench::consume_all(namesrv, "failover", "mqbench", &consumed);
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

pub fn signal(process: &ServerProcess, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &process.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal}");
}

pub async fn log_end(broker: &ServerProcess) -> u64 {
    use mq_proto::broker::v1::broker_client::BrokerClient;
    let mut client = BrokerClient::connect(broker.url()).await.unwrap();
    client
        .get_broker_stats(mq_proto::broker::v1::GetBrokerStatsRequest {})
        .await
        .unwrap()
        .into_inner()
        .commitlog_max_offset
}

/// One send straight to `broker` (not through the routes), queue 0.
pub async fn send_direct(broker: &ServerProcess, body: &str) -> Result<i32, tonic::Status> {
    use mq_proto::broker::v1 as bpb;
    let mut client = bpb::broker_client::BrokerClient::connect(broker.url())
        .await
        .unwrap();
    let answer = client
        .send_message(bpb::SendMessageRequest {
            message: Some(bpb::Message {
                topic: "failover".into(),
                body: body.as_bytes().to_vec().into(),
                ..Default::default()
            }),
            queue_id: 0,
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(answer.result.map_or(-1, |r| r.status))
}

/// The `/metrics` text of `broker`'s current run (its last logged metrics
/// address: a broker may have restarted in its process).
pub fn metrics_of(broker: &ServerProcess) -> String {
    let addr = broker
        .logs()
        .iter()
        .rev()
        .find(|l| l.contains("metrics endpoint ready"))
        .and_then(|l| mq_test_support::parse_addr(l))
        .unwrap_or_else(|| panic!("no metrics address logged:\n{}", broker.logs().join("\n")));
    mq_test_support::http_get(addr, "/metrics").1
}
