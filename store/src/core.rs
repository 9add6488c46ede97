//! The state the store's background threads share with its handle.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use crate::commitlog::CommitLog;
use crate::config::StoreConfig;
use crate::dispatch::Targets;
use crate::env::StoreEnv;

/// What the store's threads share.
#[derive(Debug)]
pub(crate) struct Core {
    pub dir: PathBuf,
    pub config: StoreConfig,
    pub env: StoreEnv,
    pub log: Arc<CommitLog>,
    pub targets: Targets,
    /// Every record below this offset is indexed.
    pub dispatched: Arc<AtomicU64>,
    pub disk_full: AtomicBool,
    pub disk_ratio_bits: AtomicU64,
    /// Unexpired CommitLog bytes deleted to make room, since start.
    pub unexpired_bytes_deleted: AtomicU64,
    pub epochs: crate::epochs::Epochs,
    /// How far reads by queue may go.
    pub read_limit: crate::read_limit::ReadLimit,
}
