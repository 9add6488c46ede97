//! One IndexFile: a hash table on disk from key hashes to CommitLog
//! offsets, with chaining through an append-only entry array.
//!
//! Layout (little-endian), `slots` and `capacity` fixed per file:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `MQIX` |
//! | 4 | 4 | version 1 |
//! | 8 | 8 | begin timestamp (ms): store time of the first entry |
//! | 16 | 8 | end timestamp (ms): store time of the last entry |
//! | 24 | 8 | begin physical offset |
//! | 32 | 8 | end physical offset (just past the last indexed record) |
//! | 40 | 4 | slot count |
//! | 44 | 4 | entry count |
//! | 48 | 4 x slots, padded to 8 | slot: number (1-based) of the newest entry in the bucket, 0 if none |
//! | .. | 32 x capacity | entry: key hash (u64), physical offset (u64), record size (u32), store time minus begin timestamp in ms (u32), number of the previous entry in the bucket (u32), reserved (u32) |
//!
//! One writer (the dispatcher) and any number of readers share the file:
//! an entry is written in full before the slot that points at it is
//! stored with release ordering, and readers load slots with acquire
//! ordering, so a reader never sees a half-written entry.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::space;

/// How much of the entry array is allocated on disk at a time. The file
/// is mapped whole but allocated as it fills (see [`crate::space`]:
/// no entry is written into a hole), so that a fresh file does not take
/// its full size, hundreds of megabytes, from the disk at once.
const ALLOCATION_STEP: usize = 1 << 20;

const MAGIC: u32 = u32::from_le_bytes(*b"MQIX");
const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 48;
pub const ENTRY_LEN: usize = 32;

const BEGIN_TS: usize = 8;
const END_TS: usize = 16;
const BEGIN_PHYS: usize = 24;
const END_PHYS: usize = 32;
const SLOT_COUNT: usize = 40;
const ENTRY_COUNT: usize = 44;

/// A hit: where a record with a matching key hash lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub physical_offset: u64,
    pub size: u32,
    pub store_timestamp_ms: u64,
}

#[derive(Debug)]
pub struct IndexFile {
    path: PathBuf,
    map: MmapRaw,
    slots: u32,
    capacity: u32,
    /// Entry count at the last flush: a file with no new entries is not synced.
    flushed_entries: AtomicU32,
    file: File,
    /// Bytes from the start of the file that are allocated on disk.
    allocated: AtomicUsize,
}

/// Bytes of a file with `slots` buckets and `capacity` entries.
pub fn file_len(slots: u32, capacity: u32) -> usize {
    HEADER_LEN + slots_len(slots) + ENTRY_LEN * capacity as usize
}

/// Bytes of the slot table, padded so that entries are 8-byte aligned.
fn slots_len(slots: u32) -> usize {
    (4 * slots as usize).next_multiple_of(8)
}

impl IndexFile {
    /// Creates an empty file starting at `begin_phys`.
    pub fn create(path: &Path, slots: u32, capacity: u32, begin_phys: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let len = file_len(slots, capacity);
        let header = HEADER_LEN + slots_len(slots);
        let allocated = (header + ALLOCATION_STEP).min(len);
        let prepared = file
            .set_len(len as u64)
            .and_then(|()| space::allocate(&file, 0, allocated as u64))
            .and_then(|()| crate::durable::sync_parent(path))
            .and_then(|()| MmapOptions::new().len(len).map_raw(&file));
        let map = match prepared {
            Ok(map) => map,
            Err(err) => {
                let _ = std::fs::remove_file(path);
                return Err(err);
            }
        };
        let index = IndexFile {
            path: path.to_owned(),
            map,
            slots,
            capacity,
            flushed_entries: AtomicU32::new(0),
            file,
            allocated: AtomicUsize::new(allocated),
        };
        index.u32_at(0).store(MAGIC, Ordering::Relaxed);
        index.u32_at(4).store(VERSION, Ordering::Relaxed);
        index.u32_at(SLOT_COUNT).store(slots, Ordering::Relaxed);
        index
            .u64_at(BEGIN_PHYS)
            .store(begin_phys, Ordering::Relaxed);
        index.u64_at(END_PHYS).store(begin_phys, Ordering::Release);
        Ok(index)
    }

