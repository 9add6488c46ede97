//! The Raft log on disk. Entries go to `raft-log` as records (length, CRC32C,
//! JSON of the entry), appended and synced before Raft hears they are
//! persisted; the vote and the committed id are small files replaced
//! atomically. At open the log is read back, and a torn last record (a
//! crash mid-append) is cut; a damaged record with records after it is
//! refused instead (cutting there would drop entries Raft may have
//! committed). Truncating or purging rewrites the file
//! atomically: the controller's log is small (a command per broker event)
//! and is compacted by snapshots.
//!
//! Every entry is also kept in memory, so that reads need no I/O.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mq_store::atomic_file;
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, LogId, RaftLogId, StorageIOError, Vote};

use super::{NodeId, StorageError, TypeConfig, io_error};

const LOG_FILE: &str = "raft-log";
const VOTE_FILE: &str = "raft-vote.json";
const COMMITTED_FILE: &str = "raft-committed.json";
const PURGED_FILE: &str = "raft-purged.json";
/// Length and CRC before each record.
const HEADER: usize = 8;

#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    file: File,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOG_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err),
        };
        let (entries, valid) = decode_all(&bytes);
        if let Some(after) = data_after_damage(&bytes, valid) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: the record at offset {valid} is damaged and {after} bytes of records follow it; \
                     refusing to drop them (restore this controller's data directory, or empty it so \
                     that it catches up from the other controllers)",
                    path.display()
                ),
            ));
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if valid < bytes.len() {
            // A torn last record: it was never acknowledged to Raft.
            file.set_len(valid as u64)?;
            file.sync_all()?;
        }
        let inner = Inner {
            dir: dir.to_owned(),
            file,
            entries,
            last_purged: atomic_file::read_json(&dir.join(PURGED_FILE))?,
            vote: atomic_file::read_json(&dir.join(VOTE_FILE))?,
            committed: atomic_file::read_json(&dir.join(COMMITTED_FILE))?,
        };
        Ok(LogStore {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// Rewrites the log file from the entries in memory, atomically.
    fn rewrite(&mut self) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for entry in self.entries.values() {
            encode(entry, &mut bytes)?;
        }
        let path = self.dir.join(LOG_FILE);
        atomic_file::write(&path, &bytes)?;
        self.file = OpenOptions::new().append(true).open(&path)?;
        Ok(())
    }
}

fn encode(entry: &Entry<TypeConfig>, out: &mut Vec<u8>) -> std::io::Result<()> {
    let json = serde_json::to_vec(entry).map_err(io_error)?;
    let len = u32::try_from(json.len()).map_err(io_error)?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&json).to_le_bytes());
    out.extend_from_slice(&json);
    Ok(())
}

/// How many bytes that are not zeros lie past the record at `valid` (which
/// failed to decode), if its header is whole: records a torn last append
/// cannot explain. `None` for a torn tail (a partial header, or a record
/// reaching to the end of the file, or zeros after it).
fn data_after_damage(bytes: &[u8], valid: usize) -> Option<usize> {
    let header = bytes.get(valid..valid + HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let after = bytes.get(valid.checked_add(HEADER)?.checked_add(len)?..)?;
    let data = after.len() - after.iter().rev().take_while(|b| **b == 0).count();
    (data > 0).then_some(data)
}

/// The entries of a log file, and how many of its bytes are whole records.
pub(super) fn decode_all(bytes: &[u8]) -> (BTreeMap<u64, Entry<TypeConfig>>, usize) {
    let mut entries = BTreeMap::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap_or_default());
        let Some(json) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if crc32c::crc32c(json) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<Entry<TypeConfig>>(json) else {
            break;
        };
        entries.insert(entry.get_log_id().index, entry);
        at += HEADER + len;
    }
    (entries, at)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        Ok(self
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let inner = self.lock();
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|e| *e.get_log_id())
            .or(inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let mut inner = self.lock();
        atomic_file::write_json(&inner.dir.join(VOTE_FILE), vote)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        let mut inner = self.lock();
        atomic_file::write_json(&inner.dir.join(COMMITTED_FILE), &committed)
            .map_err(|e| StorageIOError::write(&e))?;
        inner.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.lock();
        let mut bytes = Vec::new();
        for entry in entries {
            encode(&entry, &mut bytes).map_err(|e| StorageIOError::write_logs(&e))?;
            inner.entries.insert(entry.get_log_id().index, entry);
        }
        let written = inner
            .file
            .write_all(&bytes)
            .and_then(|()| inner.file.sync_data());
        let failed = written
            .as_ref()
            .err()
            .map(|e| StorageIOError::write_logs(&io_error(e)));
        callback.log_io_completed(written);
        match failed {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.entries.retain(|&index, _| index < log_id.index);
        inner
            .rewrite()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut inner = self.lock();
        // The purge mark first: a crash after it leaves entries Raft will
        // not ask for, never a hole.
        atomic_file::write_json(&inner.dir.join(PURGED_FILE), &log_id)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        inner.last_purged = Some(log_id);
        inner.entries.retain(|&index, _| index > log_id.index);
        inner
            .rewrite()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}
