//! The names of what a store directory holds (`docs/storage-format.md`
//! describes each file byte by byte).

/// CommitLog segments, named by the 20-digit offset of their first byte.
pub const COMMITLOG_DIR: &str = "commitlog";
/// ConsumeQueues, as `consumequeue/TOPIC/QUEUE_ID/<segments>`.
pub const CONSUME_QUEUE_DIR: &str = "consumequeue";
/// IndexFiles by key and unique id.
pub const INDEX_DIR: &str = "index";
/// How far the CommitLog and the indexes are known to be on disk.
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// Present while the store is open: found at start, the last run crashed.
pub const ABORT_FILE: &str = "abort";
/// `flock`ed by the process that has the store open.
pub const LOCK_FILE: &str = "lock";
/// The fences of deleted topics.
pub const FENCES_FILE: &str = "topic_fences.json";
