//! Opening a store directory (`open_dir`): lock it, recover the CommitLog
//! from the checkpoint on, recover the ConsumeQueues and IndexFiles against
//! it, replay what they miss, and restore the queue offsets.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::checkpoint::Checkpoint;
use crate::commitlog::recover::{Flushed, Plan, Skipped, Truncation};
use crate::commitlog::{CommitLog, CommitLogOptions};
use crate::config::StoreConfig;
use crate::consume_queue::registry::ConsumeQueues;
use crate::dispatch::{Targets, dispatch_available, observe_sequences};
use crate::env::StoreEnv;
use crate::epochs::Epochs;
use crate::error::{IoContext, StoreError};
use crate::fences::TopicFences;
use crate::index::IndexFiles;
use crate::layout::{
    ABORT_FILE, CHECKPOINT_FILE, COMMITLOG_DIR, CONSUME_QUEUE_DIR, INDEX_DIR, LOCK_FILE,
};
use crate::mapped_file::{MapOptions, TailScan};
use crate::sequences::ProducerSequences;
use crate::space::Headroom;

/// What opening the store found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The store was not shut down cleanly last time.
    pub crashed: bool,
    /// Data cut off the CommitLog's tail, and why.
    pub truncation: Option<Truncation>,
    /// Damaged CommitLog ranges skipped (`recovery_mode = skip_corrupted`).
    pub skipped: Vec<Skipped>,
    /// CommitLog offset the ConsumeQueues and IndexFiles were replayed from.
    pub replayed_from: u64,
    /// End of the CommitLog after recovery.
    pub commitlog_end: u64,
    /// A recorded cut applied before recovery ([`crate::truncate`]).
    pub cut_back_to: Option<u64>,
}

/// An opened, recovered store directory, ready for its threads to start.
#[derive(Debug)]
pub struct Opened {
    pub log: Arc<CommitLog>,
    pub targets: Targets,
    /// Every record below this offset is indexed.
    pub dispatched: u64,
    pub epochs: Epochs,
    pub report: OpenReport,
    pub lock: File,
}

