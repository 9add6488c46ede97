//! The broker's topics: queue counts and permission of each, persisted in
//! `topics.json` under the store directory (replaced atomically) and
//! reported to the nameservers. Every change bumps the data version, so
//! that the next registration carries it instead of a heartbeat.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use mq_common::{FieldError, MessageType, Perm, validate};
use mq_store::atomic_file;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// One topic on this broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    pub topic: String,
    pub read_queue_count: u32,
    pub write_queue_count: u32,
    pub perm: u32,
    /// What RocketMQ 5 clients may send to it (tables written before
    /// types existed hold normal topics).
    #[serde(default)]
    pub message_type: MessageType,
}

impl TopicConfig {
    /// A read-write topic with `queues` read and write queues.
    pub fn new(topic: &str, queues: u32) -> Self {
        TopicConfig {
            topic: topic.to_owned(),
            read_queue_count: queues,
            write_queue_count: queues,
            perm: Perm::READ_WRITE.bits(),
            message_type: MessageType::Normal,
        }
    }

    /// Checks every field; `prefix` names where the config came from.
    pub fn check(&self, prefix: &str) -> Result<(), FieldError> {
        validate::topic(&format!("{prefix}topic"), &self.topic)?;
        validate::queue_count(&format!("{prefix}read_queue_count"), self.read_queue_count)?;
        validate::queue_count(
            &format!("{prefix}write_queue_count"),
            self.write_queue_count,
        )?;
        Perm::from_bits(&format!("{prefix}perm"), self.perm)?;
        Ok(())
    }

    pub fn perm(&self) -> Perm {
        Perm::from_bits("perm", self.perm).unwrap_or(Perm::READ_WRITE)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    version: u64,
    topics: Vec<TopicConfig>,
}

#[derive(Debug, Default)]
struct State {
    topics: BTreeMap<String, TopicConfig>,
    version: u64,
}

/// Why the topic table could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum TopicTableError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid topic file: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Debug)]
pub struct TopicTable {
    path: PathBuf,
    state: RwLock<State>,
    /// Woken on every change, so that registration need not wait 30 s.
    pub changed: Notify,
}

impl TopicTable {
    /// Loads `path`, or starts empty if it does not exist.
    pub fn load(path: &Path) -> Result<Self, TopicTableError> {
        let io = |source| TopicTableError::Io {
            path: path.to_owned(),
            source,
        };
        let invalid = |reason: String| TopicTableError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let persisted = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice::<Persisted>(&bytes).map_err(|e| invalid(e.to_string()))?
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Persisted::default(),
            Err(err) => return Err(io(err)),
        };
        let mut topics = BTreeMap::new();
        for (i, config) in persisted.topics.into_iter().enumerate() {
            config
                .check(&format!("topics[{i}]."))
                .map_err(|e| invalid(e.to_string()))?;
            topics.insert(config.topic.clone(), config);
        }
        Ok(TopicTable {
            path: path.to_owned(),
            state: RwLock::new(State {
                topics,
                version: persisted.version,
            }),
            changed: Notify::new(),
        })
    }

    pub fn get(&self, topic: &str) -> Option<TopicConfig> {
        self.read().topics.get(topic).cloned()
    }

    /// Every topic, sorted by name, with the data version they make.
    pub fn snapshot(&self) -> (Vec<TopicConfig>, u64) {
        let state = self.read();
        (state.topics.values().cloned().collect(), state.version)
    }

    /// Creates or replaces a topic's config, on disk first.
    pub fn upsert(&self, config: TopicConfig) -> Result<(), TopicTableError> {
        self.change(|topics| {
            let unchanged = topics.get(&config.topic) == Some(&config);
            topics.insert(config.topic.clone(), config);
            !unchanged
        })
        .map(|_| ())
    }

    /// Creates a topic unless it exists; returns the topic's config.
    pub fn get_or_create(&self, config: TopicConfig) -> Result<TopicConfig, TopicTableError> {
        if let Some(existing) = self.get(&config.topic) {
            return Ok(existing);
        }
        let name = config.topic.clone();
        self.change(|topics| {
            if topics.contains_key(&config.topic) {
                return false;
            }
            topics.insert(config.topic.clone(), config);
            true
        })?;
        Ok(self.get(&name).expect("just created"))
    }

    /// Makes the table exactly `configs` (a replica taking its master's
    /// topics); true if anything changed.
    pub fn replace_all(&self, configs: Vec<TopicConfig>) -> Result<bool, TopicTableError> {
        let wanted: BTreeMap<String, TopicConfig> =
            configs.into_iter().map(|c| (c.topic.clone(), c)).collect();
        self.change(|topics| {
            if *topics == wanted {
                return false;
            }
            *topics = wanted;
            true
        })
    }

    /// Removes a topic; false if it did not exist.
    pub fn delete(&self, topic: &str) -> Result<bool, TopicTableError> {
        self.change(|topics| topics.remove(topic).is_some())
    }

    /// Applies `edit` to a copy; if it reports a change, persists the copy
    /// and only then makes it current. Writers are serialized by the lock.
    fn change(
        &self,
        edit: impl FnOnce(&mut BTreeMap<String, TopicConfig>) -> bool,
    ) -> Result<bool, TopicTableError> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut topics = state.topics.clone();
        if !edit(&mut topics) {
            return Ok(false);
        }
        let persisted = Persisted {
            version: state.version + 1,
            topics: topics.values().cloned().collect(),
        };
        let bytes =
            serde_json::to_vec_pretty(&persisted).map_err(|e| TopicTableError::Invalid {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        atomic_file::write(&self.path, &bytes).map_err(|source| TopicTableError::Io {
            path: self.path.clone(),
            source,
        })?;
        state.topics = topics;
        state.version += 1;
        drop(state);
        self.changed.notify_one();
        Ok(true)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_persist_across_reloads_and_bump_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topics.json");
        let table = TopicTable::load(&path).unwrap();
        assert_eq!(table.snapshot(), (vec![], 0));
        table.upsert(TopicConfig::new("orders", 8)).unwrap();
        table.upsert(TopicConfig::new("orders", 8)).unwrap();
        assert_eq!(table.snapshot().1, 1, "an unchanged upsert is no change");
        table.get_or_create(TopicConfig::new("auto", 4)).unwrap();
        assert_eq!(
            table
                .get_or_create(TopicConfig::new("auto", 9))
                .unwrap()
                .write_queue_count,
            4
        );
        assert!(table.delete("orders").unwrap());
        assert!(!table.delete("orders").unwrap());

        let reloaded = TopicTable::load(&path).unwrap();
        assert_eq!(reloaded.snapshot(), (vec![TopicConfig::new("auto", 4)], 3));
    }

    #[test]
    fn a_damaged_topic_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topics.json");
        std::fs::write(&path, b"{ not json").unwrap();
        let err = TopicTable::load(&path).unwrap_err();
        assert!(err.to_string().contains("topics.json"), "{err}");
        std::fs::write(&path, br#"{"version":1,"topics":[{"topic":"a b","read_queue_count":1,"write_queue_count":1,"perm":6}]}"#)
            .unwrap();
        let err = TopicTable::load(&path).unwrap_err();
        assert!(err.to_string().contains("topics[0].topic"), "{err}");
    }
}
