//! [`MessageStore`]: the storage engine's public face. Opens (and
//! recovers) a store directory, appends messages, reads them back by queue
//! offset or key, and shuts down cleanly.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::commitlog::{Appended, Next, record};
use crate::config::{FlushMode, StoreConfig};
use crate::core::Core;
use crate::dispatch::Dispatcher;
use crate::env::StoreEnv;
use crate::error::{IoContext, StoreError};
use crate::flush::committer::Committer;
use crate::flush::flusher::{self, FlushPolicy};
use crate::flush::group_commit::{FlushWait, GroupCommit};
use crate::housekeeping;
use crate::index::{Hit, key_hash, unique_id_hash};
use crate::layout::ABORT_FILE;
use crate::message::{MessageToStore, StoredMessage};
use crate::open::{OpenReport, open_dir};
use crate::read::{GetResult, MessageFilter, get_messages};
use crate::read_limit::ReadLimit;
use crate::retention::RetentionReport;
use crate::worker::Worker;

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

/// How full the store's disk is, for metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskState {
    pub used_ratio: f64,
    /// Above `disk_hard_ratio`: appends are refused.
    pub refusing_appends: bool,
    /// Unexpired CommitLog bytes deleted to make room since start
    /// (`disk_full_policy = delete_oldest`).
    pub unexpired_bytes_deleted: u64,
}

