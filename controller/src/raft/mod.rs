//! The controller's Raft, on openraft: the type configuration, the log
//! store ([`log_store`]: entries, vote and committed id on disk, synced
//! before Raft is told) and the state machine ([`state_machine`]: the
//! [`ControllerState`](crate::state::ControllerState) with snapshots on
//! disk).

pub mod log_store;
pub mod network;
pub mod state_machine;

use std::io::Cursor;

use crate::state::{Command, Outcome};

openraft::declare_raft_types!(
    /// The controller's Raft types: commands in, outcomes out.
    pub TypeConfig:
        D = Command,
        R = Option<Outcome>,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type NodeId = u64;
pub type StorageError = openraft::StorageError<NodeId>;

fn io_error(err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod storage_tests;
