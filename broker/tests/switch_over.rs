//! An operator's switch-over (`mqadmin broker elect-master`) with the real
//! binaries: drain, then switch. The master seals its log, the member
//! catches up with all of it, and only then is it elected; so even with
//! async replication, where the master acknowledges before its replica
//! has a message, a switch-over under load loses nothing. A member that
//! cannot catch up in time calls the switch-over off and the master takes
//! sends again.

#![allow(clippy::unwrap_used)]

mod controlled;

use std::time::Duration;

use controlled::*;
use mq_test_support::{run_to_end, workspace_binary};

/// Members are judged alive for 8 s: a frozen member stays a candidate
/// long enough for the called-off switch-overs below.
const CONTROLLER_ARGS: &[&str] = &["--broker-timeout", "8s"];

fn elect_master(controllers: &str, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut all = vec![
        "--namesrv",
        "127.0.0.1:1",
        "broker",
        "elect-master",
        "--controller",
        controllers,
        "--broker-name",
        "broker-a",
        "--broker-id",
        "2",
    ];
    all.extend_from_slice(args);
    run_to_end(workspace_binary("mqadmin"), &all, &[])
}

fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_over_under_load_drains_the_master_first_and_loses_nothing_with_async_replication()
{
    let c = Cluster::start_with("async", CONTROLLER_ARGS);
    let (client, namesrv) = (&c.client, &c.namesrv);
    let list = c.controllers.list();
    let a = c.member(1);
    let b = c.member(2);
    c.in_sync_with_topic(&a).await;
    let first = c.path("first.log");
    assert_eq!(produce(namesrv, 200, &first), 200);

    // The member freezes and falls behind (async: the master acknowledges
    // without it). It cannot catch up, so the switch-over is called off
    // and the master, sealed meanwhile, takes sends again.
    signal(&b, "STOP");
    let behind = c.path("behind.log");
    assert_eq!(produce(namesrv, 20, &behind), 20);
    let (status, _, err) = elect_master(&list, &["--timeout", "1s"]);
    assert!(!status.success(), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("called off") && err.contains("broker 2 reached"),
        "{err}"
    );
    let logged = |needle: &str| a.logs().iter().filter(|l| l.contains(needle)).count();
    let wait_logged = |needle: &'static str, times: usize| {
        mq_test_support::cluster::wait_until(needle, Duration::from_secs(5), move || {
            logged(needle) == times
        })
    };
    wait_logged("log sealed", 1).await;
    wait_logged("switch-over was called off", 1).await;
    // An operator who gives up half way (the call dropped) calls it off too.
    let mut impatient = std::process::Command::new(workspace_binary("mqadmin"))
        .args(["--namesrv", "127.0.0.1:1", "broker", "elect-master"])
        .args(["--controller", &list, "--broker-name", "broker-a"])
        .args(["--broker-id", "2", "--timeout", "60s"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_logged("log sealed", 2).await;
    impatient.kill().unwrap();
    impatient.wait().unwrap();
    wait_logged("switch-over was called off", 2).await;
    let again = c.path("again.log");
    assert_eq!(
        produce(namesrv, 20, &again),
        20,
        "the master takes sends again"
    );
    let view = group(client).await.unwrap();
    assert_eq!((view.master_id, view.epoch), (1, 1), "nobody was elected");
    signal(&b, "CONT");
    wait_group(client, "2 back in sync", |g| g.sync_state_set == [1, 2]).await;

    // Under load: producers keep sending while the master hands over.
    let during = c.path("during.log");
    let producer = std::process::Command::new(workspace_binary("mqbench"))
        .args(produce_args(
            namesrv,
            3000,
            &during,
            &["--rate", "600", "--producers", "4"],
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    mq_test_support::cluster::wait_until("the load runs", Duration::from_secs(20), || {
        lines(&during) >= 500
    })
    .await;
    // The member lags (frozen while the master acknowledges alone) when
    // the switch-over starts: it is elected only once it caught up.
    signal(&b, "STOP");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let switch = {
        let list = list.clone();
        std::thread::spawn(move || elect_master(&list, &[]))
    };
    let sealed_logs = || a.logs().iter().filter(|l| l.contains("log sealed")).count();
    mq_test_support::cluster::wait_until("the master seals again", Duration::from_secs(5), || {
        sealed_logs() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let view = group(client).await.unwrap();
    assert_eq!(view.master_id, 1, "elected before catching up: {view:?}");
    signal(&b, "CONT");
    let (status, out, err) = switch.join().unwrap();
    assert!(status.success(), "{out}{err}");
    assert!(
        out.contains("broker 2") && out.contains("epoch 2") && out.contains("sealed at offset"),
        "{out}"
    );
    listening_after(&b, MASTER_EPOCH_BEGAN).await;
    // The producers went on to the new master by themselves.
    let sent_by_switch = lines(&during);
    let producer = std::sync::Mutex::new(producer);
    mq_test_support::cluster::wait_until("the producer ends", Duration::from_secs(60), || {
        matches!(producer.lock().unwrap().try_wait(), Ok(Some(_)))
    })
    .await;
    assert!(
        lines(&during) > sent_by_switch + 500,
        "acknowledged after the switch: {} of {}",
        lines(&during) - sent_by_switch,
        lines(&during)
    );

    // The old master follows the new one; every acknowledged message is
    // there, the ones acknowledged by the old master up to its seal too.
    a.wait_for_log(
        "the controller made broker 2 master",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|| panic!("{}", a.logs().join("\n")));
    wait_group(client, "1 back in sync", |g| {
        g.master_id == 2 && g.sync_state_set == [1, 2]
    })
    .await;
    assert!(
        !a.logs()
            .iter()
            .any(|l| l.contains("diverged from the master")),
        "the old master had nothing to cut"
    );
    let acknowledged: [&std::path::Path; 4] = [&first, &behind, &again, &during];
    let total = acknowledged.iter().map(|p| lines(p)).sum();
    verify_all_consumed(namesrv, c.dir.path(), &acknowledged, total);
}
