//! Sends: check, admit under backpressure, append, answer where it went.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mq_common::{FieldError, offset_id};
use mq_proto::broker::v1 as pb;
use mq_store::MessageStore;

use crate::backpressure::Backpressure;
use crate::error::BrokerError;
use crate::schedule::{self, DelayTable};
use crate::service::numbered::Numbered;
use crate::service::together::{Prepared, next_outcome};
use crate::service::wire;
use crate::topic_table::{TopicConfig, TopicTable};

/// What sends need.
#[derive(Debug, Clone)]
pub struct SendPath {
    pub store: Arc<MessageStore>,
    pub topics: Arc<TopicTable>,
    pub pressure: Backpressure,
    pub auto_create_topic: bool,
    pub default_topic_queues: u32,
    /// The address stamped on records and in offset message ids.
    pub store_host: SocketAddr,
    pub max_message_size: u32,
    pub delays: Arc<DelayTable>,
    pub max_delivery_delay: Duration,
    pub metrics: crate::metrics::BrokerMetrics,
    pub role: crate::replication::Role,
    pub broker_name: String,
    /// Sync replication: sends wait for replicas here.
    pub sync_replication: Option<crate::replication::SyncReplication>,
    pub replicas: Arc<crate::replication::replicas::Replicas>,
}

impl SendPath {
    /// With sync replication, waits for the replicas to reach `end_offset`
    /// (the end of what a send appended); the status says if they did not.
    pub(crate) async fn replicated(&self, status: i32, end_offset: Option<u64>) -> i32 {
        use crate::replication::replicas::ReplicaWait;
        let (Some(sync), Some(end)) = (&self.sync_replication, end_offset) else {
            return status;
        };
        let wait = self
            .replicas
            .wait_for(end, sync.min_in_sync, sync.timeout)
            .await;
        match wait {
            // A disk timeout says more than a replica's.
            _ if status != pb::SendStatus::SendOk as i32 => status,
            ReplicaWait::Acked => status,
            ReplicaWait::TimedOut => pb::SendStatus::FlushSlaveTimeout as i32,
            ReplicaWait::NotAvailable => pb::SendStatus::SlaveNotAvailable as i32,
        }
    }

    pub async fn send(
        &self,
        request: pb::SendMessageRequest,
        peer: Option<SocketAddr>,
    ) -> Result<pb::SendResult, BrokerError> {
        let send = self.prepare_message(request, peer)?;
        let mut results = self.store_one(send).await?;
        lost_answer()?;
        Ok(results.remove(0))
    }

    pub async fn send_batch(
        &self,
        request: pb::SendBatchRequest,
        peer: Option<SocketAddr>,
    ) -> Result<Vec<pb::SendResult>, BrokerError> {
        let send = self.prepare_batch(request, peer)?;
        let results = self.store_one(send).await?;
        lost_answer()?;
        Ok(results)
    }

    async fn store_one(&self, send: Prepared) -> Result<Vec<pb::SendResult>, BrokerError> {
        next_outcome(&mut self.store_together(vec![send]).await.into_iter())
    }

    /// One message, checked and made storable.
    pub(super) fn prepare_message(
        &self,
        request: pb::SendMessageRequest,
        peer: Option<SocketAddr>,
    ) -> Result<Prepared, BrokerError> {
        self.role.check_writable(&self.broker_name)?;
        let msg = request
            .message
            .ok_or_else(|| FieldError::new("message", "is required"))?;
        let numbered = Numbered::of(request.producer_id, request.sequence);
        let topic = msg.topic.clone();
        self.prepare(
            topic,
            request.queue_id,
            vec![("message".into(), msg)],
            peer,
            numbered,
        )
    }

    /// A batch, checked and made storable.
    pub(super) fn prepare_batch(
        &self,
        request: pb::SendBatchRequest,
        peer: Option<SocketAddr>,
    ) -> Result<Prepared, BrokerError> {
        self.role.check_writable(&self.broker_name)?;
        if request.messages.is_empty() {
            return Err(FieldError::new("messages", "must not be empty").into());
        }
        if request.messages.len() > mq_common::validate::MAX_BATCH_MESSAGES {
            return Err(FieldError::new(
                "messages",
                format!(
                    "{} messages in one batch; at most {}",
                    request.messages.len(),
                    mq_common::validate::MAX_BATCH_MESSAGES
                ),
            )
            .into());
        }
        let mut messages = Vec::with_capacity(request.messages.len());
        for (i, mut msg) in request.messages.into_iter().enumerate() {
            if msg.topic.is_empty() {
                msg.topic = request.topic.clone();
            } else if msg.topic != request.topic {
                return Err(FieldError::new(
                    format!("messages[{i}].topic"),
                    format!(
                        "{:?} differs from the batch's topic {:?}",
                        msg.topic, request.topic
                    ),
                )
                .into());
            }
            messages.push((format!("messages[{i}]"), msg));
        }
        let numbered = Numbered::of(request.producer_id, request.sequence);
        self.prepare(request.topic, request.queue_id, messages, peer, numbered)
    }

