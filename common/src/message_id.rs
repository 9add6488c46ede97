//! Message ids in RocketMQ 5's format (its "V1" ids), made by producers:
//! 17 bytes as 34 upper-case hex digits, `01` (the version), 6 bytes
//! naming the process's host (RocketMQ takes the MAC address; we take a
//! hash of the host name and a random key, which needs no interface), the
//! process id's low 2 bytes, seconds since 2021-01-01 UTC (4 bytes) and a
//! sequence number (4 bytes). Every official client reads them.

use std::fmt::Write;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// 2021-01-01T00:00:00Z, RocketMQ's epoch for ids.
const EPOCH_2021: u64 = 1_609_459_200;

/// Makes the ids of one process.
#[derive(Debug)]
pub struct MessageIdGenerator {
    /// Version, host and process: the first 9 bytes, in hex.
    prefix: String,
    sequence: AtomicU32,
}

impl Default for MessageIdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageIdGenerator {
    pub fn new() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            hasher.write(name.trim().as_bytes());
        }
        hasher.write_u32(std::process::id());
        let host = hasher.finish().to_be_bytes();
        let mut prefix = String::with_capacity(34);
        prefix.push_str("01");
        for byte in &host[..6] {
            let _ = write!(prefix, "{byte:02X}");
        }
        let _ = write!(prefix, "{:04X}", std::process::id() as u16);
        MessageIdGenerator {
            prefix,
            sequence: AtomicU32::new(0),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let seconds = now.saturating_sub(EPOCH_2021) as u32;
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(34);
        id.push_str(&self.prefix);
        let _ = write!(id, "{seconds:08X}{sequence:08X}");
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_rocketmq_5s_shape_and_differ() {
        let ids = MessageIdGenerator::new();
        let a = ids.next_id();
        let b = ids.next_id();
        assert_eq!(a.len(), 34);
        assert!(a.starts_with("01"));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_ne!(a, b);
        // Same process, same first 9 bytes; the sequence counts up.
        assert_eq!(a[..18], b[..18]);
        let seq = |id: &str| u32::from_str_radix(&id[26..], 16).unwrap();
        assert_eq!(seq(&b), seq(&a) + 1);
        // Another generator (another process) has another host part.
        assert_ne!(MessageIdGenerator::new().next_id()[..14], a[..14]);
    }
}
