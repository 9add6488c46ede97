//! Settings of the storage engine. The broker's configuration carries them
//! as its `store` section.

use std::time::Duration;

use serde::Deserialize;

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlushMode {
    /// Once the record is on disk: group commit, one `msync` for every
    /// append waiting at that moment. Survives a machine crash.
    Sync,
    /// Once the record is in the page cache; a flusher writes it out every
    /// `async_flush_interval`. Survives a process crash, not a power loss.
    #[default]
    Async,
}

/// What the store does when the disk passes `disk_hard_ratio` and no
/// expired data is left to delete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskFullPolicy {
    /// Refuse appends (DISK_FULL) until space frees; never delete data
    /// before it expires. Producers see the refusal and can go elsewhere.
    #[default]
    RefuseWrites,
    /// Delete the oldest segments even though they have not expired (and
    /// may not have been consumed), as RocketMQ does by default. Each
    /// deletion is logged at WARN with the lost offset range and counted.
    DeleteOldest,
}

/// What recovery does with damage it finds in the CommitLog, as
/// raft-engine's `RecoveryMode`: refuse anything, tolerate a crash's torn
/// tail, or tolerate and skip corruption too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryMode {
    /// Refuse to open if recovery would cut anything, a torn tail
    /// included, naming what it found; nothing is changed. For a store to
    /// inspect before anything is cut (raft-engine's
    /// `AbsoluteConsistency`).
    Strict,
    /// Cut a crash's torn tail; refuse to open on corruption (valid
    /// records after damage in data that was on disk), naming the file
    /// and offset; nothing is changed then.
    #[default]
    Fail,
    /// Copy the damaged bytes aside, skip them, keep every record after
    /// them, and report the skipped range. Readers that meet damage at run
    /// time step over it to the next valid record too.
    SkipCorrupted,
}

/// Storage engine settings; every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Size of each CommitLog segment file, in bytes.
    pub commitlog_segment_size: u64,
    /// Largest message record accepted, in bytes.
    pub max_message_size: u32,
    pub flush: FlushMode,
    /// How long a sync-flush append waits for the disk before it answers
    /// FLUSH_DISK_TIMEOUT.
    #[serde(with = "humantime_serde")]
    pub sync_flush_timeout: Duration,
    /// How often the async flusher looks at the dirty bytes.
    #[serde(with = "humantime_serde")]
    pub async_flush_interval: Duration,
    /// The async flusher flushes once this many 4 KiB pages are dirty (and
    /// whatever is dirty every 10 s).
    pub async_flush_least_pages: u32,
    /// Entries per ConsumeQueue segment file (20 bytes each).
    pub consume_queue_entries_per_file: u32,
    /// Hash buckets per IndexFile.
    pub index_slots_per_file: u32,
    /// Keys per IndexFile (32 bytes each).
    pub index_entries_per_file: u32,
    /// Fault the pages of each new CommitLog segment into the page cache in
    /// a background thread, ahead of the writer (clean pages: nothing extra
    /// is written to disk).
    pub prewarm: bool,
    /// `mlock` CommitLog segments (needs RLIMIT_MEMLOCK).
    pub mlock: bool,
    /// CommitLog segments made ahead of the writer (RocketMQ's allocate
    /// service prepares two): a rollover takes one that is waiting.
    pub preallocate_segments: u32,
    /// Write appends into a pool of locked buffers, committed to the
    /// files by a background task (see BENCHMARKS.md for when it pays).
    pub transient_store_pool: bool,
    /// Buffers in the pool, each the size of a CommitLog segment.
    pub transient_store_pool_buffers: u32,
    /// With the pool: the commit task runs at least this often.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// How long CommitLog segments are kept after their last write.
    #[serde(with = "humantime_serde")]
    pub file_reserved_time: Duration,
    /// Hour of the day (UTC, 0-23) in which expired segments are deleted.
    pub delete_hour: u8,
    /// Above this used fraction of the disk, expired segments go at once.
    pub disk_soft_ratio: f64,
    /// Above this used fraction appends are refused with DISK_FULL until
    /// space frees, and a new CommitLog segment is made only if the disk
    /// stays at or below it with the segment (checked at every rollover).
    pub disk_hard_ratio: f64,
    /// Whether unexpired data may go to make room above `disk_hard_ratio`.
    pub disk_full_policy: DiskFullPolicy,
    /// What to do about corrupted records that valid ones follow.
    pub recovery_mode: RecoveryMode,
    /// How often retention and disk checks run.
    #[serde(with = "humantime_serde")]
    pub housekeeping_interval: Duration,
    /// How often the checkpoint file is rewritten.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// How long an idempotent producer's sequences are remembered per
    /// queue (by store time): a retry later than this is refused.
    #[serde(with = "humantime_serde")]
    pub idempotence_window: Duration,
    /// Most sequences remembered per producer and queue.
    pub idempotence_window_entries: u32,
    /// Most producer-queue windows remembered at once.
    pub idempotence_max_windows: u32,
    /// CommitLog bytes read again at open to rebuild the windows.
    pub idempotence_rebuild_bytes: u64,
}

impl StoreConfig {
    /// The idempotence windows' limits.
    pub fn idempotence_limits(&self) -> crate::sequences::Limits {
        crate::sequences::Limits {
            window: self.idempotence_window,
            entries: self.idempotence_window_entries as usize,
            windows: self.idempotence_max_windows as usize,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            commitlog_segment_size: 1 << 30,
            max_message_size: 4 << 20,
            flush: FlushMode::Async,
            sync_flush_timeout: Duration::from_secs(5),
            async_flush_interval: Duration::from_millis(500),
            async_flush_least_pages: 4,
            consume_queue_entries_per_file: 300_000,
            index_slots_per_file: 5_000_000,
            index_entries_per_file: 20_000_000,
            prewarm: true,
            mlock: false,
            preallocate_segments: 2,
            checkpoint_interval: Duration::from_secs(1),
            transient_store_pool: false,
            transient_store_pool_buffers: 5,
            commit_interval: Duration::from_millis(200),
            file_reserved_time: Duration::from_secs(72 * 3600),
            delete_hour: 4,
            disk_soft_ratio: 0.75,
            disk_hard_ratio: 0.90,
            disk_full_policy: DiskFullPolicy::RefuseWrites,
            recovery_mode: RecoveryMode::Fail,
            housekeeping_interval: Duration::from_secs(10),
            idempotence_window: Duration::from_secs(60),
            idempotence_window_entries: 65_536,
            idempotence_max_windows: 100_000,
            idempotence_rebuild_bytes: 128 << 20,
        }
    }
}
