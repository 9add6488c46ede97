//! The message an application sends, and what it gets back.

use std::collections::BTreeMap;

use bytes::Bytes;

/// A message to send. Build it with [`Message::new`] and the `with_*`
/// methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    /// One tag, for consumers' filters.
    pub tags: Option<String>,
    /// Business keys, indexed by the broker for lookups.
    pub keys: Vec<String>,
    pub properties: BTreeMap<String, String>,
    pub body: Bytes,
}

impl Message {
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Message {
            topic: topic.into(),
            tags: None,
            keys: Vec::new(),
            properties: BTreeMap::new(),
            body: body.into(),
        }
    }

    pub fn with_tags(mut self, tags: impl Into<String>) -> Self {
        self.tags = Some(tags.into());
        self
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }

    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }
}

/// How a send was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    /// Stored (and on disk, if the broker flushes synchronously).
    Ok,
    /// Stored, but the broker's disk did not confirm in time.
    FlushDiskTimeout,
}

/// Where a sent message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub status: SendStatus,
    /// The unique id the producer gave the message.
    pub message_id: String,
    /// Store host and CommitLog offset: the broker finds the message by it.
    pub offset_message_id: String,
    pub broker_name: String,
    pub queue_id: u32,
    pub queue_offset: u64,
}
