//! Controller mode with the real binaries: three controllers, a broker
//! group of two members replicating in sync. A master killed with SIGKILL
//! is replaced by its in-sync replica within seconds, clients follow, and
//! the old master comes back as a replica; nothing acknowledged is lost,
//! and a tail that was never acknowledged is cut from the old master
//! rather than served (apache/rocketmq#3015).

#![allow(clippy::unwrap_used)]

mod controlled;

use std::time::{Duration, Instant};

use controlled::*;
use mq_controller::client::ControllerClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_replaced_by_its_in_sync_replica_and_comes_back_as_one_losing_nothing() {
    let c = Cluster::start();
    let (client, namesrv) = (&c.client, &c.namesrv);
    let mut a = c.member(1);
    let b = c.member(2);
    let view = c.in_sync_with_topic(&a).await;
    assert_eq!(
        (view.master_id, view.epoch),
        (1, 1),
        "the first member leads"
    );

    let before = c.path("before.log");
    assert_eq!(produce(namesrv, 1000, &before), 1000);

    // The master dies; its in-sync replica takes over within seconds.
    let killed = Instant::now();
    a.kill();
    let view = wait_group(client, "2 elected", |g| g.master_id == 2).await;
    assert_eq!(view.epoch, 2);
    assert_eq!(view.sync_state_set, [2], "the new master alone is in sync");
    b.wait_for_log("elected master in epoch 2", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", b.logs().join("\n")));
    listening_after(&b, MASTER_EPOCH_BEGAN).await;
    let metrics = metrics_of(&b);
    for line in [
        "mq_broker_group_epoch 2",
        "mq_broker_controller_reachable 1",
        "mq_broker_sync_state_set_size 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in:\n{metrics}"
        );
    }
    // Producers follow the route to the new master by themselves.
    let after = c.path("after.log");
    assert_eq!(produce(namesrv, 500, &after), 500);
    eprintln!(
        "failover: first send acknowledged after {:?}",
        killed.elapsed()
    );

    // The old master returns as a replica of the new one and catches up.
    let a = c.member(1);
    a.wait_for_log(
        "joined the group through the controller",
        Duration::from_secs(10),
    )
    .filter(|line| line.contains("master=2"))
    .unwrap_or_else(|| panic!("{}", a.logs().join("\n")));
    wait_group(client, "1 back in sync", |g| g.sync_state_set == [1, 2]).await;
    verify_all_consumed(namesrv, c.dir.path(), &[&before, &after], 1500);
}

