//! The gRPC edge of the broker: `mq.broker.v1.Broker`, one file per RPC
//! family, each translating wire types at the edge.

pub mod send;
pub mod topics;
pub mod wire;

use std::sync::Arc;

use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_server::Broker;
use tonic::{Request, Response, Status};

use crate::topics::TopicTable;
use send::SendPath;

/// Serves `mq.broker.v1.Broker`.
#[derive(Debug, Clone)]
pub struct BrokerService {
    pub send: SendPath,
    pub topics: Arc<TopicTable>,
}

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Broker for BrokerService {
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> RpcResult<pb::SendMessageResponse> {
        let peer = request.remote_addr();
        let result = self.send.send(request.into_inner(), peer).await?;
        Ok(Response::new(pb::SendMessageResponse {
            result: Some(result),
        }))
    }

    async fn send_batch(
        &self,
        request: Request<pb::SendBatchRequest>,
    ) -> RpcResult<pb::SendBatchResponse> {
        let peer = request.remote_addr();
        let results = self.send.send_batch(request.into_inner(), peer).await?;
        Ok(Response::new(pb::SendBatchResponse { results }))
    }

    async fn create_topic(
        &self,
        request: Request<pb::CreateTopicRequest>,
    ) -> RpcResult<pb::CreateTopicResponse> {
        topics::create(&self.topics, request.into_inner())?;
        Ok(Response::new(pb::CreateTopicResponse {}))
    }

    async fn delete_topic(
        &self,
        request: Request<pb::DeleteTopicRequest>,
    ) -> RpcResult<pb::DeleteTopicResponse> {
        topics::delete(&self.topics, request.into_inner())?;
        Ok(Response::new(pb::DeleteTopicResponse {}))
    }

    async fn list_topics(
        &self,
        _request: Request<pb::ListTopicsRequest>,
    ) -> RpcResult<pb::ListTopicsResponse> {
        Ok(Response::new(pb::ListTopicsResponse {
            topics: topics::list(&self.topics),
        }))
    }
}
