//! The idempotent producer's memory: per producer, topic and queue, the
//! sequence numbers stored lately and where each went, so that a retried
//! send is answered with its original offsets instead of being stored
//! twice (Kafka's producer state, kept by time rather than in-flight count
//! because our producers send to one queue concurrently).
//!
//! Fed from two sides. The broker's send path *claims* a sequence before
//! it appends (a second send of it meanwhile is told the first is in
//! flight) and *fills* it after. The dispatcher *observes* every record
//! that carries a producer id, on replicas too, so a member elected after a
//! failover knows what the old master stored; and opening a store reads
//! the CommitLog's last `idempotence_rebuild_bytes` again, so a restart
//! knows it as well.
//!
//! A window keeps the sequences of its last `idempotence_window` (by store
//! time), at most `idempotence_window_entries` of them; a sequence below
//! what it dropped cannot be told apart from a new one, so it is refused
//! ([`Claim::BelowWindow`]) rather than risk a duplicate.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::message::{Properties, StoredMessage, property};

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

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Not seen: the caller appends it, then fills or releases the claim.
    New,
    /// Already stored there: answer that, store nothing.
    Duplicate(StoredAt),
    /// Claimed by a send that has not finished: try again shortly.
    InFlight,
    /// Below what the window still remembers (it kept sequences from
    /// `lowest` on): it may or may not have been stored.
    BelowWindow { lowest: u64 },
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

#[derive(Debug, Clone, Copy)]
enum Slot {
    Pending,
    Stored(StoredAt),
}

#[derive(Debug, Default)]
struct Window {
    /// Sequence -> slot, with the store time (ms) it was claimed or stored.
    slots: BTreeMap<u64, (Slot, u64)>,
    /// Every sequence below this was dropped: unknown.
    forgotten_below: u64,
    /// The newest store time seen, ms.
    last_ms: u64,
}

impl Window {
    /// Drops what is older than the window or beyond its count.
    fn trim(&mut self, limits: &Limits, now_ms: u64) {
        let horizon = now_ms.saturating_sub(limits.window.as_millis() as u64);
        while let Some((&seq, &(slot, at))) = self.slots.first_key_value() {
            let old = at < horizon && matches!(slot, Slot::Stored(_));
            if !old && self.slots.len() <= limits.entries {
                break;
            }
            self.slots.pop_first();
            self.forgotten_below = seq + 1;
        }
    }
}

/// Every window of this store.
#[derive(Debug)]
pub struct ProducerSequences {
    windows: DashMap<WindowKey, Window>,
    limits: Limits,
    duplicates: AtomicU64,
}

impl ProducerSequences {
    pub fn new(limits: Limits) -> Self {
        ProducerSequences {
            windows: DashMap::new(),
            limits,
            duplicates: AtomicU64::new(0),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Claims `seq` for a send about to be appended, unless it is known.
    pub fn claim(&self, key: &WindowKey, seq: u64, now_ms: u64) -> Claim {
        if !self.windows.contains_key(key) && self.windows.len() >= self.limits.windows {
            self.sweep(now_ms);
            if self.windows.len() >= self.limits.windows {
                return Claim::Full;
            }
        }
        let mut window = self.windows.entry(key.clone()).or_default();
        match window.slots.get(&seq) {
            Some((Slot::Stored(at), _)) => {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
                return Claim::Duplicate(*at);
            }
            Some((Slot::Pending, _)) => return Claim::InFlight,
            None if seq < window.forgotten_below => {
                return Claim::BelowWindow {
                    lowest: window.forgotten_below,
                };
            }
            None => {}
        }
        window.slots.insert(seq, (Slot::Pending, now_ms));
        window.last_ms = window.last_ms.max(now_ms);
        window.trim(&self.limits, now_ms);
        Claim::New
    }

    /// Records where a claimed sequence was stored.
    pub fn fill(&self, key: &WindowKey, seq: u64, at: StoredAt, now_ms: u64) {
        self.remember(key, seq, at, now_ms);
    }

    /// Gives up a claim whose append failed: nothing was stored.
    pub fn release(&self, key: &WindowKey, seq: u64) {
        if let Some(mut window) = self.windows.get_mut(key)
            && matches!(window.slots.get(&seq), Some((Slot::Pending, _)))
        {
            window.slots.remove(&seq);
        }
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
        self.remember(&key, seq, at, msg.store_timestamp_ms);
    }

    fn remember(&self, key: &WindowKey, seq: u64, at: StoredAt, time_ms: u64) {
        let mut window = match self.windows.entry(key.clone()) {
            Entry::Occupied(window) => window.into_ref(),
            // Past the cap a record is still remembered: forgetting what
            // was stored is worse than a window too many.
            Entry::Vacant(vacant) => vacant.insert(Window::default()),
        };
        if seq < window.forgotten_below {
            return;
        }
        window.slots.insert(seq, (Slot::Stored(at), time_ms));
        window.last_ms = window.last_ms.max(time_ms);
        let now = window.last_ms;
        window.trim(&self.limits, now);
    }

    /// Drops every window whose newest sequence is older than the window.
    pub fn sweep(&self, now_ms: u64) {
        let horizon = now_ms.saturating_sub(self.limits.window.as_millis() as u64);
        self.windows.retain(|_, window| {
            window.last_ms >= horizon
                || window
                    .slots
                    .values()
                    .any(|(slot, _)| matches!(slot, Slot::Pending))
        });
    }

    /// Producer-queue windows remembered now.
    pub fn window_count(&self) -> usize {
        self.windows.len()
    }

    /// Retried sends answered from a window since start.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }
}

/// The property names a record carries its producer's sequence under.
pub fn stamp(properties: &mut Properties, producer: u64, seq: u64) {
    properties.insert(property::PRODUCER_ID.into(), format!("{producer:016x}"));
    properties.insert(property::PRODUCER_SEQUENCE.into(), seq.to_string());
}

/// The window and sequence a stored record belongs to, if a producer
/// numbered it. A scheduled message counts in the queue it was sent to; a
/// copy made later (fired from a schedule, a consumer's retry) not at all.
pub fn of_record(msg: &StoredMessage) -> Option<(WindowKey, u64)> {
    let producer = msg.properties.get(property::PRODUCER_ID)?;
    if msg.fired_from.is_some() || msg.reconsume_times > 0 {
        return None;
    }
    let producer = u64::from_str_radix(producer, 16).ok()?;
    let seq = msg
        .properties
        .get(property::PRODUCER_SEQUENCE)?
        .parse()
        .ok()?;
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
