//! Messages as a consumer receives them.

use std::collections::HashMap;

use bytes::Bytes;
use mq_proto::broker::v1 as pb;

use crate::queue::MessageQueue;

use mq_common::message::FLAG_COMPRESSED;
use mq_common::message::property::RETRY_TOPIC;
pub(crate) use mq_common::system_topics::RETRY_PREFIX;

pub use mq_common::system_topics::retry_topic;

/// A consumed message, body decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The topic the message was sent to; for a retry, the original topic
    /// (the queue is then the group's retry queue).
    pub topic: String,
    pub queue: MessageQueue,
    pub queue_offset: u64,
    pub tags: Option<String>,
    pub keys: Vec<String>,
    pub properties: HashMap<String, String>,
    pub body: Bytes,
    pub unique_id: String,
    pub offset_message_id: String,
    pub born_timestamp_ms: u64,
    pub store_timestamp_ms: u64,
    /// Deliveries of this message that ended in reconsume-later.
    pub reconsume_times: u32,
}

impl ReceivedMessage {
    pub(crate) fn from_wire(queue: &MessageQueue, msg: pb::StoredMessage) -> Result<Self, String> {
        let body = if msg.flags & FLAG_COMPRESSED != 0 {
            Bytes::from(mq_common::compression::decompress(&msg.body)?)
        } else {
            msg.body
        };
        let topic = if queue.topic.starts_with(RETRY_PREFIX) {
            msg.properties
                .get(RETRY_TOPIC)
                .cloned()
                .unwrap_or_else(|| queue.topic.clone())
        } else {
            queue.topic.clone()
        };
        Ok(ReceivedMessage {
            topic,
            queue: queue.clone(),
            queue_offset: msg.queue_offset,
            tags: (!msg.tags.is_empty()).then_some(msg.tags),
            keys: msg.keys,
            properties: msg.properties,
            body,
            unique_id: msg.unique_id,
            offset_message_id: msg.offset_message_id,
            born_timestamp_ms: msg.born_timestamp_ms,
            store_timestamp_ms: msg.store_timestamp_ms,
            reconsume_times: msg.reconsume_times,
        })
    }
}

/// What a handler says about the messages it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeResult {
    /// Done: the offset may move past them.
    Success,
    /// Deliver them again later: through the group's retry topic with a
    /// growing delay (concurrent mode), or in place after a pause (ordered
    /// mode); a message that fails too often becomes a dead letter.
    ReconsumeLater,
}
