//! Cutting the CommitLog back to an offset, durably: a replica whose log
//! diverged from its master's keeps nothing past their common point. The
//! cut is first recorded in `truncate_to` (replaced atomically and synced)
//! and applied when the store next opens, before recovery: the bytes from
//! the offset on are zeroed and synced, later segments deleted, the
//! checkpoint and the epochs moved back, and the record removed last. A
//! crash at any point leaves either the record (applied again at the next
//! open) or the cut log, never a cut made only in memory (the trap of
//! apache/rocketmq#10666). The ConsumeQueues follow at open: entries past
//! the CommitLog's end are dropped there as after a crash.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::atomic_file;
use crate::checkpoint::Checkpoint;
use crate::error::{IoContext, StoreError};
use crate::layout::{CHECKPOINT_FILE, COMMITLOG_DIR};

/// The pending cut's file in the store directory: the offset, in decimal.
pub const TRUNCATE_FILE: &str = "truncate_to";

/// Records, durably, that the CommitLog of the store in `dir` is to be cut
/// back to `to` when it next opens.
pub fn request(dir: &Path, to: u64) -> Result<(), StoreError> {
    let path = dir.join(TRUNCATE_FILE);
    atomic_file::write(&path, format!("{to}\n").as_bytes())
        .context(|| format!("writing {}", path.display()))
}

/// The cut recorded in `dir`, if any.
pub fn pending(dir: &Path) -> Result<Option<u64>, StoreError> {
    let path = dir.join(TRUNCATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|e| StoreError::Io {
            context: format!("parsing {}", path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).context(|| format!("reading {}", path.display())),
    }
}

/// Applies the cut recorded in `dir` (the store is not open); returns it.
pub(crate) fn apply_pending(dir: &Path) -> Result<Option<u64>, StoreError> {
    let Some(to) = pending(dir)? else {
        return Ok(None);
    };
    let log_dir = dir.join(COMMITLOG_DIR);
    cut_segments(&log_dir, to)?;
    let checkpoint_path = dir.join(CHECKPOINT_FILE);
    if let Some(c) = Checkpoint::read(&checkpoint_path) {
        Checkpoint {
            commitlog_flushed: c.commitlog_flushed.min(to),
            dispatched: c.dispatched.min(to),
            timestamp_ms: c.timestamp_ms,
        }
        .write(&checkpoint_path)
        .context(|| "moving the checkpoint back".to_owned())?;
    }
    crate::epochs::cut(dir, to)?;
    let record = dir.join(TRUNCATE_FILE);
    std::fs::remove_file(&record).context(|| format!("removing {}", record.display()))?;
    sync_dir(dir)?;
    tracing::warn!(offset = to, dir = %dir.display(), "CommitLog cut back as recorded (a replica's divergent tail)");
    fail::fail_point!("truncate::applied", |_| std::process::abort());
    Ok(Some(to))
}

/// Zeroes every segment byte from `to` on and deletes the segments that
/// begin at or past it.
fn cut_segments(log_dir: &Path, to: u64) -> Result<(), StoreError> {
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return Ok(());
    };
    let mut segments: Vec<(u64, std::path::PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let base = e.file_name().to_str()?.parse::<u64>().ok()?;
            Some((base, e.path()))
        })
        .collect();
    segments.sort_unstable();
    for (base, path) in segments.into_iter().rev() {
        if base >= to {
            std::fs::remove_file(&path).context(|| format!("deleting {}", path.display()))?;
            continue;
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .context(|| format!("opening {}", path.display()))?;
        zero_from(&file, to - base).context(|| format!("zeroing {}", path.display()))?;
        break;
    }
    sync_dir(log_dir)
}

/// Zeroes `file` from `from` to its end and syncs it.
fn zero_from(file: &File, from: u64) -> std::io::Result<()> {
    const CHUNK: usize = 1 << 20;
    let len = file.metadata()?.len();
    let zeros = vec![0u8; CHUNK];
    let mut at = from;
    while at < len {
        let n = CHUNK.min((len - at) as usize);
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    let mut file = file;
    file.flush()?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .context(|| format!("syncing {}", dir.display()))
}
