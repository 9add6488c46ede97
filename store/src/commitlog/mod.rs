//! The CommitLog: one append-only log for the messages of every topic, on
//! fixed-size memory-mapped segments, addressed by a global physical offset.
//!
//! One writer at a time appends (a mutex), so records never interleave and
//! queue offsets are assigned in order at append time. Readers never take
//! that lock: they read below the published end of the data.

pub mod allocator;
mod fields;
pub mod outcome;
mod raw;
pub mod record;
pub mod recover;
pub mod transient_pool;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::commitlog::allocator::Allocator;
use crate::commitlog::record::{END_MARKER_LEN, Probe, RecordError, Stamp};
use crate::commitlog::recover::{Plan, Recovered, recover};
use crate::commitlog::transient_pool::TransientPool;
use crate::config::RecoveryMode;
use crate::error::{IoContext, StoreError};
use crate::mapped_file::{MapOptions, MappedFile};
use crate::message::{MessageToStore, StoredMessage};
use crate::segments::Segments;
use crate::space::Headroom;

/// Where one appended message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub physical_offset: u64,
    pub size: u32,
    pub queue_offset: u64,
    pub store_timestamp_ms: u64,
}

impl Appended {
    /// The offset just past this record.
    pub fn end_offset(&self) -> u64 {
        self.physical_offset + u64::from(self.size)
    }
}

/// What follows a position of the CommitLog.
#[derive(Debug, Clone)]
pub enum Next {
    /// A whole, CRC-checked record.
    Record(Bytes),
    /// The segment ends here; the data goes on at this offset.
    SegmentEnd(u64),
    /// Damaged bytes that recovery skipped; the data goes on at this offset.
    Skipped(u64),
    /// Nothing has been written here yet.
    Nothing,
}

/// Settings the CommitLog needs.
#[derive(Debug, Clone, Copy)]
pub struct CommitLogOptions {
    pub segment_size: u64,
    pub max_message_size: u32,
    pub map: MapOptions,
    /// Segments made ahead of the writer (at least 1).
    pub preallocate: usize,
    pub store_host: SocketAddr,
    /// Buffers of the transient store pool; `None` writes through the
    /// mappings.
    pub transient_pool_buffers: Option<usize>,
    /// What readers following the log do about a damaged record.
    pub on_damage: RecoveryMode,
}

/// Next queue offset of every (topic, queue id), owned by the writer.
type QueueOffsets = HashMap<String, HashMap<u32, u64>>;

#[derive(Debug)]
pub struct CommitLog {
    segments: Segments,
    allocator: Allocator,
    options: CommitLogOptions,
    writer: Mutex<QueueOffsets>,
    /// End of the data readers may see.
    max_offset: AtomicU64,
    /// End of the data known to be on disk.
    flushed_offset: AtomicU64,
    pool: Option<Arc<TransientPool>>,
    /// With the pool: end of the data copied into the files.
    committed_offset: AtomicU64,
    /// Warns once when the pool runs dry.
    pool_dry_warned: std::sync::atomic::AtomicBool,
    /// Set (under the writer lock) by [`CommitLog::seal`]: appends are
    /// refused, so the end no longer moves.
    sealed: std::sync::atomic::AtomicBool,
}

impl CommitLog {
    /// Opens the CommitLog in `dir`, recovering it as `plan` says (see
    /// [`recover()`]).
    pub fn open(
        dir: &Path,
        options: CommitLogOptions,
        headroom: Headroom,
        plan: &Plan,
    ) -> Result<(Self, Recovered), StoreError> {
        let segment_size = usize::try_from(options.segment_size).map_err(|_| {
            StoreError::io("commitlog segment size", std::io::Error::other("too large"))
        })?;
        let mut files =
            Segments::load(dir, segment_size).context(|| format!("loading {}", dir.display()))?;
        let recovered = recover(&mut files, plan)?;
        let allocator = Allocator::start(
            dir.to_owned(),
            segment_size,
            options.map,
            headroom,
            options.preallocate,
        )
        .context(|| "starting the segment allocator".to_owned())?;
        let pool = options
            .transient_pool_buffers
            .map(|count| TransientPool::new(count, segment_size, options.map.mlock))
            .transpose()
            .context(|| "allocating the transient store pool".to_owned())?;
        let log = CommitLog {
            segments: Segments::new(dir, segment_size, files),
            allocator,
            options,
            writer: Mutex::new(QueueOffsets::new()),
            max_offset: AtomicU64::new(recovered.end_offset),
            flushed_offset: AtomicU64::new(recovered.end_offset),
            pool,
            committed_offset: AtomicU64::new(recovered.end_offset),
            pool_dry_warned: std::sync::atomic::AtomicBool::new(false),
            sealed: std::sync::atomic::AtomicBool::new(false),
        };
        Ok((log, recovered))
    }

