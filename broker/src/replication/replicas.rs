//! The master's view of its replicas: which are connected and how far each
//! acknowledged the log. Sync replication waits here: a send is
//! acknowledged once `min_in_sync` replicas reached its end, or in
//! controller mode once every required replica did (the SyncStateSet, see
//! [`Replicas::require`]), and at least `min_in_sync` are required. Every ack
//! wakes all waiters at once, so one replica round trip settles every send
//! it covers (group commit, as the store's flush does for fsync).
//!
//! In controller mode the master also holds its reads to what every
//! required replica acknowledged ([`Replicas::confine_reads`]): a message
//! read from the master alone could vanish in a failover while a consumer
//! moved past its queue offset, which the new master gives to another.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_store::MessageStore;
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

/// When a connected replica is in sync: within both bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InSyncRule {
    /// Most bytes of the log it may lack.
    pub max_bytes: u64,
    /// Longest it may have gone without the master's whole log.
    pub max_time: Duration,
}

#[derive(Debug)]
pub struct Replicas {
    rule: InSyncRule,
    /// Connected replicas by id. A std mutex: held for a map update, never
    /// across an await.
    connected: Mutex<HashMap<u64, Following>>,
    changed: Notify,
    connections: std::sync::atomic::AtomicU64,
    /// Controller mode: the replicas every send must reach; `None` outside
    /// it (any `min_in_sync` will do).
    required: Mutex<Option<BTreeSet<u64>>>,
    /// Controller mode: the store whose reads stop at what the required
    /// replicas acknowledged.
    confined: Mutex<Option<Confined>>,
}

/// A store whose reads are held to the replicas' acknowledgements.
#[derive(Debug)]
struct Confined {
    store: Arc<MessageStore>,
    /// The log's end when replicas were first required (since start or
    /// since the master was last alone): what a required replica that has
    /// not connected yet is taken to have. Everything below it was
    /// acknowledged by the group as it then was.
    floor: Option<u64>,
}

/// How far one connected replica is.
#[derive(Debug)]
struct Following {
    /// Which connection of this replica id: a replica that reconnects
    /// before its old stream is found dead replaces it, and the old one's
    /// end must not remove the new one.
    connection: u64,
    /// The end of the log it acknowledged.
    acked: u64,
    /// When it last had the master's whole log (as of a chunk's read).
    caught_up: Instant,
    /// Chunks sent that reached the master's end when read: (end, read at).
    live_sent: VecDeque<(u64, Instant)>,
}

impl Following {
    /// How long it has lacked part of the log ending at `end`.
    fn lag_time(&self, end: u64, now: Instant) -> Duration {
        if self.acked >= end {
            Duration::ZERO
        } else {
            now.saturating_duration_since(self.caught_up)
        }
    }
}

impl Replicas {
    pub fn new(rule: InSyncRule) -> Self {
        Replicas {
            rule,
            connected: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            connections: std::sync::atomic::AtomicU64::new(0),
            required: Mutex::new(None),
            confined: Mutex::new(None),
        }
    }