/// Idempotent sends across a failover: the master stores and replicates
/// sends but never answers them (its fail point holds the answers back),
/// then dies. The producer retries them, numbered as before, on the member
/// elected in its place, which knows them from what it replicated and
/// answers them without storing them again: read back from the first
/// offset, every acknowledged message is there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_a_killed_master_stored_but_never_answered_are_stored_once_by_the_new_master() {
    let c = Cluster::start();
    let mut a = c.member_via(
        1,
        &c.controllers.list(),
        &[("FAILPOINTS", "send::before_answer=200*off->sleep(60000)")],
    );
    let b = c.member(2);
    c.in_sync_with_topic(&a).await;
    let produced = c.path("produced.log");
    let args = produce_args(
        &c.namesrv,
        600,
        &produced,
        &[
            "--producers",
            "4",
            "--send-timeout-ms",
            "30000",
            "--flush-wait",
        ],
    );
    let producer = std::process::Command::new(mq_test_support::workspace_binary("mqbench"))
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The verify log is buffered: 100 lines on disk are well into the 200
    // answered; a second later the next sends are stored, replicated (sync
    // replication answers only then) and held.
    let lines =
        |path: &std::path::Path| std::fs::read_to_string(path).map_or(0, |s| s.lines().count());
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(&produced) < 100 {
        assert!(
            Instant::now() < deadline,
            "the first sends were not answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.kill();
    wait_group(&c.client, "2 elected", |g| g.master_id == 2).await;

    let output = producer.wait_with_output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{out}\n{err}");
    assert_eq!(lines(&produced), 600, "{out}");
    let dropped = metrics_of(&b)
        .lines()
        .find(|l| l.starts_with("mq_broker_duplicate_sends_dropped_total"))
        .unwrap_or_default()
        .to_owned();
    assert_ne!(
        dropped, "mq_broker_duplicate_sends_dropped_total 0",
        "no retry met a send the old master had replicated: the test proves nothing"
    );
    let consumed = c.path("consumed.log");
    mq_test_support::mqbench::consume_all(&c.namesrv, "failover", "after", &consumed);
    let (status, out) = mq_test_support::mqbench::verify(&produced, &consumed);
    assert!(status.success(), "{out}");
    assert!(out.contains("600 passed, 0 failed"), "{out}");
    assert!(
        out.contains("duplicates: 0, received but never acknowledged: 0"),
        "{out}"
    );
}

/// apache/rocketmq#3015: a replica promoted while the old master held data
/// it never replicated. That tail was never acknowledged (sync replication
/// waits for the replica), the new master does not have it, and the old
/// master, back as a replica, cuts it durably instead of serving it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreplicated_tail_of_a_dead_master_is_cut_when_it_returns_never_served() {
    let c = Cluster::start();
    let (client, namesrv) = (&c.client, &c.namesrv);
    let mut a = c.member(1);
    let mut b = c.member(2);
    c.in_sync_with_topic(&a).await;
    let acked = c.path("acked.log");
    assert_eq!(produce(namesrv, 200, &acked), 200);

    // The replica freezes; sends reach the master's log but are never
    // acknowledged (the replica in the SyncStateSet does not confirm).
    signal(&b, "STOP");
    let replicated_end = log_end(&a).await;
    let unacked = c.path("unacked.log");
    let (_, out, _) = produce_unchecked(namesrv, 5, &unacked);
    let unacked_count = std::fs::read_to_string(&unacked)
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(unacked_count, 0, "nothing acknowledged: {out}");
    let master_end = log_end(&a).await;
    assert!(
        master_end > replicated_end,
        "the tail is in the master's log"
    );

    // The master dies with that tail. The frozen replica may hold the
    // tail's chunks in its socket buffer: it dies before reading them,
    // comes back without them and is elected.
    a.kill();
    b.kill();
    let b = c.member(2);
    let view = wait_group(client, "2 elected", |g| g.master_id == 2).await;
    assert!(
        view.epoch_start_offset < master_end,
        "the new epoch starts at {} , before the old master's end {master_end}",
        view.epoch_start_offset
    );
    listening_after(&b, MASTER_EPOCH_BEGAN).await;
    assert!(log_end(&b).await < master_end);

    // The old master comes back: it cuts its tail durably and follows.
    let a = c.member(1);
    a.wait_for_log(
        "diverged from the master's; cut recorded",
        Duration::from_secs(20),
    )
    .unwrap_or_else(|| panic!("{}", a.logs().join("\n")));
    listening_after(&a, "CommitLog cut back as recorded").await;
    wait_group(client, "1 back in sync", |g| g.sync_state_set == [1, 2]).await;
    let more = c.path("more.log");
    assert_eq!(produce(namesrv, 100, &more), 100);
    verify_all_consumed(namesrv, c.dir.path(), &[&acked, &more], 300);
    let consumed = std::fs::read_to_string(c.path("consumed.log")).unwrap();
    assert_eq!(
        consumed.lines().count(),
        300,
        "only acknowledged messages are served; the cut tail never is"
    );
    assert_eq!(log_end(&a).await, log_end(&b).await, "one log again");
}

