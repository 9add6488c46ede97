//! Messages translated between RocketMQ 5's protocol and ours, with the
//! protocol's send rules checked on the way in: one topic per request, a
//! client-made message id, a message type that is the topic's (a FIFO
//! message carries a message group, a DELAY message a delivery time), no
//! reserved property names.
//!
//! The mapping: tag ↔ tags, keys ↔ keys, message group ↔ sharding key,
//! delivery timestamp ↔ delivery time, message id ↔ unique id, born
//! timestamp ↔ born time, user properties ↔ properties. The born host is
//! the address the message came from (clients send their host name; the
//! store keeps the address).

use mq_common::MessageType;
use mq_common::message::property;
use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use mq_proto::broker::v1 as broker;

use crate::route::v2_message_type;
use crate::status::Refusal;

/// Property names RocketMQ keeps for itself (its `MessageConst`): a user
/// property of one of these names is refused, as the official broker
/// refuses it.
pub const RESERVED_PROPERTIES: &[&str] = &[
    "KEYS",
    "TAGS",
    "WAIT",
    "DELAY",
    "RETRY_TOPIC",
    "REAL_TOPIC",
    "REAL_QID",
    "TRAN_MSG",
    "PGROUP",
    "MIN_OFFSET",
    "MAX_OFFSET",
    "BUYER_ID",
    "ORIGIN_MESSAGE_ID",
    "TRANSFER_FLAG",
    "CORRECTION_FLAG",
    "MQ2_FLAG",
    "RECONSUME_TIME",
    "MSG_REGION",
    "TRACE_ON",
    "UNIQ_KEY",
    "MAX_RECONSUME_TIMES",
    "CONSUME_START_TIME",
    "POP_CK",
    "POP_CK_OFFSET",
    "1ST_POP_TIME",
    "SHARDING_KEY",
    "__SHARDINGKEY",
    "TIMER_DELIVER_MS",
    "TIMER_DELAY_SEC",
    "TIMER_DELAY_MS",
    "TIMER_OUT_MS",
    "__transactionId__",
    "CLUSTER",
    "INNER_MULTI_DISPATCH",
];

/// Longest tag, key or message group (RocketMQ's limit).
const MAX_NAME_LEN: usize = 255;

/// The messages of one SendMessage request, checked against the topic's
/// type and translated; all of one topic and one message group.
#[derive(Debug)]
pub struct Outgoing {
    pub topic: String,
    /// The FIFO messages' group: it picks the queue.
    pub message_group: Option<String>,
    pub messages: Vec<broker::Message>,
}

/// Checks `messages` for a topic of type `topic_type` and bodies of at
/// most `max_body` bytes, and translates them.
pub fn outgoing(
    messages: Vec<v2::Message>,
    topic_type: MessageType,
    max_body: usize,
) -> Result<Outgoing, Refusal> {
    let Some(first) = messages.first() else {
        return Err(Refusal::new(Code::BadRequest, "no message to send"));
    };
    let topic = first
        .topic
        .as_ref()
        .map_or("", |t| t.name.as_str())
        .to_owned();
    let group = first
        .system_properties
        .as_ref()
        .and_then(|s| s.message_group.clone());
    let mut out = Vec::with_capacity(messages.len());
    for (i, message) in messages.into_iter().enumerate() {
        let this_topic = message.topic.as_ref().map_or("", |t| t.name.as_str());
        if this_topic != topic {
            return Err(Refusal::new(
                Code::BadRequest,
                format!(
                    "messages[{i}] is for topic {this_topic:?}; one request sends to one topic ({topic:?})"
                ),
            ));
        }
        let this_group = message
            .system_properties
            .as_ref()
            .and_then(|s| s.message_group.as_ref());
        if this_group != group.as_ref() {
            return Err(Refusal::new(
                Code::IllegalMessageGroup,
                format!(
                    "messages[{i}] has another message group than messages[0]; one request sends one group"
                ),
            ));
        }
        out.push(one(i, message, topic_type, max_body)?);
    }
    Ok(Outgoing {
        topic,
        message_group: group,
        messages: out,
    })
}

