//! The gRPC edge of the broker: `mq.broker.v1.Broker`, one file per RPC
//! family, each translating wire types at the edge.

pub mod admin;
pub mod consumer;
pub mod filter;
mod numbered;
pub mod pull;
pub mod pull_budget;
pub mod retry;
pub mod send;
pub mod send_many;
pub mod session;
mod together;
pub mod topics;
pub mod transaction;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_server::Broker;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::error::BrokerError;
use mq_auth::guard::Guard;
use mq_auth::model::{Action, Target};

use crate::topic_table::TopicTable;
use consumer::ConsumerPath;
use pull::PullPath;
use send::SendPath;

/// How long a request that must see every message acknowledged before it
/// waits for the dispatcher to index them (it is microseconds behind).
pub(crate) const INDEX_PATIENCE: Duration = Duration::from_secs(1);

fn now_ms() -> u64 {
    mq_common::clock::unix_millis()
}

/// Serves `mq.broker.v1.Broker`.
#[derive(Debug, Clone)]
pub struct BrokerService {
    pub send: SendPath,
    pub pull: PullPath,
    pub consumers: ConsumerPath,
    pub retry: retry::RetryPath,
    pub admin: admin::AdminPath,
    pub pop: crate::pop::PopPath,
    pub transactions: transaction::TransactionPath,
    pub metrics: crate::metrics::BrokerMetrics,
    pub topics: Arc<TopicTable>,
    /// Who may do what: every handler checks its request first.
    pub guard: Guard,
}

type RpcResult<T> = Result<Response<T>, Status>;

/// The topic a send names (empty when the message is missing: the send
/// path refuses it after the check).
fn topic_of(message: Option<&pb::Message>) -> &str {
    message.map_or("", |m| m.topic.as_str())
}

/// Which latency histogram a request feeds.
#[derive(Debug, Clone, Copy)]
enum Path {
    Send,
    Pull,
}

impl BrokerService {
    /// Refuses an operator's change on a replica: topics and offset resets
    /// are the master's, and replicas take them from it.
    fn writable(&self) -> Result<(), BrokerError> {
        self.send.role.check_writable(&self.send.broker_name)
    }

    /// A consumer's heartbeat or session: it consumes as its group, every
    /// topic it subscribes to.
    fn check_subscriber(&self, request: &Request<pb::HeartbeatRequest>) -> Result<(), Status> {
        let heartbeat = request.get_ref();
        self.guard
            .check(request, Action::Sub, Target::group(&heartbeat.group))?;
        for subscription in &heartbeat.subscriptions {
            self.guard
                .check(request, Action::Sub, Target::topic(&subscription.topic))?;
        }
        Ok(())
    }

    /// POP consumes as the group, from the topic.
    fn check_popper<T>(
        &self,
        request: &Request<T>,
        group: &str,
        topic: &str,
    ) -> Result<(), Status> {
        self.guard
            .check(request, Action::Sub, Target::group(group))?;
        self.guard.check(request, Action::Sub, Target::topic(topic))
    }

    /// Records a request's latency, or its refusal by reason.
    fn observe<T>(
        &self,
        result: Result<T, BrokerError>,
        started: Instant,
        path: Path,
    ) -> Result<T, BrokerError> {
        match &result {
            Ok(_) => match path {
                Path::Send => self.metrics.send_took(started.elapsed()),
                Path::Pull => self.metrics.pull_took(started.elapsed()),
            },
            Err(err) => self.metrics.rejected(err),
        }
        result
    }
}

#[tonic::async_trait]
impl Broker for BrokerService {
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> RpcResult<pb::SendMessageResponse> {
        let topic = topic_of(request.get_ref().message.as_ref());
        self.guard
            .check(&request, Action::Pub, Target::topic(topic))?;
        let peer = request.remote_addr();
        let request = request.into_inner();
        let span = tracing::debug_span!(
            "send",
            topic = request.message.as_ref().map_or("", |m| m.topic.as_str()),
            queue = request.queue_id,
        );
        let started = Instant::now();
        let result = self.send.send(request, peer).instrument(span).await;
        let result = self.observe(result, started, Path::Send)?;
        Ok(Response::new(pb::SendMessageResponse {
            result: Some(result),
        }))
    }

