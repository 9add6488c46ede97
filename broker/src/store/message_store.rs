//! [`MessageStore`]: the storage engine's public face. Opens (and
//! recovers) a store directory, appends messages, reads them back by queue
//! offset, and shuts down cleanly.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::checkpoint::Checkpoint;
use crate::store::commitlog::recover::Truncation;
use crate::store::commitlog::{Appended, CommitLog, CommitLogOptions};
use crate::store::config::{FlushMode, StoreConfig};
use crate::store::consume_queue::registry::ConsumeQueues;
use crate::store::dispatch::{Dispatcher, Targets, dispatch_available};
use crate::store::error::{IoContext, StoreError};
use crate::store::flush::flusher::{self, FlushPolicy};
use crate::store::flush::group_commit::{FlushWait, GroupCommit};
use crate::store::index::{IndexFiles, key_hash, unique_id_hash};
use crate::store::mapped_file::MapOptions;
use crate::store::message::{MessageToStore, StoredMessage};
use crate::store::read::{GetResult, TagFilter, get_messages};

/// How an append was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutStatus {
    /// Stored (and, in sync-flush mode, on disk).
    Ok,
    /// Stored, but the disk did not confirm within `sync_flush_timeout`:
    /// the message may be lost if the machine crashes now.
    FlushDiskTimeout,
}

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    pub status: PutStatus,
    /// Where each message went, in order.
    pub appended: Vec<Appended>,
}

/// What opening the store found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The store was not shut down cleanly last time.
    pub crashed: bool,
    /// Data cut off the CommitLog's tail, and why.
    pub truncation: Option<Truncation>,
    /// CommitLog offset the ConsumeQueues were replayed from.
    pub replayed_from: u64,
    /// End of the CommitLog after recovery.
    pub commitlog_end: u64,
}

/// File names under the store directory.
const COMMITLOG_DIR: &str = "commitlog";
const CONSUME_QUEUE_DIR: &str = "consumequeue";
const INDEX_DIR: &str = "index";
const CHECKPOINT_FILE: &str = "checkpoint";
const ABORT_FILE: &str = "abort";
const LOCK_FILE: &str = "lock";

#[derive(Debug)]
struct Stop {
    stopped: Mutex<bool>,
    signal: Condvar,
}

/// An open store directory. Shut it down with [`MessageStore::shutdown`];
/// dropping it without does the same, but cannot report errors.
#[derive(Debug)]
pub struct MessageStore {
    dir: PathBuf,
    config: StoreConfig,
    log: Arc<CommitLog>,
    queues: Arc<ConsumeQueues>,
    index: Arc<IndexFiles>,
    group: Arc<GroupCommit>,
    dispatcher: Dispatcher,
    flusher: Option<JoinHandle<()>>,
    checkpointer: Option<JoinHandle<()>>,
    stop: Arc<Stop>,
    closed: AtomicBool,
    _lock: File,
}

impl MessageStore {
    /// Opens the store in `dir` (created if missing), recovering from a
    /// crash if the last run did not shut down cleanly. `store_host` is
    /// stamped on every record.
    pub fn open(
        dir: &Path,
        config: StoreConfig,
        store_host: SocketAddr,
    ) -> Result<(Self, OpenReport), StoreError> {
        std::fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
        let lock = lock_dir(dir)?;
        let abort = dir.join(ABORT_FILE);
        let crashed = abort.exists();
        let checkpoint = Checkpoint::read(&dir.join(CHECKPOINT_FILE));
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
            store_host,
        };
        let (log, recovered) = CommitLog::open(&dir.join(COMMITLOG_DIR), options, scan_from)?;
        if let Some(t) = &recovered.truncation {
            tracing::warn!(offset = t.offset, reason = %t.reason, "CommitLog truncated after the last valid record");
        }
        let log = Arc::new(log);