/// A master cut off from the controllers and its replica while clients
/// still reach it: it acknowledges nothing from then on (its replica does
/// not confirm and it cannot drop it from the SyncStateSet), the replica
/// is elected and acknowledges in the next epoch, and once the partition
/// heals the old master becomes a replica, cuts what it wrote alone and
/// catches up. Nothing acknowledged is lost, nothing unacknowledged served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_master_acknowledges_nothing_once_cut_off_and_rejoins_as_a_replica() {
    use mq_proto::broker::v1::SendStatus;
    use mq_test_support::proxy::Proxy;
    let c = Cluster::start();
    let (client, namesrv, controllers) = (&c.client, &c.namesrv, &c.controllers);
    // Everything between A and the controllers, and B's following of A,
    // goes through proxies the test silences (every packet dropped: open
    // connections hang rather than close).
    let mut to_controllers = Vec::new();
    for addr in controllers.list().split(';') {
        to_controllers.push(Proxy::start(addr.parse().unwrap()).await);
    }
    let a_controllers = to_controllers
        .iter()
        .map(|p| p.addr.to_string())
        .collect::<Vec<_>>()
        .join(";");
    let to_a = Proxy::start(c.members[0].1.parse().unwrap()).await;
    let a = c.member_via(
        1,
        &a_controllers,
        &[("MQ_BROKER_REPLICATION_ADDR", &to_a.addr.to_string())],
    );
    let b = c.member(2);
    c.in_sync_with_topic(&a).await;
    let acked = c.path("acked.log");
    assert_eq!(produce(namesrv, 300, &acked), 300);
    assert_eq!(
        send_direct(&a, "before").await.unwrap(),
        SendStatus::SendOk as i32
    );

    // The partition: A reaches neither the controllers nor B.
    for proxy in to_controllers.iter().chain([&to_a]) {
        proxy.silence();
    }
    let ok = SendStatus::SendOk as i32;
    for i in 0..3 {
        let status = send_direct(&a, &format!("cut off {i}")).await;
        assert!(status.as_ref().is_ok_and(|s| *s != ok), "{status:?}");
    }
    let view = wait_group(client, "2 elected", |g| g.master_id == 2).await;
    // B's calls to A hang rather than fail: its restart into the master
    // role must not wait for them, or the controller, hearing nothing
    // from it, elects again.
    assert_eq!(view.epoch, 2, "{view:?}");
    listening_after(&b, MASTER_EPOCH_BEGAN).await;
    a.wait_for_log("cannot reach the controller leader", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{}", a.logs().join("\n")));
    // Two masters now, each in its own epoch: only the new one acknowledges.
    let more = c.path("more.log");
    assert_eq!(produce(namesrv, 200, &more), 200);
    for i in 0..3 {
        let status = send_direct(&a, &format!("deposed {i}")).await;
        assert!(status.as_ref().is_ok_and(|s| *s != ok), "{status:?}");
    }

    // Healed: A hears of epoch {view.epoch}, cuts its lone tail and follows.
    for proxy in to_controllers.iter().chain([&to_a]) {
        proxy.heal();
    }
    listening_after(&a, "CommitLog cut back as recorded").await;
    wait_group(client, "1 back in sync", |g| {
        g.sync_state_set == [1, 2] && g.epoch == view.epoch
    })
    .await;
    verify_all_consumed(namesrv, c.dir.path(), &[&acked, &more], 500);
    let consumed = std::fs::read_to_string(c.path("consumed.log")).unwrap();
    // 500 through mqbench, plus the one direct send acknowledged before the cut.
    assert_eq!(
        consumed.lines().count(),
        501,
        "nothing unacknowledged is served"
    );
    assert_eq!(log_end(&a).await, log_end(&b).await, "one log again");
}

/// The id of the controller the Raft leader is, as the group reports it.
async fn controller_leader(client: &ControllerClient) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(status) = client.leader_status().await {
            return status.leader_id;
        }
        assert!(Instant::now() < deadline, "no controller leads");
    }
}

/// Two of three controllers down: no election is possible, the masters
/// keep serving (and say they cannot reach the controller). Back up, a
/// master and the controller leader die together (apache/rocketmq#7689):
/// the next controller leader waits one broker timeout before judging
/// anyone, then elects the in-sync replica; nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masters_outlive_a_lost_controller_majority_and_fail_over_when_master_and_leader_die_together()
 {
    let mut c = Cluster::start();
    let client = c.client.clone();
    let namesrv = c.namesrv.clone();
    let mut a = c.member(1);
    let b = c.member(2);
    c.in_sync_with_topic(&a).await;
    let first = c.path("first.log");
    assert_eq!(produce(&namesrv, 200, &first), 200);

    // Two of three controllers die: no quorum, no election; writes go on.
    let leader = controller_leader(&client).await;
    let other = (1..=3).find(|id| *id != leader).unwrap();
    c.controllers.kill(leader);
    c.controllers.kill(other);
    a.wait_for_log(
        "cannot reach the controller leader",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|| panic!("{}", a.logs().join("\n")));
    let without = c.path("without.log");
    assert_eq!(
        produce(&namesrv, 200, &without),
        200,
        "the master serves without the controllers"
    );
    c.controllers.start_one(leader);
    c.controllers.start_one(other);
    a.wait_for_log("controller reachable again", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", a.logs().join("\n")));
    let view = wait_group(&client, "still in sync", |g| g.sync_state_set == [1, 2]).await;
    assert_eq!((view.master_id, view.epoch), (1, 1), "nobody was elected");

    // The master and the controller leader die together.
    let leader = controller_leader(&client).await;
    c.controllers.kill(leader);
    a.kill();
    let view = wait_group(&client, "2 elected", |g| g.master_id == 2).await;
    assert_eq!(view.epoch, 2);
    listening_after(&b, MASTER_EPOCH_BEGAN).await;
    let after = c.path("after.log");
    assert_eq!(produce(&namesrv, 200, &after), 200);

    c.controllers.start_one(leader);
    let a = c.member(1);
    wait_group(&client, "1 back in sync", |g| g.sync_state_set == [1, 2]).await;
    verify_all_consumed(&namesrv, c.dir.path(), &[&first, &without, &after], 600);
    assert_eq!(log_end(&a).await, log_end(&b).await, "one log again");
}