    async fn send_many(
        &self,
        request: Request<pb::SendManyRequest>,
    ) -> RpcResult<pb::SendManyResponse> {
        let span = tracing::debug_span!("send_many", sends = request.get_ref().sends.len());
        Ok(Response::new(
            self.store_many(request).instrument(span).await?,
        ))
    }

    async fn get_broker_stats(
        &self,
        request: Request<pb::GetBrokerStatsRequest>,
    ) -> RpcResult<pb::GetBrokerStatsResponse> {
        self.guard.check(&request, Action::Get, Target::Cluster)?;
        Ok(Response::new(self.admin.stats()))
    }

    async fn get_consumer_progress(
        &self,
        request: Request<pb::GetConsumerProgressRequest>,
    ) -> RpcResult<pb::GetConsumerProgressResponse> {
        let group = Target::group(&request.get_ref().group);
        self.guard.check(&request, Action::Get, group)?;
        Ok(Response::new(
            self.admin.progress(request.into_inner()).await?,
        ))
    }

    async fn reset_offset(
        &self,
        request: Request<pb::ResetOffsetRequest>,
    ) -> RpcResult<pb::ResetOffsetResponse> {
        let group = Target::group(&request.get_ref().group);
        self.guard.check(&request, Action::Update, group)?;
        self.writable()?;
        Ok(Response::new(self.admin.reset(request.into_inner()).await?))
    }

    async fn view_message(
        &self,
        request: Request<pb::ViewMessageRequest>,
    ) -> RpcResult<pb::ViewMessageResponse> {
        // By id: the topic is known only once the message is read.
        self.guard.check(&request, Action::Get, Target::Cluster)?;
        Ok(Response::new(self.admin.view(request.into_inner()).await?))
    }

    async fn query_message(
        &self,
        request: Request<pb::QueryMessageRequest>,
    ) -> RpcResult<pb::QueryMessageResponse> {
        let topic = Target::topic(&request.get_ref().topic);
        self.guard.check(&request, Action::Get, topic)?;
        Ok(Response::new(self.admin.query(request.into_inner()).await?))
    }

    async fn consumer_send_back(
        &self,
        request: Request<pb::ConsumerSendBackRequest>,
    ) -> RpcResult<pb::ConsumerSendBackResponse> {
        let group = Target::group(&request.get_ref().group);
        self.guard.check(&request, Action::Sub, group)?;
        Ok(Response::new(
            self.retry.send_back(request.into_inner()).await?,
        ))
    }

    async fn pop_messages(
        &self,
        request: Request<pb::PopMessagesRequest>,
    ) -> RpcResult<pb::PopMessagesResponse> {
        self.check_popper(&request, &request.get_ref().group, &request.get_ref().topic)?;
        let popped = self.pop.pop(request.into_inner()).await?;
        let mut hosts = wire::AddrText::default();
        Ok(Response::new(pb::PopMessagesResponse {
            messages: popped
                .into_iter()
                .map(|p| pb::PoppedMessage {
                    message: Some(wire::stored_message_with(p.message, &mut hosts)),
                    receipt_handle: p.handle.to_string(),
                    attempt: p.attempt,
                    visible_at_ms: p.visible_at_ms,
                })
                .collect(),
        }))
    }

    async fn send_half_message(
        &self,
        request: Request<pb::SendHalfMessageRequest>,
    ) -> RpcResult<pb::SendHalfMessageResponse> {
        let topic = topic_of(request.get_ref().message.as_ref());
        self.guard
            .check(&request, Action::Pub, Target::topic(topic))?;
        let peer = request.remote_addr();
        let started = Instant::now();
        let result = self
            .transactions
            .send_half(request.into_inner(), peer)
            .await;
        Ok(Response::new(self.observe(result, started, Path::Send)?))
    }

    async fn end_transaction(
        &self,
        request: Request<pb::EndTransactionRequest>,
    ) -> RpcResult<pb::EndTransactionResponse> {
        // Ending a transaction publishes to its topic (known once its half
        // message is found; an unknown one is answered NOT_FOUND below).
        if let Some(topic) = self
            .transactions
            .topic_of(&request.get_ref().transaction_id)
            .await
        {
            self.guard
                .check(&request, Action::Pub, Target::topic(&topic))?;
        }
        let result = self.transactions.end(request.into_inner()).await;
        if let Err(err) = &result {
            self.metrics.rejected(err);
        }
        Ok(Response::new(result?))
    }

