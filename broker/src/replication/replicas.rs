//! The master's view of its replicas: which are connected and how far each
//! acknowledged the log. Sync replication waits here: a send is
//! acknowledged once `min_in_sync` replicas reached its end. Every ack
//! wakes all waiters at once, so one replica round trip settles every send
//! it covers (group commit, as the store's flush does for fsync).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

/// How waiting for replicas ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaWait {
    /// Enough replicas have the bytes.
    Acked,
    /// Enough replicas are in sync, but they did not confirm in time.
    TimedOut,
    /// Too few replicas are connected and in sync.
    NotAvailable,
}

#[derive(Debug, Default)]
pub struct Replicas {
    /// Connected replicas by id: the end of the log each acknowledged. A
    /// std mutex: held for a map update, never across an await.
    acked: Mutex<HashMap<u64, u64>>,
    changed: Notify,
}

impl Replicas {
    /// Replica `id` is connected from `end` on; it counts until the
    /// returned guard drops (the stream ended).
    pub fn connect(&self, id: u64, end: u64) -> Connected<'_> {
        self.lock().insert(id, end);
        self.changed.notify_waiters();
        Connected { replicas: self, id }
    }

    /// Replica `id` has the log up to `end`.
    pub fn ack(&self, id: u64, end: u64) {
        if let Some(acked) = self.lock().get_mut(&id) {
            *acked = (*acked).max(end);
        }
        self.changed.notify_waiters();
    }

    /// Connected replicas whose acknowledged end is within `max_lag` bytes
    /// of `end`.
    pub fn in_sync(&self, end: u64, max_lag: u64) -> usize {
        self.lock()
            .values()
            .filter(|&&acked| is_in_sync(acked, end, max_lag))
            .count()
    }

    /// Every connected replica against the log's `end`, by id.
    pub fn report(&self, end: u64, max_lag: u64) -> Vec<ReplicaReport> {
        let mut all: Vec<ReplicaReport> = self
            .lock()
            .iter()
            .map(|(&id, &acked)| ReplicaReport {
                id,
                acked,
                lag: end.saturating_sub(acked),
                in_sync: is_in_sync(acked, end, max_lag),
            })
            .collect();
        all.sort_unstable_by_key(|r| r.id);
        all
    }

    /// Waits until `min` replicas acknowledged `end`, at most `timeout`.
    pub async fn wait_for(
        &self,
        end: u64,
        min: usize,
        max_lag: u64,
        timeout: Duration,
    ) -> ReplicaWait {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.lock().values().filter(|&&acked| acked >= end).count() >= min {
                return ReplicaWait::Acked;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return if self.in_sync(end, max_lag) >= min {
                    ReplicaWait::TimedOut
                } else {
                    ReplicaWait::NotAvailable
                };
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        self.acked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connected replica, as metrics and admin show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaReport {
    pub id: u64,
    /// The end of the log it acknowledged.
    pub acked: u64,
    /// Bytes of the log it has not acknowledged.
    pub lag: u64,
    /// Within `in_sync_lag_bytes`: counts for sync replication.
    pub in_sync: bool,
}

/// The one rule for being in sync: acknowledged within `max_lag` of `end`.
fn is_in_sync(acked: u64, end: u64, max_lag: u64) -> bool {
    acked.saturating_add(max_lag) >= end
}

/// A connected replica; disconnects it when dropped.
#[derive(Debug)]
pub struct Connected<'a> {
    replicas: &'a Replicas,
    id: u64,
}

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.replicas.lock().remove(&self.id);
        self.replicas.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const LAG: u64 = 1000;

    #[tokio::test(start_paused = true)]
    async fn a_send_waits_for_enough_acks_and_says_why_when_they_do_not_come() {
        let replicas = Arc::new(Replicas::default());
        let second = Duration::from_secs(1);
        assert_eq!(
            replicas.wait_for(10, 1, LAG, second).await,
            ReplicaWait::NotAvailable
        );

        let one = replicas.connect(1, 0);
        let waiting = {
            let replicas = Arc::clone(&replicas);
            tokio::spawn(async move { replicas.wait_for(500, 1, LAG, second).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        replicas.ack(1, 499);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "499 is short of 500");
        replicas.ack(1, 500);
        assert_eq!(waiting.await.unwrap(), ReplicaWait::Acked);

        // In sync but silent: a timeout; two wanted, one there: not available.
        let began = tokio::time::Instant::now();
        assert_eq!(
            replicas.wait_for(900, 1, LAG, second).await,
            ReplicaWait::TimedOut
        );
        assert_eq!(began.elapsed(), second);
        assert_eq!(
            replicas.wait_for(900, 2, LAG, second).await,
            ReplicaWait::NotAvailable
        );
        // Too far behind counts as not in sync.
        assert_eq!(
            replicas.wait_for(5000, 1, LAG, second).await,
            ReplicaWait::NotAvailable
        );
        let report = replicas.report(2000, LAG);
        assert_eq!(report.len(), 1);
        assert_eq!(
            (report[0].id, report[0].acked, report[0].lag),
            (1, 500, 1500)
        );
        assert!(!report[0].in_sync, "1500 bytes behind, 1000 allowed");
        drop(one);
        assert!(replicas.report(0, LAG).is_empty());
    }
}
