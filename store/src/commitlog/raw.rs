//! The CommitLog as bytes, for replication: a master hands out whole
//! records as they lie in its segments, and a replica appends them at the
//! same physical offsets, so that both logs are byte for byte the same and
//! a record's stamped physical offset stays true on either.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::CommitLog;
use crate::commitlog::record::{self, Probe};
use crate::error::StoreError;

impl CommitLog {
    /// The written bytes from `offset` on, cut at a record boundary: whole
    /// records, skipped-range markers and the end-of-segment marker (with
    /// the zeros it covers), at most `max` bytes unless the first record
    /// alone is larger, never past the segment holding `offset`. `None`
    /// when nothing is written at `offset` yet. Damage at rest is an error:
    /// a master never hands it on.
    pub fn read_raw(&self, offset: u64, max: usize) -> Result<Option<Bytes>, StoreError> {
        let Some(segment) = self.segments.find(offset) else {
            return Ok(None);
        };
        let pos = (offset - segment.base_offset()) as usize;
        let Some(rest) = segment.read_from(pos) else {
            return Ok(None);
        };
        let mut end = 0;
        while end < rest.len() {
            let probe = record::probe(&rest[end..]).map_err(|err| StoreError::Replication {
                offset: offset + end as u64,
                reason: format!("damaged here, not handed on: {err}"),
            })?;
            let size = match probe {
                Probe::Message { size } | Probe::Skipped { size } => size,
                Probe::EndOfSegment => rest.len() - end,
                Probe::Blank => break,
            };
            if end > 0 && end + size > max {
                break;
            }
            end += size;
        }
        Ok((end > 0).then(|| rest.slice(..end)))
    }

    /// Appends `bytes` a master's [`CommitLog::read_raw`] gave for
    /// `offset`, which must be this log's end. Everything is checked before
    /// anything is written: whole records whose CRC matches and whose
    /// stamped physical offset is where they land, markers where they
    /// belong, nothing past the segment. Queue offsets move with the
    /// records, so this log can take appends of its own later. Returns the
    /// new end.
    pub fn append_raw(&self, offset: u64, bytes: &[u8]) -> Result<u64, StoreError> {
        let refuse = |reason: String| StoreError::Replication { offset, reason };
        if bytes.is_empty() {
            return Err(refuse("no bytes".into()));
        }
        let mut queue_offsets = self.lock_writer();
        let end = self.max_offset.load(Ordering::Acquire);
        if offset != end {
            return Err(refuse(format!("this log ends at {end}")));
        }
        let segment_size = self.segments.segment_size() as u64;
        let base = offset - offset % segment_size;
        if offset + bytes.len() as u64 > base + segment_size {
            return Err(refuse(format!(
                "{} bytes run past the segment ending at {}",
                bytes.len(),
                base + segment_size
            )));
        }
        let mut next_offsets = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let here = offset + at as u64;
            let damaged = |err| refuse(format!("at {here}: {err}"));
            match record::probe(&bytes[at..]).map_err(damaged)? {
                Probe::Message { size } => {
                    let header = record::header(&bytes[at..at + size]).map_err(damaged)?;
                    if header.physical_offset != here {
                        return Err(refuse(format!(
                            "the record at {here} says it was written at {}",
                            header.physical_offset
                        )));
                    }
                    next_offsets.push((header.topic, header.queue_id, header.queue_offset + 1));
                    at += size;
                }
                Probe::Skipped { size } => at += size,
                Probe::EndOfSegment if here + (bytes.len() - at) as u64 == base + segment_size => {
                    at = bytes.len();
                }
                Probe::EndOfSegment => {
                    return Err(refuse(format!(
                        "the end-of-segment marker at {here} does not reach the segment's end"
                    )));
                }
                Probe::Blank => return Err(refuse(format!("zeros at {here}"))),
            }
        }

        let segment = match self.segments.last() {
            Some(last) if last.base_offset() == base => last,
            _ => self.new_segment(base)?,
        };
        segment
            .append_bytes(bytes)
            .ok_or_else(|| refuse("the segment has no room for them".into()))?
            .map_err(|source| StoreError::Io {
                context: format!("writing replicated bytes at {offset}"),
                source,
            })?;
        for (topic, queue_id, next) in next_offsets {
            let queues = queue_offsets.entry(topic.to_owned()).or_default();
            let slot = queues.entry(queue_id).or_insert(0);
            *slot = (*slot).max(next);
        }
        let new_end = offset + bytes.len() as u64;
        self.max_offset.store(new_end, Ordering::Release);
        Ok(new_end)
    }
}
