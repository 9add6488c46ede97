//! The idempotent producer's memory: per producer, topic and queue, the
//! sequence numbers stored lately and where each went, so that a retried
//! send is answered with its original offsets instead of being stored
//! twice (Kafka's producer state, kept by time rather than in-flight count
//! because our producers send to one queue concurrently).
//!
//! Fed from two sides. The broker's send path *claims* a send's numbers
//! before it appends (a second send of them meanwhile is told the first is
//! in flight) and *fills* them as soon as the records are in the log. The dispatcher *observes* every record
//! that carries a producer id, on replicas too, so a member elected after a
//! failover knows what the old master stored; and opening a store reads
//! the CommitLog's last `idempotence_rebuild_bytes` again, so a restart
//! knows it as well.
//!
//! A window keeps the sequences of its last `idempotence_window` (by store
//! time), at most `idempotence_window_entries` of them; a sequence below
//! what it dropped cannot be told apart from a new one, so it is refused
//! ([`Refusal::BelowWindow`]) rather than risk a duplicate.

use std::time::Duration;

use dashmap::DashMap;

use crate::message::{Properties, StoredMessage, property};

mod window;

use window::{Lookup, Slot, Window};

/// Whose sequence: a producer id and the queue it numbers its sends in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowKey {
    pub producer: u64,
    pub topic: String,
    pub queue_id: u32,
}

/// Where a sequence was stored, as its send was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredAt {
    pub physical_offset: u64,
    pub size: u32,
    /// The offset in the queue the record went to (for a scheduled
    /// message, its schedule queue), as the send was answered.
    pub queue_offset: u64,
}

impl StoredAt {
    /// The CommitLog offset just past the record.
    pub fn end_offset(&self) -> u64 {
        self.physical_offset + u64::from(self.size)
    }
}

/// Why a send's numbers cannot be claimed (nothing was claimed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Claimed by a send that has not finished: try again shortly.
    InFlight { sequence: u64 },
    /// Below what the window still remembers (it kept sequences from
    /// `lowest` on): it may or may not have been stored.
    BelowWindow { sequence: u64, lowest: u64 },
    /// Too many producers are remembered to start on another one.
    Full,
}

/// How long and how much the windows remember.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a stored sequence is remembered (by store time).
    pub window: Duration,
    /// Most sequences remembered per producer and queue.
    pub entries: usize,
    /// Most producer-queue windows at once.
    pub windows: usize,
}

/// Every window of this store.
#[derive(Debug)]
pub struct ProducerSequences {
    windows: DashMap<WindowKey, Window>,
    limits: Limits,
}

