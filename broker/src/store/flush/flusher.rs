//! The flusher thread: the only code that syncs the CommitLog to disk.
//!
//! In sync mode it flushes as soon as an appender asks and publishes the
//! new flushed offset to the waiting appenders (group commit). In async
//! mode it flushes every `interval`, or earlier once `least_bytes` are
//! dirty; appenders do not wait for it.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::store::commitlog::CommitLog;
use crate::store::config::FlushMode;
use crate::store::flush::group_commit::GroupCommit;

/// How the flusher decides when to run; the dirty-bytes threshold lives
/// in the [`GroupCommit`].
#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    pub mode: FlushMode,
    pub interval: Duration,
}

/// Starts the flusher thread; it runs until `group.shut_down()`, then
/// flushes one last time.
pub fn start(
    log: Arc<CommitLog>,
    group: Arc<GroupCommit>,
    policy: FlushPolicy,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("commitlog-flusher".into())
        .spawn(move || run(&log, &group, policy))
}

fn run(log: &CommitLog, group: &GroupCommit, policy: FlushPolicy) {
    let mut flushed = log.flushed_offset();
    let wait = match policy.mode {
        FlushMode::Sync => Duration::from_secs(1),
        FlushMode::Async => policy.interval,
    };
    // Woken by enough requests (a sync appender, or enough dirty bytes) or
    // by the timeout: either way, flush whatever was appended since.
    while group.next_request(flushed, wait).is_some() {
        if log.max_offset() > flushed {
            flushed = flush_once(log, group, flushed);
        }
    }
    flush_once(log, group, flushed);
}

fn flush_once(log: &CommitLog, group: &GroupCommit, flushed: u64) -> u64 {
    // Tests stall the disk here, between "written" and "synced".
    fail::fail_point!("flusher::before_sync");
    match log.flush() {
        Ok(offset) => {
            group.publish(offset);
            offset
        }
        Err(err) => {
            // Waiters time out with FLUSH_DISK_TIMEOUT; the next round retries.
            tracing::error!(error = %err, "CommitLog flush failed");
            flushed
        }
    }
}