    /// Checks `messages` against the topic and the send rules and makes
    /// them records: what is left to do is storing them.
    fn prepare(
        &self,
        topic: String,
        queue_id: u32,
        messages: Vec<(String, pb::Message)>,
        peer: Option<SocketAddr>,
        numbered: Option<Numbered>,
    ) -> Result<Prepared, BrokerError> {
        mq_common::validate::topic("topic", &topic)?;
        mq_common::system_topics::check_not_reserved("topic", &topic)?;
        let config = self.writable_topic(&topic)?;
        if queue_id >= config.write_queue_count {
            return Err(FieldError::new(
                "queue_id",
                format!(
                    "{queue_id} is out of range: topic {topic:?} has {} write queues",
                    config.write_queue_count
                ),
            )
            .into());
        }
        let mut records = Vec::with_capacity(messages.len());
        let now_ms = mq_common::clock::unix_millis();
        for (i, (field, msg)) in messages.into_iter().enumerate() {
            let (level, deliver_at) = (msg.delay_level, msg.deliver_at_ms);
            let mut stored = wire::message(&field, msg, queue_id, self.max_message_size, peer)?;
            if let Some(numbered) = numbered {
                numbered.stamp(i, &mut stored.properties)?;
            }
            records.push(self.maybe_schedule(&field, stored, level, deliver_at, now_ms)?);
        }
        Ok(Prepared {
            topic,
            queue_id,
            records,
            numbered,
        })
    }

    pub(super) fn result(
        &self,
        status: i32,
        message_id: String,
        queue_id: u32,
        physical_offset: u64,
        queue_offset: u64,
    ) -> pb::SendResult {
        pb::SendResult {
            status,
            message_id,
            offset_message_id: offset_id::encode(self.store_host, physical_offset),
            queue_id,
            queue_offset,
        }
    }

    /// The message as it is stored: itself, or its schedule entry when it
    /// asks for a delay level or a delivery time (one in the past delivers
    /// at once).
    fn maybe_schedule(
        &self,
        field: &str,
        msg: mq_store::MessageToStore,
        level: u32,
        deliver_at_ms: u64,
        now_ms: u64,
    ) -> Result<mq_store::MessageToStore, FieldError> {
        match (level, deliver_at_ms) {
            (0, 0) => Ok(msg),
            (_, 0) => {
                let delay = self.delays.level(level).ok_or_else(|| {
                    FieldError::new(
                        format!("{field}.delay_level"),
                        format!(
                            "{level} is out of range: this broker's delay levels are 1 to {}",
                            self.delays.level_count()
                        ),
                    )
                })?;
                let at = now_ms + u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                Ok(schedule::schedule(
                    msg,
                    &self.delays,
                    at,
                    Some(level),
                    now_ms,
                ))
            }
            (0, at) if at <= now_ms => Ok(msg),
            (0, at) => {
                let ahead = Duration::from_millis(at - now_ms);
                if ahead > self.max_delivery_delay {
                    return Err(FieldError::new(
                        format!("{field}.deliver_at_ms"),
                        format!(
                            "{at} is {} ahead; this broker schedules at most {} ahead",
                            humantime::format_duration(Duration::from_secs(ahead.as_secs())),
                            humantime::format_duration(self.max_delivery_delay)
                        ),
                    ));
                }
                Ok(schedule::schedule(msg, &self.delays, at, None, now_ms))
            }
            _ => Err(FieldError::new(
                format!("{field}.delay_level"),
                "and deliver_at_ms exclude each other: set one",
            )),
        }
    }

    /// The topic's config if producers may write to it here, creating it
    /// first when auto-creation is on.
    pub(crate) fn writable_topic(&self, topic: &str) -> Result<TopicConfig, BrokerError> {
        let config = match self.topics.get(topic) {
            Some(config) => config,
            None if self.auto_create_topic => {
                let config = self
                    .topics
                    .get_or_create(TopicConfig::new(topic, self.default_topic_queues))?;
                tracing::info!(
                    topic,
                    queues = config.write_queue_count,
                    "topic auto-created"
                );
                config
            }
            None => return Err(BrokerError::UnknownTopic(topic.to_owned())),
        };
        if !config.perm().writable() {
            return Err(BrokerError::NoPermission {
                topic: topic.to_owned(),
                what: "writable",
                perm: config.perm().to_string(),
            });
        }
        Ok(config)
    }
}

/// Fail point `send::before_answer`: `return` loses the answer of a
/// stored send (an error that says nothing of what was stored, as a
/// dropped connection would), `sleep(ms)` holds it back (for a kill).
pub(super) fn lost_answer() -> Result<(), BrokerError> {
    fail::fail_point!("send::before_answer", |_| Err(internal(
        "the answer is lost (fail point send::before_answer)"
    )));
    Ok(())
}

pub(super) fn internal(what: &str) -> BrokerError {
    BrokerError::Store(mq_store::StoreError::Io {
        context: what.to_owned(),
        source: std::io::Error::other(what.to_owned()),
    })
}
