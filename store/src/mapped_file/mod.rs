//! One fixed-size, memory-mapped segment file: the unit the CommitLog and
//! the ConsumeQueues are made of.
//!
//! One writer appends at the write position; any number of readers read
//! below it at the same time. Bytes below the write position never change
//! while the file is shared, so a read hands out a [`Bytes`] that points
//! straight into the mapping and keeps it alive: no copy, and a segment
//! deleted by retention stays readable until its last reader lets go.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use memmap2::{Advice, MmapOptions, MmapRaw};

use crate::commitlog::transient_pool::PooledBuffer;
use crate::space;

pub mod locking;
mod staging;

use staging::Staging;

/// Page size assumed for pre-warming (the smallest page on our platforms).
const PAGE: usize = 4096;

/// How much of a segment one pre-warming step faults in.
const PREWARM_CHUNK: usize = 4 << 20;

/// How a new segment is prepared before use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapOptions {
    /// Fault every page into the page cache ahead of the writer (see
    /// [`Prewarm`]), so that appends do not pay for fresh pages.
    pub prewarm: bool,
    /// `mlock` the mapping so that its pages are never swapped out.
    pub mlock: bool,
}

/// The file name of the segment starting at `base_offset`: 20 digits.
pub fn segment_name(base_offset: u64) -> String {
    format!("{base_offset:020}")
}

/// A mapped segment file.
#[derive(Debug)]
pub struct MappedFile {
    path: PathBuf,
    base_offset: u64,
    map: Arc<MmapRaw>,
    /// Serializes writers, which makes handing out `&mut` slices sound.
    write_lock: Mutex<()>,
    /// End of the written bytes, published with `Release` after writing
    /// (shared with the segment's [`Prewarm`], which keeps ahead of it).
    write_pos: Arc<AtomicUsize>,
    flushed_pos: AtomicUsize,
    /// The file was shorter than a segment when opened and was extended.
    extended: bool,
    /// With a transient store pool: appends go to a staging buffer, and a
    /// commit copies them into the file.
    staging: Option<Staging>,
    file: File,
}

impl MappedFile {
    /// Creates `dir/<base_offset>` at `size` bytes, zero-filled and
    /// allocated on disk (see [`crate::space`]: a mapped file has no
    /// holes), and maps it. Fails if the file exists, and with an
    /// out-of-space error, leaving no file behind, when the disk cannot
    /// hold it.
    pub fn create(
        dir: &Path,
        base_offset: u64,
        size: usize,
        options: MapOptions,
    ) -> io::Result<Self> {
        let path = dir.join(segment_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        if let Err(err) = space::allocate(&file, 0, size as u64) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(err);
        }
        // The name, too, must survive a power cut: msync makes the
        // bytes durable, not the directory entry.
        crate::durable::sync_dir(dir)?;
        let map = MmapOptions::new().len(size).map_raw(&file)?;
        let mapped = MappedFile::new(path, base_offset, file, map, false);
        mapped.prepare(options);
        Ok(mapped)
    }

