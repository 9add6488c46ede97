//! How far reads by queue may go: the group's confirmed end (Kafka's high
//! watermark, RocketMQ's confirm offset). A master in controller mode
//! serves a message only once every replica of its SyncStateSet has it: a
//! message read from the master alone may vanish with it in a failover,
//! the new master then gives that queue offset to another message, and a
//! consumer already past the offset would skip that one. A replica stops
//! at what its master confirmed, for the same reason. Unlimited (a lone
//! master, a static group), reads go to the log's end.
//!
//! Only reads by queue are held back: the records are appended, flushed,
//! indexed and replicated as ever.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::consume_queue::ConsumeQueue;

const UNLIMITED: u64 = u64::MAX;

#[derive(Debug)]
pub struct ReadLimit {
    end: AtomicU64,
    raised: Notify,
}

impl Default for ReadLimit {
    fn default() -> Self {
        ReadLimit {
            end: AtomicU64::new(UNLIMITED),
            raised: Notify::new(),
        }
    }
}

impl ReadLimit {
    /// The CommitLog offset reads stop at; `None` when unlimited.
    pub fn get(&self) -> Option<u64> {
        Some(self.end.load(Ordering::Acquire)).filter(|&end| end != UNLIMITED)
    }

    /// Reads go to the log's end from now on.
    pub fn lift(&self) {
        if self.end.swap(UNLIMITED, Ordering::AcqRel) != UNLIMITED {
            self.raised.notify_waiters();
        }
    }

    /// Records ending at or below `end` are readable; a limit only rises
    /// (unlimited, it becomes `end`).
    pub fn raise_to(&self, end: u64) {
        let end = end.min(UNLIMITED - 1);
        let before = self
            .end
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                let next = if now == UNLIMITED { end } else { now.max(end) };
                (next != now).then_some(next)
            });
        if let Ok(before) = before
            && before != UNLIMITED
        {
            self.raised.notify_waiters();
        }
    }

    /// Notified whenever the limit rises or is lifted: reads held back by
    /// it wait here (register before reading, so no rise is missed).
    pub fn raised(&self) -> &Notify {
        &self.raised
    }

    /// The queue offset just past the last readable entry of `queue`: its
    /// max offset, or the first entry whose record ends past the limit.
    pub fn readable_max(&self, queue: &ConsumeQueue) -> u64 {
        let (min, max) = (queue.min_offset(), queue.max_offset());
        let Some(limit) = self.get() else {
            return max;
        };
        // Entries of one queue lie in CommitLog order: binary search for
        // the first held back. The held-back tail is short, so the last
        // entry is looked at first.
        let readable = |offset: u64| {
            queue
                .entries(offset, 1)
                .first()
                .is_some_and(|(_, e)| e.end_offset() <= limit)
        };
        if max == min || readable(max - 1) {
            return max;
        }
        let (mut low, mut high) = (min, max - 1);
        while low < high {
            let mid = low + (high - low) / 2;
            if readable(mid) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }
}
