//! The file system as a power cut sees it: every file has the bytes
//! written to it and the bytes made durable by its last fsync; every
//! directory has its entries and the entries made durable by its last
//! fsync. A power cut throws away what is not durable: unsynced writes and
//! size changes of files, and creations, renames and removals in
//! directories never fsynced since (a file created and fsynced in a
//! directory that was not may vanish, as on ext4 without a journal commit
//! of the directory).
//!
//! Kept apart from FUSE so that the rules are tested without a mount.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

pub type Ino = u64;
pub const ROOT: Ino = 1;
/// Durability is tracked per page, as the page cache writes back.
const PAGE: u64 = 4096;

/// An errno.
pub type Errno = i32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

#[derive(Debug, Clone, Copy)]
pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    pub mode: u16,
    pub mtime: SystemTime,
}

/// A file's bytes, sparse: pages never written read as zeros, so that a
/// large preallocated file costs nothing.
#[derive(Debug, Clone, Default)]
struct Pages {
    len: u64,
    pages: BTreeMap<u64, Box<[u8]>>,
}

impl Pages {
    fn read(&self, offset: u64, size: u32) -> Vec<u8> {
        let end = offset.saturating_add(u64::from(size)).min(self.len);
        if offset >= end {
            return Vec::new();
        }
        let mut out = vec![0; to_usize(end - offset)];
        for (&page, bytes) in self.pages.range(offset / PAGE..=(end - 1) / PAGE) {
            let start = page * PAGE;
            let (from, to) = (offset.max(start), end.min(start + PAGE));
            out[to_usize(from - offset)..to_usize(to - offset)]
                .copy_from_slice(&bytes[to_usize(from - start)..to_usize(to - start)]);
        }
        out
    }

    /// Writes `bytes` (not empty) at `offset`; returns the pages touched.
    fn write(&mut self, offset: u64, bytes: &[u8]) -> std::ops::RangeInclusive<u64> {
        let end = offset + bytes.len() as u64;
        let touched = offset / PAGE..=(end - 1) / PAGE;
        for page in touched.clone() {
            let start = page * PAGE;
            let (from, to) = (offset.max(start), end.min(start + PAGE));
            let stored = self
                .pages
                .entry(page)
                .or_insert_with(|| vec![0; PAGE as usize].into_boxed_slice());
            stored[to_usize(from - start)..to_usize(to - start)]
                .copy_from_slice(&bytes[to_usize(from - offset)..to_usize(to - offset)]);
        }
        self.len = self.len.max(end);
        touched
    }

    /// Sets the length; bytes a shrink cut off read as zeros if the file
    /// grows again.
    fn set_len(&mut self, len: u64) {
        if len < self.len {
            self.pages.retain(|&page, _| page * PAGE < len);
            if let Some(last) = self.pages.get_mut(&(len / PAGE)) {
                last[to_usize(len % PAGE)..].fill(0);
            }
        }
        self.len = len;
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[derive(Debug)]
struct FileData {
    current: Pages,
    durable: Pages,
    /// Pages written since the last fsync.
    dirty: BTreeSet<u64>,
}

#[derive(Debug)]
struct DirData {
    current: BTreeMap<OsString, Ino>,
    durable: BTreeMap<OsString, Ino>,
}

#[derive(Debug)]
enum Data {
    File(FileData),
    Dir(DirData),
}

#[derive(Debug)]
struct Node {
    data: Data,
    mode: u16,
    mtime: SystemTime,
}

/// What the file system did, for tests to check that the store synced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub file_syncs: u64,
    pub dir_syncs: u64,
    pub power_cuts: u64,
    /// Bytes written after a cut, discarded (the kernel writing back the
    /// dead process's dirty pages).
    pub discarded_bytes: u64,
}

#[derive(Debug)]
pub struct Model {
    nodes: HashMap<Ino, Node>,
    next: Ino,
    /// Between a cut and the next mount nothing written is kept.
    powered_off: bool,
    counts: Counts,
}

impl Default for Model {
    fn default() -> Self {
        let root = Node {
            data: Data::Dir(DirData {
                current: BTreeMap::new(),
                durable: BTreeMap::new(),
            }),
            mode: 0o755,
            mtime: SystemTime::now(),
        };
        Model {
            nodes: HashMap::from([(ROOT, root)]),
            next: ROOT + 1,
            powered_off: false,
            counts: Counts::default(),
        }
    }
}

impl Model {
    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn attr(&self, ino: Ino) -> Result<Attr, Errno> {
        let node = self.nodes.get(&ino).ok_or(libc::ENOENT)?;
        let (kind, size) = match &node.data {
            Data::File(f) => (Kind::File, f.current.len),
            Data::Dir(d) => (Kind::Dir, d.current.len() as u64),
        };
        Ok(Attr {
            ino,
            kind,
            size,
            mode: node.mode,
            mtime: node.mtime,
        })
    }

    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Ino, Errno> {
        self.dir(parent)?
            .current
            .get(name)
            .copied()
            .ok_or(libc::ENOENT)
    }