    /// Maps an existing segment of `size` bytes. A shorter file (cut short
    /// by a crash or by hand) is extended with zeros so that recovery can
    /// scan it; a longer one is refused. Holes (a file cut short, or made
    /// sparse by an older version) are allocated first, which needs no
    /// space for a file that has none. The write position starts at 0:
    /// recovery sets it.
    pub fn open(path: &Path, base_offset: u64, size: usize) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        if len > size as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {len} bytes, larger than the segment size {size}",
                    path.display()
                ),
            ));
        }
        let extended = len < size as u64;
        if extended {
            tracing::warn!(file = %path.display(), len, size, "segment file is short; extending it with zeros");
        }
        space::allocate(&file, 0, size as u64)?;
        let map = MmapOptions::new().len(size).map_raw(&file)?;
        Ok(MappedFile::new(
            path.to_owned(),
            base_offset,
            file,
            map,
            extended,
        ))
    }

    fn new(path: PathBuf, base_offset: u64, file: File, map: MmapRaw, extended: bool) -> Self {
        MappedFile {
            path,
            base_offset,
            map: Arc::new(map),
            write_lock: Mutex::new(()),
            write_pos: Arc::new(AtomicUsize::new(0)),
            flushed_pos: AtomicUsize::new(0),
            extended,
            staging: None,
            file,
        }
    }

    /// Makes appends go to `buffer` (from the transient store pool) until
    /// [`MappedFile::commit`] copies them into the file. Only for a new,
    /// empty segment.
    pub fn attach_staging(&mut self, buffer: PooledBuffer) -> io::Result<()> {
        if buffer.len() < self.size() || self.write_pos() != 0 {
            return Err(io::Error::other(
                "a staging buffer needs an empty segment of at most its size",
            ));
        }
        self.staging = Some(Staging::new(buffer));
        Ok(())
    }

    /// Whether appends go through a staging buffer.
    pub fn is_staged(&self) -> bool {
        self.staging.is_some()
    }

    /// Copies staged bytes into the file and publishes them to readers;
    /// gives the buffer back once the segment is full. Returns the
    /// position readers may now read up to.
    pub fn commit(&self) -> io::Result<usize> {
        if let Some(staging) = &self.staging {
            staging.commit(&self.file, self.write_pos(), self.size())?;
        }
        Ok(self.readable_pos())
    }

    /// End of the bytes readers may read: written bytes, or with a staging
    /// buffer, committed ones.
    pub fn readable_pos(&self) -> usize {
        match &self.staging {
            Some(staging) => staging.committed(),
            None => self.write_pos(),
        }
    }

    /// Whether the file was short when opened and had to be extended.
    pub fn was_extended(&self) -> bool {
        self.extended
    }

    /// A handle that faults this segment's pages in, for a background
    /// thread (pre-warming happens after the segment is handed out, so
    /// that nobody waits for it).
    pub fn prewarm(&self) -> Prewarm {
        Prewarm {
            map: Arc::clone(&self.map),
            written: Arc::clone(&self.write_pos),
            done: 0,
        }
    }

    /// How many of the segment's pages are in memory (`mincore`).
    pub fn resident_pages(&self) -> io::Result<usize> {
        let pages = self.map.len().div_ceil(PAGE);
        let mut flags = vec![0u8; pages];
        // SAFETY: the mapping is live for `self.map.len()` bytes and starts
        // page-aligned; `flags` holds one byte per page.
        let rc = unsafe {
            libc::mincore(
                self.map.as_mut_ptr().cast(),
                self.map.len(),
                flags.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(flags.iter().filter(|&&f| f & 1 == 1).count())
    }

    fn prepare(&self, options: MapOptions) {
        // mlock faults every page in by itself.
        if options.mlock {
            locking::lock_or_warn(&self.path.display(), || self.map.lock());
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offset of this segment's first byte in its log.
    pub fn base_offset(&self) -> u64 {
        self.base_offset
    }

    /// Size of the file.
    pub fn size(&self) -> usize {
        self.map.len()
    }

    /// Bytes written so far.
    pub fn write_pos(&self) -> usize {
        self.write_pos.load(Ordering::Acquire)
    }

    /// Bytes known to be on disk.
    pub fn flushed_pos(&self) -> usize {
        self.flushed_pos.load(Ordering::Acquire)
    }

    /// Room left after the write position.
    pub fn remaining(&self) -> usize {
        self.size() - self.write_pos()
    }

    /// Lets `fill` write the next `len` bytes, then publishes them to
    /// readers. Returns the position they were written at, or `None` when
    /// they do not fit.
    pub fn append_with<E>(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Option<Result<usize, E>> {
        let _writer = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let pos = self.write_pos.load(Ordering::Acquire);
        if len > self.size() - pos {
            return None;
        }
        let base = match self.staging.as_ref().and_then(Staging::target) {
            Some(staging) => staging,
            None => self.map.as_mut_ptr(),
        };
        // SAFETY: `pos..pos + len` is inside the mapping (or the staging
        // buffer, which is at least as large and is not given back before
        // the segment is full). Readers and commits only read below the
        // write position, and the write lock keeps other writers out, so
        // this is the only reference to these bytes.
        let slice = unsafe { std::slice::from_raw_parts_mut(base.add(pos), len) };
        if let Err(err) = fill(slice) {
            // Nothing is published: the bytes stay beyond the write position.
            return Some(Err(err));
        }
        self.write_pos.store(pos + len, Ordering::Release);
        Some(Ok(pos))
    }

    /// Appends `bytes` with a positioned write to the file rather than a
    /// copy into the mapping, then publishes them: the kernel takes each
    /// whole page as written instead of zero-filling it in a page fault
    /// first (which on a VM is also the hypervisor backing fresh memory),
    /// and the mapping sees the same page cache. For large appends (a
    /// replica's chunks); with a staging buffer, they go there as any
    /// append. Returns the position, or `None` when they do not fit.
    pub fn append_bytes(&self, bytes: &[u8]) -> Option<io::Result<usize>> {
        if self.staging.is_some() {
            return self.append_with(bytes.len(), |buf| {
                buf.copy_from_slice(bytes);
                Ok(())
            });
        }
        let _writer = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let pos = self.write_pos.load(Ordering::Acquire);
        if bytes.len() > self.size() - pos {
            return None;
        }
        use std::os::unix::fs::FileExt;
        if let Err(err) = self.file.write_all_at(bytes, pos as u64) {
            // Nothing is published: the bytes stay beyond the write position.
            return Some(Err(err));
        }
        self.write_pos.store(pos + bytes.len(), Ordering::Release);
        Some(Ok(pos))
    }

    /// The written bytes `pos..pos + len`, sharing the mapping; `None` if
    /// any of them is beyond the readable position.
    pub fn read(&self, pos: usize, len: usize) -> Option<Bytes> {
        let end = pos.checked_add(len)?;
        if end > self.readable_pos() {
            return None;
        }
        Some(Bytes::from_owner(MappedSlice {
            map: Arc::clone(&self.map),
            pos,
            len,
        }))
    }

    /// The readable bytes from `pos` on.
    pub fn read_from(&self, pos: usize) -> Option<Bytes> {
        let len = self.readable_pos().checked_sub(pos)?;
        self.read(pos, len)
    }

    /// Writes every readable byte to disk: `msync` of the mapping, or
    /// with a staging buffer `fdatasync` of what was committed.
    pub fn flush(&self) -> io::Result<()> {
        let readable = self.readable_pos();
        let flushed = self.flushed_pos();
        if readable > flushed {
            if self.is_staged() {
                self.file.sync_data()?;
            } else {
                self.map.flush_range(flushed, readable - flushed)?;
            }
            self.flushed_pos.fetch_max(readable, Ordering::AcqRel);
        }
        Ok(())
    }

    /// The whole file, written or not, for recovery scans. Needs exclusive
    /// access: nobody writes while recovery reads.
    pub fn whole(&mut self) -> &[u8] {
        // SAFETY: `&mut self` excludes writers through this handle, and
        // recovery runs before any handle is shared.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.map.len()) }
    }

    /// Sets the write position after recovery found where the data ends,
    /// zeroing and syncing whatever lies beyond it so that it is never
    /// mistaken for data again. Refused while readers hold slices. Returns
    /// whether any non-zero byte was discarded. `scan` says how far to look
    /// for such bytes.
    pub fn truncate_to(&mut self, pos: usize, scan: TailScan) -> io::Result<bool> {
        if Arc::strong_count(&self.map) != 1 {
            return Err(io::Error::other(
                "cannot truncate a segment that readers hold",
            ));
        }
        let pos = pos.min(self.size());
        let garbage = self.last_stray_byte(pos, scan);
        if let Some(last) = garbage {
            // SAFETY: exclusive access (checked above); the range is inside the map.
            unsafe { std::ptr::write_bytes(self.map.as_mut_ptr().add(pos), 0, last + 1) };
            self.map.flush_range(pos, last + 1)?;
        }
        self.write_pos.store(pos, Ordering::Release);
        self.flushed_pos.store(pos, Ordering::Release);
        Ok(garbage.is_some())
    }

    /// Whether any non-zero byte lies at or after `pos` (as far as `scan`
    /// looks): what [`MappedFile::truncate_to`] would discard.
    pub fn has_data_after(&mut self, pos: usize, scan: TailScan) -> bool {
        self.last_stray_byte(pos, scan).is_some()
    }

    /// Offset (from `pos`) of the last non-zero byte at or after `pos`.
    fn last_stray_byte(&mut self, pos: usize, scan: TailScan) -> Option<usize> {
        let pos = pos.min(self.size());
        let tail = &self.whole()[pos..];
        match scan {
            TailScan::Whole => last_nonzero(tail),
            TailScan::UntilZeroPage => last_nonzero_before_zero_page(tail),
        }
    }

    /// Lets `fill` rewrite `len` bytes at `pos` (recovery marking damaged
    /// bytes), then syncs them. Refused while readers hold slices.
    pub fn overwrite(
        &mut self,
        pos: usize,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> io::Result<()> {
        if Arc::strong_count(&self.map) != 1 {
            return Err(io::Error::other(
                "cannot rewrite a segment that readers hold",
            ));
        }
        if pos.checked_add(len).is_none_or(|end| end > self.size()) {
            return Err(io::Error::other("rewrite past the end of the segment"));
        }
        // SAFETY: exclusive access (checked above); the range is inside the map.
        let buf = unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(pos), len) };
        fill(buf);
        self.map.flush_range(pos, len)
    }

    /// Deletes the file. Readers holding slices keep the mapping alive.
    pub fn delete(&self) -> io::Result<()> {
        std::fs::remove_file(&self.path)
    }
}

/// How far past the end of the data recovery looks for stray bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailScan {
    /// The whole rest of the file: after a crash, the kernel may have
    /// written later pages of a torn tail and not earlier ones.
    Whole,
    /// Up to the first all-zero page: after a clean shutdown every write
    /// reached the file in order, so bytes past the data are contiguous.
    UntilZeroPage,
}

static ZERO_PAGE: [u8; PAGE] = [0; PAGE];

/// Offset of the last non-zero byte; compares whole pages with `memcmp`,
/// which stays fast even in debug builds on gigabyte segments.
fn last_nonzero(buf: &[u8]) -> Option<usize> {
    let mut end = buf.len();
    while end > 0 {
        let start = end.saturating_sub(PAGE);
        let chunk = &buf[start..end];
        if chunk != &ZERO_PAGE[..chunk.len()] {
            return chunk.iter().rposition(|&b| b != 0).map(|i| start + i);
        }
        end = start;
    }
    None
}

/// Offset of the last non-zero byte before the first all-zero page.
fn last_nonzero_before_zero_page(buf: &[u8]) -> Option<usize> {
    let mut last = None;
    for (index, chunk) in buf.chunks(PAGE).enumerate() {
        if chunk == &ZERO_PAGE[..chunk.len()] {
            break;
        }
        last = chunk
            .iter()
            .rposition(|&b| b != 0)
            .map(|i| index * PAGE + i)
            .or(last);
    }
    last
}

/// A slice of a mapping that keeps the mapping alive.
struct MappedSlice {
    map: Arc<MmapRaw>,
    pos: usize,
    len: usize,
}

/// Faults a segment into the page cache, a chunk at a time, by *reading*
/// it. A first write to a page that is not in the page cache makes the
/// kernel allocate and zero one (of an unwritten extent) inside the
/// writer's page fault: on a VM that is also the hypervisor backing fresh
/// guest memory, and it was half the broker's CPU with 64 KiB messages.
/// Read faults do that work here instead, and leave the pages clean: no
/// zeros are written back to the disk ahead of the data (touching pages
/// with writes would dirty them).
#[derive(Debug)]
pub struct Prewarm {
    map: Arc<MmapRaw>,
    written: Arc<AtomicUsize>,
    done: usize,
}

/// What a [`Prewarm::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmed {
    /// Faulted in another chunk.
    Chunk,
    /// Already `ahead` bytes past the writer: nothing to do until it moves.
    Ahead,
    /// The whole segment is in.
    Done,
}

impl Prewarm {
    /// Faults in the next chunk, unless the pages up to `ahead` bytes past
    /// the write position are in already: warming far ahead of the writer
    /// only spends CPU and memory on pages nobody needs yet.
    pub fn step(&mut self, ahead: usize) -> Warmed {
        let len = self.map.len();
        if self.done >= len {
            return Warmed::Done;
        }
        let wanted = self
            .written
            .load(Ordering::Acquire)
            .saturating_add(ahead)
            .min(len);
        if self.done >= wanted {
            return Warmed::Ahead;
        }
        let end = (self.done + PREWARM_CHUNK).min(len);
        // One madvise per chunk beats a trap per page. Kernels before 5.14
        // lack MADV_POPULATE_READ; WILLNEED readahead is the best they offer.
        let range = (self.done, end - self.done);
        if self
            .map
            .advise_range(Advice::PopulateRead, range.0, range.1)
            .is_err()
        {
            let _ = self.map.advise_range(Advice::WillNeed, range.0, range.1);
        }
        self.done = end;
        Warmed::Chunk
    }

    /// The segment's write position.
    pub fn written(&self) -> usize {
        self.written.load(Ordering::Acquire)
    }

    /// Whether nothing but this handle holds the segment's mapping any
    /// more (it was dropped unused, or retired): warming it is pointless.
    pub fn orphaned(&self) -> bool {
        Arc::strong_count(&self.map) == 1
    }
}

impl AsRef<[u8]> for MappedSlice {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the range was below the write position when the slice was
        // made, and written bytes never change while the mapping is shared
        // (`truncate_to` refuses then). The `Arc` keeps the mapping alive.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(self.pos), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_are_readable_without_copy_and_bounded_by_the_write_position() {
        let dir = tempfile::tempdir().unwrap();
        let file = MappedFile::create(dir.path(), 4096, 64, MapOptions::default()).unwrap();
        assert_eq!(file.path().file_name().unwrap(), "00000000000000004096");
        assert!(file.read(0, 1).is_none(), "nothing written yet");

        let pos = file
            .append_with(5, |b| {
                b.copy_from_slice(b"hello");
                Ok::<_, ()>(())
            })
            .unwrap()
            .unwrap();
        assert_eq!(pos, 0);
        assert_eq!(file.write_pos(), 5);
        assert_eq!(&file.read(0, 5).unwrap()[..], b"hello");
        assert!(file.read(0, 6).is_none());

        assert!(
            file.append_with(60, |_| Ok::<_, ()>(())).is_none(),
            "does not fit"
        );
        assert_eq!(file.append_with(3, |_| Err("nope")).unwrap(), Err("nope"));
        assert_eq!(file.write_pos(), 5, "a failed fill publishes nothing");
    }

    #[test]
    fn written_appends_are_seen_through_the_mapping_and_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let file = MappedFile::create(dir.path(), 0, 8192, MapOptions::default()).unwrap();
        file.append_with(3, |b| {
            b.copy_from_slice(b"abc");
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        let page = vec![7u8; 4096];
        assert_eq!(file.append_bytes(&page).unwrap().unwrap(), 3);
        assert_eq!(file.write_pos(), 4099);
        let read = file.read(0, 4099).unwrap();
        assert_eq!(&read[..3], b"abc");
        assert!(
            read[3..].iter().all(|&b| b == 7),
            "the mapping sees the write"
        );
        assert!(file.append_bytes(&[1; 4094]).is_none(), "does not fit");
        assert_eq!(file.write_pos(), 4099);
        file.flush().unwrap();
        let on_disk = std::fs::read(file.path()).unwrap();
        assert_eq!(&on_disk[..4099], &read[..]);
    }

    #[test]
    fn reads_outlive_deletion_and_reopen_sees_flushed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let file = MappedFile::create(
            dir.path(),
            0,
            4096,
            MapOptions {
                prewarm: true,
                mlock: true,
            },
        )
        .unwrap();
        file.append_with(3, |b| {
            b.copy_from_slice(b"abc");
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        file.flush().unwrap();
        assert_eq!(file.flushed_pos(), 3);
        let held = file.read(0, 3).unwrap();

        let mut reopened = MappedFile::open(file.path(), 0, 4096).unwrap();
        assert_eq!(&reopened.whole()[..4], b"abc\0");
        assert!(
            MappedFile::open(file.path(), 0, 2048).is_err(),
            "larger than a segment"
        );

        file.delete().unwrap();
        drop(file);
        assert_eq!(
            &held[..],
            b"abc",
            "the mapping lives while a reader holds it"
        );
    }

    #[test]
    fn tail_scans_find_stray_bytes_page_by_page() {
        let mut buf = vec![0u8; 5 * PAGE];
        assert_eq!(last_nonzero(&buf), None);
        buf[10] = 1;
        buf[PAGE + 7] = 1;
        buf[4 * PAGE + 3] = 1;
        assert_eq!(last_nonzero(&buf), Some(4 * PAGE + 3));
        // Page 2 is all zero: the contiguous scan stops there.
        assert_eq!(last_nonzero_before_zero_page(&buf), Some(PAGE + 7));
        assert_eq!(last_nonzero_before_zero_page(&buf[..100]), Some(10));
        assert_eq!(last_nonzero(&[]), None);
    }

    #[test]
    fn truncation_zeroes_the_tail_and_is_refused_while_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = MappedFile::create(dir.path(), 0, 4096, MapOptions::default()).unwrap();
        file.append_with(6, |b| {
            b.copy_from_slice(b"keepme");
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        let held = file.read(0, 6).unwrap();
        assert!(file.truncate_to(4, TailScan::Whole).is_err());
        drop(held);
        assert!(
            file.truncate_to(4, TailScan::Whole).unwrap(),
            "bytes were discarded"
        );
        assert_eq!(file.write_pos(), 4);
        assert!(
            !file.truncate_to(4, TailScan::Whole).unwrap(),
            "nothing left to discard"
        );
        assert_eq!(&file.whole()[..8], b"keep\0\0\0\0");
    }
}
