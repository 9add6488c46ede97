//! The proxy inside the broker (RocketMQ 5's local mode): the
//! `apache.rocketmq.v2` service on a port of its own, calling this
//! broker's service in-process. Routes come from the nameservers and name
//! each broker's own proxy, so a client sends to a broker's queues through
//! that broker's proxy, with no extra hop.

use mq_nameserver_client::NameServerClient;
use mq_proto::broker::v1 as broker;
use mq_proto::broker::v1::broker_server::Broker;
use mq_proto::nameserver::v1 as names;
use mq_proxy::backend::{Backend, Call};
use tonic::Status;

use crate::service::BrokerService;

/// This broker, as its proxy's backend.
#[derive(Debug)]
pub struct LocalBackend {
    pub service: BrokerService,
    pub nameservers: NameServerClient,
    pub broker_name: String,
}

#[tonic::async_trait]
impl Backend for LocalBackend {
    async fn route(&self, topic: &str) -> Result<names::QueryRouteResponse, Status> {
        self.nameservers
            .query_route(topic)
            .await
            .map_err(|e| Status::new(e.code(), e.to_string()))
    }

    fn endpoint(&self, broker: &names::BrokerData) -> Option<String> {
        broker.proxy_addresses.get(&0).cloned()
    }

    fn serves(&self, broker: &names::BrokerData) -> bool {
        broker.broker_name == self.broker_name
    }

    async fn send(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::SendBatchRequest,
    ) -> Result<broker::SendBatchResponse, Status> {
        self.own(broker_name)?;
        self.service
            .send_batch(call.request(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn pop(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::PopMessagesRequest,
    ) -> Result<broker::PopMessagesResponse, Status> {
        self.own(broker_name)?;
        self.service
            .pop_messages(call.request(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn ack(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::AckMessagesRequest,
    ) -> Result<broker::AckMessagesResponse, Status> {
        self.own(broker_name)?;
        self.service
            .ack_messages(call.request(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn change_invisible(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::ChangeInvisibleTimeRequest,
    ) -> Result<broker::ChangeInvisibleTimeResponse, Status> {
        self.own(broker_name)?;
        self.service
            .change_invisible_time(call.request(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn send_back(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::ConsumerSendBackRequest,
    ) -> Result<broker::ConsumerSendBackResponse, Status> {
        self.own(broker_name)?;
        self.service
            .consumer_send_back(call.request(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn heartbeat(
        &self,
        call: &Call,
        request: broker::HeartbeatRequest,
    ) -> Result<(), Status> {
        self.service
            .heartbeat(call.request(request))
            .await
            .map(|_| ())
    }

    async fn unregister(
        &self,
        call: &Call,
        request: broker::UnregisterConsumerRequest,
    ) -> Result<(), Status> {
        self.service
            .unregister_consumer(call.request(request))
            .await
            .map(|_| ())
    }

    async fn pull(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::PullMessageRequest,
    ) -> Result<broker::PullMessageResponse, Status> {
        self.own(broker_name)?;
        self.service
            .pull_message(call.request(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn commit_offset(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::CommitOffsetRequest,
    ) -> Result<(), Status> {
        self.own(broker_name)?;
        self.service
            .commit_offset(call.request(request))
            .await
            .map(|_| ())
    }

    async fn committed_offset(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::QueryOffsetRequest,
    ) -> Result<broker::QueryOffsetResponse, Status> {
        self.own(broker_name)?;
        self.service
            .query_offset(call.request(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn send_half(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::SendHalfMessageRequest,
    ) -> Result<broker::SendHalfMessageResponse, Status> {
        self.own(broker_name)?;
        self.service
            .send_half_message(call.request(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn end_transaction(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::EndTransactionRequest,
    ) -> Result<broker::EndTransactionResponse, Status> {
        self.own(broker_name)?;
        self.service
            .end_transaction(call.request(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn producer_session(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::ProducerSessionRequest,
    ) -> Result<mq_proxy::backend::CheckStream, Status> {
        self.own(broker_name)?;
        self.service
            .producer_session(call.request(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn queue_offsets(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::GetQueueOffsetsRequest,
    ) -> Result<broker::GetQueueOffsetsResponse, Status> {
        self.own(broker_name)?;
        self.service
            .get_queue_offsets(call.request(request))
            .await
            .map(tonic::Response::into_inner)
    }
}

impl LocalBackend {
    /// Refuses a call for another broker's queues.
    fn own(&self, broker_name: &str) -> Result<(), Status> {
        if broker_name == self.broker_name {
            return Ok(());
        }
        Err(Status::failed_precondition(format!(
            "queues of broker {broker_name:?} are served by that broker's own proxy, not by {:?}'s",
            self.broker_name
        )))
    }
}
