//! The POP book: for every group, topic and queue, where the next new
//! message is (the cursor) and the messages handed out but not yet
//! acknowledged (leases), each with when it becomes visible again, its
//! attempt and the token of its current delivery. Every change is a
//! [`Record`], written to the journal before it applies, so the book on
//! disk is the book in memory.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::journal::Journal;

/// One queue of one topic as consumed by one group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QueueKey {
    pub group: String,
    pub topic: String,
    pub queue_id: u32,
}

/// A message handed out and not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub visible_at_ms: u64,
    /// 1 on the first delivery.
    pub attempt: u32,
    /// Names the current delivery; a handle with another token is spent.
    pub token: u64,
}

/// A queue's place in the book.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueLeases {
    /// The next offset never handed out.
    pub cursor: u64,
    /// Handed out, not acknowledged, by offset.
    pub leases: BTreeMap<u64, Lease>,
}

impl QueueLeases {
    /// Every message below this is done: the group's committed offset.
    pub fn committed(&self) -> u64 {
        self.leases
            .keys()
            .next()
            .map_or(self.cursor, |first| (*first).min(self.cursor))
    }
}

/// One change of the book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// Messages handed out (or again, or with a new invisible time): their
    /// leases replace any before; the cursor moves forward to `cursor`.
    Leased {
        key: QueueKey,
        cursor: u64,
        leases: Vec<(u64, Lease)>,
    },
    /// Messages acknowledged (or dead-lettered): out of the book.
    Acked { key: QueueKey, offsets: Vec<u64> },
}

fn apply(queues: &mut BTreeMap<QueueKey, QueueLeases>, record: Record) {
    match record {
        Record::Leased {
            key,
            cursor,
            leases,
        } => {
            let queue = queues.entry(key).or_default();
            queue.cursor = queue.cursor.max(cursor);
            queue.leases.extend(leases);
        }
        Record::Acked { key, offsets } => {
            if let Some(queue) = queues.get_mut(&key) {
                for offset in offsets {
                    queue.leases.remove(&offset);
                }
            }
        }
    }
}

/// The book and its journal.
#[derive(Debug)]
pub struct PopBook {
    inner: Mutex<Inner>,
    /// Sync flush: every change is on disk before it is answered.
    sync_each: bool,
}

#[derive(Debug)]
struct Inner {
    queues: BTreeMap<QueueKey, QueueLeases>,
    journal: Journal,
}

/// The book as an update sees it.
pub type Queues = BTreeMap<QueueKey, QueueLeases>;

impl PopBook {
    /// Opens the book under `dir`; also returns the bytes of a damaged
    /// journal tail that were cut off.
    pub fn open(dir: &Path, sync_each: bool) -> io::Result<(PopBook, u64)> {
        let recovered = Journal::recover(dir, apply)?;
        Ok((
            PopBook {
                inner: Mutex::new(Inner {
                    queues: recovered.queues,
                    journal: recovered.journal,
                }),
                sync_each,
            },
            recovered.cut_bytes,
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `decide` on the book and writes the changes it returns, all
    /// under one lock (two pops never hand out one message twice). The
    /// changes apply only once written.
    pub fn update<R>(&self, decide: impl FnOnce(&Queues) -> (Vec<Record>, R)) -> io::Result<R> {
        let mut inner = self.lock();
        let (records, result) = decide(&inner.queues);
        if records.is_empty() {
            return Ok(result);
        }
        inner.journal.append(&records)?;
        if self.sync_each {
            inner.journal.sync()?;
        }
        for record in records {
            apply(&mut inner.queues, record);
        }
        if inner.journal.wants_compaction() {
            let Inner { queues, journal } = &mut *inner;
            journal.compact(queues)?;
        }
        Ok(result)
    }

    /// A copy of one queue's place.
    pub fn queue(&self, key: &QueueKey) -> Option<QueueLeases> {
        self.lock().queues.get(key).cloned()
    }

    /// One queue's committed offset (see [`QueueLeases::committed`]).
    pub fn committed(&self, key: &QueueKey) -> Option<u64> {
        self.lock().queues.get(key).map(QueueLeases::committed)
    }

    /// Makes every change durable (async flush: from a ticker).
    pub fn sync(&self) -> io::Result<()> {
        self.lock().journal.sync()
    }
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
