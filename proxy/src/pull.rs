//! RocketMQ 5's pull consumer: PullMessage reads one queue from an offset
//! the client keeps; UpdateOffset, GetOffset and QueryOffset commit, read
//! and look up offsets. Each names its queue (topic, broker, id), and goes
//! to that broker.

use std::time::Duration;

use mq_auth::model::{Action, Target};
use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use mq_proto::broker::v1 as broker;
use tonic::Request;

use crate::backend::Call;
use crate::filter::BrokerFilter;
use crate::message;
use crate::route;
use crate::service::MessagingProxy;
use crate::status::Refusal;

/// The most messages one PullMessage returns.
const MAX_PULL_BATCH: i32 = 1024;
/// The longest a pull is held.
const MAX_PULL_POLL: Duration = Duration::from_secs(30);

/// A queue a request names: (topic, namespace, broker, queue id).
fn queue_of(queue: &Option<v2::MessageQueue>) -> Result<(String, String, String, u32), Refusal> {
    let queue = queue
        .as_ref()
        .ok_or_else(|| Refusal::new(Code::BadRequest, "message_queue is required"))?;
    let (topic, namespace) = queue
        .topic
        .as_ref()
        .map(|t| (t.name.clone(), t.resource_namespace.clone()))
        .unwrap_or_default();
    mq_common::validate::topic("message_queue.topic", &topic)
        .map_err(|e| Refusal::new(Code::IllegalTopic, e.to_string()))?;
    let broker = queue
        .broker
        .as_ref()
        .map(|b| b.name.clone())
        .unwrap_or_default();
    if broker.is_empty() {
        return Err(Refusal::new(
            Code::BadRequest,
            "message_queue.broker.name is required: take the queue from the topic's route",
        ));
    }
    let id = u32::try_from(queue.id).map_err(|_| {
        Refusal::new(
            Code::BadRequest,
            format!("message_queue.id {} is not a queue id", queue.id),
        )
    })?;
    Ok((topic, namespace, broker, id))
}

fn offset_of(offset: i64) -> Result<u64, Refusal> {
    u64::try_from(offset)
        .map_err(|_| Refusal::new(Code::BadRequest, format!("offset {offset} is negative")))
}

impl MessagingProxy {
    /// Messages of one queue from an offset, and where the next pull starts.
    pub(crate) async fn pull_inner(
        &self,
        request: Request<v2::PullMessageRequest>,
    ) -> Result<(Vec<v2::Message>, i64), Refusal> {
        let body = request.get_ref();
        let (topic, namespace, broker_name, queue_id) = queue_of(&body.message_queue)?;
        let group = self.consumer(&request, &body.group, &topic)?;
        if !(1..=MAX_PULL_BATCH).contains(&body.batch_size) {
            return Err(Refusal::new(
                Code::BadRequest,
                format!(
                    "batch_size {} is out of range 1..={MAX_PULL_BATCH}",
                    body.batch_size
                ),
            ));
        }
        let filter = BrokerFilter::checked(body.filter_expression.as_ref())?;
        let poll = body
            .long_polling_timeout
            .as_ref()
            .and_then(|d| {
                Some(Duration::new(
                    u64::try_from(d.seconds).ok()?,
                    u32::try_from(d.nanos).ok()?,
                ))
            })
            .unwrap_or_default()
            .min(MAX_PULL_POLL);
        let topic_type = route::message_type(&self.route(&topic).await?);
        let call = Call {
            extensions: request.extensions().clone(),
        };
        let pulled = self
            .backend()
            .pull(
                &call,
                &broker_name,
                broker::PullMessageRequest {
                    group,
                    topic,
                    queue_id,
                    offset: offset_of(body.offset)?,
                    max_messages: body.batch_size as u32,
                    max_bytes: 0,
                    tag_expression: filter.tag_expression,
                    suspend_timeout_ms: poll.as_millis() as u64,
                    sql_expression: filter.sql_expression,
                },
            )
            .await?;
        if pulled.status == broker::PullStatus::OffsetIllegal as i32 {
            return Err(Refusal::new(
                Code::BadRequest,
                format!(
                    "offset {} is outside the queue's {}..={}; go on from {}",
                    body.offset, pulled.min_offset, pulled.max_offset, pulled.next_offset
                ),
            ));
        }
        let messages = pulled
            .messages
            .into_iter()
            .filter_map(|stored| {
                message::incoming(
                    broker::PoppedMessage {
                        message: Some(stored),
                        ..Default::default()
                    },
                    &namespace,
                    topic_type,
                )
            })
            .map(|mut m| {
                // Pulled, not popped: no delivery to acknowledge.
                if let Some(system) = m.system_properties.as_mut() {
                    system.receipt_handle = None;
                    system.invisible_duration = None;
                    system.delivery_attempt = None;
                }
                m
            })
            .collect();
        Ok((messages, pulled.next_offset as i64))
    }

