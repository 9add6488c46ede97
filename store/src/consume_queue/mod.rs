//! ConsumeQueues: one per (topic, queue id), an array of fixed-size
//! [`Entry`]s indexed by queue offset, each pointing into the CommitLog.
//!
//! Stored in segment files of `entries_per_file` entries, named by the
//! byte position of their first entry (queue offset x 20), under
//! `consumequeue/TOPIC/QUEUE_ID/`. Only the dispatcher writes; readers read
//! concurrently below the published end. An all-zero slot is a hole: a
//! queue offset whose message is not indexed (a queue rebuilt from the
//! middle of the CommitLog starts with holes).

pub mod entry;
pub mod registry;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{IoContext, StoreError};
use crate::mapped_file::{MapOptions, MappedFile, TailScan};
use crate::segments::Segments;

pub use entry::{ENTRY_LEN, Entry};

/// The index of one queue.
#[derive(Debug)]
pub struct ConsumeQueue {
    topic: String,
    queue_id: u32,
    segments: Segments,
    entries_per_file: u64,
    /// Queue offset of the next entry.
    max_offset: AtomicU64,
    /// Queue offset of the first entry still indexed.
    min_offset: AtomicU64,
    /// CommitLog offset just past the last entry's message.
    last_end: AtomicU64,
}

/// What recovery found in a ConsumeQueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueRecovery {
    /// Entries were cut off or a file was short: the dispatcher must
    /// replay the CommitLog from `last_end` to complete this queue.
    pub damaged: bool,
    pub last_end: u64,
}

