//! Committed consumer offsets per (group, topic, queue), kept in memory,
//! persisted to `consumer_offsets.json` in the store directory every few
//! seconds and at shutdown (replaced atomically), reloaded at start.

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
            }),
        })
    }

    pub fn commit(&self, group: &str, topic: &str, queue_id: u32, offset: u64) {
        let mut state = self.lock();
        state
            .offsets
            .entry(group.to_owned())
            .or_default()
            .entry(topic.to_owned())
            .or_default()
            .insert(queue_id, offset);
        state.dirty = true;
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
}