    type ProducerSessionStream = transaction::CheckStream;

    async fn producer_session(
        &self,
        request: Request<pb::ProducerSessionRequest>,
    ) -> RpcResult<Self::ProducerSessionStream> {
        // Checks carry the group's messages: the session needs Pub on the
        // producer group; the RocketMQ 5 proxy's group of a topic
        // (`%TX%{topic}`) is the topic's publishers.
        let group = &request.get_ref().producer_group;
        let target = match group.strip_prefix(mq_proxy::transaction::TOPIC_GROUP_PREFIX) {
            Some(topic) if mq_common::validate::topic("topic", topic).is_ok() => {
                Target::topic(topic)
            }
            _ => Target::group(group),
        };
        self.guard.check(&request, Action::Pub, target)?;
        Ok(Response::new(
            self.transactions.session(request.into_inner())?,
        ))
    }

    async fn ack_messages(
        &self,
        request: Request<pb::AckMessagesRequest>,
    ) -> RpcResult<pb::AckMessagesResponse> {
        self.check_popper(&request, &request.get_ref().group, &request.get_ref().topic)?;
        Ok(Response::new(self.pop.ack(request.into_inner())?))
    }

    async fn change_invisible_time(
        &self,
        request: Request<pb::ChangeInvisibleTimeRequest>,
    ) -> RpcResult<pb::ChangeInvisibleTimeResponse> {
        self.check_popper(&request, &request.get_ref().group, &request.get_ref().topic)?;
        Ok(Response::new(
            self.pop.change_invisible(request.into_inner())?,
        ))
    }

    async fn resend_dead_letters(
        &self,
        request: Request<pb::ResendDeadLettersRequest>,
    ) -> RpcResult<pb::ResendDeadLettersResponse> {
        let group = Target::group(&request.get_ref().group);
        self.guard.check(&request, Action::Update, group)?;
        Ok(Response::new(
            self.retry.resend_dead_letters(request.into_inner()).await?,
        ))
    }

    async fn send_batch(
        &self,
        request: Request<pb::SendBatchRequest>,
    ) -> RpcResult<pb::SendBatchResponse> {
        let topic = Target::topic(&request.get_ref().topic);
        self.guard.check(&request, Action::Pub, topic)?;
        let peer = request.remote_addr();
        let request = request.into_inner();
        let span = tracing::debug_span!(
            "send_batch",
            topic = %request.topic,
            queue = request.queue_id,
            messages = request.messages.len(),
        );
        let started = Instant::now();
        let results = self.send.send_batch(request, peer).instrument(span).await;
        let results = self.observe(results, started, Path::Send)?;
        Ok(Response::new(pb::SendBatchResponse { results }))
    }

    async fn create_topic(
        &self,
        request: Request<pb::CreateTopicRequest>,
    ) -> RpcResult<pb::CreateTopicResponse> {
        let topic = request
            .get_ref()
            .config
            .as_ref()
            .map_or("", |c| c.topic.as_str());
        self.guard
            .check(&request, Action::Create, Target::topic(topic))?;
        self.writable()?;
        topics::create(&self.topics, request.into_inner())?;
        Ok(Response::new(pb::CreateTopicResponse {}))
    }

    async fn delete_topic(
        &self,
        request: Request<pb::DeleteTopicRequest>,
    ) -> RpcResult<pb::DeleteTopicResponse> {
        let topic = Target::topic(&request.get_ref().topic);
        self.guard.check(&request, Action::Delete, topic)?;
        self.writable()?;
        let request = request.into_inner();
        let topic = request.topic.clone();
        topics::delete(
            &self.topics,
            &self.consumers.store,
            &self.consumers.offsets,
            request,
        )
        .await?;
        self.metrics.forget_topic(&topic);
        Ok(Response::new(pb::DeleteTopicResponse {}))
    }

    async fn list_topics(
        &self,
        request: Request<pb::ListTopicsRequest>,
    ) -> RpcResult<pb::ListTopicsResponse> {
        self.guard.check(&request, Action::List, Target::Cluster)?;
        Ok(Response::new(pb::ListTopicsResponse {
            topics: topics::list(&self.topics),
        }))
    }

