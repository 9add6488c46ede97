//! Group commit: appenders in sync-flush mode ask for their record to be
//! flushed and wait; the one flusher thread serves every request pending at
//! that moment with a single `msync`, then wakes them all. The more
//! appenders wait together, the fewer syncs per record: throughput grows
//! with concurrency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug, Default)]
struct Requests {
    /// Highest offset somebody asked to see on disk.
    requested: u64,
    shutdown: bool,
}

/// Where appenders and the flusher meet.
#[derive(Debug)]
pub struct GroupCommit {
    requests: Mutex<Requests>,
    wake_flusher: Condvar,
    flushed: watch::Sender<u64>,
    /// Flushes done, and the time they took, for the metrics.
    flushes: AtomicU64,
    flush_nanos: AtomicU64,
}

/// Why a wait for the disk ended without the record being flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushWait {
    Flushed,
    TimedOut,
    /// The store shut down first.
    Closed,
}

impl GroupCommit {
    /// Starts with everything up to `flushed` on disk.
    pub fn new(flushed: u64) -> Self {
        GroupCommit {
            requests: Mutex::new(Requests {
                requested: flushed,
                shutdown: false,
            }),
            wake_flusher: Condvar::new(),
            flushed: watch::Sender::new(flushed),
            flushes: AtomicU64::new(0),
            flush_nanos: AtomicU64::new(0),
        }
    }

    /// Asks for everything up to `end` to be flushed now.
    pub fn request(&self, end: u64) {
        let mut requests = self.lock();
        if end > requests.requested {
            requests.requested = end;
            self.wake_flusher.notify_one();
        }
    }

    /// Waits until everything up to `end` is on disk, at most `timeout`.
    pub async fn wait_flushed(&self, end: u64, timeout: Duration) -> FlushWait {
        let mut flushed = self.flushed.subscribe();
        match tokio::time::timeout(timeout, flushed.wait_for(|&f| f >= end)).await {
            Ok(Ok(_)) => FlushWait::Flushed,
            Ok(Err(_)) => FlushWait::Closed,
            Err(_) => FlushWait::TimedOut,
        }
    }

    /// The highest offset known to be on disk.
    pub fn flushed(&self) -> u64 {
        *self.flushed.borrow()
    }

    /// Counts a flush that took `took`.
    pub fn record_flush(&self, took: Duration) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.flush_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Flushes done and their total time.
    pub fn flush_totals(&self) -> (u64, Duration) {
        (
            self.flushes.load(Ordering::Relaxed),
            Duration::from_nanos(self.flush_nanos.load(Ordering::Relaxed)),
        )
    }

    /// Called by the flusher after a flush reached `offset`.
    pub fn publish(&self, offset: u64) {
        self.flushed.send_if_modified(|f| {
            let moved = offset > *f;
            *f = (*f).max(offset);
            moved
        });
    }

    /// Blocks the flusher until somebody asks for more than `flushed`, or
    /// `timeout` passes. Returns the requested offset, or `None` at
    /// shutdown.
    pub fn next_request(&self, flushed: u64, timeout: Duration) -> Option<u64> {
        let requests = self.lock();
        let (requests, _) = self
            .wake_flusher
            .wait_timeout_while(requests, timeout, |r| r.requested <= flushed && !r.shutdown)
            .unwrap_or_else(|e| e.into_inner());
        (!requests.shutdown).then_some(requests.requested)
    }

    /// Makes the flusher return from [`GroupCommit::next_request`] for good.
    pub fn shut_down(&self) {
        self.lock().shutdown = true;
        self.wake_flusher.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Requests> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn waiters_wake_when_the_flushed_offset_passes_them() {
        let group = Arc::new(GroupCommit::new(0));
        let waiter = {
            let group = Arc::clone(&group);
            tokio::spawn(async move { group.wait_flushed(100, Duration::from_secs(5)).await })
        };
        group.request(100);
        assert_eq!(group.next_request(0, Duration::from_secs(5)), Some(100));
        group.publish(150);
        assert_eq!(waiter.await.unwrap(), FlushWait::Flushed);
        assert_eq!(group.flushed(), 150);
        group.publish(120);
        assert_eq!(group.flushed(), 150, "never goes backwards");
    }

    #[tokio::test]
    async fn a_flush_that_does_not_come_times_out() {
        let group = GroupCommit::new(0);
        group.request(10);
        assert_eq!(
            group.wait_flushed(10, Duration::from_millis(20)).await,
            FlushWait::TimedOut
        );
        assert_eq!(
            group.wait_flushed(0, Duration::from_millis(20)).await,
            FlushWait::Flushed
        );
    }

    #[test]
    fn the_flusher_sleeps_until_asked_or_shut_down() {
        let group = GroupCommit::new(50);
        assert_eq!(
            group.next_request(50, Duration::from_millis(10)),
            Some(50),
            "timeout, nothing new"
        );
        group.request(40);
        assert_eq!(
            group.next_request(50, Duration::from_millis(10)),
            Some(50),
            "old requests are no news"
        );
        group.shut_down();
        assert_eq!(group.next_request(50, Duration::from_secs(5)), None);
    }
}
