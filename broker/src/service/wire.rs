//! Translation between protobuf messages and the store's types, with the
//! send rules checked on the way in.

use std::net::SocketAddr;

use mq_common::{FieldError, offset_id, validate};
use mq_proto::broker::v1 as pb;
use mq_store::message::{Properties, property};
use mq_store::{MessageToStore, PutStatus, StoredMessage};

use crate::topic_table::TopicConfig;

/// Property names the broker sets itself; users may not.
const RESERVED: [&str; 9] = [
    property::TAGS,
    property::KEYS,
    property::UNIQUE_ID,
    SHARDING_KEY,
    property::TRANSACTION,
    property::PRODUCER_GROUP,
    property::TRANSACTION_TOPIC,
    property::TRANSACTION_QUEUE,
    property::TRANSACTION_END_OF,
];
/// Property carrying the sharding key of ordered messages.
pub const SHARDING_KEY: &str = "SHARDING_KEY";

/// Most bytes a message's properties may take encoded (tags, keys and its
/// unique id included): half of what a record holds, leaving room for the
/// properties the broker adds when it schedules or retries the message.
pub const MAX_PROPERTIES_LEN: usize = 32 << 10;

/// Checks a message and makes it storable in `queue_id`. `field` names
/// the message in errors (`message`, `messages[3]`); `peer` stands in for
/// a missing born host.
pub fn message(
    field: &str,
    msg: pb::Message,
    queue_id: u32,
    max_body: u32,
    peer: Option<SocketAddr>,
) -> Result<MessageToStore, FieldError> {
    let at = |name: &str| format!("{field}.{name}");
    validate::topic(&at("topic"), &msg.topic)?;
    if msg.body.is_empty() {
        return Err(FieldError::new(at("body"), "must not be empty"));
    }
    if msg.body.len() > max_body as usize {
        return Err(FieldError::new(
            at("body"),
            format!(
                "is {} bytes; the broker's maximum message size is {max_body} bytes",
                msg.body.len()
            ),
        ));
    }
    let mut properties = Properties::new();
    for (key, value) in msg.properties {
        if RESERVED.contains(&key.as_str())
            || crate::schedule::property::ALL.contains(&key.as_str())
        {
            return Err(FieldError::new(
                format!("{field}.properties.{key}"),
                "is reserved; use the message's own field",
            ));
        }
        if key.is_empty() {
            return Err(FieldError::new(
                at("properties"),
                "a property name is empty",
            ));
        }
        properties.insert(key, value);
    }
    if !msg.tags.is_empty() && (msg.tags.contains("||") || msg.tags.trim() != msg.tags) {
        return Err(FieldError::new(
            at("tags"),
            format!("{:?} is not a single tag", msg.tags),
        ));
    }
    for (i, key) in msg.keys.iter().enumerate() {
        if key.is_empty() || key.contains(' ') {
            return Err(FieldError::new(
                format!("{field}.keys[{i}]"),
                "must be non-empty and without spaces",
            ));
        }
    }
    if !msg.sharding_key.is_empty() {
        properties.insert(SHARDING_KEY.into(), msg.sharding_key);
    }
    let unique_id = if msg.unique_id.is_empty() {
        generated_id()
    } else {
        msg.unique_id
    };
    let born_host = if msg.born_host.is_empty() {
        peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    } else {
        msg.born_host.parse().map_err(|_| {
            FieldError::new(
                at("born_host"),
                format!("{:?} is not an ip:port address", msg.born_host),
            )
        })?
    };
    let stored = MessageToStore {
        flags: msg.flags,
        born_timestamp_ms: msg.born_timestamp_ms,
        born_host,
        tags: (!msg.tags.is_empty()).then_some(msg.tags),
        keys: msg.keys,
        unique_id: Some(unique_id),
        properties,
        ..MessageToStore::new(msg.topic, queue_id, msg.body)
    };
    let encoded = mq_store::commitlog::record::properties_len(&stored).unwrap_or(usize::MAX);
    if encoded > MAX_PROPERTIES_LEN {
        return Err(FieldError::new(
            at("properties"),
            format!(
                "take {} bytes encoded (tags, keys and unique id included); at most {MAX_PROPERTIES_LEN}",
                if encoded == usize::MAX {
                    "over 65535".to_owned()
                } else {
                    encoded.to_string()
                }
            ),
        ));
    }
    Ok(stored)
}