    /// Appends messages as consecutive records in one segment and returns
    /// where each went. All or nothing: a batch that cannot be written
    /// leaves no trace.
    pub fn append(
        &self,
        batch: &[MessageToStore],
        now_ms: u64,
    ) -> Result<Vec<Appended>, StoreError> {
        if batch.is_empty() {
            return Err(StoreError::EmptyBatch);
        }
        let mut sizes = Vec::with_capacity(batch.len());
        for msg in batch {
            let size = record::encoded_len(msg)?;
            if size > self.options.max_message_size as usize {
                return Err(StoreError::MessageTooLarge {
                    size,
                    max: self.options.max_message_size,
                });
            }
            sizes.push(size);
        }
        let total: usize = sizes.iter().sum();
        if total + END_MARKER_LEN > self.segments.segment_size() {
            return Err(StoreError::BatchTooLarge {
                size: total,
                segment_size: self.options.segment_size,
            });
        }

        let mut queue_offsets = self.lock_writer();
        if self.sealed.load(Ordering::Acquire) {
            return Err(StoreError::Sealed);
        }
        let segment = self.segment_with_room(total)?;
        // Holding the writer lock, nobody else moves the write position.
        let start = segment.base_offset() + segment.write_pos() as u64;
        let mut appended = Vec::with_capacity(batch.len());
        let mut next_offsets: HashMap<(&str, u32), u64> = HashMap::new();
        segment
            .append_with(total, |buf| {
                let mut at = 0;
                for (msg, &size) in batch.iter().zip(&sizes) {
                    let key = (msg.topic.as_str(), msg.queue_id);
                    let next = next_offsets.entry(key).or_insert_with(|| {
                        queue_offsets
                            .get(&msg.topic)
                            .and_then(|queues| queues.get(&msg.queue_id))
                            .copied()
                            .unwrap_or(0)
                    });
                    let stamp = Stamp {
                        queue_offset: *next,
                        physical_offset: start + at as u64,
                        store_timestamp_ms: now_ms,
                        store_host: self.options.store_host,
                    };
                    record::encode(msg, &stamp, &mut buf[at..at + size])?;
                    *next += 1;
                    at += size;
                    appended.push(Appended {
                        physical_offset: stamp.physical_offset,
                        size: size as u32,
                        queue_offset: stamp.queue_offset,
                        store_timestamp_ms: now_ms,
                    });
                }
                Ok::<_, RecordError>(())
            })
            .ok_or(RecordError::Malformed("the batch did not fit after all"))??;
        for ((topic, queue_id), next) in next_offsets {
            queue_offsets
                .entry(topic.to_owned())
                .or_default()
                .insert(queue_id, next);
        }
        self.max_offset
            .store(start + total as u64, Ordering::Release);
        Ok(appended)
    }

    /// The segment to write `len` bytes to, rolling over when the current
    /// one cannot take them and still close with an end marker.
    fn segment_with_room(&self, len: usize) -> Result<Arc<MappedFile>, StoreError> {
        let base = match self.segments.last() {
            Some(last) if last.remaining() >= len + END_MARKER_LEN => return Ok(last),
            Some(last) => {
                let rest = last.remaining();
                if rest > 0 {
                    last.append_with(rest, |buf| {
                        record::encode_end_of_segment(buf);
                        Ok::<_, std::convert::Infallible>(())
                    });
                }
                last.base_offset() + last.size() as u64
            }
            None => {
                let end = self.max_offset.load(Ordering::Acquire);
                end - end % self.options.segment_size
            }
        };
        self.new_segment(base)
    }

