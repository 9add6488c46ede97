//! Committed consumer offsets per (group, topic, queue), kept in memory,
//! persisted to `consumer_offsets.json` in the store directory every few
//! seconds and at shutdown (replaced atomically), reloaded at start.
//!
//! On a replica the master's table is the truth: the replica adopts it at
//! every state sync, and hands over the commits consumers made on it in
//! between (while the master was unreachable), which it keeps until then.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mq_store::atomic_file;
use serde::{Deserialize, Serialize};

type Table = BTreeMap<String, BTreeMap<String, BTreeMap<u32, u64>>>;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    /// group -> topic -> queue id -> next offset to consume.
    offsets: Table,
    /// group -> how many times an operator reset its offsets here.
    #[serde(default)]
    reset_versions: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct State {
    offsets: Table,
    reset_versions: BTreeMap<String, u64>,
    dirty: bool,
    /// Commits made here since the last hand-over, when tracked.
    unsynced: Option<BTreeMap<QueueKey, Commit>>,
}

/// (group, topic, queue id).
pub type QueueKey = (String, String, u32);

/// A committed offset and the group's reset version it was committed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    pub offset: u64,
    pub reset_version: u64,
}

/// A master's offsets as a replica adopts them.
#[derive(Debug, Default)]
pub struct Adopted {
    pub offsets: Vec<(QueueKey, u64)>,
    pub reset_versions: BTreeMap<String, u64>,
}

#[derive(Debug)]
pub struct ConsumerOffsets {
    path: PathBuf,
    state: Mutex<State>,
}