fn one(
    i: usize,
    message: v2::Message,
    topic_type: MessageType,
    max_body: usize,
) -> Result<broker::Message, Refusal> {
    let field = format!("messages[{i}]");
    let topic = message.topic.map(|t| t.name).unwrap_or_default();
    mq_common::validate::topic(&format!("{field}.topic"), &topic)
        .map_err(|e| Refusal::new(Code::IllegalTopic, e.to_string()))?;
    let system = message.system_properties.ok_or_else(|| {
        Refusal::new(
            Code::BadRequest,
            format!("{field}.system_properties is required"),
        )
    })?;
    if system.message_id.is_empty() {
        return Err(Refusal::new(
            Code::IllegalMessageId,
            format!(
                "{field}.system_properties.message_id is empty; clients make one id per message"
            ),
        ));
    }
    if message.body.is_empty() {
        return Err(Refusal::new(
            Code::BadRequest,
            format!("{field}.body is empty"),
        ));
    }
    if message.body.len() > max_body {
        return Err(Refusal::new(
            Code::MessageBodyTooLarge,
            format!(
                "{field}.body is {} bytes; at most {max_body}",
                message.body.len()
            ),
        ));
    }
    let message_type =
        v2::MessageType::try_from(system.message_type).unwrap_or(v2::MessageType::Unspecified);
    check_type(&field, message_type, topic_type, &system)?;
    if system.body_encoding == v2::Encoding::Gzip as i32 {
        return Err(Refusal::new(
            Code::Unsupported,
            format!("{field}: gzip-encoded bodies are not supported; send the body as it is"),
        ));
    }
    let tags = system.tag.unwrap_or_default();
    if !tags.is_empty() && (tags.len() > MAX_NAME_LEN || tags.contains("||") || tags.trim() != tags)
    {
        return Err(Refusal::new(
            Code::IllegalMessageTag,
            format!(
                "{field}: tag {tags:?} is not a single tag of at most {MAX_NAME_LEN} characters without spaces around it"
            ),
        ));
    }
    for (k, key) in system.keys.iter().enumerate() {
        if key.trim().is_empty() || key.contains(' ') || key.len() > MAX_NAME_LEN {
            return Err(Refusal::new(
                Code::IllegalMessageKey,
                format!(
                    "{field}: key {k} ({key:?}) must be non-empty, without spaces, at most {MAX_NAME_LEN} characters"
                ),
            ));
        }
    }
    let group = system.message_group.unwrap_or_default();
    if group.len() > MAX_NAME_LEN {
        return Err(Refusal::new(
            Code::IllegalMessageGroup,
            format!("{field}: the message group is longer than {MAX_NAME_LEN} characters"),
        ));
    }
    for key in message.user_properties.keys() {
        if key.is_empty() || RESERVED_PROPERTIES.contains(&key.as_str()) {
            return Err(Refusal::new(
                Code::IllegalMessagePropertyKey,
                format!("{field}: property name {key:?} is reserved by RocketMQ or empty"),
            ));
        }
    }
    let deliver_at_ms = system.delivery_timestamp.map_or(0, |t| timestamp_ms(&t));
    if system.delivery_timestamp.is_some() && deliver_at_ms == 0 {
        return Err(Refusal::new(
            Code::IllegalDeliveryTime,
            format!("{field}: the delivery timestamp is before 1970"),
        ));
    }
    Ok(broker::Message {
        topic,
        tags,
        keys: system.keys,
        properties: message.user_properties.into_iter().collect(),
        body: message.body,
        sharding_key: group,
        unique_id: system.message_id,
        born_timestamp_ms: system.born_timestamp.map_or(0, |t| timestamp_ms(&t)),
        // The address it came from (the broker stamps the caller's).
        born_host: String::new(),
        flags: 0,
        delay_level: 0,
        deliver_at_ms,
    })
}

/// A message's type must be its topic's, and its fields must fit it.
fn check_type(
    field: &str,
    message_type: v2::MessageType,
    topic_type: MessageType,
    system: &v2::SystemProperties,
) -> Result<(), Refusal> {
    let conflict = |why: String| Err(Refusal::new(Code::MessagePropertyConflictWithType, why));
    let expected = v2_message_type(topic_type);
    if message_type != expected {
        return conflict(format!(
            "{field} is a {} message; the topic accepts {} messages",
            message_type.as_str_name(),
            expected.as_str_name()
        ));
    }
    let has_group = system.message_group.as_ref().is_some_and(|g| !g.is_empty());
    let has_time = system.delivery_timestamp.is_some();
    match message_type {
        v2::MessageType::Fifo if !has_group => {
            conflict(format!("{field} is a FIFO message without a message group"))
        }
        v2::MessageType::Delay if !has_time => conflict(format!(
            "{field} is a DELAY message without a delivery timestamp"
        )),
        v2::MessageType::Normal if has_group || has_time => conflict(format!(
            "{field} is a NORMAL message with a message group or delivery timestamp"
        )),
        v2::MessageType::Transaction if has_group || has_time => conflict(format!(
            "{field} is a TRANSACTION message with a message group or delivery timestamp"
        )),
        _ => Ok(()),
    }
}

