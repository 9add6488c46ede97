//! Finding where the CommitLog's valid data ends after a restart, and
//! telling a torn tail from corruption.
//!
//! Segments before the scan start are trusted (the checkpoint says they are
//! on disk). From there every record is checked: a known magic, a size that
//! fits, a matching CRC, and the physical offset it was written at.
//!
//! A position that fails is one of two things:
//! - a **torn tail**: nothing valid follows it, or it lies where a crash
//!   may have left writes half done (past the checkpoint's flushed mark,
//!   after a crash). The data ends there: the rest of that segment is
//!   zeroed and later segments are deleted, and the reason is reported.
//! - **corruption**: valid records follow damage in data that was on disk.
//!   Nothing valid is ever deleted for it. [`RecoveryMode::Fail`] refuses to
//!   open, naming the file and offset; [`RecoveryMode::SkipCorrupted`]
//!   copies the damaged bytes aside, covers them with a skipped-range
//!   marker that readers step over, and keeps everything after them.
//!
//! [`RecoveryMode::Strict`] refuses both: it opens only a log recovery
//! would not cut at all.

use std::path::{Path, PathBuf};

pub use crate::commitlog::outcome::{Cut, Damage, Skipped, Truncation};
use crate::commitlog::record::{
    END_MARKER_LEN, MAGIC_MESSAGE_V1, Probe, encode_end_of_segment, encode_skipped, probe,
};
use crate::config::RecoveryMode;
use crate::error::{IoContext, StoreError};
use crate::mapped_file::{MappedFile, TailScan};

/// Where recovery left the CommitLog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// End of the valid data: the next append goes here.
    pub end_offset: u64,
    /// Present when something other than zeros was discarded.
    pub truncation: Option<Truncation>,
    /// Damaged ranges skipped (with [`RecoveryMode::SkipCorrupted`]).
    pub skipped: Vec<Skipped>,
}

/// How much of the log is known to have reached the disk before the
/// restart; damage beyond that may be a crash's torn writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// A clean shutdown flushed everything.
    Everything,
    /// After a crash: everything below this offset (the checkpoint's).
    Below(u64),
    /// After a crash without a checkpoint: everything before the last
    /// segment that holds data.
    BeforeLastSegment,
}

/// How recovery scans.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Check records from the segment holding this offset on.
    pub scan_from: u64,
    /// How far past the end of the data to look for stray bytes.
    pub tail: TailScan,
    pub flushed: Flushed,
    pub mode: RecoveryMode,
    /// After a clean shutdown: where the data ended (the final
    /// checkpoint). Data found ending exactly there has no hole before
    /// it, so the rest of the segment is not searched for records (a
    /// search that touches every page: seconds for a 1 GiB segment, paid
    /// by every restart, including a broker's restart into a new role).
    pub clean_end: Option<u64>,
}

enum SegmentEnd {
    /// Closed by an end-of-segment marker: the data goes on in the next one.
    Closed,
    /// Zeros at this position: the data ends here, unless valid data
    /// follows the zeros.
    Open(usize),
    /// Not a valid record at this position.
    Corrupt(usize, Damage),
}