impl ProducerSequences {
    pub fn new(limits: Limits) -> Self {
        ProducerSequences {
            windows: DashMap::new(),
            limits,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Claims the numbers `first..first + count` of a send about to be
    /// appended. Per number: where it is stored already, or `None` when it
    /// is claimed now, for the caller to append and then [`fill`] (or
    /// [`release`] if the append fails). A number in flight or forgotten
    /// refuses the whole send and claims nothing.
    ///
    /// [`fill`]: ProducerSequences::fill
    /// [`release`]: ProducerSequences::release
    pub fn claim(
        &self,
        key: &WindowKey,
        first: u64,
        count: usize,
        now_ms: u64,
    ) -> Result<Vec<Option<StoredAt>>, Refusal> {
        let mut window = match self.windows.get_mut(key) {
            Some(window) => window,
            None => {
                if self.windows.len() >= self.limits.windows {
                    self.sweep(now_ms);
                    if self.windows.len() >= self.limits.windows {
                        return Err(Refusal::Full);
                    }
                }
                self.windows.entry(key.clone()).or_default()
            }
        };
        let entries = self.limits.entries;
        let mut known = Vec::with_capacity(count);
        for sequence in (first..).take(count) {
            match window.lookup(sequence, entries) {
                Lookup::Known(Slot::Stored(at)) => known.push(Some(at)),
                Lookup::Known(Slot::Pending) => return Err(Refusal::InFlight { sequence }),
                Lookup::Forgotten { lowest } => {
                    return Err(Refusal::BelowWindow { sequence, lowest });
                }
                Lookup::Unknown => known.push(None),
            }
        }
        for (sequence, at) in (first..).zip(&known) {
            if at.is_none() {
                window.set(sequence, Slot::Pending, now_ms, entries);
            }
        }
        window.trim_older_than(self.horizon(now_ms));
        Ok(known)
    }

    /// Records where claimed numbers were stored, and when (store time).
    pub fn fill(
        &self,
        key: &WindowKey,
        stored: impl IntoIterator<Item = (u64, StoredAt)>,
        time_ms: u64,
    ) {
        let mut window = self.window(key);
        for (sequence, at) in stored {
            window.set(sequence, Slot::Stored(at), time_ms, self.limits.entries);
        }
        let now = window.last_ms;
        window.trim_older_than(self.horizon(now));
    }

    /// Gives up claims whose append failed: nothing was stored.
    pub fn release(&self, key: &WindowKey, sequences: impl IntoIterator<Item = u64>) {
        if let Some(mut window) = self.windows.get_mut(key) {
            for sequence in sequences {
                window.release(sequence);
            }
        }
    }

    /// Store times before this are older than the window.
    fn horizon(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.limits.window.as_millis() as u64)
    }

    /// Records a stored record that carries a producer's sequence, as the
    /// dispatcher and the rebuild see them.
    pub fn observe(&self, msg: &StoredMessage, physical_offset: u64) {
        let Some((key, seq)) = of_record(msg) else {
            return;
        };
        let at = StoredAt {
            physical_offset,
            size: msg.record_size,
            queue_offset: msg.queue_offset,
        };
        self.fill(&key, [(seq, at)], msg.store_timestamp_ms);
    }

    /// The window of `key`, made if missing: past the cap too, since
    /// forgetting what was stored is worse than a window too many.
    fn window(&self, key: &WindowKey) -> dashmap::mapref::one::RefMut<'_, WindowKey, Window> {
        match self.windows.get_mut(key) {
            Some(window) => window,
            None => self.windows.entry(key.clone()).or_default(),
        }
    }

    /// Drops every window whose newest sequence is older than the window.
    pub fn sweep(&self, now_ms: u64) {
        let horizon = self.horizon(now_ms);
        self.windows
            .retain(|_, window| window.last_ms >= horizon || window.has_pending());
    }

    /// Producer-queue windows remembered now.
    pub fn window_count(&self) -> usize {
        self.windows.len()
    }
}

/// Writes a producer's id and number for a record into its properties,
/// as one `PRODUCER_SEQ` = `<16 hex digits of the id>-<number>`.
pub fn stamp(properties: &mut Properties, producer: u64, seq: u64) {
    properties.insert(
        property::PRODUCER_SEQUENCE.into(),
        format!("{producer:016x}-{seq}"),
    );
}

/// The window and sequence a stored record belongs to, if a producer
/// numbered it. A scheduled message counts in the queue it was sent to; a
/// copy made later (fired from a schedule, a consumer's retry) not at all.
pub fn of_record(msg: &StoredMessage) -> Option<(WindowKey, u64)> {
    let stamped = msg.properties.get(property::PRODUCER_SEQUENCE)?;
    if msg.fired_from.is_some() || msg.reconsume_times > 0 {
        return None;
    }
    let (producer, seq) = stamped.split_once('-')?;
    let producer = u64::from_str_radix(producer, 16).ok()?;
    let seq = seq.parse().ok()?;
    let (topic, queue_id) = match &msg.schedule {
        Some(s) => (s.real_topic.clone(), s.real_queue_id),
        None => (msg.topic.clone(), msg.queue_id),
    };
    Some((
        WindowKey {
            producer,
            topic,
            queue_id,
        },
        seq,
    ))
}

#[cfg(test)]
#[path = "sequences_tests.rs"]
mod tests;
