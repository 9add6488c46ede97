//! The client brokers and `mqadmin` use: it knows every controller's
//! address, sends each call to the one it believes leads, and on an
//! `UNAVAILABLE` naming another leader (or none) tries the next. Lazy
//! channels: a controller that is down costs a connect timeout, not an
//! error at start.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mq_auth::Connector;
use mq_auth::client::SignedChannel;
use mq_proto::controller::v1 as pb;
use mq_proto::controller::v1::controller_client::ControllerClient as Stub;
use tonic::transport::Endpoint;

/// The response header naming the leader's address.
pub const LEADER_HEADER: &str = "mq-controller-leader";

/// How long a call goes on trying while no controller answers as leader
/// (an election takes one to two Raft election timeouts, 1 s by default,
/// and a first one after a start may take two rounds).
const LEADER_WAIT: Duration = Duration::from_secs(3);

/// How long one call to one controller may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ControllerClientError {
    #[error("controller list {0:?} names no controller (host:port;host:port;...)")]
    EmptyList(String),
    #[error("{0}")]
    Connect(String),
    #[error("controller address {addr:?}: {source}")]
    BadAddress {
        addr: String,
        source: tonic::transport::Error,
    },
}

/// Talks to a controller group.
#[derive(Debug, Clone)]
pub struct ControllerClient {
    peers: Vec<(String, Stub<SignedChannel>)>,
    /// Which peer to try first: the last one that answered as leader.
    /// Shared by clones.
    preferred: std::sync::Arc<AtomicUsize>,
}