impl ConsumerOffsets {
    /// Loads `path`, or starts empty if it does not exist.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let persisted = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<Persisted>(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Persisted::default(),
            Err(err) => return Err(err),
        };
        Ok(ConsumerOffsets {
            path: path.to_owned(),
            state: Mutex::new(State {
                offsets: persisted.offsets,
                reset_versions: persisted.reset_versions,
                dirty: false,
                unsynced: None,
            }),
        })
    }

    /// Keeps the commits made from now on until [`Self::take_unsynced`]
    /// (a replica's, for its master).
    pub fn track_commits(self) -> Self {
        self.lock().unsynced = Some(BTreeMap::new());
        self
    }

    pub fn commit(&self, group: &str, topic: &str, queue_id: u32, offset: u64) {
        let mut state = self.lock();
        let reset_version = state.reset_versions.get(group).copied().unwrap_or(0);
        if let Some(unsynced) = &mut state.unsynced {
            unsynced.insert(
                (group.to_owned(), topic.to_owned(), queue_id),
                Commit {
                    offset,
                    reset_version,
                },
            );
        }
        set(&mut state.offsets, group, topic, queue_id, offset);
        state.dirty = true;
    }

    /// Takes a commit handed over by a replica: only one made after the
    /// group's last reset here that moves the queue forward (the master
    /// may have taken newer commits since).
    pub fn take_forwarded(&self, (group, topic, queue_id): &QueueKey, commit: Commit) -> bool {
        let mut state = self.lock();
        if commit.reset_version < state.reset_versions.get(group).copied().unwrap_or(0) {
            return false;
        }
        let current = state
            .offsets
            .get(group)
            .and_then(|t| t.get(topic))
            .and_then(|q| q.get(queue_id));
        if current.is_some_and(|&c| c >= commit.offset) {
            return false;
        }
        set(&mut state.offsets, group, topic, *queue_id, commit.offset);
        state.dirty = true;
        true
    }

    /// The commits made here since the last call (empty when not tracked).
    pub fn take_unsynced(&self) -> BTreeMap<QueueKey, Commit> {
        self.lock()
            .unsynced
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Puts back commits that could not be handed over, under any made
    /// since they were taken.
    pub fn restore_unsynced(&self, commits: BTreeMap<QueueKey, Commit>) {
        if let Some(unsynced) = &mut self.lock().unsynced {
            for (key, commit) in commits {
                unsynced.entry(key).or_insert(commit);
            }
        }
    }

    /// Replaces the table with the master's, keeping the commits made here
    /// that are not handed over yet.
    pub fn adopt(&self, master: Adopted) {
        let mut state = self.lock();
        let mut offsets = Table::new();
        for ((group, topic, queue_id), offset) in master.offsets {
            set(&mut offsets, &group, &topic, queue_id, offset);
        }
        for ((group, topic, queue_id), commit) in state.unsynced.iter().flatten() {
            set(&mut offsets, group, topic, *queue_id, commit.offset);
        }
        if offsets != state.offsets || master.reset_versions != state.reset_versions {
            state.offsets = offsets;
            state.reset_versions = master.reset_versions;
            state.dirty = true;
        }
    }

    /// Every group's reset version.
    pub fn reset_versions(&self) -> BTreeMap<String, u64> {
        self.lock().reset_versions.clone()
    }

    pub fn query(&self, group: &str, topic: &str, queue_id: u32) -> Option<u64> {
        self.lock()
            .offsets
            .get(group)?
            .get(topic)?
            .get(&queue_id)
            .copied()
    }

    /// Every committed offset: (group, topic, queue id, offset).
    pub fn all(&self) -> Vec<(String, String, u32, u64)> {
        let state = self.lock();
        let mut all = Vec::new();
        for (group, topics) in &state.offsets {
            for (topic, queues) in topics {
                for (&queue, &offset) in queues {
                    all.push((group.clone(), topic.clone(), queue, offset));
                }
            }
        }
        all
    }

    /// Every (topic, queue id, offset) the group committed here.
    pub fn of_group(&self, group: &str) -> Vec<(String, u32, u64)> {
        let state = self.lock();
        let Some(topics) = state.offsets.get(group) else {
            return Vec::new();
        };
        topics
            .iter()
            .flat_map(|(topic, queues)| queues.iter().map(|(&q, &o)| (topic.clone(), q, o)))
            .collect()
    }

    /// Sets the group's offsets of `topic` as an operator's reset, and
    /// bumps the group's reset version so that its members reread them.
    pub fn reset(&self, group: &str, topic: &str, offsets: &[(u32, u64)]) -> u64 {
        let mut state = self.lock();
        let queues = state
            .offsets
            .entry(group.to_owned())
            .or_default()
            .entry(topic.to_owned())
            .or_default();
        for &(queue, offset) in offsets {
            queues.insert(queue, offset);
        }
        let version = state.reset_versions.entry(group.to_owned()).or_insert(0);
        *version += 1;
        let version = *version;
        state.dirty = true;
        version
    }

    /// Drops every group's offsets of a deleted topic.
    pub fn forget_topic(&self, topic: &str) {
        let mut state = self.lock();
        let mut changed = false;
        for topics in state.offsets.values_mut() {
            changed |= topics.remove(topic).is_some();
        }
        state.offsets.retain(|_, topics| !topics.is_empty());
        state.dirty |= changed;
    }

    /// How many times the group's offsets were reset here.
    pub fn reset_version(&self, group: &str) -> u64 {
        self.lock().reset_versions.get(group).copied().unwrap_or(0)
    }

    /// Writes the table if anything changed since the last write.
    pub fn persist(&self) -> std::io::Result<()> {
        let mut state = self.lock();
        if !state.dirty {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&Persisted {
            offsets: state.offsets.clone(),
            reset_versions: state.reset_versions.clone(),
        })
        .map_err(std::io::Error::other)?;
        atomic_file::write(&self.path, &bytes)?;
        state.dirty = false;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn set(offsets: &mut Table, group: &str, topic: &str, queue_id: u32, offset: u64) {
    offsets
        .entry(group.to_owned())
        .or_default()
        .entry(topic.to_owned())
        .or_default()
        .insert(queue_id, offset);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_a_reload_and_unknown_ones_are_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumer_offsets.json");
        let offsets = ConsumerOffsets::load(&path).unwrap();
        assert_eq!(offsets.query("g", "t", 0), None);
        offsets.commit("g", "t", 0, 42);
        offsets.commit("g", "t", 0, 43);
        offsets.commit("g", "u", 3, 7);
        offsets.persist().unwrap();
        let reloaded = ConsumerOffsets::load(&path).unwrap();
        assert_eq!(reloaded.query("g", "t", 0), Some(43));
        assert_eq!(reloaded.query("g", "u", 3), Some(7));
        assert_eq!(reloaded.query("h", "t", 0), None);
        std::fs::write(&path, "garbage").unwrap();
        assert!(ConsumerOffsets::load(&path).is_err());
    }

    #[test]
    fn a_replica_keeps_its_commits_until_handed_over_and_adopts_the_masters_table() {
        let dir = tempfile::tempdir().unwrap();
        let replica = ConsumerOffsets::load(&dir.path().join("r.json"))
            .unwrap()
            .track_commits();
        let key = |q: u32| ("g".to_owned(), "t".to_owned(), q);
        replica.commit("g", "t", 0, 10);
        let taken = replica.take_unsynced();
        assert_eq!(taken.len(), 1);
        replica.commit("g", "t", 1, 5);
        // The master knows queue 0 at 3 and queue 2 at 8.
        replica.adopt(Adopted {
            offsets: vec![(key(0), 3), (key(2), 8)],
            reset_versions: BTreeMap::new(),
        });
        // Queue 0 was taken for hand-over: the master's answer stands until
        // it takes it; queue 1 is not handed over yet and stays.
        assert_eq!(replica.query("g", "t", 0), Some(3));
        assert_eq!(replica.query("g", "t", 1), Some(5));
        assert_eq!(replica.query("g", "t", 2), Some(8));
        // A failed hand-over puts queue 0 back, under nothing newer.
        replica.restore_unsynced(taken);
        assert_eq!(replica.take_unsynced().len(), 2);

        let master = ConsumerOffsets::load(&dir.path().join("m.json")).unwrap();
        let at = |offset, reset_version| Commit {
            offset,
            reset_version,
        };
        master.commit("g", "t", 0, 20);
        assert!(!master.take_forwarded(&key(0), at(15, 0)), "moves back");
        assert!(master.take_forwarded(&key(0), at(25, 0)));
        assert_eq!(master.query("g", "t", 0), Some(25));
        master.reset("g", "t", &[(0, 1)]);
        assert!(
            !master.take_forwarded(&key(0), at(30, 0)),
            "made before the reset"
        );
        assert_eq!(master.query("g", "t", 0), Some(1));
        assert!(master.take_forwarded(&key(0), at(30, 1)));
        // An untracked table keeps nothing to hand over.
        assert!(master.take_unsynced().is_empty());
    }
}
