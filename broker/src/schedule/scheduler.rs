//! The scheduler: a task that delivers schedule entries when they fall due.
//!
//! Every tick (20 ms) it reads the head of each schedule queue; entries
//! whose stop has ended are appended to their real queue (or to their next
//! hop), then the queue's offset moves past them. It looks only at heads,
//! so its cost follows the messages falling due, not the messages pending.
//!
//! Exactly once across crashes: the offsets are saved about every second
//! (`schedule_progress.json`, with the CommitLog end at that moment). Every
//! record the scheduler appends carries `SCHEDULE_FIRED_FROM` =
//! `queue:offset` of its entry, and a queue fires in order, so at start a
//! scan of the CommitLog from the saved end finds how far each queue
//! really got: nothing fired before a crash fires again, and entries that
//! fell due while the broker was down fire at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_store::atomic_file;
use mq_store::{GetStatus, MessageStore, StoreError, TagFilter};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::schedule::{DelayTable, SCHEDULE_TOPIC, fire, fire_at};

/// How often queue heads are checked: at most this late beyond due time,
/// plus the time to append what fell due.
pub const TICK: Duration = Duration::from_millis(20);
/// How much CommitLog the start-up scan reads at most when nothing was
/// scheduled since the last save.
const RESCAN_LIMIT: u64 = 64 << 20;

/// How often progress is saved (at most this much is rescanned at start).
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// Entries read per queue and call.
const READ_BATCH: usize = 64;

/// What the scheduler saves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// CommitLog end when saved: every record fired before is counted in
    /// `offsets`.
    pub log_end: u64,
    /// Next entry to fire, by schedule queue.
    pub offsets: BTreeMap<u32, u64>,
}

impl Progress {
    /// The progress saved at `path`; none saved is nothing fired yet.
    pub fn load(path: &Path) -> std::io::Result<Progress> {
        Ok(atomic_file::read_json(path)?.unwrap_or_default())
    }

    /// Replaces what is saved at `path`, atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        atomic_file::write_json(path, self)
    }
}

#[derive(Debug)]
pub struct Scheduler {
    store: Arc<MessageStore>,
    table: DelayTable,
    path: PathBuf,
    progress: Progress,
    changed: bool,
}

impl Scheduler {
    /// Loads the saved progress from `path` and brings it up to date with
    /// the CommitLog (see the module docs).
    pub fn recover(
        store: Arc<MessageStore>,
        table: DelayTable,
        path: PathBuf,
    ) -> Result<Scheduler, StoreError> {
        let mut progress = Progress::load(&path).map_err(|source| StoreError::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        let mut found = 0;
        store.scan(progress.log_end, |record| {
            let Some(from) = record.fired_from else {
                return;
            };
            let next = progress.offsets.entry(from.queue_id).or_insert(0);
            *next = (*next).max(from.offset + 1);
            found += 1;
        })?;
        if found > 0 {
            tracing::info!(
                found,
                from = progress.log_end,
                "scheduler: entries fired before the last stop were not saved; skipping them"
            );
        }
        Ok(Scheduler {
            store,
            table,
            path,
            progress,
            changed: found > 0,
        })
    }

    /// Runs until `stop`, then saves its progress.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_save = Instant::now();
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            self.round().await;
            if last_save.elapsed() >= SAVE_EVERY {
                self.save();
                last_save = Instant::now();
            }
        }
        self.save();
    }

    /// Fires every due entry of every schedule queue.
    pub async fn round(&mut self) {
        let queues: Vec<u32> = self
            .store
            .queues()
            .into_iter()
            .filter(|(topic, _)| topic == SCHEDULE_TOPIC)
            .map(|(_, queue)| queue)
            .collect();
        for queue in queues {
            self.fire_queue(queue).await;
        }
    }

    async fn fire_queue(&mut self, queue: u32) {
        loop {
            let offset = self.progress.offsets.get(&queue).copied().unwrap_or(0);
            let read = self.store.get_messages(
                SCHEDULE_TOPIC,
                queue,
                offset,
                READ_BATCH,
                usize::MAX,
                &TagFilter::All,
            );
            if read.messages.is_empty() {
                if read.status == GetStatus::OffsetIllegal && read.next_offset != offset {
                    // Below the queue: retention removed entries before
                    // they fired. Above it: the CommitLog lost its tail
                    // (async flush and a machine crash).
                    tracing::warn!(
                        queue,
                        offset,
                        next = read.next_offset,
                        "scheduler: schedule queue moved; going on from its edge"
                    );
                    self.advance(queue, read.next_offset);
                }
                return;
            }
            // The due entries at the head, appended together.
            let now = mq_common::clock::unix_millis();
            let read_all = read.messages.len() as u64;
            let mut fired = Vec::with_capacity(read.messages.len());
            let mut next = offset;
            for entry in read.messages.iter().take_while(|e| fire_at(e) <= now) {
                match fire(entry, &self.table, now) {
                    Ok(msg) => fired.push(msg),
                    Err(why) => {
                        tracing::error!(
                            queue,
                            offset = entry.queue_offset,
                            why,
                            "scheduler: dropping a malformed schedule entry"
                        );
                    }
                }
                next = entry.queue_offset + 1;
            }
            if next == offset {
                return;
            }
            if !fired.is_empty()
                && let Err(err) = self.store.put_batch(&fired).await
            {
                // Retried next tick, from the same entries.
                tracing::warn!(queue, offset, error = %err, "scheduler: cannot deliver; retrying");
                return;
            }
            self.advance(queue, next);
            if next - offset < read_all {
                return;
            }
        }
    }

    fn advance(&mut self, queue: u32, next: u64) {
        self.progress.offsets.insert(queue, next);
        self.changed = true;
    }

    /// Saves progress. The scheduler alone appends fired records, so every
    /// record it fired lies below the log end read here.
    fn save(&mut self) {
        let log_end = self.store.log_end();
        // With nothing scheduled, the saved end still moves now and then,
        // so that the start-up scan stays short.
        let stale = log_end.saturating_sub(self.progress.log_end) > RESCAN_LIMIT;
        if !self.changed && !stale {
            return;
        }
        self.progress.log_end = log_end;
        match self.progress.save(&self.path) {
            Ok(()) => self.changed = false,
            Err(err) => tracing::error!(error = %err, "scheduler: cannot save progress"),
        }
    }
}
