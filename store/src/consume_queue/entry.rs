//! A ConsumeQueue entry: where one message of a queue lies in the
//! CommitLog, and the hash of its tag for filtering. 20 bytes, little-endian:
//! CommitLog offset (u64), record size (u32), tag hash (u64).

/// Bytes per entry.
pub const ENTRY_LEN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub physical_offset: u64,
    pub size: u32,
    pub tag_hash: u64,
}

impl Entry {
    pub fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.physical_offset.to_le_bytes());
        out[8..12].copy_from_slice(&self.size.to_le_bytes());
        out[12..20].copy_from_slice(&self.tag_hash.to_le_bytes());
    }

    /// The entry in the first 20 bytes of `buf`; `None` for an all-zero
    /// slot (never written, or a hole) or a short buffer.
    pub fn decode(buf: &[u8]) -> Option<Entry> {
        let buf = buf.get(..ENTRY_LEN)?;
        let entry = Entry {
            physical_offset: u64::from_le_bytes(buf[0..8].try_into().ok()?),
            size: u32::from_le_bytes(buf[8..12].try_into().ok()?),
            tag_hash: u64::from_le_bytes(buf[12..20].try_into().ok()?),
        };
        (entry.size != 0).then_some(entry)
    }

    /// The CommitLog offset just past the message.
    pub fn end_offset(&self) -> u64 {
        self.physical_offset + u64::from(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_zero_slots_are_empty() {
        let entry = Entry {
            physical_offset: 0x0102_0304_0506_0708,
            size: 0x0A0B_0C0D,
            tag_hash: u64::MAX,
        };
        let mut buf = [0; ENTRY_LEN];
        entry.encode(&mut buf);
        assert_eq!(
            &buf[..12],
            &[8, 7, 6, 5, 4, 3, 2, 1, 0x0D, 0x0C, 0x0B, 0x0A]
        );
        assert_eq!(Entry::decode(&buf), Some(entry));
        assert_eq!(Entry::decode(&[0; ENTRY_LEN]), None);
        assert_eq!(Entry::decode(&buf[..19]), None);
    }
}
