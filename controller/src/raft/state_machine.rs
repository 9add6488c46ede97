//! The controller's state machine for openraft: applies committed commands
//! to the [`ControllerState`] and keeps the last snapshot on disk
//! (`raft-snapshot.json`, replaced atomically). The state itself lives in
//! memory: after a restart it is the snapshot's, and Raft applies the log
//! entries after it again.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mq_store::atomic_file;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::{NodeId, StorageError, TypeConfig, io_error};
use crate::state::{ControllerState, Outcome};

const SNAPSHOT_FILE: &str = "raft-snapshot.json";

/// What a snapshot holds: the state and how far it reaches.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    state: ControllerState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    data: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    applied: Applied,
    snapshot: Option<StoredSnapshot>,
    built: u64,
}

impl StateMachine {
    /// Opens the state machine of `dir`: the last snapshot's state.
    pub fn open(dir: &Path) -> std::io::Result<StateMachine> {
        std::fs::create_dir_all(dir)?;
        let snapshot: Option<StoredSnapshot> = atomic_file::read_json(&dir.join(SNAPSHOT_FILE))?;
        let applied = match &snapshot {
            Some(s) => serde_json::from_slice(&s.data).map_err(io_error)?,
            None => Applied::default(),
        };
        Ok(StateMachine {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_owned(),
                applied,
                snapshot,
                built: 0,
            })),
        })
    }

    /// The controller state as applied so far.
    pub fn state(&self) -> ControllerState {
        self.lock().applied.state.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn save(&mut self, snapshot: StoredSnapshot) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&snapshot).map_err(io_error)?;
        atomic_file::write(&self.dir.join(SNAPSHOT_FILE), &bytes)?;
        self.snapshot = Some(snapshot);
        Ok(())
    }
}

fn to_snapshot(stored: StoredSnapshot) -> Snapshot<TypeConfig> {
    Snapshot {
        meta: stored.meta,
        snapshot: Box::new(Cursor::new(stored.data)),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let mut inner = self.lock();
        let data = serde_json::to_vec(&inner.applied)
            .map_err(|e| StorageIOError::write_state_machine(&io_error(e)))?;
        inner.built += 1;
        let last = inner.applied.last_applied;
        let snapshot_id = match last {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, inner.built),
            None => format!("--{}", inner.built),
        };
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: last,
                last_membership: inner.applied.membership.clone(),
                snapshot_id,
            },
            data,
        };
        inner
            .save(stored.clone())
            .map_err(|e| StorageIOError::write_snapshot(Some(stored.meta.signature()), &e))?;
        Ok(to_snapshot(stored))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<NodeId>>,
            StoredMembership<NodeId, openraft::BasicNode>,
        ),
        StorageError,
    > {
        let inner = self.lock();
        Ok((inner.applied.last_applied, inner.applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Option<Outcome>>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.lock();
        let mut outcomes = Vec::new();
        for entry in entries {
            inner.applied.last_applied = Some(entry.log_id);
            outcomes.push(match entry.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(command) => Some(inner.applied.state.apply(command)),
                EntryPayload::Membership(membership) => {
                    inner.applied.membership =
                        StoredMembership::new(Some(entry.log_id), membership);
                    None
                }
            });
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let applied: Applied = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &io_error(e)))?;
        let mut inner = self.lock();
        inner
            .save(StoredSnapshot {
                meta: meta.clone(),
                data,
            })
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        inner.applied = applied;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.lock().snapshot.clone().map(to_snapshot))
    }
}
