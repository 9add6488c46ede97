//! Three controllers, each with its Raft log and snapshots on disk, talking
//! Raft over gRPC on loopback: they elect a leader, apply the same commands
//! in the same order, elect another leader when the first one stops, and
//! the stopped one comes back from its disk and catches up.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_controller::raft::log_store::LogStore;
use mq_controller::raft::network::{Network, Raft, RaftService};
use mq_controller::raft::state_machine::StateMachine;
use mq_controller::state::{Command, Outcome};
use mq_proto::controller::v1::raft_server::RaftServer;
use openraft::BasicNode;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

struct Node {
    raft: Raft,
    machine: StateMachine,
    server: JoinHandle<()>,
}

async fn start(id: u64, dir: &Path, listener: TcpListener) -> Node {
    let config = openraft::Config {
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        ..Default::default()
    };
    let config = Arc::new(config.validate().unwrap());
    let log = LogStore::open(dir).unwrap();
    let machine = StateMachine::open(dir).unwrap();
    let raft = Raft::new(id, config, Network::default(), log, machine.clone())
        .await
        .unwrap();
    let service = RaftServer::new(RaftService {
        raft: raft.clone(),
        guard: mq_auth::guard::Guard::disabled(),
    });
    let server = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });
    Node {
        raft,
        machine,
        server,
    }
}

async fn leader_among(nodes: &BTreeMap<u64, Node>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for node in nodes.values() {
            let metrics = node.raft.metrics().borrow().clone();
            if let Some(leader) = metrics.current_leader
                && nodes.contains_key(&leader)
                && nodes[&leader].raft.metrics().borrow().current_leader == Some(leader)
            {
                return leader;
            }
        }
        assert!(Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn register(id: u64) -> Command {
    Command::Register {
        group: "broker-a".into(),
        id,
        addr: format!("10.0.0.{id}:10911"),
        max_offset: 0,
        last_log_epoch: 0,
    }
}

/// Waits until every node's state machine has the group's members `ids`.
async fn converged(nodes: &BTreeMap<u64, Node>, ids: &[u64]) {
    let want: BTreeSet<u64> = ids.iter().copied().collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let states: Vec<BTreeSet<u64>> = nodes
            .values()
            .map(|n| {
                n.machine
                    .state()
                    .groups
                    .get("broker-a")
                    .map(|g| g.members.keys().copied().collect())
                    .unwrap_or_default()
            })
            .collect();
        if states.iter().all(|s| *s == want) {
            return;
        }
        assert!(Instant::now() < deadline, "{states:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_controllers_agree_elect_a_new_leader_and_take_the_old_one_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut listeners = BTreeMap::new();
    let mut members = BTreeMap::new();
    for id in 1..=3u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        members.insert(
            id,
            BasicNode::new(listener.local_addr().unwrap().to_string()),
        );
        listeners.insert(id, listener);
    }
    let mut nodes = BTreeMap::new();
    for (id, listener) in listeners {
        let node = start(id, &dir.path().join(id.to_string()), listener).await;
        nodes.insert(id, node);
    }
    let addresses: BTreeMap<u64, String> = members
        .iter()
        .map(|(id, n)| (*id, n.addr.clone()))
        .collect();
    nodes[&1].raft.initialize(members).await.unwrap();

    let leader = leader_among(&nodes).await;
    let written = nodes[&leader].raft.client_write(register(0)).await.unwrap();
    assert_eq!(
        written.data,
        Some(Outcome::Registered {
            master: Some(0),
            epoch: 1
        })
    );
    nodes[&leader].raft.client_write(register(1)).await.unwrap();
    converged(&nodes, &[0, 1]).await;

    // The leader stops; the other two elect one of them and go on.
    let old = nodes.remove(&leader).unwrap();
    old.raft.shutdown().await.unwrap();
    old.server.abort();
    let _ = old.server.await;
    let next = leader_among(&nodes).await;
    assert_ne!(next, leader);
    let written = nodes[&next].raft.client_write(register(2)).await.unwrap();
    assert_eq!(
        written.data,
        Some(Outcome::Registered {
            master: Some(0),
            epoch: 1
        }),
        "the new leader's state has the first master"
    );
    converged(&nodes, &[0, 1, 2]).await;

    // It comes back from its disk at its address and catches up.
    let addr = addresses[&leader].clone();
    let listener = TcpListener::bind(&addr).await.unwrap();
    let back = start(leader, &dir.path().join(leader.to_string()), listener).await;
    nodes.insert(leader, back);
    converged(&nodes, &[0, 1, 2]).await;
    for node in nodes.values() {
        node.raft.shutdown().await.unwrap();
        node.server.abort();
    }
}
