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

/// Where a scheduled message waits: set while it sits in a schedule queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The topic it is delivered to when due.
    pub real_topic: String,
    /// The queue it is delivered to when due.
    pub real_queue_id: u32,
    /// When it is due, ms since the epoch.
    pub deliver_at_ms: u64,
    /// When its stop in the current schedule queue ends, ms since the epoch.
    pub fire_at_ms: u64,
}

/// A position in a queue: the schedule entry a record was fired from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePosition {
    pub queue_id: u32,
    pub offset: u64,
}

/// A message to append: everything except what the store assigns
/// (queue offset, physical offset, store timestamp, store host).
///
/// The fields the broker acts on are typed; on disk they are properties
/// under their RocketMQ names (see [`property`]), so the record format is
/// the same as when they were kept in `properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageToStore {
    pub topic: String,
    pub queue_id: u32,
    pub flags: u32,
    pub born_timestamp_ms: u64,
    pub born_host: SocketAddr,
    pub reconsume_times: u32,
    /// The one tag consumers filter on.
    pub tags: Option<String>,
    /// Business keys, indexed (no spaces: they are space-separated on disk).
    pub keys: Vec<String>,
    /// The producer's id of the message, indexed.
    pub unique_id: Option<String>,
    /// The delay level a producer or the retry path asked for.
    pub delay_level: Option<u32>,
    /// Set while the message waits in a schedule queue.
    pub schedule: Option<Schedule>,
    /// The schedule entry this record was fired from.
    pub fired_from: Option<QueuePosition>,
    /// Every other property.
    pub properties: Properties,
    pub body: Bytes,
}

impl MessageToStore {
    /// A message with only these fields set, for tests and tools.
    pub fn new(topic: impl Into<String>, queue_id: u32, body: impl Into<Bytes>) -> Self {
        MessageToStore {
            topic: topic.into(),
            queue_id,
            flags: 0,
            born_timestamp_ms: 0,
            born_host: SocketAddr::from(([127, 0, 0, 1], 0)),
            reconsume_times: 0,
            tags: None,
            keys: Vec::new(),
            unique_id: None,
            delay_level: None,
            schedule: None,
            fired_from: None,
            properties: Properties::new(),
            body: body.into(),
        }
    }
}

/// A message read back from the CommitLog. `body` shares the mapped
/// segment: reading it copies nothing. Typed fields as in
/// [`MessageToStore`]; a property whose value does not parse stays in
/// `properties` as it was written.
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
    pub tags: Option<String>,
    pub keys: Vec<String>,
    pub unique_id: Option<String>,
    pub delay_level: Option<u32>,
    pub schedule: Option<Schedule>,
    pub fired_from: Option<QueuePosition>,
    pub properties: Properties,
    pub body: Bytes,
}

impl StoredMessage {
    /// The message appended anew (scheduled deliveries, retries, dead
    /// letters): the same topic, queue, body, fields and origin, for the
    /// caller to adjust.
    pub fn to_store(&self) -> MessageToStore {
        MessageToStore {
            topic: self.topic.clone(),
            queue_id: self.queue_id,
            flags: self.flags,
            born_timestamp_ms: self.born_timestamp_ms,
            born_host: self.born_host,
            reconsume_times: self.reconsume_times,
            tags: self.tags.clone(),
            keys: self.keys.clone(),
            unique_id: self.unique_id.clone(),
            delay_level: self.delay_level,
            schedule: self.schedule.clone(),
            fired_from: self.fired_from,
            properties: self.properties.clone(),
            body: self.body.clone(),
        }
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