impl ConsumeQueue {
    /// Opens (or creates) the queue in `dir`, dropping entries that point
    /// at or past `commitlog_end` (the CommitLog lost them in a crash).
    pub fn open(
        dir: &Path,
        topic: &str,
        queue_id: u32,
        entries_per_file: u64,
        commitlog_end: u64,
    ) -> Result<(Self, QueueRecovery), StoreError> {
        let file_size = (entries_per_file * ENTRY_LEN as u64) as usize;
        let mut files =
            Segments::load(dir, file_size).context(|| format!("loading {}", dir.display()))?;
        let mut damaged = files.iter().any(MappedFile::was_extended);
        // Find the last entry that points inside the CommitLog, from the
        // newest file back; files left with nothing valid are deleted.
        let mut last = None;
        while let Some(file) = files.last_mut() {
            let (write_end, last_valid) =
                scan_slots(file.whole(), entries_per_file as usize, commitlog_end);
            let more = files.len() > 1;
            let file = files.last_mut().expect("checked above");
            if write_end == 0 && more {
                let mut doomed = files.pop().expect("checked above");
                damaged |= doomed.whole().iter().any(|&b| b != 0);
                doomed
                    .delete()
                    .context(|| format!("deleting {}", doomed.path().display()))?;
                continue;
            }
            damaged |= file
                .truncate_to(write_end * ENTRY_LEN, TailScan::Whole)
                .context(|| format!("truncating {}", file.path().display()))?;
            last = last_valid;
            break;
        }
        let full = files.len().saturating_sub(1);
        for file in &mut files[..full] {
            file.truncate_to(file_size, TailScan::Whole)
                .context(|| format!("opening {}", file.path().display()))?;
        }
        let first_base = files
            .first()
            .map_or(0, |f| f.base_offset() / ENTRY_LEN as u64);
        let first_entry = files.first_mut().map_or(0, |f| {
            let slots = f.whole();
            (0..entries_per_file as usize)
                .find(|&slot| Entry::decode(&slots[slot * ENTRY_LEN..]).is_some())
                .unwrap_or(0) as u64
        });
        let max_offset = files.last().map_or(0, |f| {
            f.base_offset() / ENTRY_LEN as u64 + (f.write_pos() / ENTRY_LEN) as u64
        });
        let last_end = last.map_or(0, |e| e.end_offset());
        let queue = ConsumeQueue {
            topic: topic.to_owned(),
            queue_id,
            segments: Segments::new(dir, file_size, files),
            entries_per_file,
            max_offset: AtomicU64::new(max_offset),
            min_offset: AtomicU64::new((first_base + first_entry).min(max_offset)),
            last_end: AtomicU64::new(last_end),
        };
        Ok((queue, QueueRecovery { damaged, last_end }))
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// Queue offset of the next message of this queue.
    pub fn max_offset(&self) -> u64 {
        self.max_offset.load(Ordering::Acquire)
    }

    /// Queue offset of the oldest indexed message.
    pub fn min_offset(&self) -> u64 {
        self.min_offset.load(Ordering::Acquire)
    }

    /// CommitLog offset just past the last indexed message.
    pub fn last_end(&self) -> u64 {
        self.last_end.load(Ordering::Acquire)
    }

    /// Records the message at `queue_offset`. Idempotent: an offset already
    /// indexed is left alone, so replaying the CommitLog is safe. A gap is
    /// filled with holes. Returns whether the entry was written.
    pub fn put(&self, queue_offset: u64, entry: Entry) -> Result<bool, StoreError> {
        let max = self.max_offset();
        if queue_offset < max {
            return Ok(false);
        }
        if self.segments.last().is_none() {
            // An empty queue starts at the file holding `queue_offset`.
            let base = queue_offset - queue_offset % self.entries_per_file;
            self.new_file(base * ENTRY_LEN as u64)?;
            self.max_offset.store(base, Ordering::Release);
            self.min_offset.store(queue_offset, Ordering::Release);
        } else if queue_offset > max {
            tracing::warn!(
                topic = %self.topic,
                queue_id = self.queue_id,
                expected = max,
                got = queue_offset,
                "ConsumeQueue gap; leaving holes"
            );
        }
        while self.max_offset() < queue_offset {
            self.write_slot(|slot| slot.fill(0))?;
        }
        self.write_slot(|slot| entry.encode(slot))?;
        self.last_end.store(entry.end_offset(), Ordering::Release);
        Ok(true)
    }

    fn write_slot(&self, fill: impl FnOnce(&mut [u8])) -> Result<(), StoreError> {
        let file = match self.segments.last() {
            Some(file) if file.remaining() >= ENTRY_LEN => file,
            Some(file) => self.new_file(file.base_offset() + file.size() as u64)?,
            None => self.new_file(self.max_offset() * ENTRY_LEN as u64)?,
        };
        file.append_with(ENTRY_LEN, |slot| {
            fill(slot);
            Ok::<_, std::convert::Infallible>(())
        });
        self.max_offset.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn new_file(&self, base: u64) -> Result<Arc<MappedFile>, StoreError> {
        let file = Arc::new(
            MappedFile::create(
                self.segments.dir(),
                base,
                self.segments.segment_size(),
                MapOptions::default(),
            )
            .context(|| {
                format!(
                    "creating ConsumeQueue file {base} in {}",
                    self.segments.dir().display()
                )
            })?,
        );
        self.segments
            .push(Arc::clone(&file))
            .context(|| "adding a ConsumeQueue file".to_owned())?;
        Ok(file)
    }

    /// Up to `max` indexed entries from `from` on, with their queue offsets
    /// (holes skipped).
    pub fn entries(&self, from: u64, max: usize) -> Vec<(u64, Entry)> {
        let mut found = Vec::with_capacity(max.min(64));
        let mut offset = from.max(self.min_offset());
        let end = self.max_offset();
        while offset < end && found.len() < max {
            let Some(file) = self.segments.find(offset * ENTRY_LEN as u64) else {
                break;
            };
            let pos = (offset * ENTRY_LEN as u64 - file.base_offset()) as usize;
            let Some(bytes) = file.read_from(pos) else {
                break;
            };
            if bytes.is_empty() {
                break;
            }
            for slot in bytes.chunks_exact(ENTRY_LEN) {
                if offset >= end || found.len() >= max {
                    break;
                }
                if let Some(entry) = Entry::decode(slot) {
                    found.push((offset, entry));
                }
                offset += 1;
            }
        }
        found
    }

    /// Forgets entries pointing below `commitlog_min` (their messages were
    /// deleted): whole files go, and the min offset moves to the first
    /// entry still readable.
    pub fn drop_below(&self, commitlog_min: u64) -> Result<(), StoreError> {
        let files = self.segments.all();
        // The newest file is being written; it stays.
        let doomed = files[..files.len().saturating_sub(1)]
            .iter()
            .take_while(|f| {
                let last = f
                    .read(f.size() - ENTRY_LEN, ENTRY_LEN)
                    .and_then(|b| Entry::decode(&b));
                last.is_none_or(|e| e.end_offset() <= commitlog_min)
            })
            .count();
        self.segments.remove_oldest(doomed).context(|| {
            format!(
                "deleting ConsumeQueue files of {} {}",
                self.topic, self.queue_id
            )
        })?;

        let max = self.max_offset();
        let first_file = self
            .segments
            .first()
            .map_or(max, |f| f.base_offset() / ENTRY_LEN as u64);
        let mut min = self.min_offset().max(first_file);
        while min < max {
            let batch = self.entries(min, 256);
            if let Some(&(offset, _)) = batch
                .iter()
                .find(|(_, e)| e.physical_offset >= commitlog_min)
            {
                min = offset;
                break;
            }
            min = batch.last().map_or(max, |&(offset, _)| offset + 1);
        }
        self.min_offset.fetch_max(min, Ordering::AcqRel);
        Ok(())
    }

    /// Writes the queue's dirty entries to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        for file in self.segments.all() {
            if file.flushed_pos() == file.write_pos() {
                continue;
            }
            file.flush()
                .context(|| format!("flushing {}", file.path().display()))?;
        }
        Ok(())
    }
}

/// How many slots of a file are valid (leading holes allowed, entries
/// inside the CommitLog), and the last valid entry.
fn scan_slots(slots: &[u8], count: usize, commitlog_end: u64) -> (usize, Option<Entry>) {
    let mut write_end = 0;
    let mut last = None;
    for slot in 0..count {
        match Entry::decode(&slots[slot * ENTRY_LEN..]) {
            Some(entry) if entry.end_offset() <= commitlog_end => {
                write_end = slot + 1;
                last = Some(entry);
            }
            Some(_) => break,
            None if write_end > 0 => break,
            None => {}
        }
    }
    (write_end, last)
}

#[cfg(test)]
#[path = "consume_queue_tests.rs"]
mod tests;
