//! Which half messages are open, durable across crashes.
//!
//! The truth is in the CommitLog: a half message is open until a record
//! carrying its offset in `TRAN_HALF_OFFSET` follows it. The book keeps
//! that answer in memory and saves it about every second
//! (`transactions.json`, with the CommitLog end it covers); at start it
//! loads the file and scans the CommitLog from the saved end for the
//! marks appended since, as the scheduler does for what it fired. An end
//! still being appended when the book is saved holds the saved end below
//! it, so a crash never loses a mark.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mq_common::system_topics::TRANSACTION_HALF_TOPIC;
use mq_store::{MessageStore, PutResult, StoreError, StoredMessage, atomic_file};
use serde::{Deserialize, Serialize};

use super::{Outcome, end_record, ends};

/// How much CommitLog the start-up scan reads at most when no
/// transaction changed since the last save.
const RESCAN_LIMIT: u64 = 64 << 20;

/// Ended transactions below `open_from` whose outcome is still told; an
/// older one is answered "already ended".
const REMEMBERED_ENDS: usize = 4096;

/// The checks made of one open transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checks {
    pub count: u32,
    /// When the last one was made, ms since the epoch (0: never).
    pub last_ms: u64,
}

/// What is saved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    /// CommitLog end the rest covers: every mark below it is counted.
    log_end: u64,
    /// Every half queue offset below this is ended.
    open_from: u64,
    /// Ended half offsets at or above `open_from`, and the latest
    /// [`REMEMBERED_ENDS`] below it (to answer how they ended).
    ended: BTreeMap<u64, Outcome>,
    /// Checks made of open transactions.
    checks: BTreeMap<u64, Checks>,
}

#[derive(Debug)]
struct State {
    saved: Saved,
    /// Ends being appended: half offset -> CommitLog end when begun.
    ending: BTreeMap<u64, u64>,
    changed: bool,
}

/// Why a transaction cannot be ended now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotOpen {
    /// It ended already (how, when still known).
    Ended(Option<Outcome>),
    /// Another end of it is being appended.
    Ending,
}

/// The open transactions of this broker.
#[derive(Debug)]
pub struct TransactionBook {
    store: Arc<MessageStore>,
    path: PathBuf,
    /// A std mutex: held to read or update the maps, never across an
    /// append or a read of the store.
    state: Mutex<State>,
}

