//! Why a store operation failed.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::commitlog::outcome::{Damage, Truncation};
use crate::commitlog::record::RecordError;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("message of {size} bytes exceeds the maximum message size of {max} bytes")]
    MessageTooLarge { size: usize, max: u32 },
    #[error("batch of {size} bytes does not fit in one CommitLog segment of {segment_size} bytes")]
    BatchTooLarge { size: usize, segment_size: u64 },
    #[error("a batch must not be empty")]
    EmptyBatch,
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Replicated bytes that cannot be appended as they are.
    #[error("replicated bytes at offset {offset} refused: {reason}")]
    Replication { offset: u64, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Appends are refused while the broker hands its mastership over
    /// (see `MessageStore::seal`).
    #[error(
        "appends are paused: this broker is handing over mastership to another member of its group; retry on the new master"
    )]
    Sealed,
    #[error("the store directory {0} is used by another process")]
    Locked(PathBuf),
    #[error(
        "the disk is {:.0}% full, above the limit of {:.0}%: appends are refused until space frees",
        used * 100.0,
        limit * 100.0
    )]
    DiskFull { used: f64, limit: f64 },
    /// The disk has no room for a file the store must write (or would
    /// pass `disk_hard_ratio` with it).
    #[error("disk full: {context}: {source}; appends are refused until space frees")]
    NoSpace {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Valid records follow damage in data that was on disk.
    #[error(
        "CommitLog corrupted in {} at offset {offset}: {damage}; {}",
        file.display(),
        what_to_do(*next_valid)
    )]
    Corrupted {
        file: PathBuf,
        offset: u64,
        damage: Damage,
        /// Where valid records resume, if they do.
        next_valid: Option<u64>,
    },
    /// `recovery_mode = strict` and recovery would cut data.
    #[error(
        "CommitLog recovery would cut data in {}: {truncation}; recovery_mode = \"strict\" refuses and nothing was changed; to cut it and start, set recovery_mode = \"fail\" (--store-set recovery_mode=fail)",
        file.display()
    )]
    WouldCut {
        file: PathBuf,
        truncation: Truncation,
    },
    /// The dispatcher has not indexed far enough in time for `what`.
    #[error("{what}: the dispatcher is behind (a full disk?); try again")]
    Behind { what: String },
    #[error("invalid store configuration: {0}")]
    Config(String),
    #[error("the store is shut down")]
    Closed,
}

impl StoreError {
    /// An I/O failure; one that says the disk is full becomes
    /// [`StoreError::NoSpace`], so that callers refuse instead of failing.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        let context = context.into();
        if crate::space::is_out_of_space(&source) {
            return StoreError::NoSpace { context, source };
        }
        StoreError::Io { context, source }
    }

    /// Whether this failure is the disk being full: worth retrying once
    /// space frees, or on another broker.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            StoreError::DiskFull { .. } | StoreError::NoSpace { .. }
        )
    }
}

/// Adds context to I/O results.
pub trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::io(context(), source))
    }
}

/// The advice that goes with a corruption.
fn what_to_do(next_valid: Option<u64>) -> String {
    match next_valid {
        Some(next) => format!(
            "valid records follow at offset {next}, so this is damage, not a torn write, and nothing was changed; to start and keep them, skipping the damaged bytes (copied aside), set recovery_mode = \"skip_corrupted\" (--store-set recovery_mode=skip_corrupted)"
        ),
        None => "no valid record follows it".to_owned(),
    }
}