    pub(crate) async fn update_offset_inner(
        &self,
        request: Request<v2::UpdateOffsetRequest>,
    ) -> Result<(), Refusal> {
        let body = request.get_ref();
        let (topic, _, broker_name, queue_id) = queue_of(&body.message_queue)?;
        let group = self.consumer(&request, &body.group, &topic)?;
        let call = Call {
            extensions: request.extensions().clone(),
        };
        self.backend()
            .commit_offset(
                &call,
                &broker_name,
                broker::CommitOffsetRequest {
                    group,
                    topic,
                    queue_id,
                    offset: offset_of(body.offset)?,
                    // The client owns its offsets: its commit stands.
                    offset_reset_version: u64::MAX,
                },
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn get_offset_inner(
        &self,
        request: Request<v2::GetOffsetRequest>,
    ) -> Result<i64, Refusal> {
        let body = request.get_ref();
        let (topic, _, broker_name, queue_id) = queue_of(&body.message_queue)?;
        let group = self.consumer(&request, &body.group, &topic)?;
        let call = Call {
            extensions: request.extensions().clone(),
        };
        let committed = self
            .backend()
            .committed_offset(
                &call,
                &broker_name,
                broker::QueryOffsetRequest {
                    group: group.clone(),
                    topic: topic.clone(),
                    queue_id,
                },
            )
            .await?;
        committed.offset.map(|o| o as i64).ok_or_else(|| {
            Refusal::new(
                Code::NotFound,
                format!(
                    "group {group:?} committed no offset for {topic}:{queue_id} on {broker_name}"
                ),
            )
        })
    }

    pub(crate) async fn query_offset_inner(
        &self,
        request: Request<v2::QueryOffsetRequest>,
    ) -> Result<i64, Refusal> {
        let body = request.get_ref();
        let (topic, _, broker_name, queue_id) = queue_of(&body.message_queue)?;
        self.authorize(&request, &[Action::Sub, Action::Get], Target::topic(&topic))?;
        let policy = v2::QueryOffsetPolicy::try_from(body.query_offset_policy).map_err(|_| {
            Refusal::new(
                Code::BadRequest,
                format!(
                    "query_offset_policy {} is unknown",
                    body.query_offset_policy
                ),
            )
        })?;
        let timestamp_ms = match (policy, &body.timestamp) {
            (v2::QueryOffsetPolicy::Timestamp, Some(t)) => Some(
                u64::try_from(t.seconds.saturating_mul(1000) + i64::from(t.nanos / 1_000_000))
                    .map_err(|_| Refusal::new(Code::BadRequest, "timestamp is before 1970"))?,
            ),
            (v2::QueryOffsetPolicy::Timestamp, None) => {
                return Err(Refusal::new(
                    Code::BadRequest,
                    "query_offset_policy TIMESTAMP needs a timestamp",
                ));
            }
            _ => None,
        };
        let call = Call {
            extensions: request.extensions().clone(),
        };
        let offsets = self
            .backend()
            .queue_offsets(
                &call,
                &broker_name,
                broker::GetQueueOffsetsRequest {
                    topic,
                    queue_id,
                    timestamp_ms,
                },
            )
            .await?;
        Ok(match policy {
            v2::QueryOffsetPolicy::Beginning => offsets.min_offset,
            v2::QueryOffsetPolicy::End => offsets.max_offset,
            v2::QueryOffsetPolicy::Timestamp => offsets.search_offset,
        } as i64)
    }
}