impl ControllerClient {
    /// The endpoints of `host:port;host:port;...` (commas work too),
    /// checked; usable outside a runtime (configuration checks).
    pub fn parse_list(list: &str) -> Result<Vec<(String, Endpoint)>, ControllerClientError> {
        let mut endpoints = Vec::new();
        for addr in list
            .split([';', ','])
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            let endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(|source| {
                ControllerClientError::BadAddress {
                    addr: addr.to_owned(),
                    source,
                }
            })?;
            endpoints.push((addr.to_owned(), endpoint));
        }
        if endpoints.is_empty() {
            return Err(ControllerClientError::EmptyList(list.to_owned()));
        }
        Ok(endpoints)
    }

    /// From `host:port;host:port;...` (commas work too). Within a Tokio
    /// runtime.
    pub fn from_list(list: &str) -> Result<Self, ControllerClientError> {
        Self::with_call_timeout(list, CALL_TIMEOUT, &Connector::default())
    }

    /// As [`ControllerClient::from_list`], reaching the controllers
    /// through `connector` (TLS, credentials).
    pub fn from_list_with(
        list: &str,
        connector: &Connector,
    ) -> Result<Self, ControllerClientError> {
        Self::with_call_timeout(list, CALL_TIMEOUT, connector)
    }

    /// As [`ControllerClient::from_list`], for calls that may take longer
    /// than a heartbeat (a graceful switch-over waits for a replica).
    pub fn with_call_timeout(
        list: &str,
        call_timeout: Duration,
        connector: &Connector,
    ) -> Result<Self, ControllerClientError> {
        let mut peers = Vec::new();
        for (addr, _) in Self::parse_list(list)? {
            let endpoint = connector
                .endpoint(&addr)
                .map_err(|e| ControllerClientError::Connect(e.to_string()))?
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(call_timeout)
                .tcp_nodelay(true);
            let channel = connector.lazy(endpoint);
            peers.push((addr, Stub::new(channel)));
        }
        Ok(ControllerClient {
            peers,
            preferred: std::sync::Arc::default(),
        })
    }

    /// The addresses this client knows.
    pub fn addrs(&self) -> impl Iterator<Item = &str> {
        self.peers.iter().map(|(addr, _)| addr.as_str())
    }

    pub async fn register(&self, hb: pb::BrokerHeartbeat) -> Result<pb::GroupView, tonic::Status> {
        self.call(|mut stub| {
            let hb = hb.clone();
            async move { stub.register_broker(hb).await }
        })
        .await
    }

    pub async fn heartbeat(&self, hb: pb::BrokerHeartbeat) -> Result<pb::GroupView, tonic::Status> {
        self.call(|mut stub| {
            let hb = hb.clone();
            async move { stub.heartbeat(hb).await }
        })
        .await
    }

    pub async fn alter_sync_state_set(
        &self,
        request: pb::AlterSyncStateSetRequest,
    ) -> Result<pb::GroupView, tonic::Status> {
        self.call(|mut stub| {
            let request = request.clone();
            async move { stub.alter_sync_state_set(request).await }
        })
        .await
    }

    pub async fn elect_master(
        &self,
        request: pb::ElectMasterRequest,
    ) -> Result<pb::ElectMasterResponse, tonic::Status> {
        self.call(|mut stub| {
            let request = request.clone();
            async move { stub.elect_master(request).await }
        })
        .await
    }

    /// The leader's status (or, with no leader, the first answer).
    pub async fn status(&self) -> Result<pb::ControllerStatus, tonic::Status> {
        self.call(|mut stub| async move { stub.get_status(pb::GetStatusRequest {}).await })
            .await
    }

    /// The status as the Raft leader reports it, waiting (within a few
    /// seconds) while a leader is being elected.
    pub async fn leader_status(&self) -> Result<pb::ControllerStatus, tonic::Status> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let each = self.status_of_each().await;
            if let Some(status) = each.iter().find_map(|(_, answer)| {
                answer
                    .as_ref()
                    .ok()
                    .filter(|s| s.leader_id != 0 && s.leader_id == s.node_id)
            }) {
                return Ok(status.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(tonic::Status::unavailable(
                    "no controller leads (an election is under way, or too few controllers are up)",
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The status as each controller sees it, in list order.
    pub async fn status_of_each(
        &self,
    ) -> Vec<(String, Result<pb::ControllerStatus, tonic::Status>)> {
        let mut all = Vec::new();
        for (addr, stub) in &self.peers {
            let mut stub = stub.clone();
            let answer = stub
                .get_status(pb::GetStatusRequest {})
                .await
                .map(tonic::Response::into_inner);
            all.push((addr.clone(), answer));
        }
        all
    }

    /// Goes round the controllers until one answers as leader, a few
    /// times while a leader is being elected (within [`LEADER_WAIT`]); the
    /// last error if none does.
    async fn call<T, F, Fut>(&self, mut rpc: F) -> Result<T, tonic::Status>
    where
        F: FnMut(Stub<SignedChannel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        let mut pause = Duration::from_millis(50);
        loop {
            match self.round(&mut rpc).await {
                Err(status)
                    if status.code() == tonic::Code::Unavailable
                        && tokio::time::Instant::now() + pause < deadline =>
                {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                answer => return answer,
            }
        }
    }

    /// Tries the preferred peer, then each other once.
    async fn round<T, F, Fut>(&self, rpc: &mut F) -> Result<T, tonic::Status>
    where
        F: FnMut(Stub<SignedChannel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let first = self.preferred.load(Ordering::Relaxed) % self.peers.len();
        let mut last = None;
        for step in 0..self.peers.len() {
            let at = (first + step) % self.peers.len();
            match rpc(self.peers[at].1.clone()).await {
                Ok(response) => {
                    self.preferred.store(at, Ordering::Relaxed);
                    return Ok(response.into_inner());
                }
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    // Not the leader (or down): go where it points, if it
                    // names a leader we know, else to the next.
                    if let Some(leader) = status
                        .metadata()
                        .get(LEADER_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|addr| self.peers.iter().position(|(a, _)| a == addr))
                        && leader != at
                    {
                        self.preferred.store(leader, Ordering::Relaxed);
                        if let Ok(response) = rpc(self.peers[leader].1.clone()).await {
                            return Ok(response.into_inner());
                        }
                    }
                    last = Some(status);
                }
                Err(status) => return Err(status),
            }
        }
        Err(last.unwrap_or_else(|| tonic::Status::unavailable("no controller answered")))
    }
}