        let cq_root = dir.join(CONSUME_QUEUE_DIR);
        let rebuild_all = !cq_root.exists();
        let (queues, damaged_from) = ConsumeQueues::open(
            &cq_root,
            u64::from(config.consume_queue_entries_per_file),
            recovered.end_offset,
        )?;
        let queues = Arc::new(queues);
        let index = Arc::new(IndexFiles::open(
            &dir.join(INDEX_DIR),
            config.index_slots_per_file,
            config.index_entries_per_file,
        )?);
        let targets = Targets {
            queues: Arc::clone(&queues),
            index: Arc::clone(&index),
        };
        let mut replayed_from = match checkpoint {
            Some(c) if !rebuild_all => c.dispatched.min(recovered.end_offset),
            _ => 0,
        };
        if let Some(from) = damaged_from {
            replayed_from = replayed_from.min(from);
        }
        replayed_from = replayed_from.max(log.min_offset());
        let dispatched = dispatch_available(&log, &targets, replayed_from)?;
        log.set_queue_offsets(
            queues
                .all()
                .iter()
                .map(|q| (q.topic().to_owned(), q.queue_id(), q.max_offset())),
        );
        queues.flush_all()?;
        index.flush()?;
        Checkpoint {
            commitlog_flushed: recovered.end_offset,
            dispatched,
            timestamp_ms: unix_millis(),
        }
        .write(&dir.join(CHECKPOINT_FILE))
        .context(|| "writing the checkpoint".to_owned())?;
        File::create(&abort).context(|| format!("creating {}", abort.display()))?;

        let threshold = match config.flush {
            FlushMode::Sync => 1,
            FlushMode::Async => u64::from(config.async_flush_least_pages) * 4096,
        };
        let group = Arc::new(GroupCommit::new(log.flushed_offset(), threshold));
        let flusher = flusher::start(
            Arc::clone(&log),
            Arc::clone(&group),
            FlushPolicy {
                mode: config.flush,
                interval: config.async_flush_interval,
            },
        )
        .context(|| "starting the flusher".to_owned())?;
        let dispatcher = Dispatcher::start(Arc::clone(&log), targets, dispatched)
            .context(|| "starting the dispatcher".to_owned())?;
        let stop = Arc::new(Stop {
            stopped: Mutex::new(false),
            signal: Condvar::new(),
        });