/// A unique id for a message whose producer did not set one, in
/// RocketMQ 5's format.
fn generated_id() -> String {
    static IDS: std::sync::OnceLock<mq_common::message_id::MessageIdGenerator> =
        std::sync::OnceLock::new();
    IDS.get_or_init(Default::default).next_id()
}

pub fn status(status: PutStatus) -> i32 {
    match status {
        PutStatus::Ok => pb::SendStatus::SendOk as i32,
        PutStatus::FlushDiskTimeout => pb::SendStatus::FlushDiskTimeout as i32,
    }
}

pub fn topic_config(
    field: &str,
    config: Option<pb::TopicConfig>,
) -> Result<TopicConfig, FieldError> {
    let config = config.ok_or_else(|| FieldError::new(field, "is required"))?;
    let config = TopicConfig {
        topic: config.topic,
        read_queue_count: config.read_queue_count,
        write_queue_count: config.write_queue_count,
        perm: config.perm,
        message_type: mq_common::MessageType::parse(
            &format!("{field}.message_type"),
            &config.message_type,
        )?,
    };
    config.check(&format!("{field}."))?;
    Ok(config)
}

pub fn pb_topic_config(config: TopicConfig) -> pb::TopicConfig {
    pb::TopicConfig {
        topic: config.topic,
        read_queue_count: config.read_queue_count,
        write_queue_count: config.write_queue_count,
        perm: config.perm,
        message_type: config.message_type.as_str().to_owned(),
    }
}

/// A stored message as it goes on the wire.
pub fn stored_message(msg: StoredMessage) -> pb::StoredMessage {
    stored_message_with(msg, &mut AddrText::default())
}

/// Socket addresses as text, each formatted once: the messages of a pull
/// share one store host and a few producers, and formatting two addresses
/// per message showed in the pull path's profile.
#[derive(Debug, Default)]
pub struct AddrText {
    known: Vec<(SocketAddr, String)>,
}

impl AddrText {
    /// Most addresses remembered; past that they are formatted each time.
    const CAPACITY: usize = 16;

    pub fn of(&mut self, addr: SocketAddr) -> String {
        if let Some((_, text)) = self.known.iter().find(|(known, _)| *known == addr) {
            return text.clone();
        }
        let text = addr.to_string();
        if self.known.len() < Self::CAPACITY {
            self.known.push((addr, text.clone()));
        }
        text
    }
}

/// [`stored_message`], formatting addresses through `hosts`.
pub fn stored_message_with(msg: StoredMessage, hosts: &mut AddrText) -> pb::StoredMessage {
    let mut properties: std::collections::HashMap<String, String> =
        msg.properties.into_iter().collect();
    // Typed fields the wire has no field for go as the properties they
    // are on disk.
    if msg.delay_level.is_some() || msg.schedule.is_some() || msg.fired_from.is_some() {
        let carrier = MessageToStore {
            delay_level: msg.delay_level,
            schedule: msg.schedule,
            fired_from: msg.fired_from,
            ..MessageToStore::new("", 0, bytes::Bytes::new())
        };
        properties.extend(mq_store::commitlog::record::property_entries(&carrier));
    }
    pb::StoredMessage {
        offset_message_id: offset_id::encode(msg.store_host, msg.physical_offset),
        topic: msg.topic,
        queue_id: msg.queue_id,
        queue_offset: msg.queue_offset,
        tags: msg.tags.unwrap_or_default(),
        keys: msg.keys,
        properties,
        body: msg.body,
        unique_id: msg.unique_id.unwrap_or_default(),
        flags: msg.flags,
        born_timestamp_ms: msg.born_timestamp_ms,
        store_timestamp_ms: msg.store_timestamp_ms,
        born_host: hosts.of(msg.born_host),
        store_host: hosts.of(msg.store_host),
        reconsume_times: msg.reconsume_times,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_the_same_from_the_cache_and_past_its_capacity() {
        let mut hosts = AddrText::default();
        let addrs: Vec<SocketAddr> = (0..40u16)
            .map(|port| SocketAddr::from(([10, 0, 0, 1], 9000 + port % 20)))
            .collect();
        for addr in &addrs {
            assert_eq!(hosts.of(*addr), addr.to_string());
        }
        assert_eq!(hosts.known.len(), AddrText::CAPACITY);
        let v6: SocketAddr = "[::1]:10911".parse().unwrap();
        assert_eq!(hosts.of(v6), "[::1]:10911");
    }
}
