//! A cluster of real processes for the consumer's end-to-end tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use mq_proto::broker::v1 as pb;
use mq_test_support::{ServerProcess, workspace_binary};

pub fn start_nameserver() -> ServerProcess {
    ServerProcess::start(workspace_binary("nameserver"), &["--listen", "127.0.0.1:0"])
}

/// A broker with short consumer expiry and queue locks, for fast tests.
pub fn start_broker(name: &str, namesrv: &str, root: &Path, listen: &str) -> ServerProcess {
    let store = root.join(name);
    let store = store.to_str().unwrap();
    let args = [
        "--namesrv",
        namesrv,
        "--broker-name",
        name,
        "--listen",
        listen,
        "--store-dir",
        store,
        "--register-interval",
        "500ms",
        "--consumer-expire",
        "3s",
        "--store-set",
        "commitlog_segment_size=16777216",
    ];
    let config = root.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        "queue_lock_expire = \"6s\"\noffset_persist_interval = \"200ms\"\n",
    )
    .unwrap();
    let mut all: Vec<&str> = args.to_vec();
    let config = config.to_str().unwrap().to_owned();
    all.extend(["--config", &config]);
    ServerProcess::start_until(workspace_binary("broker"), &all, &[], "broker listening")
}

pub async fn create_topic(broker: &ServerProcess, topic: &str, queues: u32) {
    let mut rpc = pb::broker_client::BrokerClient::connect(broker.url())
        .await
        .unwrap();
    rpc.create_topic(pb::CreateTopicRequest {
        config: Some(pb::TopicConfig {
            topic: topic.into(),
            read_queue_count: queues,
            write_queue_count: queues,
            perm: 6,
        }),
    })
    .await
    .unwrap();
}

pub async fn wait_for_route(namesrv: &str, topic: &str, brokers: usize) {
    let client = mq_nameserver_client::NameServerClient::from_list(namesrv).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(route) = client.query_route(topic).await
            && route.queues.len() >= brokers
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} never got {brokers} broker(s)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_until(what: &str, timeout: Duration, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
