//! An ordered run of equal-size segment files that together form one log
//! (the CommitLog, or one ConsumeQueue), addressed by offset.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::mapped_file::MappedFile;

/// The segments of one log, oldest first, contiguous.
#[derive(Debug)]
pub struct Segments {
    dir: PathBuf,
    segment_size: usize,
    list: RwLock<Vec<Arc<MappedFile>>>,
}

impl Segments {
    /// Maps every segment file in `dir` (created if missing), checking that
    /// names are 20-digit offsets, sizes are `segment_size`, and that the
    /// files follow each other without a gap. Files are returned unshared
    /// so that recovery can scan and truncate them.
    pub fn load(dir: &Path, segment_size: usize) -> io::Result<Vec<MappedFile>> {
        crate::durable::create_dir_all(dir)?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Temporary files, and damaged bytes recovery copied aside.
            if name.ends_with(".tmp") || name.contains(".damaged-") {
                continue;
            }
            let base = name
                .parse::<u64>()
                .ok()
                .filter(|_| name.len() == 20)
                .ok_or_else(|| invalid(format!("unexpected file {} in {}", name, dir.display())))?;
            bases.push(base);
        }
        bases.sort_unstable();
        let mut files = Vec::with_capacity(bases.len());
        for (i, &base) in bases.iter().enumerate() {
            if base % segment_size as u64 != 0 {
                return Err(invalid(format!(
                    "segment {} in {} is not a multiple of the segment size {segment_size}",
                    base,
                    dir.display()
                )));
            }
            if i > 0 && base != bases[i - 1] + segment_size as u64 {
                return Err(invalid(format!(
                    "segments of {} have a gap between {} and {}",
                    dir.display(),
                    bases[i - 1],
                    base
                )));
            }
            files.push(MappedFile::open(
                &dir.join(super::mapped_file::segment_name(base)),
                base,
                segment_size,
            )?);
        }
        Ok(files)
    }

    /// Shares recovered files.
    pub fn new(dir: &Path, segment_size: usize, files: Vec<MappedFile>) -> Self {
        Segments {
            dir: dir.to_owned(),
            segment_size,
            list: RwLock::new(files.into_iter().map(Arc::new).collect()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn segment_size(&self) -> usize {
        self.segment_size
    }

    /// The segment holding `offset`.
    pub fn find(&self, offset: u64) -> Option<Arc<MappedFile>> {
        let list = self.read();
        let first = list.first()?.base_offset();
        if offset < first {
            return None;
        }
        let index = usize::try_from((offset - first) / self.segment_size as u64).ok()?;
        list.get(index).cloned()
    }

    /// The newest segment.
    pub fn last(&self) -> Option<Arc<MappedFile>> {
        self.read().last().cloned()
    }

    /// The oldest segment.
    pub fn first(&self) -> Option<Arc<MappedFile>> {
        self.read().first().cloned()
    }

    /// Every segment, oldest first.
    pub fn all(&self) -> Vec<Arc<MappedFile>> {
        self.read().clone()
    }

    /// Appends a new newest segment, which must follow the current one.
    pub fn push(&self, file: Arc<MappedFile>) -> io::Result<()> {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = list.last()
            && file.base_offset() != last.base_offset() + self.segment_size as u64
        {
            return Err(invalid(format!(
                "segment {} does not follow {}",
                file.base_offset(),
                last.base_offset()
            )));
        }
        list.push(file);
        Ok(())
    }

    /// Removes the `count` oldest segments and deletes their files.
    /// Readers holding their bytes keep the mappings alive.
    pub fn remove_oldest(&self, count: usize) -> io::Result<Vec<Arc<MappedFile>>> {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        let count = count.min(list.len());
        let removed: Vec<_> = list.drain(..count).collect();
        drop(list);
        for file in &removed {
            file.delete()?;
        }
        Ok(removed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<MappedFile>>> {
        self.list.read().unwrap_or_else(|e| e.into_inner())
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
