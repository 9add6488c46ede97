//! The flusher thread: the only code that syncs the CommitLog to disk.
//!
//! In sync mode it flushes as soon as an appender asks and publishes the
//! new flushed offset to the waiting appenders (group commit). In async
//! mode appenders neither wait for it nor wake it: every `interval` it
//! flushes if at least `least_bytes` are dirty, and whatever is dirty once
//! [`THOROUGH_FLUSH`] has passed since the last flush (RocketMQ's
//! `flushCommitLogTimed` behaviour). Waking it per append would `msync`
//! every few KiB; under load that costs more CPU than the appends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::commitlog::CommitLog;
use crate::config::FlushMode;
use crate::flush::group_commit::GroupCommit;
use crate::worker::{Wake, Worker};

/// In async mode, flush whatever is dirty at least this often.
pub const THOROUGH_FLUSH: Duration = Duration::from_secs(10);

/// How the flusher decides when to run.
#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    pub mode: FlushMode,
    /// Async mode: how often to look at the dirty bytes.
    pub interval: Duration,
    /// Async mode: flush once this many bytes are dirty.
    pub least_bytes: u64,
}

impl FlushPolicy {
    /// Whether an async-mode tick flushes `dirty` bytes, `since` the last
    /// flush.
    fn async_flush_due(&self, dirty: u64, since: Duration) -> bool {
        dirty > 0 && (dirty >= self.least_bytes || since >= THOROUGH_FLUSH)
    }
}

/// Starts the flusher thread; stopping it shuts the group commit down
/// (appends still waiting are answered), and it flushes one last time.
pub fn start(
    log: Arc<CommitLog>,
    group: Arc<GroupCommit>,
    policy: FlushPolicy,
) -> std::io::Result<Worker> {
    let shut = Arc::clone(&group);
    Worker::start(
        "commitlog-flusher",
        Wake::With(Box::new(move || shut.shut_down())),
        move |_| run(&log, &group, policy),
    )
}

fn run(log: &CommitLog, group: &GroupCommit, policy: FlushPolicy) {
    let mut flushed = log.flushed_offset();
    let mut last_flush = Instant::now();
    let wait = match policy.mode {
        FlushMode::Sync => Duration::from_secs(1),
        FlushMode::Async => policy.interval,
    };
    // Sync: woken by an appender (or the timeout), flush what was appended
    // since. Async: only the timeout wakes it.
    while group.next_request(flushed, wait).is_some() {
        let dirty = log.max_offset().saturating_sub(flushed);
        let due = match policy.mode {
            FlushMode::Sync => dirty > 0,
            FlushMode::Async => policy.async_flush_due(dirty, last_flush.elapsed()),
        };
        if due {
            flushed = flush_once(log, group, flushed);
            last_flush = Instant::now();
        }
    }
    flush_once(log, group, flushed);
}

fn flush_once(log: &CommitLog, group: &GroupCommit, flushed: u64) -> u64 {
    // Tests stall the disk here, between "written" and "synced".
    fail::fail_point!("flusher::before_sync");
    let started = Instant::now();
    let flushed_now = log.flush();
    group.record_flush(started.elapsed());
    match flushed_now {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn async_ticks_flush_past_the_threshold_or_after_the_thorough_interval() {
        let policy = FlushPolicy {
            mode: FlushMode::Async,
            interval: Duration::from_millis(500),
            least_bytes: 16384,
        };
        let recent = Duration::from_millis(500);
        assert!(!policy.async_flush_due(0, THOROUGH_FLUSH), "nothing dirty");
        assert!(
            !policy.async_flush_due(16383, recent),
            "below the threshold"
        );
        assert!(policy.async_flush_due(16384, recent));
        assert!(
            policy.async_flush_due(1, THOROUGH_FLUSH),
            "a thorough flush"
        );
    }
}