/// Recovers `files` (contiguous segments, oldest first) as `plan` says.
/// Segments after the end are deleted and removed from `files`.
pub fn recover(files: &mut Vec<MappedFile>, plan: &Plan) -> Result<Recovered, StoreError> {
    let Some(first) = files.first() else {
        return Ok(Recovered {
            end_offset: 0,
            truncation: None,
            skipped: Vec::new(),
        });
    };
    let size = first.size() as u64;
    let start = usize::try_from(plan.scan_from.saturating_sub(first.base_offset()) / size)
        .unwrap_or(usize::MAX)
        .min(files.len() - 1);
    for file in &mut files[..start] {
        let size = file.size();
        file.truncate_to(size, plan.tail)
            .context(|| format!("recovering {}", file.path().display()))?;
    }
    let unflushed_from = match plan.flushed {
        Flushed::Everything => u64::MAX,
        Flushed::Below(offset) => offset,
        Flushed::BeforeLastSegment => files
            .iter_mut()
            .rev()
            .find_map(|file| (!is_blank_segment(file)).then(|| file.base_offset()))
            .unwrap_or(0),
    };

    let mut truncation = None;
    let mut skipped = Vec::new();
    let mut end = None;
    let mut index = start;
    let mut pos = 0;
    while index < files.len() {
        let base = files[index].base_offset();
        let (at, damage) = match scan_segment(files[index].whole(), base, pos) {
            SegmentEnd::Closed => {
                let size = files[index].size();
                files[index]
                    .truncate_to(size, plan.tail)
                    .context(|| format!("recovering {}", files[index].path().display()))?;
                (index, pos) = (index + 1, 0);
                continue;
            }
            SegmentEnd::Open(at) => (at, None),
            SegmentEnd::Corrupt(at, damage) => (at, Some(damage)),
        };
        let offset = base + at as u64;
        let resume = if damage.is_none() && plan.clean_end == Some(offset) {
            None
        } else {
            find_valid_after(files, index, at)
        };
        match resume {
            Some(resume) if offset < unflushed_from => {
                let damage = damage.unwrap_or(Damage::Zeros);
                if plan.mode != RecoveryMode::SkipCorrupted {
                    return Err(StoreError::Corrupted {
                        file: files[index].path().to_owned(),
                        offset,
                        damage,
                        next_valid: Some(resume.offset(files)),
                    });
                }
                let range = skip(files, index, at, resume, damage)?;
                tracing::warn!(
                    from = range.from,
                    to = range.to,
                    damage = %range.damage,
                    saved_to = %range.saved_to.display(),
                    "CommitLog damage skipped (recovery_mode = skip_corrupted); the records after it are kept"
                );
                skipped.push(range);
                // Segments closed by the skip are whole now.
                for file in &mut files[index..resume.index] {
                    let size = file.size();
                    file.truncate_to(size, plan.tail)
                        .context(|| format!("recovering {}", file.path().display()))?;
                }
                (index, pos) = (resume.index, resume.pos);
                continue;
            }
            Some(resume) => {
                // Past what was flushed before a crash: writes may have
                // reached the disk out of order. A torn tail, however it
                // looks.
                truncation = Some(Truncation {
                    offset,
                    cut: Cut::Unflushed {
                        damage: damage.unwrap_or(Damage::Zeros),
                        discarded_from: resume.offset(files),
                    },
                });
            }
            None => {
                truncation = damage.map(|damage| Truncation {
                    offset,
                    cut: Cut::Damaged(damage),
                });
            }
        }
        if plan.mode == RecoveryMode::Strict {
            refuse_any_cut(files, index, at, truncation.clone(), plan.tail)?;
        }
        let discarded = files[index]
            .truncate_to(at, plan.tail)
            .context(|| format!("recovering {}", files[index].path().display()))?;
        if discarded && truncation.is_none() {
            truncation = Some(Truncation {
                offset,
                cut: Cut::TornWrite,
            });
        }
        end = Some((index, offset));
        break;
    }

    let (last_kept, end_offset) = match end {
        Some(found) => found,
        None => {
            let last = files.len() - 1;
            (last, files[last].base_offset() + size)
        }
    };
    for mut file in files.drain(last_kept + 1..) {
        let had_data = !is_blank_segment(&mut file);
        file.delete()
            .context(|| format!("deleting {}", file.path().display()))?;
        if had_data && truncation.is_none() {
            truncation = Some(Truncation {
                offset: end_offset,
                cut: Cut::OrphanSegment {
                    base: file.base_offset(),
                },
            });
        }
    }
    Ok(Recovered {
        end_offset,
        truncation,
        skipped,
    })
}

/// `recovery_mode = strict`: an error naming what recovery would cut if
/// the data ending at `at` of `files[index]` would lose anything: the
/// `found` damage, stray bytes after it, or later segments with data.
fn refuse_any_cut(
    files: &mut [MappedFile],
    index: usize,
    at: usize,
    found: Option<Truncation>,
    tail: TailScan,
) -> Result<(), StoreError> {
    let offset = files[index].base_offset() + at as u64;
    let cut = found
        .map(|truncation| truncation.cut)
        .or_else(|| {
            files[index]
                .has_data_after(at, tail)
                .then_some(Cut::TornWrite)
        })
        .or_else(|| {
            files[index + 1..]
                .iter_mut()
                .find_map(|file| (!is_blank_segment(file)).then(|| file.base_offset()))
                .map(|base| Cut::OrphanSegment { base })
        });
    match cut {
        None => Ok(()),
        Some(cut) => Err(StoreError::WouldCut {
            file: files[index].path().to_owned(),
            truncation: Truncation { offset, cut },
        }),
    }
}

/// A segment is written from its start: zeros there mean it is empty.
fn is_blank_segment(file: &mut MappedFile) -> bool {
    file.whole().iter().take(END_MARKER_LEN).all(|&b| b == 0)
}

/// Where valid data resumes after damage.
#[derive(Debug, Clone, Copy)]
struct Resume {
    index: usize,
    pos: usize,
}

impl Resume {
    fn offset(&self, files: &[MappedFile]) -> u64 {
        files[self.index].base_offset() + self.pos as u64
    }
}

