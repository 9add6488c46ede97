//! The message an application sends, and what it gets back.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

/// When a scheduled message becomes visible to consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// After the broker's delay level `n` (1-based; by default 1 s, 5 s,
    /// 10 s, 30 s, 1 m ... 2 h for levels 1 to 18).
    Level(u32),
    /// At this time (a time in the past delivers at once; the broker takes
    /// times up to its `max_delivery_delay`, 7 days by default, ahead).
    At(SystemTime),
    /// This long after the send.
    After(Duration),
}

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
    /// Delivered later rather than at once; see [`Delivery`].
    pub delivery: Option<Delivery>,
}

impl Message {
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Message {
            topic: topic.into(),
            tags: None,
            keys: Vec::new(),
            properties: BTreeMap::new(),
            body: body.into(),
            delivery: None,
        }
    }

    /// Delivered after the broker's delay level `level` (1-based).
    pub fn with_delay_level(mut self, level: u32) -> Self {
        self.delivery = Some(Delivery::Level(level));
        self
    }

    /// Delivered at `time`.
    pub fn with_delivery_time(mut self, time: SystemTime) -> Self {
        self.delivery = Some(Delivery::At(time));
        self
    }

    /// Delivered `delay` after it is sent.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delivery = Some(Delivery::After(delay));
        self
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
    /// Stored on the master, but its replicas did not confirm in time
    /// (sync replication).
    FlushSlaveTimeout,
    /// Stored on the master only: too few replicas in sync (sync
    /// replication).
    SlaveNotAvailable,
}

impl SendStatus {
    pub(crate) fn from_wire(status: i32) -> SendStatus {
        use mq_proto::broker::v1::SendStatus as Wire;
        match Wire::try_from(status) {
            Ok(Wire::FlushDiskTimeout) => SendStatus::FlushDiskTimeout,
            Ok(Wire::FlushSlaveTimeout) => SendStatus::FlushSlaveTimeout,
            Ok(Wire::SlaveNotAvailable) => SendStatus::SlaveNotAvailable,
            _ => SendStatus::Ok,
        }
    }

    /// The snake_case name, for logs and counters.
    pub fn name(self) -> &'static str {
        match self {
            SendStatus::Ok => "ok",
            SendStatus::FlushDiskTimeout => "flush_disk_timeout",
            SendStatus::FlushSlaveTimeout => "flush_slave_timeout",
            SendStatus::SlaveNotAvailable => "slave_not_available",
        }
    }
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

impl SendResult {
    /// A broker's answer for a message sent to `broker_name`.
    pub(crate) fn from_wire(r: mq_proto::broker::v1::SendResult, broker_name: &str) -> SendResult {
        SendResult {
            status: SendStatus::from_wire(r.status),
            message_id: r.message_id,
            offset_message_id: r.offset_message_id,
            broker_name: broker_name.to_owned(),
            queue_id: r.queue_id,
            queue_offset: r.queue_offset,
        }
    }
}
