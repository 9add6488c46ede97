//! The dispatcher: follows the CommitLog and indexes each new record in its
//! ConsumeQueue. Appends never wait for it; how far behind it is can be
//! read as [`Dispatcher::lag`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::Thread;
use std::time::Duration;

use crate::arrivals::Arrivals;
use crate::commitlog::{CommitLog, Next, record};
use crate::consume_queue::Entry;
use crate::consume_queue::registry::ConsumeQueues;
use crate::error::StoreError;
use crate::fences::TopicFences;
use crate::index::IndexFiles;
use crate::message::tag_hash;
use crate::sequences::ProducerSequences;
use crate::worker::{Stopping, Wake, Worker};

/// Where the dispatcher writes.
#[derive(Debug, Clone)]
pub struct Targets {
    pub queues: Arc<ConsumeQueues>,
    pub index: Arc<IndexFiles>,
    /// Rung for every indexed message, to wake long polls.
    pub arrivals: Arc<Arrivals>,
    /// Records of deleted topics, never indexed again.
    pub fences: Arc<TopicFences>,
    /// Idempotent producers' sequences, observed on every member.
    pub sequences: Arc<ProducerSequences>,
}

/// Indexes every record from `from` up to the current end of the log;
/// returns the offset it reached. Safe to repeat over indexed records.
pub fn dispatch_available(
    log: &CommitLog,
    targets: &Targets,
    from: u64,
) -> Result<u64, StoreError> {
    let Targets {
        queues,
        index,
        arrivals,
        fences,
        sequences,
    } = targets;
    let mut offset = from.max(log.min_offset());
    loop {
        match log.follow(offset)? {
            Next::Record(bytes) => {
                let msg = record::decode_probed(&bytes)?;
                if fences.is_dead(&msg.topic, offset) {
                    offset += u64::from(msg.record_size);
                    continue;
                }
                let queue = queues.get_or_create(&msg.topic, msg.queue_id)?;
                queue.put(
                    msg.queue_offset,
                    Entry {
                        physical_offset: offset,
                        size: msg.record_size,
                        tag_hash: msg.tags.as_deref().map_or(0, tag_hash),
                    },
                )?;
                index.add(&msg)?;
                sequences.observe(&msg, offset);
                arrivals.ring(&msg.topic);
                offset += u64::from(msg.record_size);
            }
            Next::SegmentEnd(next) | Next::Skipped(next) => offset = next,
            Next::Nothing => return Ok(offset),
        }
    }
}

/// Feeds `sequences` with the records in `[from, to)` (opening a store:
/// what lies before the dispatcher's starting point but within the
/// idempotence windows).
pub fn observe_sequences(
    log: &CommitLog,
    sequences: &ProducerSequences,
    from: u64,
    to: u64,
) -> Result<(), StoreError> {
    let mut offset = from.max(log.min_offset());
    while offset < to {
        match log.follow(offset)? {
            Next::Record(bytes) => {
                let msg = record::decode_probed(&bytes)?;
                sequences.observe(&msg, offset);
                offset += u64::from(msg.record_size);
            }
            Next::SegmentEnd(next) | Next::Skipped(next) => offset = next,
            Next::Nothing => break,
        }
    }
    Ok(())
}

/// The dispatcher thread.
#[derive(Debug)]
pub struct Dispatcher {
    dispatched: Arc<AtomicU64>,
    log: Arc<CommitLog>,
    worker: Worker,
}

impl Dispatcher {
    pub fn start(log: Arc<CommitLog>, targets: Targets, from: u64) -> std::io::Result<Self> {
        let dispatched = Arc::new(AtomicU64::new(from));
        let progress = Arc::clone(&dispatched);
        let followed = Arc::clone(&log);
        let worker = Worker::start("dispatcher", Wake::Unpark, move |stopping| {
            run(&followed, &targets, &progress, &stopping);
        })?;
        Ok(Dispatcher {
            dispatched,
            log,
            worker,
        })
    }

    /// The thread to unpark when records become readable.
    pub fn thread(&self) -> Thread {
        self.worker.thread().clone()
    }

    /// Tells the dispatcher that records were appended.
    pub fn wake(&self) {
        self.worker.thread().unpark();
    }

    /// Every record below this offset is indexed.
    pub fn dispatched(&self) -> u64 {
        self.dispatched.load(Ordering::Acquire)
    }

    /// A live view of [`Dispatcher::dispatched`], for other threads.
    pub fn progress(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dispatched)
    }

    /// Bytes of CommitLog not indexed yet.
    pub fn lag(&self) -> u64 {
        self.log.max_offset().saturating_sub(self.dispatched())
    }

    /// Indexes what is left, then stops the thread.
    pub fn stop(&self) {
        self.worker.stop();
    }
}

/// After a round that found records, the dispatcher naps this long before
/// the next, so that under load one wake-up indexes a batch instead of
/// each append paying a futex wake and a context switch. The first record
/// after a quiet spell is still indexed at once.
const BATCH_WINDOW: Duration = Duration::from_micros(200);

fn run(log: &CommitLog, targets: &Targets, dispatched: &AtomicU64, stopping: &Stopping) {
    let mut offset = dispatched.load(Ordering::Acquire);
    let mut failing = false;
    loop {
        // Read the flag before dispatching, so the last round sees every
        // append made before `stop` was called.
        let last_round = stopping.requested();
        fail::fail_point!("dispatch::before_round");
        match dispatch_available(log, targets, offset) {
            Ok(reached) => {
                if std::mem::take(&mut failing) {
                    tracing::info!(offset, "dispatch works again");
                }
                let found = reached > offset;
                offset = reached;
                dispatched.store(offset, Ordering::Release);
                if found && !last_round {
                    std::thread::sleep(BATCH_WINDOW);
                    continue;
                }
            }
            Err(err) => {
                // A full disk or a damaged record fails every round: say
                // so once, not ten times a second.
                if !std::mem::replace(&mut failing, true) {
                    tracing::error!(offset, error = %err, "dispatch failed; retrying until it works");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if last_round {
            return;
        }
        // Woken by appends; the timeout is a safety net, not the pace.
        std::thread::park_timeout(Duration::from_millis(50));
    }
}
