//! Raft between controllers over gRPC (`mq.controller.v1.Raft`): each RPC
//! carries openraft's request and its result as JSON. [`Network`] is the
//! client side openraft calls; [`RaftService`] hands what arrives to the
//! local Raft.

use mq_proto::controller::v1 as pb;
use mq_proto::controller::v1::raft_client::RaftClient;
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};

use super::{NodeId, TypeConfig};

pub type Raft = openraft::Raft<TypeConfig>;

/// Makes a client per peer; a peer's address is its node's `addr`.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// How peers are reached: TLS, signed as the cluster's administrator.
    pub connector: mq_auth::Connector,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        let client = self
            .connector
            .endpoint(&node.addr)
            .map(|e| RaftClient::new(self.connector.lazy(e)));
        Peer { target, client }
    }
}

/// One peer's connection.
#[derive(Debug)]
pub struct Peer {
    target: NodeId,
    client: Result<RaftClient<mq_auth::client::SignedChannel>, mq_auth::ConnectError>,
}

impl Peer {
    async fn call<Req, Resp, E>(
        &mut self,
        request: &Req,
        option: &RPCOption,
        rpc: Rpc,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let network = |e: &dyn std::fmt::Display| {
            RPCError::Network(NetworkError::new(&std::io::Error::other(e.to_string())))
        };
        let client = self.client.as_mut().map_err(|e| network(e))?;
        let json = serde_json::to_vec(request).map_err(|e| network(&e))?;
        let mut request = Request::new(pb::RaftMessage { json: json.into() });
        request.set_timeout(option.hard_ttl());
        let answer = match rpc {
            Rpc::AppendEntries => client.append_entries(request).await,
            Rpc::Vote => client.vote(request).await,
            Rpc::InstallSnapshot => client.install_snapshot(request).await,
        }
        .map_err(|s| network(&s))?;
        let result: Result<Resp, E> =
            serde_json::from_slice(&answer.into_inner().json).map_err(|e| network(&e))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

#[derive(Debug, Clone, Copy)]
enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(&rpc, &option, Rpc::AppendEntries).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(&rpc, &option, Rpc::InstallSnapshot).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(&rpc, &option, Rpc::Vote).await
    }
}

/// The receiving side: hands each RPC to the local Raft.
#[derive(Clone)]
pub struct RaftService {
    pub raft: Raft,
    /// Only the cluster's members (and administrators) speak Raft here.
    pub guard: mq_auth::guard::Guard,
}

impl RaftService {
    fn member<T>(&self, request: &Request<T>) -> Result<(), Status> {
        use mq_auth::model::{Action, Target};
        self.guard.check(request, Action::Admin, Target::Cluster)
    }
}

fn decode<T: DeserializeOwned>(request: Request<pb::RaftMessage>) -> Result<T, Status> {
    serde_json::from_slice(&request.into_inner().json)
        .map_err(|e| Status::invalid_argument(format!("json: {e}")))
}

fn encode<T: Serialize>(result: &T) -> Result<Response<pb::RaftMessage>, Status> {
    let json = serde_json::to_vec(result).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(pb::RaftMessage { json: json.into() }))
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        request: Request<pb::RaftMessage>,
    ) -> Result<Response<pb::RaftMessage>, Status> {
        self.member(&request)?;
        encode(&self.raft.append_entries(decode(request)?).await)
    }

    async fn vote(
        &self,
        request: Request<pb::RaftMessage>,
    ) -> Result<Response<pb::RaftMessage>, Status> {
        self.member(&request)?;
        encode(&self.raft.vote(decode(request)?).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::RaftMessage>,
    ) -> Result<Response<pb::RaftMessage>, Status> {
        self.member(&request)?;
        encode(&self.raft.install_snapshot(decode(request)?).await)
    }
}