impl TransactionBook {
    /// Loads the book saved at `path` and brings it up to date with the
    /// CommitLog (see the module docs).
    pub fn recover(store: Arc<MessageStore>, path: PathBuf) -> Result<Self, StoreError> {
        let io = |source| StoreError::Io {
            context: format!("reading {}", path.display()),
            source,
        };
        let mut saved: Saved = atomic_file::read_json(&path)
            .map_err(io)?
            .unwrap_or_default();
        let (queue_min, queue_max) = store
            .queue_offsets(TRANSACTION_HALF_TOPIC, 0)
            .unwrap_or((0, 0));
        let log_end = store.log_end();
        let from = saved.open_from.max(queue_min);
        if from >= queue_max {
            // Nothing open: nothing to look for.
            saved.open_from = saved.open_from.max(queue_max);
            saved.ended.clear();
            saved.checks.clear();
        } else {
            // Marks follow their half message: the scan starts at the
            // first open one at the earliest (at the saved end when it
            // cannot be read).
            let first_open = crate::transaction::read_half(&store, from)
                .map_or(saved.log_end, |half| half.physical_offset);
            let mut found = 0;
            store.scan(saved.log_end.max(first_open), |record| {
                if let Some((offset, outcome)) = ends(record) {
                    saved.ended.insert(offset, outcome);
                    found += 1;
                }
            })?;
            if found > 0 {
                tracing::info!(
                    found,
                    "transactions: ends appended since the last save found"
                );
            }
        }
        saved.log_end = log_end;
        let book = TransactionBook {
            store,
            path,
            state: Mutex::new(State {
                saved,
                ending: BTreeMap::new(),
                changed: true,
            }),
        };
        book.compact();
        Ok(book)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lowest half queue offset that may be open.
    pub fn open_from(&self) -> u64 {
        self.state().saved.open_from
    }

    /// Whether the transaction at `offset` is ended or being ended.
    pub fn settled(&self, offset: u64) -> bool {
        let state = self.state();
        offset < state.saved.open_from
            || state.saved.ended.contains_key(&offset)
            || state.ending.contains_key(&offset)
    }

    /// The checks made of the transaction at `offset`.
    pub fn checks(&self, offset: u64) -> Checks {
        self.state()
            .saved
            .checks
            .get(&offset)
            .copied()
            .unwrap_or_default()
    }

    /// Counts a check of the transaction at `offset` made at `now_ms`.
    pub fn checked(&self, offset: u64, now_ms: u64) -> Checks {
        let mut state = self.state();
        let checks = state.saved.checks.entry(offset).or_default();
        checks.count += 1;
        checks.last_ms = now_ms;
        let checks = *checks;
        state.changed = true;
        checks
    }

    /// Ends the transaction of `half` with `outcome`: appends the record
    /// that is its end and mark (see the parent module).
    pub async fn end(&self, half: &StoredMessage, outcome: Outcome) -> Result<Ended, EndError> {
        let offset = half.queue_offset;
        let record = end_record(half, outcome).ok_or(EndError::Malformed)?;
        {
            let mut state = self.state();
            if let Some(outcome) = state.saved.ended.get(&offset) {
                return Err(EndError::NotOpen(NotOpen::Ended(Some(*outcome))));
            }
            if offset < state.saved.open_from {
                return Err(EndError::NotOpen(NotOpen::Ended(None)));
            }
            if state.ending.contains_key(&offset) {
                return Err(EndError::NotOpen(NotOpen::Ending));
            }
            let begun = self.store.log_end();
            state.ending.insert(offset, begun);
        }
        // Crash tests: the process dies before the end is appended, or
        // after it is appended (and flushed, in sync flush) but before the
        // book knows.
        fail::fail_point!("transaction::before_end", |_| std::process::abort());
        let put = self.store.put(record.clone()).await;
        if put.is_ok() {
            fail::fail_point!("transaction::end_appended", |_| std::process::abort());
        }
        let mut state = self.state();
        state.ending.remove(&offset);
        let put = put.map_err(EndError::Store)?;
        state.saved.ended.insert(offset, outcome);
        state.saved.checks.remove(&offset);
        state.changed = true;
        drop(state);
        self.compact();
        Ok(Ended { record, put })
    }

    /// Moves `open_from` past ended transactions and past half messages
    /// retention removed.
    pub fn compact(&self) {
        let queue_min = self
            .store
            .queue_offsets(TRANSACTION_HALF_TOPIC, 0)
            .map_or(0, |(min, _)| min);
        let mut state = self.state();
        let saved = &mut state.saved;
        if saved.open_from < queue_min {
            tracing::warn!(
                from = saved.open_from,
                to = queue_min,
                "transactions: half messages removed by retention before they ended"
            );
            saved.open_from = queue_min;
        }
        while saved.ended.contains_key(&saved.open_from) {
            saved.open_from += 1;
        }
        let open_from = saved.open_from;
        let below = saved.ended.range(..open_from).count();
        for _ in REMEMBERED_ENDS..below {
            saved.ended.pop_first();
        }
        saved.checks.retain(|offset, _| *offset >= open_from);
    }

    /// Saves the book when it changed. The saved end stays below every
    /// end still being appended.
    pub fn save(&self) {
        let mut state = self.state();
        let log_end = self.store.log_end();
        // With nothing happening the saved end still moves now and then,
        // so that the start-up scan stays short.
        let stale = log_end.saturating_sub(state.saved.log_end) > RESCAN_LIMIT;
        if !state.changed && !stale {
            return;
        }
        let first_ending = state.ending.values().min().copied().unwrap_or(u64::MAX);
        state.saved.log_end = log_end.min(first_ending);
        match atomic_file::write_json(&self.path, &state.saved) {
            Ok(()) => state.changed = false,
            Err(err) => {
                tracing::error!(error = %err, path = %self.path.display(), "transactions: cannot save the book")
            }
        }
    }
}

/// An appended end.
#[derive(Debug)]
pub struct Ended {
    pub record: mq_store::MessageToStore,
    pub put: PutResult,
}

/// Why an end was not appended.
#[derive(Debug)]
pub enum EndError {
    NotOpen(NotOpen),
    /// The half message lacks its real topic or queue.
    Malformed,
    Store(StoreError),
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
