//! Consuming through the proxy: ReceiveMessage pops from a broker (the
//! broker keeps the group's place and the invisible times), AckMessage,
//! ChangeInvisibleDuration and ForwardMessageToDeadLetterQueue name a
//! delivery by its receipt handle, which also says which broker holds it.

use std::time::Duration;

use mq_auth::model::{Action, Target};
use mq_common::receipt_handle::ReceiptHandle;
use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use mq_proto::broker::v1 as broker;
use tonic::Request;

use crate::backend::Call;
use crate::filter::BrokerFilter;
use crate::message;
use crate::route;
use crate::service::MessagingProxy;
use crate::status::Refusal;

/// The longest a receive is held (a broker holds a pop at most 30 s).
const MAX_POLL: Duration = Duration::from_secs(30);
/// A receive answers this much before the client's long polling timeout
/// runs out: some clients (Rust 5.0.0) make it their call's deadline, and
/// a late answer would lease messages the client never sees.
const POLL_MARGIN: Duration = Duration::from_secs(1);
/// The largest batch one receive returns (RocketMQ's limit).
pub const MAX_BATCH: i32 = 32;
/// The longest invisible time (RocketMQ's limit).
const MAX_INVISIBLE: Duration = Duration::from_secs(12 * 3600);

fn duration_of(d: &prost_types::Duration) -> Option<Duration> {
    let seconds = u64::try_from(d.seconds).ok()?;
    let nanos = u32::try_from(d.nanos).ok()?;
    Some(Duration::new(seconds, nanos))
}

/// A refusal from a broker on the consuming side, in the protocol's terms
/// (the broker names the field at fault).
fn consume_refusal(status: tonic::Status) -> Refusal {
    let message = status.message();
    if status.code() == tonic::Code::InvalidArgument {
        if message.starts_with("receipt_handle") {
            return Refusal::new(Code::InvalidReceiptHandle, message);
        }
        if message.starts_with("invisible_ms") {
            return Refusal::new(Code::IllegalInvisibleTime, message);
        }
        if message.starts_with("group") {
            return Refusal::new(Code::IllegalConsumerGroup, message);
        }
    }
    Refusal::from(status)
}

fn name_of(resource: &Option<v2::Resource>) -> (&str, &str) {
    resource.as_ref().map_or(("", ""), |r| {
        (r.name.as_str(), r.resource_namespace.as_str())
    })
}

impl MessagingProxy {
    /// The group of a consumer's request, checked, once its caller may
    /// consume as the group from `topic`.
    pub(crate) fn consumer<T>(
        &self,
        request: &Request<T>,
        group: &Option<v2::Resource>,
        topic: &str,
    ) -> Result<String, Refusal> {
        let (group, _) = name_of(group);
        mq_common::validate::topic("group", group)
            .map_err(|e| Refusal::new(Code::IllegalConsumerGroup, e.to_string()))?;
        self.authorize(request, &[Action::Sub], Target::group(group))?;
        self.authorize(request, &[Action::Sub], Target::topic(topic))?;
        Ok(group.to_owned())
    }

    fn check_invisible(&self, invisible: Option<&prost_types::Duration>) -> Result<u64, Refusal> {
        let min = self.settings().min_invisible;
        let invisible = invisible.and_then(duration_of).ok_or_else(|| {
            Refusal::new(
                Code::IllegalInvisibleTime,
                "invisible_duration is required and must not be negative",
            )
        })?;
        if invisible < min || invisible > MAX_INVISIBLE {
            return Err(Refusal::new(
                Code::IllegalInvisibleTime,
                format!(
                    "invisible duration {invisible:?} is out of range {min:?}..={MAX_INVISIBLE:?}"
                ),
            ));
        }
        Ok(invisible.as_millis() as u64)
    }

    pub(crate) async fn receive_inner(
        &self,
        request: Request<v2::ReceiveMessageRequest>,
    ) -> Result<Vec<v2::Message>, Refusal> {
        let body = request.get_ref();
        let queue = body
            .message_queue
            .as_ref()
            .ok_or_else(|| Refusal::new(Code::BadRequest, "message_queue is required"))?;
        let (topic, namespace) = name_of(&queue.topic);
        let broker_name = queue.broker.as_ref().map_or("", |b| b.name.as_str());
        if broker_name.is_empty() {
            return Err(Refusal::new(
                Code::BadRequest,
                "message_queue.broker.name is required: take the queue from the topic's route",
            ));
        }
        let group = &self.consumer(&request, &body.group, topic)?;
        let invisible_ms = self.check_invisible(body.invisible_duration.as_ref())?;
        if !(1..=MAX_BATCH).contains(&body.batch_size) {
            return Err(Refusal::new(
                Code::BadRequest,
                format!(
                    "batch_size {} is out of range 1..={MAX_BATCH}",
                    body.batch_size
                ),
            ));
        }
        let filter = BrokerFilter::checked(body.filter_expression.as_ref())?;
        let polling = body
            .long_polling_timeout
            .as_ref()
            .and_then(duration_of)
            .unwrap_or(self.settings().long_polling_timeout);
        let poll = polling.min(MAX_POLL).saturating_sub(POLL_MARGIN);
        let route = self.route(topic).await?;
        let topic_type = route::message_type(&route);
        let call = Call {
            extensions: request.extensions().clone(),
        };
        let popped = self
            .backend()
            .pop(
                &call,
                broker_name,
                broker::PopMessagesRequest {
                    group: group.to_owned(),
                    topic: topic.to_owned(),
                    queue_id: -1,
                    max_messages: body.batch_size as u32,
                    invisible_ms,
                    tag_expression: filter.tag_expression,
                    poll_timeout_ms: poll.as_millis() as u64,
                    max_attempts: self.settings().max_delivery_attempts as u32,
                    fifo: topic_type == mq_common::MessageType::Fifo,
                    sql_expression: filter.sql_expression,
                },
            )
            .await
            .map_err(consume_refusal)?;
        Ok(popped
            .messages
            .into_iter()
            .filter_map(|p| message::incoming(p, namespace, topic_type))
            .collect())
    }