/// The first valid record after position `at` of `files[index]`: later in
/// that segment, or at the start of a later one.
fn find_valid_after(files: &mut [MappedFile], index: usize, at: usize) -> Option<Resume> {
    let base = files[index].base_offset();
    if let Some(pos) = find_record_start(files[index].whole(), base, at + 1) {
        return Some(Resume { index, pos });
    }
    (index + 1..files.len())
        .find(|&later| {
            let base = files[later].base_offset();
            matches!(
                record_at(files[later].whole(), base, 0),
                Some(Probe::Message { .. } | Probe::Skipped { .. })
            )
        })
        .map(|later| Resume {
            index: later,
            pos: 0,
        })
}

/// The first position from `from` on where a whole message record starts
/// that says it was written there (its stamped physical offset): the way
/// back into the data after damage, which no length field can be trusted
/// to give.
pub(crate) fn find_record_start(buf: &[u8], base: u64, from: usize) -> Option<usize> {
    let magic = MAGIC_MESSAGE_V1.to_le_bytes();
    (from..buf.len().saturating_sub(8)).find(|&pos| {
        buf[pos + 4..pos + 8] == magic
            && matches!(record_at(buf, base, pos), Some(Probe::Message { .. }))
    })
}

/// What is at `pos`, if it is a valid record or marker (a message must
/// also carry its own physical offset).
fn record_at(buf: &[u8], base: u64, pos: usize) -> Option<Probe> {
    let found = probe(buf.get(pos..)?).ok()?;
    if let Probe::Message { .. } = found
        && claimed_offset(buf, pos) != base + pos as u64
    {
        return None;
    }
    Some(found)
}

fn claimed_offset(buf: &[u8], pos: usize) -> u64 {
    buf.get(pos + 28..pos + 36)
        .and_then(|b| b.try_into().ok())
        .map_or(u64::MAX, u64::from_le_bytes)
}

/// Copies the damaged bytes from `at` up to `resume` aside, then covers
/// them: with a skipped-range marker when the data resumes in the same
/// segment, else with an end-of-segment marker (and later segments before
/// `resume` entirely).
fn skip(
    files: &mut [MappedFile],
    index: usize,
    at: usize,
    resume: Resume,
    damage: Damage,
) -> Result<Skipped, StoreError> {
    let from = files[index].base_offset() + at as u64;
    let to = resume.offset(files);
    let saved_to = damaged_path(files[index].path(), from);
    // (segment, start, end) of the damaged bytes in each segment they span.
    let ranges: Vec<(usize, usize, usize)> = (index..=resume.index)
        .map(|i| {
            let start = if i == index { at } else { 0 };
            let end = if i == resume.index {
                resume.pos
            } else {
                files[i].size()
            };
            (i, start, end)
        })
        .collect();
    let mut saved = Vec::new();
    for &(i, start, end) in &ranges {
        saved.extend_from_slice(&files[i].whole()[start..end]);
    }
    crate::atomic_file::write(&saved_to, &saved)
        .context(|| format!("saving damaged bytes to {}", saved_to.display()))?;
    for (i, start, end) in ranges {
        if start == end {
            continue;
        }
        let same_segment = i == resume.index;
        let file = &mut files[i];
        let path = file.path().to_owned();
        file.overwrite(start, end - start, |buf| {
            if same_segment {
                encode_skipped(buf);
            } else {
                encode_end_of_segment(buf);
            }
        })
        .context(|| format!("marking skipped bytes in {}", path.display()))?;
    }
    Ok(Skipped {
        from,
        to,
        damage,
        saved_to,
    })
}

fn damaged_path(segment: &Path, offset: u64) -> PathBuf {
    let name = segment
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    segment.with_file_name(format!("{name}.damaged-{offset}"))
}

/// Checks records from `pos` on; see [`SegmentEnd`].
fn scan_segment(buf: &[u8], base: u64, mut pos: usize) -> SegmentEnd {
    while pos < buf.len() {
        match probe(&buf[pos..]) {
            Ok(Probe::Message { size }) => {
                let claimed = claimed_offset(buf, pos);
                let actual = base + pos as u64;
                if claimed != actual {
                    return SegmentEnd::Corrupt(pos, Damage::Misplaced { claimed });
                }
                pos += size;
            }
            Ok(Probe::Skipped { size }) => pos += size,
            Ok(Probe::EndOfSegment) => return SegmentEnd::Closed,
            Ok(Probe::Blank) => return SegmentEnd::Open(pos),
            Err(err) => return SegmentEnd::Corrupt(pos, Damage::Invalid(err)),
        }
    }
    SegmentEnd::Closed
}
