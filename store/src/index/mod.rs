//! The IndexFiles: find messages by business key (per topic) or by the
//! producer's unique message id, without scanning the CommitLog.
//!
//! The dispatcher adds every record with keys or a unique id to the newest
//! [`index_file::IndexFile`]; a full file is closed and a new one begun.
//! Files are named by the physical offset of their first record. A lookup
//! walks the files whose time range overlaps the query, newest first, and
//! returns candidate offsets; the caller reads the messages and checks the
//! key itself (hashes collide, and replays may index a record twice).

pub mod index_file;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::error::{IoContext, StoreError};
use crate::mapped_file::segment_name;
use crate::message::{StoredMessage, fnv1a_parts};

pub use index_file::{Hit, IndexFile};

/// Key hash of a business key of `topic`.
pub fn key_hash(topic: &str, key: &str) -> u64 {
    fnv1a_parts(&[topic.as_bytes(), b"#", key.as_bytes()])
}

/// Key hash of a unique message id (ids are unique across topics).
pub fn unique_id_hash(id: &str) -> u64 {
    fnv1a_parts(&[b"\0UNIQ\0", id.as_bytes()])
}

#[derive(Debug)]
pub struct IndexFiles {
    dir: PathBuf,
    slots: u32,
    capacity: u32,
    files: RwLock<Vec<Arc<IndexFile>>>,
}

impl IndexFiles {
    /// Opens every index file in `dir`; a damaged file is set aside with a
    /// warning (renamed `*.damaged`): lookups lose its entries, nothing else.
    pub fn open(dir: &Path, slots: u32, capacity: u32) -> Result<Self, StoreError> {
        crate::durable::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).context(|| format!("reading {}", dir.display()))? {
            let path = entry
                .context(|| format!("reading {}", dir.display()))?
                .path();
            if path.extension().is_none() && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut files = Vec::new();
        for path in paths {
            match IndexFile::open(&path, capacity) {
                Ok(file) => files.push(Arc::new(file)),
                Err(err) if crate::space::is_out_of_space(&err) => {
                    return Err(StoreError::io(format!("opening {}", path.display()), err));
                }
                Err(err) => {
                    tracing::warn!(file = %path.display(), error = %err, "setting aside a damaged index file");
                    let _ = std::fs::rename(&path, path.with_extension("damaged"));
                }
            }
        }
        Ok(IndexFiles {
            dir: dir.to_owned(),
            slots,
            capacity,
            files: RwLock::new(files),
        })
    }

    /// Indexes `msg`'s keys and unique id (dispatcher only).
    pub fn add(&self, msg: &StoredMessage) -> Result<(), StoreError> {
        let mut hashes: Vec<u64> = msg
            .keys
            .iter()
            .map(|key| key_hash(&msg.topic, key))
            .collect();
        if let Some(id) = &msg.unique_id {
            hashes.push(unique_id_hash(id));
        }
        if hashes.is_empty() {
            return Ok(());
        }
        hashes.truncate(self.capacity as usize);
        let add = |file: &IndexFile| {
            file.add(
                &hashes,
                msg.physical_offset,
                msg.record_size,
                msg.store_timestamp_ms,
            )
            .context(|| format!("growing index file {}", file.path().display()))
        };
        let current = self.files().last().cloned();
        if let Some(file) = current
            && add(&file)?
        {
            return Ok(());
        }
        let file = Arc::new(self.create(msg.physical_offset)?);
        add(&file)?;
        self.files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(file);
        Ok(())
    }

    fn create(&self, begin_phys: u64) -> Result<IndexFile, StoreError> {
        let path = self.dir.join(segment_name(begin_phys));
        // A file for this offset from an interrupted run holds nothing the
        // replay will not add again.
        if path.exists() {
            std::fs::remove_file(&path).context(|| format!("replacing {}", path.display()))?;
        }
        IndexFile::create(&path, self.slots, self.capacity, begin_phys)
            .context(|| format!("creating index file {}", path.display()))
    }

    /// Candidates for `hash` stored within `begin..=end` ms, newest first.
    pub fn lookup(&self, hash: u64, begin: u64, end: u64, max: usize) -> Vec<Hit> {
        let mut hits = Vec::new();
        for file in self.files().iter().rev() {
            if hits.len() >= max {
                break;
            }
            if file.entry_count() == 0
                || file.end_timestamp() < begin
                || file.begin_timestamp() > end
            {
                continue;
            }
            file.lookup(hash, begin, end, max - hits.len(), &mut hits);
        }
        hits.sort_by_key(|h| std::cmp::Reverse(h.physical_offset));
        hits.dedup_by_key(|h| h.physical_offset);
        hits
    }

    /// End of the records indexed so far (0 with no file).
    pub fn end_phys(&self) -> u64 {
        self.files().last().map_or(0, |f| f.end_phys())
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        for file in self.files().iter() {
            file.flush()
                .context(|| format!("flushing {}", file.path().display()))?;
        }
        Ok(())
    }

    /// Deletes index files whose records all lie below `offset`.
    pub fn remove_below(&self, offset: u64) -> Result<usize, StoreError> {
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        // The newest file is kept: it is being written.
        let keep_from = files.len().saturating_sub(1);
        let doomed = files[..keep_from]
            .iter()
            .take_while(|f| f.end_phys() <= offset)
            .count();
        for file in files.drain(..doomed) {
            std::fs::remove_file(file.path())
                .context(|| format!("deleting {}", file.path().display()))?;
        }
        Ok(doomed)
    }

    fn files(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<IndexFile>>> {
        self.files.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
