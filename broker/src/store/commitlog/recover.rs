//! Finding where the CommitLog's valid data ends after a restart.
//!
//! Segments before the scan start are trusted (the checkpoint says they are
//! on disk). From there every record is checked: a known magic, a size that
//! fits, a matching CRC, and the physical offset it was written at. The
//! first position that fails ends the data; everything after it is zeroed
//! (the rest of that segment) or deleted (later segments), and the reason
//! is reported, so that nothing unreadable remains.

use std::io;

use crate::store::commitlog::record::{Probe, probe};
use crate::store::mapped_file::{MappedFile, TailScan};

/// Data was cut off during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The physical offset where the valid data now ends.
    pub offset: u64,
    /// What was found there.
    pub reason: String,
}

/// Where recovery left the CommitLog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// End of the valid data: the next append goes here.
    pub end_offset: u64,
    /// Present when something other than zeros was discarded.
    pub truncation: Option<Truncation>,
}

enum SegmentEnd {
    /// Closed by an end-of-segment marker: the data goes on in the next one.
    Closed,
    /// Zeros at this position: the data ends here.
    Open(usize),
    /// Not a valid record at this position.
    Corrupt(usize, String),
}

/// Recovers `files` (contiguous segments, oldest first), scanning from the
/// segment holding `scan_from`; `tail` says how far past the end of the
/// data to look for stray bytes. Segments after the end are deleted and
/// removed from `files`.
pub fn recover(
    files: &mut Vec<MappedFile>,
    scan_from: u64,
    tail: TailScan,
) -> io::Result<Recovered> {
    let Some(first) = files.first() else {
        return Ok(Recovered {
            end_offset: 0,
            truncation: None,
        });
    };
    let size = first.size() as u64;
    let start = usize::try_from(scan_from.saturating_sub(first.base_offset()) / size)
        .unwrap_or(usize::MAX)
        .min(files.len() - 1);
    for file in &mut files[..start] {
        let size = file.size();
        file.truncate_to(size, tail)?;
    }

    let mut truncation = None;
    let mut end = None;
    for (index, file) in files.iter_mut().enumerate().skip(start) {
        let base = file.base_offset();
        let (pos, reason) = match scan_segment(file.whole(), base) {
            SegmentEnd::Closed => {
                let size = file.size();
                file.truncate_to(size, tail)?;
                continue;
            }
            SegmentEnd::Open(pos) => (pos, None),
            SegmentEnd::Corrupt(pos, reason) => (pos, Some(reason)),
        };
        let discarded = file.truncate_to(pos, tail)?;
        let reason = reason.or_else(|| {
            discarded.then(|| "a torn write: bytes after the last complete record".to_owned())
        });
        truncation = reason.map(|reason| Truncation {
            offset: base + pos as u64,
            reason,
        });
        end = Some((index, base + pos as u64));
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
        // A segment is written from its start: zeros there mean it is empty.
        let had_data = file.whole().iter().take(8).any(|&b| b != 0);
        file.delete()?;
        if had_data && truncation.is_none() {
            truncation = Some(Truncation {
                offset: end_offset,
                reason: format!("segment {} follows the end of the data", file.base_offset()),
            });
        }
    }
    Ok(Recovered {
        end_offset,
        truncation,
    })
}

fn scan_segment(buf: &[u8], base: u64) -> SegmentEnd {
    let mut pos = 0;
    while pos < buf.len() {
        match probe(&buf[pos..]) {
            Ok(Probe::Message { size }) => {
                let claimed =
                    u64::from_le_bytes(buf[pos + 28..pos + 36].try_into().unwrap_or([0; 8]));
                let actual = base + pos as u64;
                if claimed != actual {
                    return SegmentEnd::Corrupt(
                        pos,
                        format!("the record at offset {actual} says it was written at {claimed}"),
                    );
                }
                pos += size;
            }
            Ok(Probe::EndOfSegment) => return SegmentEnd::Closed,
            Ok(Probe::Blank) => return SegmentEnd::Open(pos),
            Err(err) => {
                return SegmentEnd::Corrupt(pos, format!("{err} at offset {}", base + pos as u64));
            }
        }
    }
    SegmentEnd::Closed
}
