//! Reading a queue: ConsumeQueue entries from an offset, filtered by tag
//! hash, resolved to messages in the CommitLog without copying bodies, and
//! filtered again by message for filters that need one (SQL92).

use std::collections::HashSet;

use crate::commitlog::CommitLog;
use crate::commitlog::record::{self, StoredProperties};
use crate::consume_queue::registry::ConsumeQueues;
use crate::message::{StoredMessage, tag_hash};
use crate::read_limit::ReadLimit;

/// At most this many entries are examined per call when a filter skips
/// messages, so that one read never scans a whole queue.
const MAX_SCAN: usize = 2048;

/// Which tags a reader wants. The store filters on the 64-bit tag hash in
/// the ConsumeQueue; hash collisions can let a few others through, which
/// clients drop by comparing the exact tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    /// Every message (`*`).
    All,
    /// Messages whose tag is one of these (`TagA || TagB`).
    Tags(HashSet<u64>),
}

impl TagFilter {
    /// Parses a subscription expression: `*`, empty, or tags joined by `||`.
    pub fn parse(expression: &str) -> TagFilter {
        let tags: Vec<&str> = expression
            .split("||")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if tags.is_empty() || tags.contains(&"*") {
            TagFilter::All
        } else {
            TagFilter::Tags(tags.into_iter().map(tag_hash).collect())
        }
    }
}

/// What a reader wants, in two steps as RocketMQ's `MessageFilter`: by the
/// ConsumeQueue entry's tag hash, before reading anything, then (for
/// filters that ask) by the message's properties, read in place from the
/// CommitLog before the message is decoded. A message refused by either
/// is passed over and never leaves the broker.
pub trait MessageFilter: Sync {
    /// Whether an entry with this tag hash may match.
    fn by_tag_hash(&self, hash: u64) -> bool;

    /// Whether [`MessageFilter::by_properties`] is to be asked.
    fn reads_properties(&self) -> bool {
        false
    }

    /// Whether the message with these properties, whose entry passed
    /// [`MessageFilter::by_tag_hash`], matches.
    fn by_properties(&self, _properties: &StoredProperties<'_>) -> bool {
        true
    }
}

impl MessageFilter for TagFilter {
    fn by_tag_hash(&self, hash: u64) -> bool {
        match self {
            TagFilter::All => true,
            TagFilter::Tags(hashes) => hashes.contains(&hash),
        }
    }
}

/// How a read went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    /// `messages` holds at least one message.
    Found,
    /// The offset is the queue's readable end: nothing new yet.
    NoNewMessage,
    /// Messages were there but none matched the filter; go on from `next_offset`.
    NoMatchedMessage,
    /// The offset is outside `min_offset..=max_offset`; go on from `next_offset`.
    OffsetIllegal,
    /// No such queue.
    QueueNotFound,
}

/// Messages read from a queue.
#[derive(Debug, Clone)]
pub struct GetResult {
    pub status: GetStatus,
    pub messages: Vec<StoredMessage>,
    /// Where the next read should start.
    pub next_offset: u64,
    pub min_offset: u64,
    /// The queue's readable end: entries from here on wait for the
    /// group to confirm them (see [`ReadLimit`]).
    pub max_offset: u64,
    /// Queue offsets passed over because their records are damaged.
    pub unreadable: Vec<u64>,
    /// The read stopped at entries the group has not confirmed yet: wait
    /// for [`ReadLimit::raised`] rather than for new messages.
    pub held_back: bool,
}

impl GetResult {
    /// A result with no messages.
    pub fn empty(status: GetStatus, next_offset: u64, min_offset: u64, max_offset: u64) -> Self {
        GetResult {
            status,
            messages: Vec::new(),
            next_offset,
            min_offset,
            max_offset,
            unreadable: Vec::new(),
            held_back: false,
        }
    }
}

/// Up to `max_count` messages (and about `max_bytes` of records, at least
/// one message) of a queue from `offset` on, short of `limit`.
#[allow(clippy::too_many_arguments)]
pub fn get_messages(
    log: &CommitLog,
    queues: &ConsumeQueues,
    limit: &ReadLimit,
    topic: &str,
    queue_id: u32,
    offset: u64,
    max_count: usize,
    max_bytes: usize,
    filter: &dyn MessageFilter,
) -> GetResult {
    let Some(queue) = queues.get(topic, queue_id) else {
        return GetResult::empty(GetStatus::QueueNotFound, 0, 0, 0);
    };
    let (min_offset, indexed) = (queue.min_offset(), queue.max_offset());
    let max_offset = limit.readable_max(&queue);
    let held_back = max_offset < indexed;
    let result = |status, next_offset| GetResult {
        held_back,
        ..GetResult::empty(status, next_offset, min_offset, max_offset)
    };
    if offset < min_offset {
        return result(GetStatus::OffsetIllegal, min_offset);
    }
    if offset > indexed {
        return result(GetStatus::OffsetIllegal, max_offset);
    }
    // Up to the indexed end, an offset past the readable one (a consumer
    // that read before a limit was set) waits: it is not illegal.
    if offset >= max_offset {
        return result(GetStatus::NoNewMessage, offset);
    }

    let max_count = max_count.max(1);
    let mut messages = Vec::new();
    let mut unreadable = Vec::new();
    let mut bytes = 0usize;
    let mut next = offset;
    let mut scanned = 0;
    'scan: while next < max_offset && scanned < MAX_SCAN {
        let entries = queue.entries(next, (MAX_SCAN - scanned).min(256));
        if entries.is_empty() {
            break;
        }
        for (queue_offset, entry) in entries {
            scanned += 1;
            if queue_offset >= max_offset
                || messages.len() >= max_count
                || (!messages.is_empty() && bytes + entry.size as usize > max_bytes)
            {
                break 'scan;
            }
            next = queue_offset + 1;
            if !filter.by_tag_hash(entry.tag_hash) {
                continue;
            }
            if filter.reads_properties()
                && let Some(record) = log.read(entry.physical_offset, entry.size)
                && let Ok(properties) = record::properties(&record)
                && !filter.by_properties(&properties)
            {
                continue;
            }
            // A record whose properties could not be read is decoded below,
            // which says what is wrong with it.
            match log.read_message(entry.physical_offset, entry.size) {
                Ok(Some(msg)) => {
                    bytes += entry.size as usize;
                    messages.push(msg);
                }
                // Removed by retention since the entry was read: passed over.
                Ok(None) if entry.physical_offset < log.min_offset() => {}
                // Past the log's end (not readable yet, or an entry a
                // recovery has yet to drop): never passed over, or a reader
                // would skip the message written there.
                Ok(None) => {
                    next = queue_offset;
                    break 'scan;
                }
                Err(err) => {
                    tracing::error!(topic, queue_id, queue_offset, physical_offset = entry.physical_offset, error = %err, "damaged message skipped");
                    unreadable.push(queue_offset);
                }
            }
        }
    }
    let status = if messages.is_empty() {
        GetStatus::NoMatchedMessage
    } else {
        GetStatus::Found
    };
    GetResult {
        messages,
        unreadable,
        ..result(status, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse_into_filters() {
        assert_eq!(TagFilter::parse("*"), TagFilter::All);
        assert_eq!(TagFilter::parse(""), TagFilter::All);
        let filter = TagFilter::parse("TagA || TagB");
        assert!(filter.by_tag_hash(tag_hash("TagA")) && filter.by_tag_hash(tag_hash("TagB")));
        assert!(!filter.by_tag_hash(tag_hash("TagC")));
    }
}
