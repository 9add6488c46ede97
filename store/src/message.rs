//! Messages as the store sees them: what a producer hands in
//! ([`MessageToStore`]) and what a reader gets back ([`StoredMessage`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;

/// Property names with a meaning to the broker, as in RocketMQ.
pub use mq_common::message::property;

/// String properties of a message, kept sorted so that encoding is
/// deterministic.
pub type Properties = BTreeMap<String, String>;

/// A message to append: everything except what the store assigns
/// (queue offset, physical offset, store timestamp, store host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageToStore {
    pub topic: String,
    pub queue_id: u32,
    pub flags: u32,
    pub born_timestamp_ms: u64,
    pub born_host: SocketAddr,
    pub reconsume_times: u32,
    pub properties: Properties,
    pub body: Bytes,
}

impl MessageToStore {
    /// The tag, if any.
    pub fn tags(&self) -> Option<&str> {
        self.properties.get(property::TAGS).map(String::as_str)
    }
}

/// A message read back from the CommitLog. `body` shares the mapped
/// segment: reading it copies nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub topic: String,
    pub queue_id: u32,
    pub flags: u32,
    pub queue_offset: u64,
    pub physical_offset: u64,
    /// Size of the whole record in the CommitLog.
    pub record_size: u32,
    pub born_timestamp_ms: u64,
    pub store_timestamp_ms: u64,
    pub born_host: SocketAddr,
    pub store_host: SocketAddr,
    pub reconsume_times: u32,
    pub properties: Properties,
    pub body: Bytes,
}

impl StoredMessage {
    /// The message appended anew (scheduled deliveries, retries, dead
    /// letters): the same topic, queue, body, properties and origin, for
    /// the caller to adjust.
    pub fn to_store(&self) -> MessageToStore {
        MessageToStore {
            topic: self.topic.clone(),
            queue_id: self.queue_id,
            flags: self.flags,
            born_timestamp_ms: self.born_timestamp_ms,
            born_host: self.born_host,
            reconsume_times: self.reconsume_times,
            properties: self.properties.clone(),
            body: self.body.clone(),
        }
    }

    /// The tag, if any.
    pub fn tags(&self) -> Option<&str> {
        self.properties.get(property::TAGS).map(String::as_str)
    }

    /// The business keys (the `KEYS` property split on spaces).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.properties
            .get(property::KEYS)
            .into_iter()
            .flat_map(|k| k.split(' '))
            .filter(|k| !k.is_empty())
    }

    /// The producer's unique message id, if any.
    pub fn unique_id(&self) -> Option<&str> {
        self.properties.get(property::UNIQUE_ID).map(String::as_str)
    }
}

/// The 64-bit hash of a tag that ConsumeQueue entries carry for filtering
/// on the broker (FNV-1a: stable across versions and platforms, unlike
/// `std`'s hasher). Collisions are possible; clients check the exact tag.
pub fn tag_hash(tag: &str) -> u64 {
    fnv1a_parts(&[tag.as_bytes()])
}

/// 64-bit FNV-1a over `parts`, as if they were one byte string.
pub fn fnv1a_parts(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    parts
        .iter()
        .flat_map(|part| part.iter())
        .fold(OFFSET, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_hash_is_fnv1a_and_stable() {
        assert_eq!(tag_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(tag_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(tag_hash("TagA"), tag_hash("TagB"));
    }
}