        let mut store = MessageStore {
            dir: dir.to_owned(),
            config,
            log,
            queues,
            index,
            group,
            dispatcher,
            flusher: Some(flusher),
            checkpointer: None,
            stop,
            closed: AtomicBool::new(false),
            _lock: lock,
        };
        store.checkpointer = Some(store.start_checkpointer()?);
        let report = OpenReport {
            crashed,
            truncation: recovered.truncation,
            replayed_from,
            commitlog_end: recovered.end_offset,
        };
        tracing::info!(
            dir = %dir.display(),
            commitlog_end = report.commitlog_end,
            queues = store.queues.all().len(),
            "message store open"
        );
        Ok((store, report))
    }

    /// Appends one message; see [`MessageStore::put_batch`].
    pub async fn put(&self, msg: MessageToStore) -> Result<PutResult, StoreError> {
        self.put_batch(std::slice::from_ref(&msg)).await
    }

    /// Appends messages as consecutive records. In sync-flush mode, waits
    /// until they are on disk (or `sync_flush_timeout` passes).
    pub async fn put_batch(&self, batch: &[MessageToStore]) -> Result<PutResult, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let appended = self.log.append(batch, unix_millis())?;
        let end = appended.last().map_or(0, Appended::end_offset);
        self.dispatcher.wake();
        self.group.request(end);
        let status = match self.config.flush {
            FlushMode::Async => PutStatus::Ok,
            FlushMode::Sync => match self
                .group
                .wait_flushed(end, self.config.sync_flush_timeout)
                .await
            {
                FlushWait::Flushed => PutStatus::Ok,
                FlushWait::TimedOut | FlushWait::Closed => PutStatus::FlushDiskTimeout,
            },
        };
        Ok(PutResult { status, appended })
    }

    /// Messages of a queue from `offset` on; see [`get_messages`].
    pub fn get_messages(
        &self,
        topic: &str,
        queue_id: u32,
        offset: u64,
        max_count: usize,
        max_bytes: usize,
        filter: &TagFilter,
    ) -> GetResult {
        get_messages(
            &self.log,
            &self.queues,
            topic,
            queue_id,
            offset,
            max_count,
            max_bytes,
            filter,
        )
    }

    /// The message whose record starts at `physical_offset`.
    pub fn read_message(
        &self,
        physical_offset: u64,
        size: u32,
    ) -> Result<Option<StoredMessage>, StoreError> {
        Ok(self.log.read_message(physical_offset, size)?)
    }

    /// Messages of `topic` with business key `key`, stored within
    /// `begin..=end` (ms since the epoch), newest first, at most `max`.
    pub fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        begin: u64,
        end: u64,
        max: usize,
    ) -> Vec<StoredMessage> {
        // Hashes collide: fetch a few more candidates than asked for.
        let hits = self.index.lookup(
            key_hash(topic, key),
            begin,
            end,
            max.saturating_mul(2).max(16),
        );
        hits.into_iter()
            .filter_map(|hit| {
                self.log
                    .read_message(hit.physical_offset, hit.size)
                    .ok()
                    .flatten()
            })
            .filter(|msg| msg.topic == topic && msg.keys().any(|k| k == key))
            .take(max)
            .collect()
    }

    /// The message with the producer's unique id `id`, if still stored.
    pub fn find_by_unique_id(&self, id: &str) -> Option<StoredMessage> {
        self.index
            .lookup(unique_id_hash(id), 0, u64::MAX, 16)
            .into_iter()
            .filter_map(|hit| {
                self.log
                    .read_message(hit.physical_offset, hit.size)
                    .ok()
                    .flatten()
            })
            .find(|msg| msg.unique_id() == Some(id))
    }

    /// (min, max) queue offsets of a queue, if it exists.
    pub fn queue_offsets(&self, topic: &str, queue_id: u32) -> Option<(u64, u64)> {
        let queue = self.queues.get(topic, queue_id)?;
        Some((queue.min_offset(), queue.max_offset()))
    }

    /// Bytes of CommitLog not yet indexed in ConsumeQueues.
    pub fn dispatch_lag(&self) -> u64 {
        self.dispatcher.lag()
    }

    /// End of the CommitLog.
    pub fn commitlog_max_offset(&self) -> u64 {
        self.log.max_offset()
    }

    /// End of the CommitLog known to be on disk.
    pub fn commitlog_flushed_offset(&self) -> u64 {
        self.log.flushed_offset()
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops appends, indexes and flushes everything, writes the final
    /// checkpoint and removes the abort marker: the next open is clean.
    pub fn shutdown(mut self) -> Result<(), StoreError> {
        self.close()
    }

    fn close(&mut self) -> Result<(), StoreError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        *self.stop.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.stop.signal.notify_all();
        if let Some(thread) = self.checkpointer.take() {
            let _ = thread.join();
        }
        self.dispatcher.stop();
        self.group.shut_down();
        if let Some(thread) = self.flusher.take() {
            let _ = thread.join();
        }
        self.log.flush()?;
        self.queues.flush_all()?;
        self.index.flush()?;
        Checkpoint {
            commitlog_flushed: self.log.flushed_offset(),
            dispatched: self.dispatcher.dispatched(),
            timestamp_ms: unix_millis(),
        }
        .write(&self.dir.join(CHECKPOINT_FILE))
        .context(|| "writing the checkpoint".to_owned())?;
        std::fs::remove_file(self.dir.join(ABORT_FILE))
            .context(|| "removing the abort marker".to_owned())?;
        tracing::info!(dir = %self.dir.display(), "message store shut down cleanly");
        Ok(())
    }

    /// Every `checkpoint_interval`: flush the ConsumeQueues, then record
    /// how far the CommitLog and the ConsumeQueues are on disk.
    fn start_checkpointer(&self) -> Result<JoinHandle<()>, StoreError> {
        let (log, queues, stop) = (
            Arc::clone(&self.log),
            Arc::clone(&self.queues),
            Arc::clone(&self.stop),
        );
        let index = Arc::clone(&self.index);
        let progress = self.dispatcher.progress();
        let path = self.dir.join(CHECKPOINT_FILE);
        let interval = self.config.checkpoint_interval;
        std::thread::Builder::new()
            .name("checkpointer".into())
            .spawn(move || {
                loop {
                    let stopped = stop.stopped.lock().unwrap_or_else(|e| e.into_inner());
                    let (stopped, _) = stop
                        .signal
                        .wait_timeout_while(stopped, interval, |s| !*s)
                        .unwrap_or_else(|e| e.into_inner());
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    // Read before flushing: entries below it are then on disk.
                    let dispatched = progress.load(Ordering::Acquire);
                    let checkpoint =
                        queues
                            .flush_all()
                            .and_then(|()| index.flush())
                            .map(|()| Checkpoint {
                                commitlog_flushed: log.flushed_offset(),
                                dispatched,
                                timestamp_ms: unix_millis(),
                            });
                    if let Err(err) = checkpoint.and_then(|c| {
                        c.write(&path)
                            .context(|| "writing the checkpoint".to_owned())
                    }) {
                        tracing::error!(error = %err, "checkpoint failed");
                    }
                }
            })
            .context(|| "starting the checkpointer".to_owned())
    }
}

impl Drop for MessageStore {
    fn drop(&mut self) {
        if let Err(err) = self.close() {
            tracing::error!(error = %err, "message store did not shut down cleanly");
        }
    }
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

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
