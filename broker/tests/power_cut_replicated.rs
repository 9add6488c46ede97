//! Power cuts of a master in controller mode: each member of the group
//! keeps its store on a `mq-powercut` disk of its own, replicates in sync
//! (a send is acknowledged once one replica has it) and flushes
//! asynchronously, the usual production setting: an
//! acknowledged message is then in two machines' memory, on neither disk.
//! Three times, under a verifiable producer, the master's power is cut (the
//! process SIGKILLed, everything it had not synced dropped); the replica
//! is elected, the old master boots on what its disk kept (a shorter log,
//! perhaps a tail the group never acknowledged) and rejoins as a replica.
//! Not one acknowledged message may be lost.

#![allow(clippy::unwrap_used)]

mod controlled;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use controlled::*;
use mq_powercut::{Disk, Mounted};
use mq_test_support::{ServerProcess, terminate_and_wait, workspace_binary};

/// Async flush with sync replication that waits for one replica.
const ENV: &[(&str, &str)] = &[("MQ_BROKER_MIN_IN_SYNC_REPLICAS", "1")];

fn start_producing(namesrv: &str, log: &Path) -> Child {
    let args = produce_args(
        namesrv,
        1_000_000,
        log,
        &["--flush-wait", "--producers", "4"],
    );
    Command::new(workspace_binary("mqbench"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// One member's machine: its disk, mounted at the member's store. Fields
/// drop in order: the broker before its mount.
struct Machine {
    broker: Option<ServerProcess>,
    mounted: Option<Mounted>,
    disk: Disk,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_power_cuts_lose_nothing_the_group_acknowledged() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "the power-cut tests need /dev/fuse (and fusermount3 from fuse3)"
    );
    let mut c = Cluster::start();
    c.flush = "async";
    let (client, namesrv) = (&c.client, c.namesrv.clone());
    let controllers = c.controllers.list();
    let mut machines: Vec<Machine> = Vec::new();
    for id in 1..=2u64 {
        let store = &c.members[id as usize - 1].0;
        std::fs::create_dir_all(store).unwrap();
        let disk = Disk::new();
        let mounted = disk.mount(store).unwrap();
        let broker = c.member_via(id, &controllers, ENV);
        machines.push(Machine {
            disk,
            mounted: Some(mounted),
            broker: Some(broker),
        });
    }
    c.in_sync_with_topic(machines[0].broker.as_ref().unwrap())
        .await;

    let mut logs = Vec::new();
    for round in 0..3u64 {
        let view = wait_group(client, "both in sync", |g| g.sync_state_set == [1, 2]).await;
        let master = view.master_id;
        let other = 3 - master;
        let log = c.path(&format!("produced-{round}.log"));
        let producer = start_producing(&namesrv, &log);
        // The producer's log is written as it ends: how much each round
        // acknowledged is printed after the cut.
        tokio::time::sleep(Duration::from_millis(1500 + 500 * round)).await;

        let machine = &mut machines[master as usize - 1];
        machine.broker.take().unwrap().kill();
        machine.mounted.take().unwrap().power_cut().unwrap();
        terminate_and_wait(producer);
        eprintln!(
            "round {round}: master {master} lost its power with {} acknowledged this round",
            lines(&log)
        );
        logs.push(log);
        wait_group(client, "the replica elected", |g| g.master_id == other).await;

        // Power back: the old master boots on what its disk kept.
        let store = &c.members[master as usize - 1].0;
        machine.mounted = Some(machine.disk.mount(store).unwrap());
        machine.broker = Some(c.member_via(master, &controllers, ENV));
    }
    wait_group(client, "both in sync", |g| g.sync_state_set == [1, 2]).await;
    let counts: Vec<_> = machines.iter().map(|m| m.disk.counts()).collect();
    eprintln!("disks: {counts:?}");
    assert!(
        counts.iter().all(|c| c.power_cuts > 0),
        "both members lost power"
    );
    let produced: Vec<&Path> = logs.iter().map(|p| p.as_path()).collect();
    let expected = logs.iter().map(|l| lines(l)).sum();
    assert!(expected > 0, "nothing was acknowledged");
    verify_all_consumed(&namesrv, c.dir.path(), &produced, expected);
}
