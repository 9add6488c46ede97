//! Shared by the nameserver's integration tests: starting the real binary
//! and building registrations.

#![allow(dead_code, clippy::unwrap_used)]

use mq_nameserver_client::{ClientOptions, NameServerClient};
use mq_proto::nameserver::v1 as pb;
use mq_test_support::ServerProcess;

pub const BINARY: &str = env!("CARGO_BIN_EXE_nameserver");

/// Starts `nameserver` on a free loopback port with `extra` flags.
pub fn start_nameserver(extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--listen", "127.0.0.1:0", "--log-level", "info"];
    args.extend_from_slice(extra);
    ServerProcess::start(BINARY, &args)
}

/// A raw tonic client of one nameserver.
pub async fn rpc(
    server: &ServerProcess,
) -> pb::name_server_client::NameServerClient<tonic::transport::Channel> {
    pb::name_server_client::NameServerClient::connect(server.url())
        .await
        .unwrap()
}

/// `QueryRoute` of `topic` on one nameserver.
pub async fn query(
    rpc: &mut pb::name_server_client::NameServerClient<tonic::transport::Channel>,
    topic: &str,
) -> Result<pb::QueryRouteResponse, tonic::Status> {
    let request = pb::QueryRouteRequest {
        topic: topic.to_owned(),
    };
    rpc.query_route(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Our shared client over the given nameservers.
pub fn client_of(addrs: &[String]) -> NameServerClient {
    NameServerClient::new(addrs.to_vec(), ClientOptions::default()).unwrap()
}

pub fn topic(name: &str, queues: u32) -> pb::TopicConfig {
    pb::TopicConfig {
        topic: name.into(),
        read_queue_count: queues,
        write_queue_count: queues,
        perm: 6,
        message_type: String::new(),
    }
}

/// A master of `DefaultCluster` at `addr` serving `topics`.
pub fn registration(
    broker_name: &str,
    addr: &str,
    topics: Vec<pb::TopicConfig>,
    version: u64,
) -> pb::RegisterBrokerRequest {
    pb::RegisterBrokerRequest {
        cluster_name: "DefaultCluster".into(),
        broker_name: broker_name.into(),
        broker_id: 0,
        broker_addr: addr.into(),
        topics,
        data_version: Some(pb::DataVersion {
            timestamp_ms: 1,
            counter: version,
        }),
        master_epoch: 0,
        proxy_addr: String::new(),
    }
}
