//! A small cluster of real processes for the producer's end-to-end tests:
//! a nameserver and brokers on free loopback ports, each broker with its
//! own store directory, readable after the broker stops.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mq_proto::broker::v1 as pb;
use mq_store::{MessageStore, StoreConfig, StoredMessage, TagFilter};
use mq_test_support::{ServerProcess, workspace_binary};

pub struct Broker {
    pub name: String,
    pub process: ServerProcess,
    pub store_dir: PathBuf,
    extra: Vec<String>,
    namesrv: String,
}

pub fn start_nameserver() -> ServerProcess {
    ServerProcess::start(
        workspace_binary("nameserver"),
        &["--listen", "127.0.0.1:0", "--broker-expire", "60s"],
    )
}

fn broker_args(
    name: &str,
    namesrv: &str,
    store_dir: &Path,
    listen: &str,
    extra: &[String],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--namesrv",
        namesrv,
        "--broker-name",
        name,
        "--listen",
        listen,
        "--register-interval",
        "500ms",
        "--store-set",
        "commitlog_segment_size=16777216",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--store-dir".into());
    args.push(store_dir.display().to_string());
    args.extend(extra.iter().cloned());
    args
}

fn spawn(args: &[String]) -> ServerProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServerProcess::start_until(workspace_binary("broker"), &args, &[], "broker listening")
}

impl Broker {
    /// Starts a broker registered with `namesrv`, storing under `root/name`.
    pub fn start(name: &str, namesrv: &str, root: &Path, extra: &[&str]) -> Broker {
        let store_dir = root.join(name);
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let process = spawn(&broker_args(
            name,
            namesrv,
            &store_dir,
            "127.0.0.1:0",
            &extra,
        ));
        Broker {
            name: name.into(),
            process,
            store_dir,
            extra,
            namesrv: namesrv.into(),
        }
    }

    /// Starts the broker again on the same port and store directory.
    pub fn restart(&mut self) {
        let listen = self.process.addr.to_string();
        self.process = spawn(&broker_args(
            &self.name,
            &self.namesrv,
            &self.store_dir,
            &listen,
            &self.extra,
        ));
    }

    pub async fn rpc(&self) -> pb::broker_client::BrokerClient<tonic::transport::Channel> {
        pb::broker_client::BrokerClient::connect(self.process.url())
            .await
            .unwrap()
    }

    pub async fn create_topic(&self, topic: &str, queues: u32) {
        mq_test_support::cluster::create_topic(&self.process.url(), topic, queues).await;
    }

    /// Stops the broker cleanly (SIGTERM) and returns every stored message
    /// by (topic, queue), in queue order.
    pub fn stop_and_read(&mut self) -> HashMap<(String, u32), Vec<StoredMessage>> {
        let status = self
            .process
            .terminate(Duration::from_secs(20))
            .expect("broker stops");
        assert!(
            status.success(),
            "broker {} exited with {status:?}",
            self.name
        );
        read_store(&self.store_dir)
    }
}

/// A nameserver and two brokers serving `topic` with `queues` queues each.
pub struct TwoBrokers {
    pub root: tempfile::TempDir,
    pub nameserver: ServerProcess,
    pub namesrv: String,
    pub brokers: [Broker; 2],
}

pub async fn two_brokers(topic: &str, queues: u32) -> TwoBrokers {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let brokers = [
        Broker::start("broker-a", &namesrv, root.path(), &[]),
        Broker::start("broker-b", &namesrv, root.path(), &[]),
    ];
    for broker in &brokers {
        broker.create_topic(topic, queues).await;
    }
    wait_for_route(&namesrv, topic, 2).await;
    TwoBrokers {
        root,
        nameserver,
        namesrv,
        brokers,
    }
}

/// Every message in a stopped (or killed) broker's store.
pub fn read_store(dir: &Path) -> HashMap<(String, u32), Vec<StoredMessage>> {
    let (store, _) = MessageStore::open(
        dir,
        StoreConfig {
            commitlog_segment_size: 16 << 20,
            ..StoreConfig::default()
        },
        "127.0.0.1:1".parse().unwrap(),
    )
    .unwrap();
    let mut all = HashMap::new();
    for (topic, queue) in store.queues() {
        let (min, max) = store.queue_offsets(&topic, queue).unwrap();
        let mut messages = Vec::new();
        let mut offset = min;
        while offset < max {
            let got = store.get_messages(&topic, queue, offset, 256, usize::MAX, &TagFilter::All);
            assert!(
                !got.messages.is_empty(),
                "{topic}/{queue} has a gap at {offset}"
            );
            offset = got.next_offset;
            messages.extend(got.messages);
        }
        all.insert((topic, queue), messages);
    }
    store.shutdown().unwrap();
    all
}

pub use mq_test_support::cluster::wait_for_route;

/// The body as text.
pub fn text(msg: &StoredMessage) -> String {
    String::from_utf8(msg.body.to_vec()).unwrap()
}
