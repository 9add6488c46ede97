//! What recovery found and did, as values a caller can match on; `Display`
//! gives the sentences the logs and errors show.

use std::fmt;
use std::path::PathBuf;

use crate::commitlog::record::RecordError;

/// What is wrong at a position of the CommitLog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Not a valid record: bad magic, impossible size, CRC mismatch.
    Invalid(RecordError),
    /// A whole record that says it was written elsewhere.
    Misplaced { claimed: u64 },
    /// Zeros where valid records follow.
    Zeros,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Invalid(err) => write!(f, "{err}"),
            Damage::Misplaced { claimed } => {
                write!(f, "a record that says it was written at {claimed}")
            }
            Damage::Zeros => f.write_str("zeros where data was written"),
        }
    }
}

/// Why data was cut off the CommitLog's tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    /// Stray bytes after the last complete record: a torn write.
    TornWrite,
    /// Damage with nothing valid after it.
    Damaged(Damage),
    /// Damage past the last flush before a crash: writes there may have
    /// reached the disk in any order, so the valid-looking records from
    /// `discarded_from` on are dropped with it.
    Unflushed { damage: Damage, discarded_from: u64 },
    /// A segment with data after the end of the data was deleted.
    OrphanSegment { base: u64 },
}

/// Data was cut off during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The physical offset where the valid data now ends.
    pub offset: u64,
    pub cut: Cut,
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = self.offset;
        match &self.cut {
            Cut::TornWrite => write!(
                f,
                "a torn write at offset {offset}: bytes after the last complete record"
            ),
            Cut::Damaged(damage) => write!(f, "{damage} at offset {offset}"),
            Cut::Unflushed {
                damage,
                discarded_from,
            } => write!(
                f,
                "{damage} at offset {offset}, past the last flush before the crash; the valid-looking records from offset {discarded_from} on were not flushed and are discarded"
            ),
            Cut::OrphanSegment { base } => write!(
                f,
                "segment {base} follows the end of the data at offset {offset}"
            ),
        }
    }
}

/// Damaged bytes recovery skipped, keeping the data after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The skipped range of physical offsets, `from..to`.
    pub from: u64,
    pub to: u64,
    /// What was wrong at `from`.
    pub damage: Damage,
    /// Where the damaged bytes were copied.
    pub saved_to: PathBuf,
}
