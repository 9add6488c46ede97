//! Retention and disk space: which CommitLog segments go, and when the
//! store must refuse appends.
//!
//! A segment expires `file_reserved_time` after its last write (the store
//! time of the next segment's first record). Expired segments are deleted
//! in the daily window (`delete_hour`, UTC), or at once when the disk is
//! fuller than `disk_soft_ratio`. Above `disk_hard_ratio` appends are
//! refused until space frees; only with [`DiskFullPolicy::DeleteOldest`]
//! do the oldest segments go even before they expire, each loudly. The
//! active segment is never deleted. ConsumeQueue and IndexFile data that
//! only points into deleted segments goes with them.

use std::path::Path;
use std::time::Duration;

use crate::commitlog::CommitLog;
use crate::config::DiskFullPolicy;
use crate::consume_queue::registry::ConsumeQueues;
use crate::env::StoreEnv;
use crate::error::StoreError;
use crate::fences::TopicFences;
use crate::index::IndexFiles;

/// Segments deleted per run at most, so that one run stays short.
const MAX_DELETES_PER_RUN: usize = 16;
const HOUR_MS: u64 = 3_600_000;

/// When data may go.
#[derive(Debug, Clone, Copy)]
pub struct RetentionPolicy {
    pub reserved: Duration,
    /// Hour of the day (UTC, 0-23) in which expired segments are deleted.
    pub delete_hour: u8,
    pub soft_ratio: f64,
    pub hard_ratio: f64,
    pub on_full: DiskFullPolicy,
}

/// What a retention run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionReport {
    /// Base offsets of the deleted CommitLog segments.
    pub deleted_segments: Vec<u64>,
    /// Bytes of those segments that had not expired yet.
    pub unexpired_bytes_deleted: u64,
    /// The oldest CommitLog offset still stored.
    pub commitlog_min_offset: u64,
    /// Disk use after the run.
    pub disk_ratio: f64,
    /// Appends must be refused.
    pub disk_full: bool,
}

/// One retention pass over the store in `dir`.
pub fn run(
    dir: &Path,
    log: &CommitLog,
    queues: &ConsumeQueues,
    index: &IndexFiles,
    fences: &TopicFences,
    env: &StoreEnv,
    policy: &RetentionPolicy,
) -> Result<RetentionReport, StoreError> {
    let now = env.clock.now_ms();
    let in_window = (now / HOUR_MS) % 24 == u64::from(policy.delete_hour);
    let reserved_ms = u64::try_from(policy.reserved.as_millis()).unwrap_or(u64::MAX);
    let segment = log.segments().segment_size() as u64;
    let (mut ratio, mut ratio_with_next) = disk_ratios(env, dir, segment);
    let mut deleted = Vec::new();
    let mut unexpired_bytes_deleted = 0;

    while deleted.len() < MAX_DELETES_PER_RUN {
        let segments = log.segments().all();
        // The newest segment is being written; it stays.
        let [oldest, next, ..] = segments.as_slice() else {
            break;
        };
        let last_write = log
            .read_message(next.base_offset(), record_size_at(log, next.base_offset()))
            .ok()
            .flatten()
            .map_or(now, |m| m.store_timestamp_ms);
        let expired = now.saturating_sub(last_write) > reserved_ms;
        // Room for the next segment, which the allocator makes only within
        // the hard ratio.
        let make_room =
            ratio_with_next > policy.hard_ratio && policy.on_full == DiskFullPolicy::DeleteOldest;
        let delete = (expired && (in_window || ratio >= policy.soft_ratio)) || make_room;
        if !delete {
            break;
        }
        let base = oldest.base_offset();
        let end = next.base_offset();
        // Only this thread removes segments: the oldest is still `oldest`.
        log.segments()
            .remove_oldest(1)
            .map_err(|e| StoreError::io(format!("deleting CommitLog segment {base}"), e))?;
        if expired {
            tracing::info!(
                segment = base,
                disk_ratio = ratio,
                "expired CommitLog segment deleted"
            );
        } else {
            unexpired_bytes_deleted += end - base;
            tracing::warn!(
                segment = base,
                lost_from = base,
                lost_to = end,
                disk_ratio = ratio,
                "disk full (disk_full_policy = delete_oldest): deleted an unexpired CommitLog segment; messages stored at offsets lost_from..lost_to are gone, consumed or not"
            );
        }
        deleted.push(base);
        (ratio, ratio_with_next) = disk_ratios(env, dir, segment);
    }

    let min = log.min_offset();
    if !deleted.is_empty() {
        for queue in queues.all() {
            queue.drop_below(min)?;
        }
        index.remove_below(min)?;
        fences.prune(min)?;
    }
    Ok(RetentionReport {
        deleted_segments: deleted,
        unexpired_bytes_deleted,
        commitlog_min_offset: min,
        disk_ratio: ratio,
        disk_full: ratio >= policy.hard_ratio,
    })
}

/// The size of the record at `offset`, from its header.
fn record_size_at(log: &CommitLog, offset: u64) -> u32 {
    log.read(offset, 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The used fraction of the disk, now and with another `segment` bytes.
fn disk_ratios(env: &StoreEnv, dir: &Path, segment: u64) -> (f64, f64) {
    match env.disk.space(dir) {
        Ok(space) => (space.used_ratio(), space.used_ratio_after(segment)),
        Err(err) => {
            tracing::warn!(dir = %dir.display(), error = %err, "cannot measure disk use");
            (0.0, 0.0)
        }
    }
}