    /// Makes the segment starting at `base` the last one (staged in the
    /// transient pool when a buffer is free) and publishes `base` as the
    /// end of the data.
    fn new_segment(&self, base: u64) -> Result<Arc<MappedFile>, StoreError> {
        let mut file = self
            .allocator
            .take(base)
            .context(|| format!("creating CommitLog segment {base}"))?;
        if let Some(pool) = &self.pool {
            match pool.take() {
                Some(buffer) => file
                    .attach_staging(buffer)
                    .context(|| format!("staging CommitLog segment {base}"))?,
                None => {
                    if !self.pool_dry_warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "transient store pool exhausted; writing segments through their mappings"
                        );
                    }
                }
            }
        }
        let file = Arc::new(file);
        self.segments
            .push(Arc::clone(&file))
            .context(|| "adding a CommitLog segment".to_owned())?;
        self.max_offset.store(base, Ordering::Release);
        Ok(file)
    }

    /// The `size` bytes at `offset`, sharing the mapping.
    pub fn read(&self, offset: u64, size: u32) -> Option<Bytes> {
        let segment = self.segments.find(offset)?;
        segment.read((offset - segment.base_offset()) as usize, size as usize)
    }

    /// The message whose record starts at `offset` and is `size` bytes long.
    pub fn read_message(
        &self,
        offset: u64,
        size: u32,
    ) -> Result<Option<StoredMessage>, RecordError> {
        self.read(offset, size)
            .map(|bytes| record::decode(&bytes))
            .transpose()
    }

    /// What follows `offset`, for the dispatcher that follows the log.
    pub fn next(&self, offset: u64) -> Result<Next, RecordError> {
        let Some(segment) = self.segments.find(offset) else {
            return Ok(Next::Nothing);
        };
        let pos = (offset - segment.base_offset()) as usize;
        let Some(rest) = segment.read_from(pos) else {
            return Ok(Next::Nothing);
        };
        if rest.is_empty() {
            return Ok(Next::Nothing);
        }
        match record::probe(&rest)? {
            Probe::Message { size } => Ok(Next::Record(rest.slice(..size))),
            Probe::EndOfSegment => Ok(Next::SegmentEnd(
                segment.base_offset() + segment.size() as u64,
            )),
            Probe::Skipped { size } => Ok(Next::Skipped(offset + size as u64)),
            // Never published: the writer moves the end only after writing.
            Probe::Blank => Ok(Next::Nothing),
        }
    }

    /// What follows `offset`, for readers that follow the log from record to
    /// record. Damage there (corruption at rest, which recovery checks only
    /// from the checkpoint on) is an error naming the file and offset, or
    /// with `recovery_mode = skip_corrupted` a jump to the next valid record.
    pub fn follow(&self, offset: u64) -> Result<Next, StoreError> {
        let err = match self.next(offset) {
            Ok(next) => return Ok(next),
            Err(err) => err,
        };
        let file = self
            .segments
            .find(offset)
            .map(|s| s.path().to_owned())
            .unwrap_or_default();
        let resume = self.resume_after_damage(offset);
        match (self.options.on_damage, resume) {
            (RecoveryMode::SkipCorrupted, Some(next)) => {
                tracing::warn!(file = %file.display(), from = offset, to = next, error = %err, "damaged CommitLog bytes skipped (recovery_mode = skip_corrupted)");
                Ok(Next::Skipped(next))
            }
            (_, resume) => Err(StoreError::Corrupted {
                file,
                offset,
                damage: recover::Damage::Invalid(err),
                next_valid: resume,
            }),
        }
    }

    /// The first record that starts at or after `offset`, for a reader
    /// that begins at an arbitrary byte (found as after damage: records
    /// carry their own offset); the log's end if none does.
    pub fn record_start_from(&self, offset: u64) -> u64 {
        let offset = offset.max(self.min_offset());
        let Some(segment) = self.segments.find(offset) else {
            return self.max_offset();
        };
        let base = segment.base_offset();
        if offset == base {
            return offset;
        }
        let found = segment.read_from(0).and_then(|readable| {
            let at = usize::try_from(offset - base).ok()?;
            recover::find_record_start(&readable, base, at)
        });
        match found {
            Some(pos) => base + pos as u64,
            None => (base + segment.size() as u64).min(self.max_offset()),
        }
    }

    /// Where valid data resumes after damage at `offset`: the next record
    /// in its segment that carries its own offset, or the next segment.
    fn resume_after_damage(&self, offset: u64) -> Option<u64> {
        let segment = self.segments.find(offset)?;
        let base = segment.base_offset();
        let readable = segment.read_from(0)?;
        let at = usize::try_from(offset - base).ok()?;
        if let Some(pos) = recover::find_record_start(&readable, base, at + 1) {
            return Some(base + pos as u64);
        }
        let next = base + segment.size() as u64;
        self.segments.find(next).map(|_| next)
    }

    /// Writes everything appended so far to disk; returns the new flushed offset.
    pub fn flush(&self) -> Result<u64, StoreError> {
        let target = self.commit()?;
        let from = self.flushed_offset();
        for segment in self.segments.all() {
            if segment.base_offset() + segment.size() as u64 <= from {
                continue;
            }
            segment
                .flush()
                .context(|| format!("flushing {}", segment.path().display()))?;
        }
        self.flushed_offset.fetch_max(target, Ordering::AcqRel);
        Ok(target)
    }

    /// With the transient store pool, copies appended bytes from the
    /// staging buffers into the files, making them readable; returns the
    /// committed end. Without the pool everything appended is committed.
    pub fn commit(&self) -> Result<u64, StoreError> {
        if self.pool.is_none() {
            return Ok(self.max_offset());
        }
        let from = self.committed_offset.load(Ordering::Acquire);
        let mut reached = from;
        for segment in self.segments.all() {
            let base = segment.base_offset();
            if base + segment.size() as u64 <= from {
                continue;
            }
            let readable = segment
                .commit()
                .context(|| format!("committing {}", segment.path().display()))?;
            reached = base + readable as u64;
            if readable < segment.size() {
                break;
            }
        }
        Ok(self
            .committed_offset
            .fetch_max(reached, Ordering::AcqRel)
            .max(reached))
    }

    /// Whether appends go through the transient store pool.
    pub fn uses_transient_pool(&self) -> bool {
        self.pool.is_some()
    }

    /// End of the data: the offset the next record will take (or the next
    /// segment's start, after a rollover).
    pub fn max_offset(&self) -> u64 {
        self.max_offset.load(Ordering::Acquire)
    }

    /// End of the data known to be on disk.
    pub fn flushed_offset(&self) -> u64 {
        self.flushed_offset.load(Ordering::Acquire)
    }

    /// Start of the oldest retained data.
    pub fn min_offset(&self) -> u64 {
        self.segments
            .first()
            .map_or_else(|| self.max_offset(), |s| s.base_offset())
    }

    /// The segments, oldest first (for retention and metrics).
    pub fn segments(&self) -> &Segments {
        &self.segments
    }

    /// Sets the next queue offset of every queue, after the ConsumeQueues
    /// were recovered.
    pub fn set_queue_offsets(&self, offsets: impl IntoIterator<Item = (String, u32, u64)>) {
        let mut table = self.lock_writer();
        table.clear();
        for (topic, queue_id, next) in offsets {
            table.entry(topic).or_default().insert(queue_id, next);
        }
    }

    /// Forgets the queue offsets of a deleted topic, so that a topic made
    /// again under the name starts at queue offset 0; returns the end of
    /// the log at that moment: every record of the old topic lies below it.
    pub fn forget_topic(&self, topic: &str) -> u64 {
        let mut table = self.lock_writer();
        table.remove(topic);
        self.max_offset()
    }

    /// Refuses appends from now on and returns the end they leave: once
    /// this returns, no append is half done and none follows (a master
    /// handing over to a replica waits for it to reach this end).
    pub fn seal(&self) -> u64 {
        let _writer = self.lock_writer();
        self.sealed.store(true, Ordering::Release);
        self.max_offset.load(Ordering::Acquire)
    }

    /// Takes appends again (a hand-over was called off).
    pub fn unseal(&self) {
        let _writer = self.lock_writer();
        self.sealed.store(false, Ordering::Release);
    }

    pub fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }

    /// Stops making segments ahead (see [`Allocator::stop`]).
    pub fn stop_allocating(&self) {
        self.allocator.stop();
    }

    fn lock_writer(&self) -> MutexGuard<'_, QueueOffsets> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
#[path = "commitlog_tests.rs"]
mod tests;
