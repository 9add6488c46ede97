//! Topic fences: what keeps a deleted topic deleted.
//!
//! A deleted topic's records stay in the CommitLog until retention removes
//! their segments, but they must never come back: not through a recovery
//! replay or a dispatcher catching up (which would rebuild their
//! ConsumeQueues), not through a lookup by key or id. A topic created again
//! under the same name starts empty. The fence of a topic is the CommitLog
//! end at the moment it was deleted: its records below that offset are
//! dead. Fences are persisted (`topic_fences.json`, replaced atomically)
//! before anything of the topic is removed, and dropped once retention has
//! deleted everything below them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{IoContext, StoreError};

use crate::layout::FENCES_FILE;

#[derive(Debug)]
pub struct TopicFences {
    path: PathBuf,
    /// Read on every dispatched record, written only by deletions and
    /// retention: a `RwLock`, with `any` sparing readers even that while
    /// no topic was ever deleted.
    fences: RwLock<BTreeMap<String, u64>>,
    any: AtomicBool,
}

impl TopicFences {
    /// Loads the fences of the store in `dir` (none if the file is missing).
    pub fn load(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(FENCES_FILE);
        let fences: BTreeMap<String, u64> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                StoreError::io(
                    format!("parsing {}", path.display()),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(err) => return Err(StoreError::io(format!("reading {}", path.display()), err)),
        };
        Ok(TopicFences {
            path,
            any: AtomicBool::new(!fences.is_empty()),
            fences: RwLock::new(fences),
        })
    }

    /// Whether the record of `topic` at `physical_offset` belongs to a
    /// deleted incarnation of the topic.
    pub fn is_dead(&self, topic: &str, physical_offset: u64) -> bool {
        self.any.load(Ordering::Acquire)
            && self
                .read()
                .get(topic)
                .is_some_and(|&fence| physical_offset < fence)
    }

    /// Fences `topic` below `offset`, durably.
    pub fn add(&self, topic: &str, offset: u64) -> Result<(), StoreError> {
        let mut fences = self.fences.write().unwrap_or_else(|e| e.into_inner());
        let mut changed = fences.clone();
        changed.insert(topic.to_owned(), offset);
        self.persist(&changed)?;
        *fences = changed;
        self.any.store(true, Ordering::Release);
        Ok(())
    }

    /// Drops the fences below `commitlog_min`: nothing they hide is stored.
    pub fn prune(&self, commitlog_min: u64) -> Result<(), StoreError> {
        let mut fences = self.fences.write().unwrap_or_else(|e| e.into_inner());
        if fences.values().all(|&fence| fence > commitlog_min) {
            return Ok(());
        }
        let mut kept = fences.clone();
        kept.retain(|_, fence| *fence > commitlog_min);
        self.persist(&kept)?;
        self.any.store(!kept.is_empty(), Ordering::Release);
        *fences = kept;
        Ok(())
    }

    fn persist(&self, fences: &BTreeMap<String, u64>) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(fences).map_err(std::io::Error::other);
        bytes
            .and_then(|bytes| crate::atomic_file::write(&self.path, &bytes))
            .context(|| format!("writing {}", self.path.display()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, u64>> {
        self.fences.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_hide_old_records_survive_a_reload_and_go_with_retention() {
        let dir = tempfile::tempdir().unwrap();
        let fences = TopicFences::load(dir.path()).unwrap();
        assert!(!fences.is_dead("t", 0));
        fences.add("t", 1000).unwrap();
        assert!(fences.is_dead("t", 999));
        assert!(!fences.is_dead("t", 1000), "the new incarnation");
        assert!(!fences.is_dead("other", 0));

        let reloaded = TopicFences::load(dir.path()).unwrap();
        assert!(reloaded.is_dead("t", 999));
        reloaded.prune(999).unwrap();
        assert!(
            reloaded.is_dead("t", 999),
            "records below it are still stored"
        );
        reloaded.prune(1000).unwrap();
        assert!(!reloaded.is_dead("t", 999));
        assert!(!TopicFences::load(dir.path()).unwrap().is_dead("t", 999));
    }
}
