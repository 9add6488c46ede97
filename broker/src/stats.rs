//! Counters of what went in and out of the broker since it started, for
//! `mqadmin cluster list` (rates) and the metrics endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct BrokerStats {
    pub started_ms: u64,
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
}

/// A reading of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
}

impl BrokerStats {
    pub fn new(started_ms: u64) -> Self {
        BrokerStats {
            started_ms,
            ..BrokerStats::default()
        }
    }

    /// Messages stored for producers.
    pub fn record_in(&self, messages: usize, bytes: usize) {
        self.messages_in
            .fetch_add(messages as u64, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Messages handed to consumers.
    pub fn record_out(&self, messages: usize, bytes: usize) {
        self.messages_out
            .fetch_add(messages as u64, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            messages_in: self.messages_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}