    async fn pull_message(
        &self,
        request: Request<pb::PullMessageRequest>,
    ) -> RpcResult<pb::PullMessageResponse> {
        self.guard.check(
            &request,
            Action::Sub,
            Target::topic(&request.get_ref().topic),
        )?;
        self.guard.check(
            &request,
            Action::Sub,
            Target::group(&request.get_ref().group),
        )?;
        let client = request.remote_addr();
        let request = request.into_inner();
        let span = tracing::debug_span!(
            "pull",
            group = %request.group,
            topic = %request.topic,
            queue = request.queue_id,
            offset = request.offset,
        );
        let started = Instant::now();
        let pulled = self.pull.pull(request, client).instrument(span).await;
        let (pulled, held) = self.observe(pulled, started, Path::Pull)?;
        let mut response = Response::new(pulled);
        response
            .extensions_mut()
            .insert(pull_budget::InFlight(Arc::new(held)));
        Ok(response)
    }

    async fn get_queue_offsets(
        &self,
        request: Request<pb::GetQueueOffsetsRequest>,
    ) -> RpcResult<pb::GetQueueOffsetsResponse> {
        let topic = Target::topic(&request.get_ref().topic);
        self.guard
            .check_any(&request, &[Action::Sub, Action::Get], topic)?;
        Ok(Response::new(
            self.pull.queue_offsets(request.into_inner()).await?,
        ))
    }

    async fn commit_offset(
        &self,
        request: Request<pb::CommitOffsetRequest>,
    ) -> RpcResult<pb::CommitOffsetResponse> {
        self.guard.check(
            &request,
            Action::Sub,
            Target::group(&request.get_ref().group),
        )?;
        self.guard.check(
            &request,
            Action::Sub,
            Target::topic(&request.get_ref().topic),
        )?;
        self.consumers.commit(request.into_inner())?;
        Ok(Response::new(pb::CommitOffsetResponse {}))
    }

    async fn query_offset(
        &self,
        request: Request<pb::QueryOffsetRequest>,
    ) -> RpcResult<pb::QueryOffsetResponse> {
        let group = Target::group(&request.get_ref().group);
        self.guard
            .check_any(&request, &[Action::Sub, Action::Get], group)?;
        Ok(Response::new(self.consumers.query(request.into_inner())?))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> RpcResult<pb::HeartbeatResponse> {
        self.check_subscriber(&request)?;
        let request = request.into_inner();
        let span = tracing::debug_span!(
            "heartbeat",
            group = %request.group,
            client_id = %request.client_id,
        );
        let _entered = span.enter();
        Ok(Response::new(self.consumers.heartbeat(request, now_ms())?))
    }

    type ConsumerSessionStream = session::SessionStream;

    async fn consumer_session(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> RpcResult<Self::ConsumerSessionStream> {
        self.check_subscriber(&request)?;
        let request = request.into_inner();
        Ok(Response::new(self.consumers.session(request, now_ms())?))
    }

    async fn unregister_consumer(
        &self,
        request: Request<pb::UnregisterConsumerRequest>,
    ) -> RpcResult<pb::UnregisterConsumerResponse> {
        let group = Target::group(&request.get_ref().group);
        self.guard.check(&request, Action::Sub, group)?;
        self.consumers.unregister(request.into_inner())?;
        Ok(Response::new(pb::UnregisterConsumerResponse {}))
    }

    async fn get_consumer_list(
        &self,
        request: Request<pb::GetConsumerListRequest>,
    ) -> RpcResult<pb::GetConsumerListResponse> {
        let group = Target::group(&request.get_ref().group);
        self.guard
            .check_any(&request, &[Action::Sub, Action::Get], group)?;
        Ok(Response::new(self.consumers.members(request.into_inner())?))
    }

    async fn lock_queues(
        &self,
        request: Request<pb::LockQueuesRequest>,
    ) -> RpcResult<pb::LockQueuesResponse> {
        let group = Target::group(&request.get_ref().group);
        self.guard.check(&request, Action::Sub, group)?;
        Ok(Response::new(
            self.consumers.lock(request.into_inner(), now_ms())?,
        ))
    }

    async fn unlock_queues(
        &self,
        request: Request<pb::UnlockQueuesRequest>,
    ) -> RpcResult<pb::UnlockQueuesResponse> {
        let group = Target::group(&request.get_ref().group);
        self.guard.check(&request, Action::Sub, group)?;
        self.consumers.unlock(request.into_inner())?;
        Ok(Response::new(pb::UnlockQueuesResponse {}))
    }
}
