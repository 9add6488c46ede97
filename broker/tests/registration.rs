//! Registration with real nameservers: every nameserver gets the broker, a
//! nameserver that is down does not stop it, and registration resumes when
//! it comes back.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use mq_nameserver_client::NameServerClient;
use mq_test_support::{ServerProcess, workspace_binary};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn registered_brokers(namesrv: &str) -> Vec<String> {
    let client = NameServerClient::from_list(namesrv).unwrap();
    match client.cluster_info().await {
        Ok(info) => info
            .clusters
            .into_iter()
            .flat_map(|c| c.brokers)
            .map(|b| b.broker_name)
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn wait_registered(namesrv: &str, broker: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !registered_brokers(namesrv)
        .await
        .iter()
        .any(|b| b == broker)
    {
        assert!(
            Instant::now() < deadline,
            "{broker} never registered with {namesrv}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_broker_registers_with_every_nameserver_and_with_one_that_starts_late() {
    let live = ServerProcess::start(workspace_binary("nameserver"), &["--listen", "127.0.0.1:0"]);
    let late_port = free_port();
    let late_addr = format!("127.0.0.1:{late_port}");
    let store = tempfile::tempdir().unwrap();
    let namesrv = format!("{};{late_addr}", live.addr);
    let broker = ServerProcess::start_until(
        env!("CARGO_BIN_EXE_broker"),
        &[
            "--namesrv",
            &namesrv,
            "--broker-name",
            "broker-z",
            "--listen",
            "127.0.0.1:0",
            "--register-interval",
            "200ms",
            "--store-dir",
            store.path().to_str().unwrap(),
        ],
        &[],
        "broker listening",
    );
    wait_registered(&live.addr.to_string(), "broker-z").await;
    assert!(
        broker
            .wait_for_log("cannot register with nameserver", Duration::from_secs(10))
            .is_some()
    );

    let _late = ServerProcess::start(workspace_binary("nameserver"), &["--listen", &late_addr]);
    wait_registered(&late_addr, "broker-z").await;
}
