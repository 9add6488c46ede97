//! Transactional messages, RocketMQ's way.
//!
//! A half message is the producer's message stored in
//! `RMQ_SYS_TRANS_HALF_TOPIC` (one queue), its real topic and queue in
//! properties: durable, invisible to consumers. Ending the transaction
//! appends one record that *is* the end:
//!
//! - commit: the message itself, in its real topic and queue;
//! - rollback: an op record in `RMQ_SYS_TRANS_OP_HALF_TOPIC`;
//! - discard (no answer after the last check): a copy in
//!   `TRANS_CHECK_MAX_TIME_TOPIC`, for operators.
//!
//! Each carries `TRAN_HALF_OFFSET`, the half queue offset it ends, so the
//! end and its mark are one append: a crash leaves the transaction either
//! open or ended, never committed twice. The [`book::TransactionBook`]
//! knows which half messages are open; [`checker`] asks their producers
//! about the old ones over [`sessions`].

pub mod book;
pub mod checker;
pub mod sessions;

use mq_common::message::property;
use mq_common::system_topics::{
    TRANSACTION_CHECK_MAX_TOPIC, TRANSACTION_HALF_TOPIC, TRANSACTION_OP_TOPIC,
};
use mq_store::{MessageToStore, StoredMessage};

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    Committed,
    RolledBack,
    Discarded,
}

impl Outcome {
    pub fn describe(self) -> &'static str {
        match self {
            Outcome::Committed => "committed",
            Outcome::RolledBack => "rolled back",
            Outcome::Discarded => "discarded after its last check",
        }
    }

    /// The outcome a record carrying `TRAN_HALF_OFFSET` in `topic` marks.
    pub fn of_marker_topic(topic: &str) -> Outcome {
        match topic {
            TRANSACTION_OP_TOPIC => Outcome::RolledBack,
            TRANSACTION_CHECK_MAX_TOPIC => Outcome::Discarded,
            _ => Outcome::Committed,
        }
    }
}

/// Where a transaction's half message is: its half queue offset and,
/// from ids made since they carry it, its CommitLog offset (read at once,
/// where the queue offset needs the dispatcher to have indexed the half
/// message first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HalfRef {
    pub offset: u64,
    pub physical: Option<u64>,
}

/// The transaction id of a half message: both its offsets in hex, so the
/// broker finds the message from the id alone.
pub fn transaction_id(half_offset: u64, physical_offset: u64) -> String {
    format!("{half_offset:016X}{physical_offset:016X}")
}

/// Where the half message a transaction id names is, if it is one (16
/// hex digits, as ids were first made, or 32).
pub fn half_of(transaction_id: &str) -> Option<HalfRef> {
    let hex = |digits: &str| u64::from_str_radix(digits, 16).ok();
    match transaction_id.len() {
        16 => Some(HalfRef {
            offset: hex(transaction_id)?,
            physical: None,
        }),
        32 if transaction_id.is_ascii() => Some(HalfRef {
            offset: hex(&transaction_id[..16])?,
            physical: Some(hex(&transaction_id[16..])?),
        }),
        _ => None,
    }
}

/// `msg` as its half message: to the half topic's queue 0, its real topic,
/// queue and producer group kept in properties.
pub fn half(mut msg: MessageToStore, producer_group: &str) -> MessageToStore {
    let topic = std::mem::replace(&mut msg.topic, TRANSACTION_HALF_TOPIC.into());
    msg.properties
        .insert(property::TRANSACTION_TOPIC.into(), topic);
    msg.properties
        .insert(property::TRANSACTION_QUEUE.into(), msg.queue_id.to_string());
    msg.properties
        .insert(property::PRODUCER_GROUP.into(), producer_group.into());
    msg.properties
        .insert(property::TRANSACTION.into(), "true".into());
    msg.queue_id = 0;
    msg
}

/// The half message `half` names: at its CommitLog offset when the id
/// carries it (no wait for the dispatcher), else by its queue offset.
pub fn find_half(store: &mq_store::MessageStore, half: HalfRef) -> Option<StoredMessage> {
    match half.physical {
        Some(physical) => store
            .message_at(physical)
            .ok()
            .flatten()
            .filter(|m| m.topic == TRANSACTION_HALF_TOPIC && m.queue_offset == half.offset),
        None => read_half(store, half.offset),
    }
}

/// The half message at half queue `offset`, if it is indexed.
pub fn read_half(store: &mq_store::MessageStore, offset: u64) -> Option<StoredMessage> {
    store
        .get_messages(
            TRANSACTION_HALF_TOPIC,
            0,
            offset,
            1,
            usize::MAX,
            &mq_store::TagFilter::All,
        )
        .messages
        .into_iter()
        .find(|m| m.queue_offset == offset)
}

/// The real topic and queue of a half message.
pub fn destination(half: &StoredMessage) -> Option<(String, u32)> {
    let topic = half.properties.get(property::TRANSACTION_TOPIC)?;
    let queue = half
        .properties
        .get(property::TRANSACTION_QUEUE)?
        .parse()
        .ok()?;
    Some((topic.clone(), queue))
}

/// The producer group of a half message.
pub fn producer_group(half: &StoredMessage) -> &str {
    half.properties
        .get(property::PRODUCER_GROUP)
        .map_or("", String::as_str)
}

/// The record that ends `half` (stored at half queue `half_offset`) with
/// `outcome`.
pub fn end_record(half: &StoredMessage, outcome: Outcome) -> Option<MessageToStore> {
    let (topic, queue) = destination(half)?;
    let mut msg = half.to_store();
    msg.properties.remove(property::TRANSACTION_TOPIC);
    msg.properties.remove(property::TRANSACTION_QUEUE);
    msg.properties.insert(
        property::TRANSACTION_END_OF.into(),
        half.queue_offset.to_string(),
    );
    match outcome {
        Outcome::Committed => {
            msg.topic = topic;
            msg.queue_id = queue;
        }
        Outcome::RolledBack => {
            // The op record says which half it ends; the body is not kept.
            msg.topic = TRANSACTION_OP_TOPIC.into();
            msg.queue_id = 0;
            msg.body = bytes::Bytes::from(half.queue_offset.to_string());
            msg.tags = None;
            msg.keys.clear();
        }
        Outcome::Discarded => {
            msg.properties
                .insert(property::TRANSACTION_TOPIC.into(), topic);
            msg.properties
                .insert(property::TRANSACTION_QUEUE.into(), queue.to_string());
            msg.topic = TRANSACTION_CHECK_MAX_TOPIC.into();
            msg.queue_id = 0;
        }
    }
    Some(msg)
}

/// The half queue offset a record ends, if it ends one.
pub fn ends(record: &StoredMessage) -> Option<(u64, Outcome)> {
    let offset = record
        .properties
        .get(property::TRANSACTION_END_OF)?
        .parse()
        .ok()?;
    Some((offset, Outcome::of_marker_topic(&record.topic)))
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn ids_name_both_offsets_and_first_format_ids_still_parse() {
        let id = transaction_id(7, 0xabc);
        assert_eq!(id, "00000000000000070000000000000ABC");
        assert_eq!(
            half_of(&id),
            Some(HalfRef {
                offset: 7,
                physical: Some(0xabc)
            })
        );
        assert_eq!(
            half_of("0000000000000007"),
            Some(HalfRef {
                offset: 7,
                physical: None
            })
        );
        for bad in [
            "",
            "nope",
            "000000000000000G",
            "0000000000000007000000000000000é",
        ] {
            assert_eq!(half_of(bad), None, "{bad:?}");
        }
    }
}
