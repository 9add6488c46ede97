//! A cluster behind a standalone RocketMQ 5 proxy, all real processes.

use std::path::Path;

use crate::{ServerProcess, workspace_binary};

/// A nameserver, brokers `broker-a`, `broker-b`... registered with it, and
/// a standalone RocketMQ 5 proxy in front of them (cluster mode), all on
/// free loopback ports, storing under `root`.
pub struct ProxiedCluster {
    pub nameserver: ServerProcess,
    pub brokers: Vec<ServerProcess>,
    pub proxy: ServerProcess,
    pub namesrv: String,
    /// Where RocketMQ 5 clients connect: the standalone proxy.
    pub proxy_addr: String,
}

/// Starts a [`ProxiedCluster`] of `brokers` brokers; `broker_env` and
/// `proxy_env` add `MQ_BROKER_*` and `MQ_PROXY_*` settings.
pub fn proxied_cluster(
    root: &Path,
    brokers: usize,
    broker_env: &[(&str, &str)],
    proxy_env: &[(&str, &str)],
) -> ProxiedCluster {
    let nameserver =
        ServerProcess::start(workspace_binary("nameserver"), &["--listen", "127.0.0.1:0"]);
    let namesrv = nameserver.addr.to_string();
    let brokers = (0..brokers)
        .map(|i| {
            let name = format!("broker-{}", (b'a' + i as u8) as char);
            let store = root.join(&name);
            ServerProcess::start_until(
                workspace_binary("broker"),
                &[
                    "--namesrv",
                    &namesrv,
                    "--broker-name",
                    &name,
                    "--listen",
                    "127.0.0.1:0",
                    "--store-dir",
                    store.to_str().unwrap(),
                ],
                broker_env,
                "broker listening",
            )
        })
        .collect();
    let data = root.join("proxy");
    let proxy = ServerProcess::start_until(
        workspace_binary("proxy"),
        &[
            "--namesrv",
            &namesrv,
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        proxy_env,
        "proxy listening",
    );
    let proxy_addr = proxy.addr.to_string();
    ProxiedCluster {
        nameserver,
        brokers,
        proxy,
        namesrv,
        proxy_addr,
    }
}