    /// Entries of a directory: (name, ino, kind), `.` and `..` first.
    pub fn read_dir(&self, ino: Ino) -> Result<Vec<(OsString, Ino, Kind)>, Errno> {
        let dir = self.dir(ino)?;
        let mut all = vec![
            (OsString::from("."), ino, Kind::Dir),
            (OsString::from(".."), ino, Kind::Dir),
        ];
        for (name, &child) in &dir.current {
            all.push((name.clone(), child, self.attr(child)?.kind));
        }
        Ok(all)
    }

    pub fn create(&mut self, parent: Ino, name: &OsStr, mode: u16) -> Result<Ino, Errno> {
        self.add(
            parent,
            name,
            mode,
            Data::File(FileData {
                current: Pages::default(),
                durable: Pages::default(),
                dirty: BTreeSet::new(),
            }),
        )
    }

    pub fn mkdir(&mut self, parent: Ino, name: &OsStr, mode: u16) -> Result<Ino, Errno> {
        self.add(
            parent,
            name,
            mode,
            Data::Dir(DirData {
                current: BTreeMap::new(),
                durable: BTreeMap::new(),
            }),
        )
    }

    fn add(&mut self, parent: Ino, name: &OsStr, mode: u16, data: Data) -> Result<Ino, Errno> {
        if self.dir(parent)?.current.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next;
        self.next += 1;
        self.nodes.insert(
            ino,
            Node {
                data,
                mode,
                mtime: SystemTime::now(),
            },
        );
        self.dir_mut(parent)?.current.insert(name.to_owned(), ino);
        Ok(ino)
    }

    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        if self.attr(ino)?.kind == Kind::Dir {
            return Err(libc::EISDIR);
        }
        self.dir_mut(parent)?.current.remove(name);
        Ok(())
    }

    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        if !self.dir(ino)?.current.is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        self.dir_mut(parent)?.current.remove(name);
        Ok(())
    }

    /// Moves an entry, replacing what `new_name` named (unless
    /// `no_replace`); an empty directory may be replaced by a directory.
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        let kind = self.attr(ino)?.kind;
        if let Ok(replaced) = self.lookup(new_parent, new_name) {
            if no_replace {
                return Err(libc::EEXIST);
            }
            if replaced == ino {
                return Ok(());
            }
            match (kind, self.attr(replaced)?.kind) {
                (Kind::File, Kind::Dir) => return Err(libc::EISDIR),
                (Kind::Dir, Kind::File) => return Err(libc::ENOTDIR),
                (Kind::Dir, Kind::Dir) if !self.dir(replaced)?.current.is_empty() => {
                    return Err(libc::ENOTEMPTY);
                }
                _ => {}
            }
        }
        self.dir(new_parent)?;
        self.dir_mut(parent)?.current.remove(name);
        self.dir_mut(new_parent)?
            .current
            .insert(new_name.to_owned(), ino);
        Ok(())
    }

    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        Ok(self.file(ino)?.current.read(offset, size))
    }

    pub fn write(&mut self, ino: Ino, offset: u64, bytes: &[u8]) -> Result<usize, Errno> {
        if self.powered_off {
            self.counts.discarded_bytes += bytes.len() as u64;
            return Ok(bytes.len());
        }
        let file = self.file_mut(ino)?;
        offset.checked_add(bytes.len() as u64).ok_or(libc::EFBIG)?;
        if !bytes.is_empty() {
            let touched = file.current.write(offset, bytes);
            file.dirty.extend(touched);
        }
        self.touch(ino);
        Ok(bytes.len())
    }

    /// `ftruncate`, or `fallocate` growing the file (`grow_only`).
    pub fn set_len(&mut self, ino: Ino, len: u64, grow_only: bool) -> Result<(), Errno> {
        if self.powered_off {
            return Ok(());
        }
        let file = self.file_mut(ino)?;
        if grow_only && len <= file.current.len {
            return Ok(());
        }
        file.current.set_len(len);
        self.touch(ino);
        Ok(())
    }

    /// Makes a file's bytes and size, or a directory's entries, durable.
    pub fn fsync(&mut self, ino: Ino) -> Result<(), Errno> {
        if self.powered_off {
            return Ok(());
        }
        match &mut self.nodes.get_mut(&ino).ok_or(libc::ENOENT)?.data {
            Data::File(file) => {
                file.durable.set_len(file.current.len);
                for page in std::mem::take(&mut file.dirty) {
                    match file.current.pages.get(&page) {
                        Some(bytes) => file.durable.pages.insert(page, bytes.clone()),
                        None => file.durable.pages.remove(&page),
                    };
                }
                // A shrink zeroed the tail of the last page in memory.
                let last = file.current.len / PAGE;
                if let Some(bytes) = file.current.pages.get(&last) {
                    file.durable.pages.insert(last, bytes.clone());
                }
                self.counts.file_syncs += 1;
            }
            Data::Dir(dir) => {
                dir.durable = dir.current.clone();
                self.counts.dir_syncs += 1;
            }
        }
        Ok(())
    }

    /// The power goes: everything not durable is gone, and nothing written
    /// from now on is kept until [`Model::power_on`].
    pub fn power_cut(&mut self) {
        self.powered_off = true;
        self.counts.power_cuts += 1;
        for node in self.nodes.values_mut() {
            match &mut node.data {
                Data::File(file) => {
                    file.current = file.durable.clone();
                    file.dirty.clear();
                }
                Data::Dir(dir) => dir.current = dir.durable.clone(),
            }
        }
        // What no durable entry reaches is gone.
        let mut reached = BTreeSet::from([ROOT]);
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            if let Some(Node {
                data: Data::Dir(dir),
                ..
            }) = self.nodes.get(&ino)
            {
                for &child in dir.durable.values() {
                    if reached.insert(child) {
                        todo.push(child);
                    }
                }
            }
        }
        self.nodes.retain(|ino, _| reached.contains(ino));
    }

    pub fn power_on(&mut self) {
        self.powered_off = false;
    }

    fn touch(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.mtime = SystemTime::now();
        }
    }

    fn dir(&self, ino: Ino) -> Result<&DirData, Errno> {
        match &self.nodes.get(&ino).ok_or(libc::ENOENT)?.data {
            Data::Dir(dir) => Ok(dir),
            Data::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut DirData, Errno> {
        match &mut self.nodes.get_mut(&ino).ok_or(libc::ENOENT)?.data {
            Data::Dir(dir) => Ok(dir),
            Data::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn file(&self, ino: Ino) -> Result<&FileData, Errno> {
        match &self.nodes.get(&ino).ok_or(libc::ENOENT)?.data {
            Data::File(file) => Ok(file),
            Data::Dir(_) => Err(libc::EISDIR),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut FileData, Errno> {
        match &mut self.nodes.get_mut(&ino).ok_or(libc::ENOENT)?.data {
            Data::File(file) => Ok(file),
            Data::Dir(_) => Err(libc::EISDIR),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn only_synced_bytes_survive_a_cut() {
        let mut fs = Model::default();
        let f = fs.create(ROOT, name("f"), 0o644).unwrap();
        fs.fsync(ROOT).unwrap();
        fs.write(f, 0, b"hello").unwrap();
        fs.fsync(f).unwrap();
        fs.write(f, 5, b" world").unwrap();
        fs.write(f, 0, b"J").unwrap();
        fs.power_cut();
        assert_eq!(fs.read(f, 0, 100).unwrap(), b"hello");
        // Writes after the cut (the dead process's pages written back)
        // are dropped until power returns.
        fs.write(f, 0, b"late").unwrap();
        fs.fsync(f).unwrap();
        assert_eq!(fs.read(f, 0, 100).unwrap(), b"hello");
        assert_eq!(fs.counts().discarded_bytes, 4);
        fs.power_on();
        fs.write(f, 0, b"J").unwrap();
        assert_eq!(fs.read(f, 0, 100).unwrap(), b"Jello");
    }

    #[test]
    fn a_size_change_is_durable_only_with_a_sync() {
        let mut fs = Model::default();
        let f = fs.create(ROOT, name("f"), 0o644).unwrap();
        fs.fsync(ROOT).unwrap();
        fs.set_len(f, 3 * PAGE, true).unwrap();
        fs.set_len(f, PAGE, true).unwrap();
        assert_eq!(fs.attr(f).unwrap().size, 3 * PAGE, "fallocate only grows");
        fs.power_cut();
        assert_eq!(fs.attr(f).unwrap().size, 0);
        fs.power_on();
        fs.set_len(f, 2 * PAGE, false).unwrap();
        fs.write(f, PAGE + 1, b"x").unwrap();
        fs.fsync(f).unwrap();
        fs.set_len(f, 1, false).unwrap();
        fs.power_cut();
        assert_eq!(fs.attr(f).unwrap().size, 2 * PAGE);
        assert_eq!(fs.read(f, PAGE + 1, 1).unwrap(), b"x");
    }

    #[test]
    fn entries_are_durable_only_once_their_directory_is_synced() {
        let mut fs = Model::default();
        let dir = fs.mkdir(ROOT, name("d"), 0o755).unwrap();
        let kept = fs.create(dir, name("kept"), 0o644).unwrap();
        fs.fsync(ROOT).unwrap();
        fs.fsync(dir).unwrap();
        // Created and its data synced, but the directory never was.
        let lost = fs.create(dir, name("lost"), 0o644).unwrap();
        fs.write(lost, 0, b"data").unwrap();
        fs.fsync(lost).unwrap();
        // The classic: new content written to a temporary file and
        // renamed over the old one, without syncing the directory.
        fs.write(kept, 0, b"old").unwrap();
        fs.fsync(kept).unwrap();
        let tmp = fs.create(dir, name("kept.tmp"), 0o644).unwrap();
        fs.write(tmp, 0, b"new").unwrap();
        fs.fsync(tmp).unwrap();
        fs.rename(dir, name("kept.tmp"), dir, name("kept"), false)
            .unwrap();
        fs.power_cut();
        assert_eq!(fs.lookup(dir, name("lost")), Err(libc::ENOENT));
        let after = fs.lookup(dir, name("kept")).unwrap();
        assert_eq!(fs.read(after, 0, 10).unwrap(), b"old");
        assert_eq!(fs.lookup(dir, name("kept.tmp")), Err(libc::ENOENT));

        // With the directory synced the rename holds.
        fs.power_on();
        let tmp = fs.create(dir, name("kept.tmp"), 0o644).unwrap();
        fs.write(tmp, 0, b"new").unwrap();
        fs.fsync(tmp).unwrap();
        fs.rename(dir, name("kept.tmp"), dir, name("kept"), false)
            .unwrap();
        fs.fsync(dir).unwrap();
        fs.unlink(dir, name("kept")).unwrap_or(());
        fs.power_cut();
        let after = fs.lookup(dir, name("kept")).unwrap();
        assert_eq!(
            fs.read(after, 0, 10).unwrap(),
            b"new",
            "the unlink was not synced"
        );
    }

    #[test]
    fn a_directory_never_synced_into_its_parent_vanishes_with_its_files() {
        let mut fs = Model::default();
        let dir = fs.mkdir(ROOT, name("d"), 0o755).unwrap();
        let f = fs.create(dir, name("f"), 0o644).unwrap();
        fs.write(f, 0, b"x").unwrap();
        fs.fsync(f).unwrap();
        fs.fsync(dir).unwrap();
        fs.power_cut();
        assert_eq!(fs.lookup(ROOT, name("d")), Err(libc::ENOENT));
        assert_eq!(fs.attr(f).map(|a| a.ino), Err(libc::ENOENT));
    }

    #[test]
    fn bad_operations_answer_errnos() {
        let mut fs = Model::default();
        let d = fs.mkdir(ROOT, name("d"), 0o755).unwrap();
        let f = fs.create(d, name("f"), 0o644).unwrap();
        assert_eq!(fs.create(d, name("f"), 0o644), Err(libc::EEXIST));
        assert_eq!(fs.rmdir(ROOT, name("d")), Err(libc::ENOTEMPTY));
        assert_eq!(fs.unlink(ROOT, name("d")), Err(libc::EISDIR));
        assert_eq!(fs.read(d, 0, 1).map(|b| b.len()), Err(libc::EISDIR));
        assert_eq!(fs.lookup(f, name("x")), Err(libc::ENOTDIR));
        assert_eq!(
            fs.rename(d, name("f"), ROOT, name("d"), false),
            Err(libc::EISDIR)
        );
        assert_eq!(
            fs.rename(ROOT, name("d"), d, name("f"), true),
            Err(libc::EEXIST)
        );
    }
}
