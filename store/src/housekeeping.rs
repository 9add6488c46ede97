//! The housekeeping thread: writes the checkpoint every
//! `checkpoint_interval`, and runs retention and the disk check every
//! `housekeeping_interval`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::checkpoint::Checkpoint;
use crate::core::Core;
use crate::error::{IoContext, StoreError};
use crate::layout::CHECKPOINT_FILE;
use crate::retention::{self, RetentionPolicy, RetentionReport};
use crate::worker::{Wake, Worker};

pub(crate) fn start(core: Arc<Core>) -> std::io::Result<Worker> {
    Worker::start("store-housekeeping", Wake::Unpark, move |stopping| {
        let mut last_retention = Instant::now();
        // A full disk fails every checkpoint: say so when it starts
        // and when it ends, not every second.
        let mut failing = false;
        while !stopping.sleep(core.config.checkpoint_interval) {
            match write_checkpoint(&core) {
                Ok(()) if std::mem::take(&mut failing) => {
                    tracing::info!("checkpoints are written again");
                }
                Ok(()) => {}
                Err(err) if !std::mem::replace(&mut failing, true) => {
                    tracing::error!(error = %err, "checkpoint failed; recovery after a crash will check more of the CommitLog until one is written");
                }
                Err(_) => {}
            }
            if last_retention.elapsed() >= core.config.housekeeping_interval {
                last_retention = Instant::now();
                core.targets.sequences.sweep(core.env.clock.now_ms());
                if let Err(err) = run_retention(&core) {
                    tracing::error!(error = %err, "retention failed");
                }
            }
        }
    })
}

/// Flushes ConsumeQueues and IndexFiles, then records how far they and
/// the CommitLog are on disk.
pub(crate) fn write_checkpoint(core: &Core) -> Result<(), StoreError> {
    // Read before flushing: every entry below it is then on disk.
    let dispatched = core.dispatched.load(Ordering::Acquire);
    core.targets.queues.flush_all()?;
    core.targets.index.flush()?;
    Checkpoint {
        commitlog_flushed: core.log.flushed_offset(),
        dispatched,
        timestamp_ms: core.env.clock.now_ms(),
    }
    .write(&core.dir.join(CHECKPOINT_FILE))
    .context(|| "writing the checkpoint".to_owned())
}

/// Deletes what retention allows and updates the disk-full flag.
pub(crate) fn run_retention(core: &Core) -> Result<RetentionReport, StoreError> {
    let policy = RetentionPolicy {
        reserved: core.config.file_reserved_time,
        delete_hour: core.config.delete_hour,
        soft_ratio: core.config.disk_soft_ratio,
        hard_ratio: core.config.disk_hard_ratio,
        on_full: core.config.disk_full_policy,
    };
    let report = retention::run(
        &core.dir,
        &core.log,
        &core.targets.queues,
        &core.targets.index,
        &core.targets.fences,
        &core.env,
        &policy,
    )?;
    let was_full = core.disk_full.swap(report.disk_full, Ordering::AcqRel);
    match (was_full, report.disk_full) {
        (false, true) => tracing::error!(
            disk_ratio = report.disk_ratio,
            "disk full: refusing appends"
        ),
        (true, false) => tracing::info!(
            disk_ratio = report.disk_ratio,
            "disk space freed: accepting appends"
        ),
        _ => {}
    }
    core.disk_ratio_bits
        .store(report.disk_ratio.to_bits(), Ordering::Release);
    core.unexpired_bytes_deleted
        .fetch_add(report.unexpired_bytes_deleted, Ordering::Relaxed);
    Ok(report)
}