/// Opens and recovers the store in `dir`; leaves the abort marker in
/// place, so that a crash from now on is seen as one.
pub fn open_dir(
    dir: &Path,
    config: &StoreConfig,
    store_host: SocketAddr,
    env: &StoreEnv,
) -> Result<Opened, StoreError> {
    check(config)?;
    crate::durable::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
    let lock = lock_dir(dir)?;
    let cut_back_to = crate::truncate::apply_pending(dir)?;
    let abort = dir.join(ABORT_FILE);
    let crashed = abort.exists();
    let checkpoint = Checkpoint::read(&dir.join(CHECKPOINT_FILE));
    // After a crash, the ConsumeQueues may lag the CommitLog: check from
    // the older of the two marks.
    let scan_from = match checkpoint {
        Some(c) if crashed => c.commitlog_flushed.min(c.dispatched),
        Some(c) => c.commitlog_flushed,
        None => 0,
    };
    if crashed {
        tracing::warn!(dir = %dir.display(), scan_from, "the store was not shut down cleanly; recovering");
    }

    let options = CommitLogOptions {
        segment_size: config.commitlog_segment_size,
        max_message_size: config.max_message_size,
        map: MapOptions {
            prewarm: config.prewarm,
            mlock: config.mlock,
        },
        preallocate: config.preallocate_segments as usize,
        store_host,
        transient_pool_buffers: config
            .transient_store_pool
            .then_some(config.transient_store_pool_buffers as usize),
        on_damage: config.recovery_mode,
    };
    let headroom = Headroom {
        disk: Arc::clone(&env.disk),
        max_used_ratio: config.disk_hard_ratio,
    };
    let plan = Plan {
        scan_from,
        // After a crash, the kernel may have written later pages of a torn
        // tail and not earlier ones; after a clean shutdown every write
        // reached the file in order.
        tail: if crashed {
            TailScan::Whole
        } else {
            TailScan::UntilZeroPage
        },
        flushed: match checkpoint {
            _ if !crashed => Flushed::Everything,
            Some(c) => Flushed::Below(c.commitlog_flushed),
            None => Flushed::BeforeLastSegment,
        },
        mode: config.recovery_mode,
        clean_end: checkpoint.filter(|_| !crashed).map(|c| c.commitlog_flushed),
    };
    let (log, recovered) = CommitLog::open(&dir.join(COMMITLOG_DIR), options, headroom, &plan)?;
    if let Some(t) = &recovered.truncation {
        tracing::warn!(offset = t.offset, cut = %t, "CommitLog truncated after the last valid record");
    }
    let log = Arc::new(log);
    let epochs = Epochs::load(dir, recovered.end_offset)?;

    let cq_root = dir.join(CONSUME_QUEUE_DIR);
    let rebuild_all = !cq_root.exists();
    let (queues, damaged_from) = ConsumeQueues::open(
        &cq_root,
        u64::from(config.consume_queue_entries_per_file),
        recovered.end_offset,
    )?;
    let index = IndexFiles::open(
        &dir.join(INDEX_DIR),
        config.index_slots_per_file,
        config.index_entries_per_file,
    )?;
    let targets = Targets {
        queues: Arc::new(queues),
        index: Arc::new(index),
        arrivals: Arc::default(),
        fences: Arc::new(TopicFences::load(dir)?),
        sequences: Arc::new(ProducerSequences::new(config.idempotence_limits())),
    };

    let mut replayed_from = match checkpoint {
        Some(c) if !rebuild_all => c.dispatched.min(recovered.end_offset),
        _ => 0,
    };
    if let Some(from) = damaged_from {
        replayed_from = replayed_from.min(from);
    }
    replayed_from = replayed_from.max(log.min_offset());
    // The windows of idempotent producers from the log's tail; dispatch
    // goes on from where it starts.
    let window_start = log.record_start_from(
        recovered
            .end_offset
            .saturating_sub(config.idempotence_rebuild_bytes),
    );
    observe_sequences(&log, &targets.sequences, window_start, replayed_from)?;
    let dispatched = dispatch_available(&log, &targets, replayed_from)?;
    log.set_queue_offsets(
        targets
            .queues
            .all()
            .iter()
            .map(|q| (q.topic().to_owned(), q.queue_id(), q.max_offset())),
    );
    targets.queues.flush_all()?;
    targets.index.flush()?;
    let written = Checkpoint {
        commitlog_flushed: recovered.end_offset,
        dispatched,
        timestamp_ms: env.clock.now_ms(),
    }
    .write(&dir.join(CHECKPOINT_FILE))
    .context(|| "writing the checkpoint".to_owned());
    match written {
        // The old checkpoint stays, and points at or before what was just
        // recovered: the next recovery checks more than it needs, no less.
        // A full disk must not stop the store from serving what it holds.
        Err(err) if err.is_disk_full() => {
            tracing::warn!(error = %err, "starting on a full disk with the previous checkpoint");
        }
        written => written?,
    }
    // Durably: a store whose marker a power cut took would pass for one
    // that shut down cleanly, and skip the checks of its tail.
    crate::durable::create_file(&abort).context(|| format!("creating {}", abort.display()))?;

    Ok(Opened {
        log,
        targets,
        dispatched,
        epochs,
        report: OpenReport {
            crashed,
            truncation: recovered.truncation,
            skipped: recovered.skipped,
            replayed_from,
            commitlog_end: recovered.end_offset,
            cut_back_to,
        },
        lock,
    })
}

/// Refuses settings the store cannot work with, naming the setting.
fn check(config: &StoreConfig) -> Result<(), StoreError> {
    let bad = |what: &str| Err(StoreError::Config(what.to_owned()));
    if config.commitlog_segment_size < 4096 || config.commitlog_segment_size > (1 << 40) {
        return bad("commitlog_segment_size must be between 4 KiB and 1 TiB");
    }
    if u64::from(config.max_message_size) + 8 > config.commitlog_segment_size {
        return bad("max_message_size must be smaller than commitlog_segment_size");
    }
    if config.preallocate_segments == 0 || config.preallocate_segments > 16 {
        return bad("preallocate_segments must be between 1 and 16");
    }
    if config.consume_queue_entries_per_file == 0 {
        return bad("consume_queue_entries_per_file must be at least 1");
    }
    if config.index_slots_per_file == 0 || config.index_entries_per_file == 0 {
        return bad("index_slots_per_file and index_entries_per_file must be at least 1");
    }
    if config.delete_hour > 23 {
        return bad("delete_hour must be an hour of the day, 0 to 23");
    }
    let ratio = 0.0..=1.0;
    if !ratio.contains(&config.disk_soft_ratio) || !ratio.contains(&config.disk_hard_ratio) {
        return bad("disk_soft_ratio and disk_hard_ratio must be between 0 and 1");
    }
    if config.idempotence_window_entries == 0 || config.idempotence_max_windows == 0 {
        return bad("idempotence_window_entries and idempotence_max_windows must be at least 1");
    }
    if config.checkpoint_interval.is_zero() || config.housekeeping_interval.is_zero() {
        return bad("checkpoint_interval and housekeeping_interval must be longer than 0s");
    }
    Ok(())
}

/// Takes an exclusive `flock` on `dir/lock`, so that two processes never
/// open one store. The lock dies with the process, even on SIGKILL.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_FILE);
    let file = File::create(&path).context(|| format!("creating {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        return Err(StoreError::Locked(dir.to_owned()));
    }
    Ok(file)
}
