//! The CommitLog's epochs (RocketMQ 5's epoch file, Kafka's leader-epoch
//! checkpoint): every time a broker starts as master it begins a new
//! epoch at its log's end, and replicas copy the master's epochs with its
//! bytes. Two logs that hold the same epoch from the same start agree up
//! to where the shorter of them leaves that epoch; after that they may
//! have diverged, and a replica cuts its log back there (see
//! [`crate::truncate`]).
//!
//! Kept in `epochs.json`, replaced atomically and durably on every change
//! (a change is rare: one per master start).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::atomic_file;
use crate::error::{IoContext, StoreError};

/// The file's name in the store directory.
pub const EPOCHS_FILE: &str = "epochs.json";

/// One epoch: a number that only grows, and where it begins in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epoch {
    pub epoch: u64,
    pub start: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    epochs: Vec<Epoch>,
}

#[derive(Debug)]
pub struct Epochs {
    path: PathBuf,
    list: Mutex<Vec<Epoch>>,
    /// An epoch begun on a full disk, not saved yet: appends wait for it
    /// (bytes written in an epoch the file does not know would be taken
    /// for the previous epoch's).
    deferred: Mutex<Option<Epoch>>,
    has_deferred: std::sync::atomic::AtomicBool,
}

impl Epochs {
    /// Loads the store's epochs (none yet: empty), dropping those that
    /// begin past `log_end` (a crash cut the log before they held data).
    pub fn load(dir: &Path, log_end: u64) -> Result<Epochs, StoreError> {
        let path = dir.join(EPOCHS_FILE);
        let mut list = read(&path)?;
        let before = list.len();
        list.retain(|e| e.start <= log_end);
        let epochs = Epochs {
            path,
            list: Mutex::new(list),
            deferred: Mutex::new(None),
            has_deferred: std::sync::atomic::AtomicBool::new(false),
        };
        if epochs.lock().len() != before {
            epochs.save(&epochs.lock())?;
        }
        Ok(epochs)
    }

    /// Every epoch, oldest first.
    pub fn list(&self) -> Vec<Epoch> {
        self.lock().clone()
    }

    /// The newest epoch's number, if any.
    pub fn last(&self) -> Option<u64> {
        self.lock().last().map(|e| e.epoch)
    }

    /// Records that `epoch` begins at `start`, durably, unless the list
    /// already reaches it (an older or the same epoch is ignored).
    pub fn begin(&self, epoch: u64, start: u64) -> Result<bool, StoreError> {
        let mut list = self.lock();
        if list.last().is_some_and(|last| last.epoch >= epoch) {
            return Ok(false);
        }
        let mut next = list.clone();
        next.push(Epoch { epoch, start });
        self.save(&next)?;
        *list = next;
        Ok(true)
    }

    /// As [`Self::begin`], but a full disk defers saving the epoch until
    /// [`Self::settle_deferred`] can (a master starting on a full disk
    /// still serves what it holds).
    pub fn begin_or_defer(&self, epoch: u64, start: u64) -> Result<(), StoreError> {
        match self.begin(epoch, start) {
            Err(err) if err.is_disk_full() => {
                tracing::warn!(epoch, start, error = %err, "cannot save the new epoch on a full disk; appends wait for it");
                *self.deferred.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Epoch { epoch, start });
                self.has_deferred
                    .store(true, std::sync::atomic::Ordering::Release);
                Ok(())
            }
            other => other.map(drop),
        }
    }

    /// Saves an epoch deferred by a full disk; an error while it still
    /// cannot (no append may happen before it is saved).
    pub fn settle_deferred(&self) -> Result<(), StoreError> {
        if !self.has_deferred.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let mut deferred = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(epoch) = *deferred {
            self.begin(epoch.epoch, epoch.start)?;
            *deferred = None;
            self.has_deferred
                .store(false, std::sync::atomic::Ordering::Release);
        }
        Ok(())
    }

    fn save(&self, list: &[Epoch]) -> Result<(), StoreError> {
        write(&self.path, list)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Epoch>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Drops the epochs of a store directory that begin at or past `to`
/// (part of a truncation there).
pub(crate) fn cut(dir: &Path, to: u64) -> Result<(), StoreError> {
    let path = dir.join(EPOCHS_FILE);
    let mut list = read(&path)?;
    let before = list.len();
    list.retain(|e| e.start < to);
    if list.len() != before {
        write(&path, &list)?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<Epoch>, StoreError> {
    let persisted: Option<Persisted> =
        atomic_file::read_json(path).context(|| format!("reading {}", path.display()))?;
    Ok(persisted.map(|p| p.epochs).unwrap_or_default())
}

fn write(path: &Path, list: &[Epoch]) -> Result<(), StoreError> {
    let persisted = Persisted {
        epochs: list.to_vec(),
    };
    atomic_file::write_json(path, &persisted).context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_only_grow_survive_a_reload_and_lose_what_a_crash_cut() {
        let dir = tempfile::tempdir().unwrap();
        let epochs = Epochs::load(dir.path(), 0).unwrap();
        assert!(epochs.begin(5, 0).unwrap());
        assert!(!epochs.begin(5, 100).unwrap(), "the same epoch again");
        assert!(!epochs.begin(3, 100).unwrap(), "an older one");
        assert!(epochs.begin(9, 700).unwrap());
        let reloaded = Epochs::load(dir.path(), 700).unwrap();
        assert_eq!(
            reloaded.list(),
            [
                Epoch { epoch: 5, start: 0 },
                Epoch {
                    epoch: 9,
                    start: 700
                }
            ]
        );
        // The log ends before epoch 9 began: it holds nothing of it.
        let cut_by_crash = Epochs::load(dir.path(), 699).unwrap();
        assert_eq!(cut_by_crash.last(), Some(5));
        assert_eq!(Epochs::load(dir.path(), 10_000).unwrap().last(), Some(5));
        cut(dir.path(), 0).unwrap();
        assert_eq!(Epochs::load(dir.path(), 10_000).unwrap().last(), None);
    }
}
