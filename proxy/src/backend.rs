//! What the proxy needs of the brokers. Local mode (the proxy inside a
//! broker) calls the broker's own service in-process; cluster mode (the
//! standalone proxy) calls brokers over gRPC. Both speak `mq.broker.v1`
//! types, so the protocol's handling is written once.

use mq_proto::broker::v1 as broker;
use mq_proto::nameserver::v1 as names;
use tonic::{Extensions, Status};

/// Transaction checks from a broker.
pub type CheckStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<broker::TransactionCheck, Status>> + Send>,
>;

/// A client's call as it reached the proxy: its authenticated identity
/// and its address travel in the extensions, so that a broker called
/// in-process authorizes the real caller.
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub extensions: Extensions,
}

impl Call {
    /// A request to a broker on behalf of this call.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        tonic::Request::from_parts(
            tonic::metadata::MetadataMap::new(),
            self.extensions.clone(),
            message,
        )
    }
}

/// The brokers behind a proxy.
#[tonic::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The route of `topic`, as the nameservers know it (NOT_FOUND for an
    /// unknown topic).
    async fn route(&self, topic: &str) -> Result<names::QueryRouteResponse, Status>;

    /// Where RocketMQ 5 clients reach the queues of `broker`
    /// (`host:port`); `None` when no proxy serves them.
    fn endpoint(&self, broker: &names::BrokerData) -> Option<String>;

    /// Whether this proxy sends to `broker` (local mode: its own broker
    /// only; the others have their own proxies).
    fn serves(&self, broker: &names::BrokerData) -> bool;

    /// Stores messages of one topic in one queue of `broker_name`.
    async fn send(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::SendBatchRequest,
    ) -> Result<broker::SendBatchResponse, Status>;

    /// Pops messages of a topic from `broker_name` for a group.
    async fn pop(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::PopMessagesRequest,
    ) -> Result<broker::PopMessagesResponse, Status>;

    /// Acknowledges popped messages of `broker_name`.
    async fn ack(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::AckMessagesRequest,
    ) -> Result<broker::AckMessagesResponse, Status>;

    /// Moves a popped message's invisible time.
    async fn change_invisible(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::ChangeInvisibleTimeRequest,
    ) -> Result<broker::ChangeInvisibleTimeResponse, Status>;

    /// Hands a message to the group's dead-letter topic.
    async fn send_back(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::ConsumerSendBackRequest,
    ) -> Result<broker::ConsumerSendBackResponse, Status>;

    /// Reports a RocketMQ 5 consumer as a member of its group, so that
    /// operators see it beside our SDK's consumers.
    async fn heartbeat(&self, call: &Call, request: broker::HeartbeatRequest)
    -> Result<(), Status>;

    /// A RocketMQ 5 consumer left its group.
    async fn unregister(
        &self,
        call: &Call,
        request: broker::UnregisterConsumerRequest,
    ) -> Result<(), Status>;

    /// Reads messages of one queue from an offset (RocketMQ 5's pull
    /// consumer keeps its own offsets).
    async fn pull(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::PullMessageRequest,
    ) -> Result<broker::PullMessageResponse, Status>;

    /// Commits a group's offset of one queue.
    async fn commit_offset(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::CommitOffsetRequest,
    ) -> Result<(), Status>;

    /// A group's committed offset of one queue.
    async fn committed_offset(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::QueryOffsetRequest,
    ) -> Result<broker::QueryOffsetResponse, Status>;

    /// Stores a transaction's half message on `broker_name`.
    async fn send_half(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::SendHalfMessageRequest,
    ) -> Result<broker::SendHalfMessageResponse, Status>;

    /// Commits or rolls back a transaction of `broker_name`.
    async fn end_transaction(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::EndTransactionRequest,
    ) -> Result<broker::EndTransactionResponse, Status>;

    /// A producer session with `broker_name`: the checks of the group's
    /// open transactions, while the stream is kept.
    async fn producer_session(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::ProducerSessionRequest,
    ) -> Result<CheckStream, Status>;

    /// A queue's first and end offsets, or the first at a time.
    async fn queue_offsets(
        &self,
        call: &Call,
        broker_name: &str,
        request: broker::GetQueueOffsetsRequest,
    ) -> Result<broker::GetQueueOffsetsResponse, Status>;
}