    /// Controller mode: reads by queue of `store` go only as far as every
    /// required replica acknowledged; with none required, to the log's
    /// end.
    pub fn confine_reads(&self, store: Arc<MessageStore>) {
        *self.confined.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Confined { store, floor: None });
        self.confirm();
    }

    /// The end every required replica acknowledged, when reads are held
    /// to it (replicas stop their own reads there too).
    pub fn confirmed(&self) -> Option<u64> {
        self.confined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|c| c.store.read_limit().get())
    }

    /// Moves the confined store's read limit to what the required
    /// replicas acknowledged. Never called with `connected` locked.
    fn confirm(&self) {
        let mut confined = self.confined.lock().unwrap_or_else(|e| e.into_inner());
        let Some(confined) = confined.as_mut() else {
            return;
        };
        let limit = confined.store.read_limit();
        let required = self.required();
        let Some(ids) = required.filter(|ids| !ids.is_empty()) else {
            confined.floor = None;
            limit.lift();
            return;
        };
        let store = &confined.store;
        let floor = *confined
            .floor
            .get_or_insert_with(|| store.commitlog_max_offset());
        let connected = self.lock();
        let acked = ids
            .iter()
            .map(|id| connected.get(id).map_or(floor, |f| f.acked))
            .min()
            .unwrap_or(floor);
        drop(connected);
        limit.raise_to(acked);
    }

    /// Controller mode: from now on a send waits for every replica in
    /// `ids` (the SyncStateSet without the master, plus any member being
    /// added; a member being removed stays until the controller confirms).
    pub fn require(&self, ids: BTreeSet<u64>) {
        *self.required.lock().unwrap_or_else(|e| e.into_inner()) = Some(ids);
        self.confirm();
        self.changed.notify_waiters();
    }

    /// Resolves at the next ack, connection, disconnection or change of
    /// the required replicas.
    pub fn changes(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The replicas a send waits for, in controller mode.
    pub fn required(&self) -> Option<BTreeSet<u64>> {
        self.required
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How far replica `id` acknowledged, if connected.
    pub fn acked(&self, id: u64) -> Option<u64> {
        self.lock().get(&id).map(|f| f.acked)
    }

    /// The connected replicas in sync with the log ending at `end`.
    pub fn in_sync_ids(&self, end: u64) -> BTreeSet<u64> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, f)| self.is_in_sync(f, end, now))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Replica `id` is connected from `end` on; it counts until the
    /// returned guard drops (the stream ended).
    pub fn connect(&self, id: u64, end: u64) -> Connected<'_> {
        let connection = self
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().insert(
            id,
            Following {
                connection,
                acked: end,
                caught_up: Instant::now(),
                live_sent: VecDeque::new(),
            },
        );
        self.confirm();
        self.changed.notify_waiters();
        Connected {
            replicas: self,
            id,
            connection,
        }
    }

    /// A chunk ending at `end` went to replica `id`; `whole` when it held
    /// everything the log had when read at `read_at`.
    pub fn sent(&self, id: u64, end: u64, whole: bool, read_at: Instant) {
        if let Some(f) = self.lock().get_mut(&id)
            && whole
        {
            f.live_sent.push_back((end, read_at));
            // Bounded by the stream's channel; a stray backlog is trimmed.
            if f.live_sent.len() > 64 {
                f.live_sent.pop_front();
            }
        }
    }

    /// Replica `id` has the log up to `end`.
    pub fn ack(&self, id: u64, end: u64) {
        if let Some(f) = self.lock().get_mut(&id) {
            f.acked = f.acked.max(end);
            while let Some(&(sent_end, read_at)) = f.live_sent.front()
                && sent_end <= f.acked
            {
                f.caught_up = f.caught_up.max(read_at);
                f.live_sent.pop_front();
            }
        }
        self.confirm();
        self.changed.notify_waiters();
    }

    /// Connected replicas in sync with the log ending at `end`.
    pub fn in_sync(&self, end: u64) -> usize {
        let now = Instant::now();
        self.lock()
            .values()
            .filter(|f| self.is_in_sync(f, end, now))
            .count()
    }

    /// The lowest id of a replica in sync with the log ending at `end`.
    pub fn first_in_sync(&self, end: u64) -> Option<u64> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, f)| self.is_in_sync(f, end, now))
            .map(|(&id, _)| id)
            .min()
    }

    /// Every connected replica against the log's `end`, by id.
    pub fn report(&self, end: u64) -> Vec<ReplicaReport> {
        let now = Instant::now();
        let mut all: Vec<ReplicaReport> = self
            .lock()
            .iter()
            .map(|(&id, f)| ReplicaReport {
                id,
                acked: f.acked,
                lag: end.saturating_sub(f.acked),
                lag_time: f.lag_time(end, now),
                in_sync: self.is_in_sync(f, end, now),
            })
            .collect();
        all.sort_unstable_by_key(|r| r.id);
        all
    }

    /// Waits until `min` replicas (in controller mode: every required one,
    /// at least `min`) acknowledged `end`, at most `timeout`.
    pub async fn wait_for(&self, end: u64, min: usize, timeout: Duration) -> ReplicaWait {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let required = self.required();
            let acked = {
                let connected = self.lock();
                match &required {
                    Some(ids) => {
                        ids.len() >= min
                            && ids
                                .iter()
                                .all(|id| connected.get(id).is_some_and(|f| f.acked >= end))
                    }
                    None => connected.values().filter(|f| f.acked >= end).count() >= min,
                }
            };
            if acked {
                return ReplicaWait::Acked;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let available = match &required {
                    Some(ids) => ids.len() >= min && ids.is_subset(&self.in_sync_ids(end)),
                    None => self.in_sync(end) >= min,
                };
                return if available {
                    ReplicaWait::TimedOut
                } else {
                    ReplicaWait::NotAvailable
                };
            }
        }
    }

    /// The one rule for being in sync.
    fn is_in_sync(&self, f: &Following, end: u64, now: Instant) -> bool {
        f.acked.saturating_add(self.rule.max_bytes) >= end
            && f.lag_time(end, now) <= self.rule.max_time
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Following>> {
        self.connected.lock().unwrap_or_else(|e| e.into_inner())
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
    /// How long it has gone without the whole log.
    pub lag_time: Duration,
    /// Within the in-sync rule: counts for sync replication.
    pub in_sync: bool,
}

/// A connected replica; disconnects it when dropped.
#[derive(Debug)]
pub struct Connected<'a> {
    replicas: &'a Replicas,
    id: u64,
    connection: u64,
}

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        let mut connected = self.replicas.lock();
        if connected
            .get(&self.id)
            .is_some_and(|f| f.connection == self.connection)
        {
            connected.remove(&self.id);
        }
        drop(connected);
        self.replicas.confirm();
        self.replicas.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const RULE: InSyncRule = InSyncRule {
        max_bytes: 1000,
        max_time: Duration::from_secs(3600),
    };

    #[tokio::test(start_paused = true)]
    async fn a_send_waits_for_enough_acks_and_says_why_when_they_do_not_come() {
        let replicas = Arc::new(Replicas::new(RULE));
        let second = Duration::from_secs(1);
        assert_eq!(
            replicas.wait_for(10, 1, second).await,
            ReplicaWait::NotAvailable
        );

        let one = replicas.connect(1, 0);
        let waiting = {
            let replicas = Arc::clone(&replicas);
            tokio::spawn(async move { replicas.wait_for(500, 1, second).await })
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
            replicas.wait_for(900, 1, second).await,
            ReplicaWait::TimedOut
        );
        assert_eq!(began.elapsed(), second);
        assert_eq!(
            replicas.wait_for(900, 2, second).await,
            ReplicaWait::NotAvailable
        );
        // Too far behind counts as not in sync.
        assert_eq!(
            replicas.wait_for(5000, 1, second).await,
            ReplicaWait::NotAvailable
        );
        let report = replicas.report(2000);
        assert_eq!(report.len(), 1);
        assert_eq!(
            (report[0].id, report[0].acked, report[0].lag),
            (1, 500, 1500)
        );
        assert!(!report[0].in_sync, "1500 bytes behind, 1000 allowed");
        drop(one);
        assert!(replicas.report(0).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn in_controller_mode_a_send_waits_for_every_required_replica() {
        let replicas = Arc::new(Replicas::new(RULE));
        let second = Duration::from_secs(1);
        let _one = replicas.connect(1, 0);
        let _two = replicas.connect(2, 0);
        replicas.require(BTreeSet::from([1, 2]));
        let waiting = {
            let replicas = Arc::clone(&replicas);
            tokio::spawn(async move { replicas.wait_for(100, 1, second).await })
        };
        replicas.ack(1, 100);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "2 is required and has not acked");
        // The controller confirmed 2 left the SyncStateSet: 1 is enough.
        replicas.require(BTreeSet::from([1]));
        assert_eq!(waiting.await.unwrap(), ReplicaWait::Acked);
        // An empty set with min 0: the master alone acknowledges.
        replicas.require(BTreeSet::new());
        assert_eq!(replicas.wait_for(500, 0, second).await, ReplicaWait::Acked);
        assert_eq!(
            replicas.wait_for(500, 1, second).await,
            ReplicaWait::NotAvailable,
            "fewer required than min_in_sync"
        );
        // A required replica that is not connected: not available.
        replicas.require(BTreeSet::from([1, 3]));
        assert_eq!(
            replicas.wait_for(100, 1, second).await,
            ReplicaWait::NotAvailable
        );
        assert_eq!(replicas.in_sync_ids(100), BTreeSet::from([1, 2]));
        assert_eq!(replicas.acked(1), Some(100));
        assert_eq!(replicas.acked(3), None);
    }

    #[tokio::test]
    async fn reads_stop_at_what_every_required_replica_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = MessageStore::open(
            dir.path(),
            mq_store::StoreConfig::default(),
            "127.0.0.1:1".parse().unwrap(),
        )
        .unwrap();
        let store = Arc::new(store);
        let put = |body: &'static str| {
            let store = Arc::clone(&store);
            async move {
                let msg = mq_store::MessageToStore::new("t", 0, body);
                store.put(msg).await.unwrap().appended[0].end_offset()
            }
        };
        let first = put("a").await;
        let replicas = Replicas::new(RULE);
        replicas.confine_reads(Arc::clone(&store));
        assert_eq!(replicas.confirmed(), None, "no replica required");

        // Required but not connected yet: what was there when it became
        // required counts as confirmed, nothing written after.
        replicas.require(BTreeSet::from([1]));
        assert_eq!(replicas.confirmed(), Some(first));
        let second = put("b").await;
        assert_eq!(replicas.confirmed(), Some(first));
        let _one = replicas.connect(1, 0);
        assert_eq!(replicas.confirmed(), Some(first), "it never falls");
        replicas.ack(1, second);
        assert_eq!(replicas.confirmed(), Some(second));

        // Two required: the one further behind decides.
        let third = put("c").await;
        let _two = replicas.connect(2, second);
        replicas.require(BTreeSet::from([1, 2]));
        replicas.ack(1, third);
        assert_eq!(replicas.confirmed(), Some(second));
        replicas.ack(2, third);
        assert_eq!(replicas.confirmed(), Some(third));
        store.indexed_up_to_now(Duration::from_secs(10)).await;
        assert_eq!(store.queue_offsets("t", 0).map(|(_, max)| max), Some(3));

        // Alone again: reads go to the end.
        replicas.require(BTreeSet::new());
        assert_eq!(replicas.confirmed(), None);
        assert_eq!(store.read_limit().get(), None);
    }

    #[test]
    fn a_replica_that_reconnects_before_its_old_stream_ends_stays_connected() {
        let replicas = Replicas::new(RULE);
        let old = replicas.connect(1, 100);
        let new = replicas.connect(1, 100);
        drop(old);
        assert_eq!(replicas.report(100).len(), 1, "the new stream counts");
        drop(new);
        assert!(replicas.report(100).is_empty());
    }

    #[test]
    fn a_replica_that_has_not_had_the_whole_log_for_too_long_is_not_in_sync() {
        let replicas = Replicas::new(InSyncRule {
            max_bytes: 1 << 30,
            max_time: Duration::from_millis(50),
        });
        let _one = replicas.connect(1, 0);
        let start = Instant::now();
        replicas.sent(1, 100, true, start);
        replicas.ack(1, 100);
        assert_eq!(replicas.report(100)[0].lag_time, Duration::ZERO);
        // The log grows; the replica acks only part of a partial chunk.
        replicas.sent(1, 150, false, Instant::now());
        replicas.ack(1, 150);
        std::thread::sleep(Duration::from_millis(80));
        let report = replicas.report(200)[0];
        assert!(report.lag_time >= Duration::from_millis(80), "{report:?}");
        assert!(!report.in_sync, "50 bytes behind but for too long");
        assert_eq!(replicas.first_in_sync(200), None);
        // A whole chunk acknowledged catches it up again.
        replicas.sent(1, 200, true, Instant::now());
        replicas.ack(1, 200);
        assert!(replicas.report(250)[0].in_sync);
        assert_eq!(replicas.first_in_sync(250), Some(1));
    }
}
