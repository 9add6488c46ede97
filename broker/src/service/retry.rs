//! The retry path: messages a consumer failed come back through the
//! group's retry topic with a growing delay, and become dead letters after
//! too many attempts; an admin can send dead letters back.

use std::sync::Arc;

use mq_common::{FieldError, validate};
use mq_proto::broker::v1 as pb;
use mq_store::{MessageStore, MessageToStore, StoredMessage, TagFilter};

use crate::error::BrokerError;
use crate::schedule::{self, DelayTable, property};
use crate::service::INDEX_PATIENCE;
use crate::topic_table::{TopicConfig, TopicTable};

/// Most dead letters one `ResendDeadLetters` call reads.
const MAX_RESEND_SCAN: usize = 100_000;

pub use mq_common::system_topics::{dlq_topic as dead_letter_topic, retry_topic};

#[derive(Debug, Clone)]
pub struct RetryPath {
    pub store: Arc<MessageStore>,
    pub topics: Arc<TopicTable>,
    pub delays: Arc<DelayTable>,
    /// Used when a group does not say.
    pub max_reconsume_times: u32,
    pub retry_first_level: u32,
    pub role: crate::replication::Role,
    pub broker_name: String,
}

impl RetryPath {
    pub async fn send_back(
        &self,
        request: pb::ConsumerSendBackRequest,
    ) -> Result<pb::ConsumerSendBackResponse, BrokerError> {
        self.role.check_writable(&self.broker_name)?;
        validate::topic("group", &request.group)?;
        validate::topic("topic", &request.topic)?;
        let msg = self.message_at(&request.topic, request.queue_id, request.queue_offset)?;
        if !request.unique_id.is_empty()
            && msg.unique_id.as_deref() != Some(request.unique_id.as_str())
        {
            return Err(FieldError::new(
                "unique_id",
                format!(
                    "{:?} is not the id of the message at {}:{}:{}",
                    request.unique_id, request.topic, request.queue_id, request.queue_offset
                ),
            )
            .into());
        }
        let max = match request.max_reconsume_times {
            0 => self.max_reconsume_times,
            n => n,
        };
        let mut out = msg.to_store();
        out.queue_id = 0;
        out.reconsume_times += 1;
        // The first consumption names the topic and queue for good.
        out.properties
            .entry(property::RETRY_TOPIC.into())
            .or_insert_with(|| msg.topic.clone());
        out.properties
            .entry(property::ORIGIN_QUEUE_ID.into())
            .or_insert_with(|| msg.queue_id.to_string());
        out.fired_from = None;
        out.delay_level = None;

        if request.dead_letter || msg.reconsume_times >= max {
            out.topic = self.internal_topic(dead_letter_topic(&request.group))?;
            self.store.put(out).await?;
            tracing::info!(group = %request.group, id = msg.unique_id.as_deref().unwrap_or(""), reconsume_times = msg.reconsume_times, "message became a dead letter");
            return Ok(pb::ConsumerSendBackResponse {
                dead_lettered: true,
                reconsume_times: msg.reconsume_times,
                delay_level: 0,
            });
        }
        out.topic = self.internal_topic(retry_topic(&request.group))?;
        let level = (self.retry_first_level + msg.reconsume_times).min(self.delays.level_count());
        let delay = self.delays.level(level).unwrap_or_default();
        let now = mq_common::clock::unix_millis();
        let at = now + u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let reconsume_times = out.reconsume_times;
        self.store
            .put(schedule::schedule(out, &self.delays, at, Some(level), now))
            .await?;
        Ok(pb::ConsumerSendBackResponse {
            dead_lettered: false,
            reconsume_times,
            delay_level: level,
        })
    }

    /// Sends the group's dead letters (or the one with `unique_id`) back
    /// to the queue they were first consumed from, counts reset. The dead
    /// letters stay where they are: resending twice sends twice.
    pub async fn resend_dead_letters(
        &self,
        request: pb::ResendDeadLettersRequest,
    ) -> Result<pb::ResendDeadLettersResponse, BrokerError> {
        self.role.check_writable(&self.broker_name)?;
        validate::topic("group", &request.group)?;
        let dlq = dead_letter_topic(&request.group);
        // A letter dead-lettered just before must be found.
        self.store.indexed_up_to_now(INDEX_PATIENCE).await;
        let Some((min, max)) = self.store.queue_offsets(&dlq, 0) else {
            return Err(BrokerError::NoMessage(format!(
                "group {:?} has no dead letters on this broker",
                request.group
            )));
        };
        let mut resent = 0;
        let mut offset = min;
        while offset < max && (offset - min) < MAX_RESEND_SCAN as u64 {
            let read = self
                .store
                .get_messages(&dlq, 0, offset, 64, usize::MAX, &TagFilter::All);
            if read.messages.is_empty() {
                break;
            }
            offset = read.next_offset;
            for letter in read.messages {
                if !request.unique_id.is_empty()
                    && letter.unique_id.as_deref() != Some(request.unique_id.as_str())
                {
                    continue;
                }
                self.store.put(self.revived(&letter)).await?;
                resent += 1;
            }
        }
        if resent == 0 && !request.unique_id.is_empty() {
            return Err(BrokerError::NoMessage(format!(
                "no dead letter of group {:?} has id {:?}",
                request.group, request.unique_id
            )));
        }
        tracing::info!(group = %request.group, resent, "dead letters resent");
        Ok(pb::ResendDeadLettersResponse { resent })
    }

    /// A dead letter as a fresh message of the queue it came from.
    fn revived(&self, letter: &StoredMessage) -> MessageToStore {
        let mut msg = letter.to_store();
        if let Some(topic) = msg.properties.remove(property::RETRY_TOPIC) {
            msg.topic = topic;
        }
        let queue = msg
            .properties
            .remove(property::ORIGIN_QUEUE_ID)
            .and_then(|q| q.parse::<u32>().ok())
            .unwrap_or(0);
        let queues = self
            .topics
            .get(&msg.topic)
            .map_or(1, |c| c.write_queue_count);
        msg.fired_from = None;
        msg.queue_id = if queue < queues { queue } else { 0 };
        msg.reconsume_times = 0;
        msg
    }

    fn message_at(
        &self,
        topic: &str,
        queue: u32,
        offset: u64,
    ) -> Result<StoredMessage, BrokerError> {
        self.store
            .get_messages(topic, queue, offset, 1, usize::MAX, &TagFilter::All)
            .messages
            .into_iter()
            .find(|m| m.queue_offset == offset)
            .ok_or_else(|| {
                BrokerError::NoMessage(format!(
                    "no message at offset {offset} of {topic}:{queue} on this broker"
                ))
            })
    }

    /// Creates the one-queue internal topic if needed; returns its name.
    fn internal_topic(&self, topic: String) -> Result<String, BrokerError> {
        if self.topics.get(&topic).is_none() {
            self.topics.get_or_create(TopicConfig::new(&topic, 1))?;
        }
        Ok(topic)
    }
}