    /// The broker a receipt handle names.
    fn broker_of(handle: &str) -> Result<String, Refusal> {
        ReceiptHandle::parse(handle)
            .map(|h| h.broker_name)
            .map_err(|e| Refusal::new(Code::InvalidReceiptHandle, e.to_string()))
    }

    pub(crate) async fn ack_inner(
        &self,
        request: Request<v2::AckMessageRequest>,
    ) -> Result<Vec<v2::AckMessageResultEntry>, Refusal> {
        let body = request.get_ref();
        let (topic, _) = name_of(&body.topic);
        let group = &self.consumer(&request, &body.group, topic)?;
        if body.entries.is_empty() {
            return Err(Refusal::new(Code::BadRequest, "no entry to acknowledge"));
        }
        let call = Call {
            extensions: request.extensions().clone(),
        };
        let mut results = Vec::with_capacity(body.entries.len());
        for entry in &body.entries {
            let status = match Self::broker_of(&entry.receipt_handle) {
                Err(refusal) => refusal.0,
                Ok(broker_name) => {
                    let acked = self
                        .backend()
                        .ack(
                            &call,
                            &broker_name,
                            broker::AckMessagesRequest {
                                group: group.to_owned(),
                                topic: topic.to_owned(),
                                receipt_handles: vec![entry.receipt_handle.clone()],
                            },
                        )
                        .await;
                    match acked {
                        Err(status) => consume_refusal(status).0,
                        Ok(response) => match response.results.first() {
                            Some(result) if result.error.is_empty() => crate::status::ok(),
                            Some(result) => crate::status::failed(
                                Code::InvalidReceiptHandle,
                                result.error.clone(),
                            ),
                            None => crate::status::failed(
                                Code::InternalServerError,
                                "the broker answered no result",
                            ),
                        },
                    }
                }
            };
            results.push(v2::AckMessageResultEntry {
                message_id: entry.message_id.clone(),
                receipt_handle: entry.receipt_handle.clone(),
                status: Some(status),
            });
        }
        Ok(results)
    }

    pub(crate) async fn change_invisible_inner(
        &self,
        request: Request<v2::ChangeInvisibleDurationRequest>,
    ) -> Result<String, Refusal> {
        let body = request.get_ref();
        let (topic, _) = name_of(&body.topic);
        let group = &self.consumer(&request, &body.group, topic)?;
        let invisible_ms = self.check_invisible(body.invisible_duration.as_ref())?;
        let broker_name = Self::broker_of(&body.receipt_handle)?;
        let call = Call {
            extensions: request.extensions().clone(),
        };
        let changed = self
            .backend()
            .change_invisible(
                &call,
                &broker_name,
                broker::ChangeInvisibleTimeRequest {
                    group: group.to_owned(),
                    topic: topic.to_owned(),
                    receipt_handle: body.receipt_handle.clone(),
                    invisible_ms,
                },
            )
            .await
            .map_err(consume_refusal)?;
        Ok(changed.receipt_handle)
    }

    pub(crate) async fn forward_to_dead_letters_inner(
        &self,
        request: Request<v2::ForwardMessageToDeadLetterQueueRequest>,
    ) -> Result<(), Refusal> {
        let body = request.get_ref();
        let (topic, _) = name_of(&body.topic);
        let group = &self.consumer(&request, &body.group, topic)?;
        let handle = ReceiptHandle::parse(&body.receipt_handle)
            .map_err(|e| Refusal::new(Code::InvalidReceiptHandle, e.to_string()))?;
        let call = Call {
            extensions: request.extensions().clone(),
        };
        // Into the dead-letter topic first.
        self.backend()
            .send_back(
                &call,
                &handle.broker_name,
                broker::ConsumerSendBackRequest {
                    group: group.to_owned(),
                    topic: topic.to_owned(),
                    queue_id: handle.queue_id,
                    queue_offset: handle.offset,
                    unique_id: body.message_id.clone(),
                    max_reconsume_times: 0,
                    dead_letter: true,
                },
            )
            .await
            .map_err(consume_refusal)?;
        // Then out of the book: a copy in the dead-letter topic and a
        // failed acknowledgement is a duplicate, never a loss.
        let acked = self
            .backend()
            .ack(
                &call,
                &handle.broker_name,
                broker::AckMessagesRequest {
                    group: group.to_owned(),
                    topic: topic.to_owned(),
                    receipt_handles: vec![body.receipt_handle.clone()],
                },
            )
            .await
            .map_err(consume_refusal)?;
        if let Some(result) = acked.results.first()
            && !result.error.is_empty()
        {
            return Err(Refusal::new(
                Code::InvalidReceiptHandle,
                result.error.clone(),
            ));
        }
        Ok(())
    }
}