fn timestamp_ms(t: &prost_types::Timestamp) -> u64 {
    let ms = t.seconds.saturating_mul(1000) + i64::from(t.nanos / 1_000_000);
    u64::try_from(ms).unwrap_or(0)
}

/// Properties the brokers keep for themselves: not shown to clients as
/// user properties.
const INTERNAL_PROPERTIES: &[&str] = &[
    "SHARDING_KEY",
    property::RETRY_TOPIC,
    property::ORIGIN_QUEUE_ID,
    property::DELAY,
    property::REAL_TOPIC,
    property::REAL_QID,
    property::DELIVER_AT,
    property::FIRE_AT,
    property::FIRED_FROM,
    property::TRANSACTION,
    property::PRODUCER_GROUP,
    property::TRANSACTION_TOPIC,
    property::TRANSACTION_QUEUE,
    property::TRANSACTION_END_OF,
];

/// A popped message as RocketMQ 5 clients receive it.
pub fn incoming(
    popped: broker::PoppedMessage,
    namespace: &str,
    message_type: MessageType,
) -> Option<v2::Message> {
    let stored = popped.message?;
    let mut properties = stored.properties;
    let group = properties.remove("SHARDING_KEY").filter(|g| !g.is_empty());
    // A scheduled message fired into its queue keeps no due time; it was
    // due when it was stored there (within the scheduler's 20 ms tick).
    let deliver_at = properties
        .get(property::DELIVER_AT)
        .and_then(|at| at.parse::<u64>().ok())
        .or_else(|| {
            properties
                .contains_key(property::FIRED_FROM)
                .then_some(stored.store_timestamp_ms)
        });
    let retry_topic = properties.get(property::RETRY_TOPIC).cloned();
    properties.retain(|key, _| !INTERNAL_PROPERTIES.contains(&key.as_str()));
    let dead_letter_queue = (stored
        .topic
        .starts_with(mq_common::system_topics::DLQ_PREFIX))
    .then(|| v2::DeadLetterQueue {
        topic: retry_topic.unwrap_or_default(),
        message_id: stored.unique_id.clone(),
    });
    let digest = crc32fast::hash(&stored.body);
    let invisible_ms = popped
        .visible_at_ms
        .saturating_sub(mq_common::clock::unix_millis());
    Some(v2::Message {
        topic: Some(v2::Resource {
            resource_namespace: namespace.to_owned(),
            name: stored.topic,
        }),
        user_properties: properties.into_iter().collect(),
        system_properties: Some(v2::SystemProperties {
            tag: (!stored.tags.is_empty()).then_some(stored.tags),
            keys: stored.keys,
            message_id: stored.unique_id,
            body_digest: Some(v2::Digest {
                r#type: v2::DigestType::Crc32 as i32,
                checksum: format!("{digest:X}"),
            }),
            body_encoding: v2::Encoding::Identity as i32,
            message_type: v2_message_type(message_type) as i32,
            born_timestamp: Some(timestamp(stored.born_timestamp_ms)),
            born_host: host_of(&stored.born_host),
            store_timestamp: Some(timestamp(stored.store_timestamp_ms)),
            store_host: stored.store_host,
            delivery_timestamp: deliver_at.map(timestamp),
            receipt_handle: Some(popped.receipt_handle),
            queue_id: stored.queue_id as i32,
            queue_offset: Some(stored.queue_offset as i64),
            invisible_duration: Some(prost_types::Duration {
                seconds: (invisible_ms / 1000) as i64,
                nanos: ((invisible_ms % 1000) * 1_000_000) as i32,
            }),
            delivery_attempt: Some(popped.attempt as i32),
            message_group: group,
            trace_context: None,
            orphaned_transaction_recovery_duration: None,
            dead_letter_queue,
        }),
        body: stored.body,
    })
}

/// `ip:port` as the host alone (clients show where a message came from).
fn host_of(addr: &str) -> String {
    addr.parse::<std::net::SocketAddr>()
        .map_or_else(|_| addr.to_owned(), |a| a.ip().to_string())
}

fn timestamp(ms: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
