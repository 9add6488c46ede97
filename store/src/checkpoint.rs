//! The checkpoint file: how far the CommitLog is known to be on disk, and
//! how far the ConsumeQueues are. Recovery starts its checks there.
//!
//! 36 bytes, little-endian: magic `MQCK` (u32 0x4B43514D), version (u32, 1),
//! CommitLog flushed offset (u64), dispatched offset (u64: ConsumeQueue
//! entries for every record below it are on disk), written-at timestamp
//! (u64, ms), CRC32C of the preceding 32 bytes (u32). Replaced atomically:
//! written to `checkpoint.tmp`, synced, renamed over `checkpoint`.

use std::io;
use std::path::Path;

/// The file's magic: "MQCK" read as a little-endian u32.
const MAGIC: u32 = u32::from_le_bytes(*b"MQCK");
const VERSION: u32 = 1;
const LEN: usize = 36;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub commitlog_flushed: u64,
    pub dispatched: u64,
    pub timestamp_ms: u64,
}

impl Checkpoint {
    pub fn encode(&self) -> [u8; LEN] {
        let mut buf = [0; LEN];
        buf[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        buf[4..8].copy_from_slice(&VERSION.to_le_bytes());
        buf[8..16].copy_from_slice(&self.commitlog_flushed.to_le_bytes());
        buf[16..24].copy_from_slice(&self.dispatched.to_le_bytes());
        buf[24..32].copy_from_slice(&self.timestamp_ms.to_le_bytes());
        let crc = crc32c::crc32c(&buf[..32]);
        buf[32..36].copy_from_slice(&crc.to_le_bytes());
        buf
    }

    pub fn decode(buf: &[u8]) -> Result<Checkpoint, String> {
        if buf.len() != LEN {
            return Err(format!("{} bytes, expected {LEN}", buf.len()));
        }
        let u32_at =
            |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        let u64_at = |at: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&buf[at..at + 8]);
            u64::from_le_bytes(b)
        };
        if u32_at(0) != MAGIC {
            return Err("bad magic".into());
        }
        if u32_at(4) != VERSION {
            return Err(format!("unknown version {}", u32_at(4)));
        }
        if u32_at(32) != crc32c::crc32c(&buf[..32]) {
            return Err("CRC mismatch".into());
        }
        Ok(Checkpoint {
            commitlog_flushed: u64_at(8),
            dispatched: u64_at(16),
            timestamp_ms: u64_at(24),
        })
    }

    /// Reads the checkpoint; `None` if it is missing or unreadable (then
    /// recovery checks everything).
    pub fn read(path: &Path) -> Option<Checkpoint> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
            Err(err) => {
                tracing::warn!(file = %path.display(), error = %err, "cannot read the checkpoint; checking the whole store");
                return None;
            }
        };
        Checkpoint::decode(&bytes)
            .inspect_err(|why| tracing::warn!(file = %path.display(), why, "ignoring a damaged checkpoint; checking the whole store"))
            .ok()
    }

    /// Replaces the checkpoint file atomically and durably.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        crate::atomic_file::write(path, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        assert_eq!(Checkpoint::read(&path), None);
        let checkpoint = Checkpoint {
            commitlog_flushed: 123,
            dispatched: 100,
            timestamp_ms: 9,
        };
        checkpoint.write(&path).unwrap();
        assert_eq!(Checkpoint::read(&path), Some(checkpoint));
        assert_eq!(&std::fs::read(&path).unwrap()[..4], b"MQCK");
    }

    #[test]
    fn damaged_checkpoints_are_ignored() {
        let good = Checkpoint {
            commitlog_flushed: 1,
            dispatched: 1,
            timestamp_ms: 1,
        }
        .encode();
        for at in 0..good.len() {
            let mut bad = good;
            bad[at] ^= 1;
            assert!(Checkpoint::decode(&bad).is_err(), "flip at {at} accepted");
        }
        assert!(Checkpoint::decode(&good[..35]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        std::fs::write(&path, b"garbage").unwrap();
        assert_eq!(Checkpoint::read(&path), None);
    }
}