    /// Opens an existing file; its header must match and its size must
    /// hold its declared slots.
    pub fn open(path: &Path, capacity: u32) -> io::Result<Self> {
        let invalid = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {why}", path.display()),
            )
        };
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len() as usize;
        if len < HEADER_LEN {
            return Err(invalid(format!("{len} bytes is too short")));
        }
        // The header is read before its slot count is known to be sane:
        // make sure it is no hole.
        space::allocate(&file, 0, HEADER_LEN as u64)?;
        let map = MmapOptions::new().len(len).map_raw(&file)?;
        let mut index = IndexFile {
            path: path.to_owned(),
            map,
            slots: 0,
            capacity,
            flushed_entries: AtomicU32::new(0),
            file,
            allocated: AtomicUsize::new(HEADER_LEN),
        };
        if index.u32_at(0).load(Ordering::Relaxed) != MAGIC
            || index.u32_at(4).load(Ordering::Relaxed) != VERSION
        {
            return Err(invalid("not an index file of version 1".into()));
        }
        let slots = index.u32_at(SLOT_COUNT).load(Ordering::Relaxed);
        if slots == 0 || len != file_len(slots, capacity) {
            return Err(invalid(format!(
                "size {len} does not fit {slots} slots and {capacity} entries"
            )));
        }
        if index.u32_at(ENTRY_COUNT).load(Ordering::Relaxed) > capacity {
            return Err(invalid("more entries than room".into()));
        }
        index.slots = slots;
        // Files of older versions were sparse: allocate what is in use (a
        // no-op for a file without holes).
        let in_use = index.entry_pos(index.entry_count() + 1);
        space::allocate(&index.file, 0, in_use as u64)?;
        index.allocated.store(in_use, Ordering::Relaxed);
        index
            .flushed_entries
            .store(index.entry_count(), Ordering::Relaxed);
        Ok(index)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn begin_phys(&self) -> u64 {
        self.u64_at(BEGIN_PHYS).load(Ordering::Acquire)
    }

    pub fn end_phys(&self) -> u64 {
        self.u64_at(END_PHYS).load(Ordering::Acquire)
    }

    pub fn begin_timestamp(&self) -> u64 {
        self.u64_at(BEGIN_TS).load(Ordering::Acquire)
    }

    pub fn end_timestamp(&self) -> u64 {
        self.u64_at(END_TS).load(Ordering::Acquire)
    }

    pub fn entry_count(&self) -> u32 {
        self.u32_at(ENTRY_COUNT).load(Ordering::Acquire)
    }

    /// Whether `timestamp_ms` can still be stored relative to this file's
    /// begin timestamp, and an entry fits.
    pub fn has_room_for(&self, timestamp_ms: u64) -> bool {
        let count = self.entry_count();
        count < self.capacity
            && (count == 0
                || timestamp_ms.saturating_sub(self.begin_timestamp()) <= u64::from(u32::MAX))
    }

    /// Adds `key_hashes` for the record at `physical_offset` (one writer
    /// only). Returns false, changing nothing, when they do not all fit,
    /// and an error, changing nothing, when the disk has no room for them.
    pub fn add(
        &self,
        key_hashes: &[u64],
        physical_offset: u64,
        size: u32,
        store_timestamp_ms: u64,
    ) -> io::Result<bool> {
        let count = self.entry_count();
        if count as usize + key_hashes.len() > self.capacity as usize
            || !self.has_room_for(store_timestamp_ms)
        {
            return Ok(false);
        }
        self.allocate_up_to(self.entry_pos(count + key_hashes.len() as u32 + 1))?;
        if count == 0 {
            self.u64_at(BEGIN_TS)
                .store(store_timestamp_ms, Ordering::Release);
        }
        let diff = store_timestamp_ms.saturating_sub(self.begin_timestamp()) as u32;
        let mut number = count;
        for &hash in key_hashes {
            number += 1;
            let slot = self.slot(hash);
            let prev = slot.load(Ordering::Acquire);
            let at = self.entry_pos(number);
            self.u64_at(at).store(hash, Ordering::Relaxed);
            self.u64_at(at + 8)
                .store(physical_offset, Ordering::Relaxed);
            self.u32_at(at + 16).store(size, Ordering::Relaxed);
            self.u32_at(at + 20).store(diff, Ordering::Relaxed);
            self.u32_at(at + 24).store(prev, Ordering::Relaxed);
            // Publishes the entry written above to readers of the slot.
            slot.store(number, Ordering::Release);
        }
        self.u32_at(ENTRY_COUNT).store(number, Ordering::Release);
        self.u64_at(END_TS)
            .store(store_timestamp_ms, Ordering::Release);
        self.u64_at(END_PHYS)
            .store(physical_offset + u64::from(size), Ordering::Release);
        Ok(true)
    }

    /// Makes sure the first `end` bytes are allocated, a step at a time.
    fn allocate_up_to(&self, end: usize) -> io::Result<()> {
        let allocated = self.allocated.load(Ordering::Relaxed);
        if end <= allocated {
            return Ok(());
        }
        let target = end.max(allocated + ALLOCATION_STEP).min(self.map.len());
        space::allocate(&self.file, allocated as u64, (target - allocated) as u64)?;
        self.allocated.store(target, Ordering::Relaxed);
        Ok(())
    }

    /// Records whose key hash is `hash`, stored within `begin..=end` (ms),
    /// newest first, at most `max`.
    pub fn lookup(&self, hash: u64, begin: u64, end: u64, max: usize, out: &mut Vec<Hit>) {
        let base = self.begin_timestamp();
        let mut number = self.slot(hash).load(Ordering::Acquire);
        let mut steps = 0;
        // A chain is at most as long as the entry count; a damaged file
        // cannot make this loop forever.
        while number != 0 && number <= self.capacity && steps <= self.capacity && out.len() < max {
            steps += 1;
            let at = self.entry_pos(number);
            let prev = self.u32_at(at + 24).load(Ordering::Relaxed);
            if self.u64_at(at).load(Ordering::Relaxed) == hash {
                let timestamp = base + u64::from(self.u32_at(at + 20).load(Ordering::Relaxed));
                if (begin..=end).contains(&timestamp) {
                    out.push(Hit {
                        physical_offset: self.u64_at(at + 8).load(Ordering::Relaxed),
                        size: self.u32_at(at + 16).load(Ordering::Relaxed),
                        store_timestamp_ms: timestamp,
                    });
                }
            }
            // Entries only point at older ones; anything else is damage.
            if prev >= number {
                break;
            }
            number = prev;
        }
    }

    /// Syncs the file if entries were added since the last flush.
    pub fn flush(&self) -> io::Result<()> {
        let count = self.entry_count();
        if self.flushed_entries.load(Ordering::Acquire) != count {
            self.map.flush()?;
            self.flushed_entries.store(count, Ordering::Release);
        }
        Ok(())
    }

    fn slot(&self, hash: u64) -> &AtomicU32 {
        self.u32_at(HEADER_LEN + 4 * (hash % u64::from(self.slots)) as usize)
    }

    fn entry_pos(&self, number: u32) -> usize {
        HEADER_LEN + slots_len(self.slots) + ENTRY_LEN * (number as usize - 1)
    }

    fn u32_at(&self, at: usize) -> &AtomicU32 {
        assert!(
            at.is_multiple_of(4) && at + 4 <= self.map.len(),
            "index file access out of bounds"
        );
        // SAFETY: in bounds and 4-aligned (the mapping is page-aligned); the
        // mapping lives as long as `self`; all shared access is atomic.
        unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(at).cast()) }
    }

    fn u64_at(&self, at: usize) -> &AtomicU64 {
        assert!(
            at.is_multiple_of(8) && at + 8 <= self.map.len(),
            "index file access out of bounds"
        );
        // SAFETY: in bounds and 8-aligned (the mapping is page-aligned); see `u32_at`.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(at).cast()) }
    }
}