/// An open store directory. Shut it down with [`MessageStore::shutdown`];
/// dropping it does the same but cannot report errors.
#[derive(Debug)]
pub struct MessageStore {
    core: Arc<Core>,
    group: Arc<GroupCommit>,
    dispatcher: Dispatcher,
    /// Only with the transient store pool.
    committer: Option<Committer>,
    flusher: Worker,
    housekeeping: Worker,
    closed: AtomicBool,
    /// The directory lock, released by `shutdown` (not only on drop): a
    /// broker restarting in its process opens the store again while
    /// leftover tasks of its last run may still hold this one.
    lock: std::sync::Mutex<Option<File>>,
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
        Self::open_with_env(dir, config, store_host, StoreEnv::default())
    }

    /// [`MessageStore::open`] with an injected clock and disk.
    pub fn open_with_env(
        dir: &Path,
        config: StoreConfig,
        store_host: SocketAddr,
        env: StoreEnv,
    ) -> Result<(Self, OpenReport), StoreError> {
        let recovered = open_dir(dir, &config, store_host, &env)?;
        let log = recovered.log;
        let group = Arc::new(GroupCommit::new(log.flushed_offset()));
        let flusher = flusher::start(
            Arc::clone(&log),
            Arc::clone(&group),
            FlushPolicy {
                mode: config.flush,
                interval: config.async_flush_interval,
                least_bytes: u64::from(config.async_flush_least_pages) * 4096,
            },
        )
        .context(|| "starting the flusher".to_owned())?;
        let dispatcher = Dispatcher::start(
            Arc::clone(&log),
            recovered.targets.clone(),
            recovered.dispatched,
        )
        .context(|| "starting the dispatcher".to_owned())?;
        let committer = log
            .uses_transient_pool()
            .then(|| {
                Committer::start(
                    Arc::clone(&log),
                    config.commit_interval,
                    dispatcher.thread(),
                )
            })
            .transpose()
            .context(|| "starting the commit task".to_owned())?;
        let core = Arc::new(Core {
            dir: dir.to_owned(),
            config,
            env,
            log,
            targets: recovered.targets,
            dispatched: dispatcher.progress(),
            disk_full: AtomicBool::new(false),
            disk_ratio_bits: AtomicU64::new(0),
            unexpired_bytes_deleted: AtomicU64::new(0),
            epochs: recovered.epochs,
            read_limit: crate::read_limit::ReadLimit::default(),
        });
        let housekeeping = housekeeping::start(Arc::clone(&core))
            .context(|| "starting housekeeping".to_owned())?;
        let store = MessageStore {
            core,
            group,
            dispatcher,
            committer,
            flusher,
            housekeeping,
            closed: AtomicBool::new(false),
            lock: std::sync::Mutex::new(Some(recovered.lock)),
        };
        // Know the disk's state before the first append.
        store.run_retention()?;
        tracing::info!(
            dir = %dir.display(),
            commitlog_end = recovered.report.commitlog_end,
            queues = store.core.targets.queues.all().len(),
            "message store open"
        );
        Ok((store, recovered.report))
    }

    /// Appends one message; see [`MessageStore::put_batch`].
    pub async fn put(&self, msg: MessageToStore) -> Result<PutResult, StoreError> {
        self.put_batch(std::slice::from_ref(&msg)).await
    }

    /// Appends messages as consecutive records. In sync-flush mode, waits
    /// until they are on disk (or `sync_flush_timeout` passes).
    pub async fn put_batch(&self, batch: &[MessageToStore]) -> Result<PutResult, StoreError> {
        self.put_batch_noting(batch, |_| ()).await
    }

    /// [`MessageStore::put_batch`], calling `noted` with where the
    /// records went as soon as they are in the log, before the wait for
    /// the disk: a caller that is cancelled during that wait has noted
    /// them all the same (the idempotent producers' windows).
    pub async fn put_batch_noting(
        &self,
        batch: &[MessageToStore],
        noted: impl FnOnce(&[Appended]),
    ) -> Result<PutResult, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        if self.core.disk_full.load(Ordering::Acquire) {
            return Err(StoreError::DiskFull {
                used: f64::from_bits(self.core.disk_ratio_bits.load(Ordering::Acquire)),
                limit: self.core.config.disk_hard_ratio,
            });
        }
        self.core.epochs.settle_deferred()?;
        let appended = self.core.log.append(batch, self.core.env.clock.now_ms())?;
        noted(&appended);
        let end = appended.last().map_or(0, Appended::end_offset);
        let status = self.settle(end).await;
        Ok(PutResult { status, appended })
    }

    /// Waits until the CommitLog below `end` is as durable as an append's
    /// acknowledgement promises (on disk in sync-flush mode): for answering
    /// again for records appended earlier.
    pub async fn durable(&self, end: u64) -> PutStatus {
        self.settle(end).await
    }

    /// Refuses appends from now on ([`StoreError::Sealed`]) and returns
    /// the CommitLog's end, final until [`MessageStore::unseal`]: a master
    /// handing over to a replica stops here and waits for it to catch up.
    /// Replicated appends (`append_raw`) are not affected.
    pub fn seal(&self) -> u64 {
        self.core.log.seal()
    }

    /// Takes appends again.
    pub fn unseal(&self) {
        self.core.log.unseal();
    }

    pub fn is_sealed(&self) -> bool {
        self.core.log.is_sealed()
    }

    /// Bytes of the CommitLog from `offset` on, whole records only, for a
    /// replica (see [`CommitLog::read_raw`](crate::commitlog::CommitLog::read_raw)).
    pub fn read_raw(&self, offset: u64, max: usize) -> Result<Option<bytes::Bytes>, StoreError> {
        self.core.log.read_raw(offset, max)
    }

    /// Appends bytes a master read with [`MessageStore::read_raw`] at
    /// `offset` (this store's end), then indexes and flushes them as its
    /// own appends. Returns the new end and, in sync-flush mode, whether
    /// it reached the disk in time.
    pub async fn append_raw(
        &self,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(u64, PutStatus), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let end = self.core.log.append_raw(offset, bytes)?;
        Ok((end, self.settle(end).await))
    }

    /// After an append that ends at `end`: wakes the committer or the
    /// dispatcher and, in sync-flush mode, waits for the disk.
    async fn settle(&self, end: u64) -> PutStatus {
        match &self.committer {
            Some(committer) => committer.wake(),
            None => self.dispatcher.wake(),
        }
        match self.core.config.flush {
            FlushMode::Async => PutStatus::Ok,
            FlushMode::Sync => {
                self.group.request(end);
                match self
                    .group
                    .wait_flushed(end, self.core.config.sync_flush_timeout)
                    .await
                {
                    FlushWait::Flushed => PutStatus::Ok,
                    FlushWait::TimedOut | FlushWait::Closed => PutStatus::FlushDiskTimeout,
                }
            }
        }
    }

    /// The disk as housekeeping last saw it.
    pub fn disk_state(&self) -> DiskState {
        DiskState {
            used_ratio: f64::from_bits(self.core.disk_ratio_bits.load(Ordering::Acquire)),
            refusing_appends: self.core.disk_full.load(Ordering::Acquire),
            unexpired_bytes_deleted: self.core.unexpired_bytes_deleted.load(Ordering::Relaxed),
        }
    }

    /// `mlock` calls refused (with `mlock` on) in this process.
    pub fn mlock_refusals(&self) -> u64 {
        crate::mapped_file::locking::refusals()
    }

    /// CommitLog flushes done and the time they took.
    pub fn flush_totals(&self) -> (u64, std::time::Duration) {
        self.group.flush_totals()
    }

    /// Start of the CommitLog still stored.
    pub fn log_start(&self) -> u64 {
        self.core.log.min_offset()
    }

    /// Deletes `topic`'s stored messages as far as anyone can see: its
    /// queues and their files go, and its records left in the CommitLog
    /// (until retention) are fenced, never indexed or found again. A topic
    /// created again under the name starts empty, at queue offset 0.
    /// Waits (at most `patience`) for the dispatcher to pass the fence, so
    /// that it cannot bring a queue back.
    pub async fn delete_topic(
        &self,
        topic: &str,
        patience: std::time::Duration,
    ) -> Result<(), StoreError> {
        let fence = self.core.log.forget_topic(topic);
        self.core.targets.fences.add(topic, fence)?;
        let deadline = std::time::Instant::now() + patience;
        while self.dispatched_offset() < fence {
            if std::time::Instant::now() >= deadline {
                return Err(StoreError::Behind {
                    what: format!("deleting topic {topic} (its records are fenced already)"),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let queues = self.core.targets.queues.remove_topic(topic)?;
        tracing::info!(topic, fence, queues, "topic's messages deleted");
        Ok(())
    }

    /// The message whose record starts at `physical_offset`, if one does.
    pub fn message_at(&self, physical_offset: u64) -> Result<Option<StoredMessage>, StoreError> {
        if physical_offset < self.core.log.min_offset() {
            return Ok(None);
        }
        match self.core.log.next(physical_offset) {
            Ok(Next::Record(bytes)) => {
                let msg = record::decode_probed(&bytes)?;
                let dead = self
                    .core
                    .targets
                    .fences
                    .is_dead(&msg.topic, physical_offset);
                Ok((!dead).then_some(msg))
            }
            Ok(_) => Ok(None),
            // Not a record boundary: no message starts there.
            Err(_) => Ok(None),
        }
    }

    /// End of the CommitLog: where the next append goes.
    pub fn log_end(&self) -> u64 {
        self.core.log.max_offset()
    }

    /// Calls `visit` with every message stored from `from` (a record
    /// boundary, or below the log's start) to the end, in order.
    pub fn scan(&self, from: u64, mut visit: impl FnMut(&StoredMessage)) -> Result<(), StoreError> {
        let log = &self.core.log;
        let mut offset = from.max(log.min_offset());
        loop {
            match log.follow(offset)? {
                Next::Record(bytes) => {
                    let msg = record::decode_probed(&bytes)?;
                    offset += u64::from(msg.record_size);
                    visit(&msg);
                }
                Next::SegmentEnd(next) | Next::Skipped(next) => offset = next,
                Next::Nothing => return Ok(()),
            }
        }
    }

    /// Messages of a queue from `offset` on; see [`get_messages`].
    pub fn get_messages(
        &self,
        topic: &str,
        queue_id: u32,
        offset: u64,
        max_count: usize,
        max_bytes: usize,
        filter: &dyn MessageFilter,
    ) -> GetResult {
        let (log, queues) = (&self.core.log, &self.core.targets.queues);
        get_messages(
            log,
            queues,
            &self.core.read_limit,
            topic,
            queue_id,
            offset,
            max_count,
            max_bytes,
            filter,
        )
    }

    /// How far reads by queue may go (see [`ReadLimit`]); unlimited until
    /// the broker sets it.
    pub fn read_limit(&self) -> &ReadLimit {
        &self.core.read_limit
    }

    /// The message whose record starts at `physical_offset`.
    pub fn read_message(
        &self,
        physical_offset: u64,
        size: u32,
    ) -> Result<Option<StoredMessage>, StoreError> {
        Ok(self.core.log.read_message(physical_offset, size)?)
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
        let hits = self.core.targets.index.lookup(
            key_hash(topic, key),
            begin,
            end,
            max.saturating_mul(2).max(16),
        );
        self.read_hits(hits)
            .filter(|msg| msg.topic == topic && msg.keys.iter().any(|k| k == key))
            .take(max)
            .collect()
    }

    /// The message with the producer's unique id `id`, if still stored.
    pub fn find_by_unique_id(&self, id: &str) -> Option<StoredMessage> {
        let hits = self
            .core
            .targets
            .index
            .lookup(unique_id_hash(id), 0, u64::MAX, 16);
        self.read_hits(hits)
            .find(|msg| msg.unique_id.as_deref() == Some(id))
    }

    /// The messages index hits point at, skipping those no longer stored
    /// and those of deleted topics.
    fn read_hits(&self, hits: Vec<Hit>) -> impl Iterator<Item = StoredMessage> + '_ {
        hits.into_iter().filter_map(|hit| {
            self.core
                .log
                .read_message(hit.physical_offset, hit.size)
                .ok()
                .flatten()
                .filter(|msg| {
                    !self
                        .core
                        .targets
                        .fences
                        .is_dead(&msg.topic, hit.physical_offset)
                })
        })
    }

    /// The long-polling bells, rung as messages are indexed.
    pub fn arrivals(&self) -> Arc<crate::arrivals::Arrivals> {
        Arc::clone(&self.core.targets.arrivals)
    }

    /// Idempotent producers' windows: which sequences are stored where.
    pub fn sequences(&self) -> &crate::sequences::ProducerSequences {
        &self.core.targets.sequences
    }

    /// The store's clock, ms since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.core.env.clock.now_ms()
    }

    /// The first queue offset of a queue whose message was stored at or
    /// after `timestamp_ms` (the max offset if none was); `None` for an
    /// unknown queue. Binary search: store times rise along a queue.
    pub fn offset_for_time(&self, topic: &str, queue_id: u32, timestamp_ms: u64) -> Option<u64> {
        let queue = self.core.targets.queues.get(topic, queue_id)?;
        let (mut low, mut high) = (
            queue.min_offset(),
            self.core.read_limit.readable_max(&queue),
        );
        while low < high {
            let mid = low + (high - low) / 2;
            let stored_at = queue
                .entries(mid, 1)
                .first()
                .and_then(|(_, e)| {
                    self.core
                        .log
                        .read_message(e.physical_offset, e.size)
                        .ok()
                        .flatten()
                })
                .map(|m| m.store_timestamp_ms);
            match stored_at {
                Some(at) if at < timestamp_ms => low = mid + 1,
                _ => high = mid,
            }
        }
        Some(low)
    }

    /// Every (topic, queue id) with a ConsumeQueue, sorted.
    pub fn queues(&self) -> Vec<(String, u32)> {
        let mut queues: Vec<(String, u32)> = self
            .core
            .targets
            .queues
            .all()
            .iter()
            .map(|q| (q.topic().to_owned(), q.queue_id()))
            .collect();
        queues.sort();
        queues
    }

    /// (min, max) queue offsets of a queue, if it exists; max is the
    /// readable end (see [`ReadLimit`]).
    pub fn queue_offsets(&self, topic: &str, queue_id: u32) -> Option<(u64, u64)> {
        let queue = self.core.targets.queues.get(topic, queue_id)?;
        Some((
            queue.min_offset(),
            self.core.read_limit.readable_max(&queue),
        ))
    }

    /// Every record below this CommitLog offset is indexed.
    pub fn dispatched_offset(&self) -> u64 {
        self.dispatcher.dispatched()
    }

    /// Waits (at most `patience`) until everything appended before the call
    /// is indexed, so that reads by queue see every acknowledged message.
    /// Returns whether it caught up.
    pub async fn indexed_up_to_now(&self, patience: std::time::Duration) -> bool {
        let appended = self.commitlog_max_offset();
        let deadline = std::time::Instant::now() + patience;
        while self.dispatched_offset() < appended {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        true
    }

    /// Bytes of CommitLog not yet indexed in ConsumeQueues.
    pub fn dispatch_lag(&self) -> u64 {
        self.dispatcher.lag()
    }

    /// Start of the oldest CommitLog data still stored.
    pub fn commitlog_min_offset(&self) -> u64 {
        self.core.log.min_offset()
    }

    /// Size of each CommitLog segment file.
    pub fn commitlog_segment_size(&self) -> u64 {
        self.core.config.commitlog_segment_size
    }

    /// End of the CommitLog.
    pub fn commitlog_max_offset(&self) -> u64 {
        self.core.log.max_offset()
    }

    /// End of the CommitLog known to be on disk.
    pub fn commitlog_flushed_offset(&self) -> u64 {
        self.core.log.flushed_offset()
    }

    /// Runs retention and the disk check now (the housekeeping thread does
    /// it every `housekeeping_interval`).
    pub fn run_retention(&self) -> Result<RetentionReport, StoreError> {
        housekeeping::run_retention(&self.core)
    }

    /// The store directory.
    /// The CommitLog's epochs, oldest first ([`crate::epochs`]).
    pub fn epochs(&self) -> Vec<crate::epochs::Epoch> {
        self.core.epochs.list()
    }

    /// Begins `epoch` at the log's end now (a master starting), durably.
    /// On a full disk the epoch is saved before the next append instead,
    /// which waits for it.
    pub fn begin_epoch(&self, epoch: u64) -> Result<(), StoreError> {
        self.core
            .epochs
            .begin_or_defer(epoch, self.core.log.max_offset())
    }

    /// Records that `epoch` began at `start` (a replica copying its
    /// master's epochs), durably; false when already known.
    pub fn note_epoch(&self, epoch: u64, start: u64) -> Result<bool, StoreError> {
        self.core.epochs.begin(epoch, start)
    }

    /// Records, durably, that the CommitLog is to be cut back to `to` when
    /// the store next opens ([`crate::truncate`]).
    pub fn request_truncation(&self, to: u64) -> Result<(), StoreError> {
        crate::truncate::request(&self.core.dir, to)
    }

    pub fn dir(&self) -> &Path {
        &self.core.dir
    }

    /// Stops appends (they fail with [`StoreError::Closed`] from now on),
    /// indexes and flushes everything, writes the final checkpoint and
    /// removes the abort marker: the next open is clean. Idempotent.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        self.close()
    }

    fn close(&self) -> Result<(), StoreError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Each worker after those that feed it (see `worker`).
        self.housekeeping.stop();
        if let Some(committer) = &self.committer {
            committer.stop();
        }
        self.dispatcher.stop();
        self.flusher.stop();
        // Before anything that may fail: whatever still holds this store,
        // its directory is the next run's from here on.
        self.core.log.stop_allocating();
        self.core.log.flush()?;
        housekeeping::write_checkpoint(&self.core)?;
        let abort = self.core.dir.join(ABORT_FILE);
        crate::durable::remove_file(&abort).context(|| format!("removing {}", abort.display()))?;
        drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()).take());
        tracing::info!(dir = %self.core.dir.display(), "message store shut down cleanly");
        Ok(())
    }
}

impl Drop for MessageStore {
    fn drop(&mut self) {
        if let Err(err) = self.close() {
            tracing::error!(error = %err, "message store did not shut down cleanly");
        }
    }
}
