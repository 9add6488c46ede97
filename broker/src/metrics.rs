//! The broker's Prometheus metrics (`/metrics` on `metrics_listen`). The
//! request paths update counters and histograms as they go; sizes and lags
//! are read from the store and the offsets at scrape time.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use mq_store::MessageStore;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::consumer_offsets::ConsumerOffsets;
use crate::error::BrokerError;

type Labels = Vec<(String, String)>;

fn topic(topic: &str) -> Labels {
    vec![("topic".into(), topic.into())]
}

/// The four per-topic counters, looked up once per topic: the request
/// paths then count without building label sets.
#[derive(Debug, Clone)]
struct TopicCounters {
    messages_in: Counter,
    bytes_in: Counter,
    messages_out: Counter,
    bytes_out: Counter,
}

/// Messages and bytes in and out of the broker since it started, over
/// every topic (deleted ones included), for `GetBrokerStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
}

/// What the request paths record: the one place the broker counts.
#[derive(Debug, Clone)]
pub struct BrokerMetrics {
    by_topic: Arc<DashMap<String, TopicCounters>>,
    /// The same counts over every topic: per-topic series go with their
    /// topic, these stay.
    totals: TopicCounters,
    messages_in: Family<Labels, Counter>,
    bytes_in: Family<Labels, Counter>,
    messages_out: Family<Labels, Counter>,
    bytes_out: Family<Labels, Counter>,
    send_latency: Histogram,
    pull_latency: Histogram,
    append_latency: Histogram,
    rejected: Family<Labels, Counter>,
    long_polls_held: Gauge,
    unreadable: Counter,
    /// Transactions: ends by outcome, checks asked, discards.
    transactions_ended: Family<Labels, Counter>,
    transaction_checks: Counter,
    transactions_discarded: Counter,
    /// Idempotent producers' retries answered from their windows.
    duplicate_sends: Counter,
    /// `SendMany` requests, and the sends they carried.
    send_many_requests: Counter,
    send_many_sends: Counter,
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        // 50 us to ~27 s.
        let buckets = || Histogram::new(exponential_buckets(0.000_05, 2.0, 20));
        BrokerMetrics {
            by_topic: Arc::default(),
            totals: TopicCounters {
                messages_in: Counter::default(),
                bytes_in: Counter::default(),
                messages_out: Counter::default(),
                bytes_out: Counter::default(),
            },
            messages_in: Family::default(),
            bytes_in: Family::default(),
            messages_out: Family::default(),
            bytes_out: Family::default(),
            send_latency: buckets(),
            pull_latency: buckets(),
            append_latency: buckets(),
            rejected: Family::default(),
            long_polls_held: Gauge::default(),
            unreadable: Counter::default(),
            transactions_ended: Family::default(),
            transaction_checks: Counter::default(),
            transactions_discarded: Counter::default(),
            duplicate_sends: Counter::default(),
            send_many_requests: Counter::default(),
            send_many_sends: Counter::default(),
        }
    }
}

impl BrokerMetrics {
    pub fn stored(&self, topic_name: &str, messages: usize, bytes: usize, append: Duration) {
        for counters in [&self.counters(topic_name), &self.totals] {
            counters.messages_in.inc_by(messages as u64);
            counters.bytes_in.inc_by(bytes as u64);
        }
        self.append_latency.observe(append.as_secs_f64());
    }

    pub fn served(&self, topic_name: &str, messages: usize, bytes: usize) {
        if messages == 0 {
            return;
        }
        for counters in [&self.counters(topic_name), &self.totals] {
            counters.messages_out.inc_by(messages as u64);
            counters.bytes_out.inc_by(bytes as u64);
        }
    }

    /// Everything counted since start, over every topic.
    pub fn totals(&self) -> Totals {
        Totals {
            messages_in: self.totals.messages_in.get(),
            bytes_in: self.totals.bytes_in.get(),
            messages_out: self.totals.messages_out.get(),
            bytes_out: self.totals.bytes_out.get(),
        }
    }

    /// Drops a deleted topic's series, as Kafka drops a deleted topic's
    /// metrics: a topic created again under the name starts from zero.
    pub fn forget_topic(&self, topic_name: &str) {
        self.by_topic.remove(topic_name);
        let labels = topic(topic_name);
        for family in [
            &self.messages_in,
            &self.bytes_in,
            &self.messages_out,
            &self.bytes_out,
        ] {
            family.remove(&labels);
        }
    }

    /// The topic's counters (they share their values with the families).
    fn counters(&self, topic_name: &str) -> TopicCounters {
        if let Some(known) = self.by_topic.get(topic_name) {
            return known.clone();
        }
        let labels = topic(topic_name);
        let counters = TopicCounters {
            messages_in: self.messages_in.get_or_create(&labels).clone(),
            bytes_in: self.bytes_in.get_or_create(&labels).clone(),
            messages_out: self.messages_out.get_or_create(&labels).clone(),
            bytes_out: self.bytes_out.get_or_create(&labels).clone(),
        };
        self.by_topic
            .insert(topic_name.to_owned(), counters.clone());
        counters
    }

    pub fn send_took(&self, took: Duration) {
        self.send_latency.observe(took.as_secs_f64());
    }

    pub fn pull_took(&self, took: Duration) {
        self.pull_latency.observe(took.as_secs_f64());
    }

    /// A request refused, by the kind of refusal.
    pub fn rejected(&self, err: &BrokerError) {
        self.rejected
            .get_or_create(&vec![("reason".into(), rejection(err).into())])
            .inc();
    }

    /// A transaction ended by its producer (`commit` or `rollback`).
    pub fn transaction_ended(&self, outcome: &str) {
        self.transactions_ended
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
    }

    /// Messages of idempotent producers' retries answered with where
    /// they were stored before, instead of being stored again.
    pub fn duplicate_sends(&self, messages: usize) {
        self.duplicate_sends.inc_by(messages as u64);
    }

    /// A `SendMany` request carrying `sends` sends.
    pub fn sent_together(&self, sends: usize) {
        self.send_many_requests.inc();
        self.send_many_sends.inc_by(sends as u64);
    }

    /// A producer asked how a transaction ended.
    pub fn transaction_checked(&self) {
        self.transaction_checks.inc();
    }

    /// A transaction discarded after its last check.
    pub fn transaction_discarded(&self) {
        self.transactions_discarded.inc();
    }

    /// Messages a pull passed over because their records are damaged.
    pub fn unreadable(&self, messages: usize) {
        self.unreadable.inc_by(messages as u64);
    }

    /// A pull starts or stops being held (long polling).
    pub fn hold(&self, held: bool) {
        if held {
            self.long_polls_held.inc();
        } else {
            self.long_polls_held.dec();
        }
    }
}

/// The registry of the broker's metrics, and the hook that reads the
/// store's sizes and the consumer lags at scrape time.
pub fn exporter(
    metrics: &BrokerMetrics,
    store: Arc<MessageStore>,
    offsets: Arc<ConsumerOffsets>,
    pull_budget: Arc<crate::service::pull_budget::PullBudget>,
    replication: crate::replication::ReplicationView,
    controller: Option<Arc<crate::replication::controlled::LinkStatus>>,
) -> mq_common::metrics_http::Exporter {
    let mut registry = Registry::with_prefix("mq_broker");
    let controller_gauges = controller.map(|status| {
        let (reachable, epoch, set_size) = (
            Gauge::<i64>::default(),
            Gauge::<i64>::default(),
            Gauge::<i64>::default(),
        );
        registry.register(
            "controller_reachable",
            "Controller mode: 1 while the controller leader answers this broker's heartbeats",
            reachable.clone(),
        );
        registry.register(
            "group_epoch",
            "Controller mode: the epoch of the group's master this broker runs under",
            epoch.clone(),
        );
        registry.register(
            "sync_state_set_size",
            "Controller mode: members of the group's SyncStateSet (master included), as last heard",
            set_size.clone(),
        );
        (status, reachable, epoch, set_size)
    });
    let m = metrics.clone();
    registry.register(
        "messages_in",
        "Messages stored for producers, by topic",
        m.messages_in,
    );
    registry.register(
        "bytes_in",
        "Body bytes stored for producers, by topic",
        m.bytes_in,
    );
    registry.register(
        "messages_out",
        "Messages handed to consumers, by topic",
        m.messages_out,
    );
    registry.register(
        "bytes_out",
        "Body bytes handed to consumers, by topic",
        m.bytes_out,
    );
    registry.register(
        "send_latency_seconds",
        "Send and batch-send requests, from arrival to answer",
        m.send_latency,
    );
    registry.register(
        "pull_latency_seconds",
        "Pull requests, from arrival to answer (long-polling holds included)",
        m.pull_latency,
    );
    registry.register(
        "store_append_seconds",
        "Store appends, including the wait for the disk in sync flush",
        m.append_latency,
    );
    registry.register(
        "rejected_requests",
        "Requests refused, by reason",
        m.rejected,
    );
    registry.register(
        "unreadable_messages",
        "Messages pulls passed over because their records are damaged on disk (CRC mismatch)",
        m.unreadable,
    );
    registry.register(
        "transactions_ended",
        "Transactions ended by their producers, by outcome (commit, rollback)",
        m.transactions_ended,
    );
    registry.register(
        "transaction_checks",
        "Producers asked how a transaction without an outcome ended",
        m.transaction_checks,
    );
    registry.register(
        "transactions_discarded",
        "Transactions discarded after their last check (kept in TRANS_CHECK_MAX_TIME_TOPIC)",
        m.transactions_discarded,
    );
    registry.register(
        "duplicate_sends_dropped",
        "Messages of idempotent producers' retries that were stored already: answered with the original offsets, not stored again",
        m.duplicate_sends,
    );
    registry.register(
        "send_many_requests",
        "SendMany requests: sends that waited while a producer's earlier requests were in flight, sent together",
        m.send_many_requests,
    );
    registry.register(
        "send_many_sends",
        "Sends that arrived in SendMany requests (divided by the requests: how many left together)",
        m.send_many_sends,
    );
    let idempotence_windows = Gauge::<i64>::default();
    registry.register(
        "idempotence_windows",
        "Idempotent producer queues whose sequences the broker remembers",
        idempotence_windows.clone(),
    );
    registry.register(
        "long_polls_held",
        "Pull requests held waiting for messages",
        m.long_polls_held,
    );

    let dispatch_lag = Gauge::<i64>::default();
    let unconfirmed = Gauge::<i64>::default();
    registry.register(
        "unconfirmed_bytes",
        "CommitLog bytes past the group's confirmed end, held back from reads (controller mode)",
        unconfirmed.clone(),
    );
    let commitlog_bytes = Gauge::<i64>::default();
    let flushes = Gauge::<i64>::default();
    let flush_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    let consumer_lag = Family::<Labels, Gauge>::default();
    let pull_in_flight = Gauge::<i64>::default();
    registry.register(
        "pull_bytes_in_flight",
        "Bytes of pull responses sent but not yet read by their clients",
        pull_in_flight.clone(),
    );
    let disk_used = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    let disk_full = Gauge::<i64>::default();
    let unexpired_deleted = Gauge::<i64>::default();
    let mlock_refused = Gauge::<i64>::default();
    registry.register(
        "store_disk_used_ratio",
        "Used fraction of the store's disk at the last housekeeping run",
        disk_used.clone(),
    );
    registry.register(
        "store_disk_full",
        "1 while appends are refused because the disk passed disk_hard_ratio",
        disk_full.clone(),
    );
    registry.register(
        "store_unexpired_bytes_deleted",
        "Unexpired CommitLog bytes deleted to make room since start (disk_full_policy = delete_oldest)",
        unexpired_deleted.clone(),
    );
    registry.register(
        "store_mlock_refused",
        "mlock calls the OS refused since start (mlock = true; raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK)",
        mlock_refused.clone(),
    );
    registry.register(
        "dispatch_lag_bytes",
        "CommitLog bytes not yet indexed",
        dispatch_lag.clone(),
    );
    registry.register(
        "commitlog_bytes",
        "CommitLog bytes stored on disk",
        commitlog_bytes.clone(),
    );
    registry.register(
        "store_flushes",
        "CommitLog flushes (msync) since start",
        flushes.clone(),
    );
    registry.register(
        "store_flush_seconds",
        "Time spent in CommitLog flushes since start",
        flush_seconds.clone(),
    );
    registry.register(
        "consumer_lag_messages",
        "Messages not yet consumed, by group and topic (committed offsets)",
        consumer_lag.clone(),
    );
    let replica_lag = Family::<Labels, Gauge>::default();
    let replica_lag_seconds = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let replication_lag_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    let catch_up_rate = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    let in_sync = Gauge::<i64>::default();
    let following = Gauge::<i64>::default();
    let replication_lag = Gauge::<i64>::default();
    let replicated = Gauge::<i64>::default();
    match &replication {
        crate::replication::ReplicationView::Master { .. } => {
            registry.register(
                "replica_lag_bytes",
                "Master: CommitLog bytes each connected replica has not acknowledged, by replica id",
                replica_lag.clone(),
            );
            registry.register(
                "replica_lag_seconds",
                "Master: how long each connected replica has gone without the whole log, by replica id",
                replica_lag_seconds.clone(),
            );
            registry.register(
                "replicas_in_sync",
                "Master: connected replicas within in_sync_lag_bytes and in_sync_lag_time",
                in_sync.clone(),
            );
        }
        crate::replication::ReplicationView::Replica { .. } => {
            registry.register(
                "replication_connected",
                "Replica: 1 while it follows its master's CommitLog",
                following.clone(),
            );
            registry.register(
                "replication_lag_bytes",
                "Replica: CommitLog bytes behind the master's end as last heard",
                replication_lag.clone(),
            );
            registry.register(
                "replication_lag_seconds",
                "Replica: how long it has gone without the master's whole log",
                replication_lag_seconds.clone(),
            );
            registry.register(
                "replication_catch_up_bytes_per_second",
                "Replica: rate of its last catch-up, from connecting to having the master's whole log",
                catch_up_rate.clone(),
            );
            registry.register(
                "replicated_bytes",
                "Replica: CommitLog bytes appended from the master since start",
                replicated.clone(),
            );
        }
    }
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    mq_common::metrics_http::Exporter {
        registry,
        before_scrape: Box::new(move || {
            match &replication {
                crate::replication::ReplicationView::Master { replicas } => {
                    let end = store.commitlog_max_offset();
                    replica_lag.clear();
                    replica_lag_seconds.clear();
                    let report = replicas.report(end);
                    for r in &report {
                        let labels = vec![("replica".into(), r.id.to_string())];
                        replica_lag.get_or_create(&labels).set(gauge(r.lag));
                        replica_lag_seconds
                            .get_or_create(&labels)
                            .set(r.lag_time.as_secs_f64());
                    }
                    in_sync.set(gauge(report.iter().filter(|r| r.in_sync).count() as u64));
                }
                crate::replication::ReplicationView::Replica { status } => {
                    use std::sync::atomic::Ordering;
                    following.set(i64::from(status.connected.load(Ordering::Acquire)));
                    let end = store.commitlog_max_offset();
                    replication_lag.set(gauge(status.lag(end)));
                    replication_lag_seconds.set(status.lag_time(end).as_secs_f64());
                    catch_up_rate.set(f64::from_bits(status.catch_up_rate.load(Ordering::Acquire)));
                    replicated.set(gauge(status.bytes.load(Ordering::Relaxed)));
                }
            }
            if let Some((status, reachable, epoch, set_size)) = &controller_gauges {
                use std::sync::atomic::Ordering;
                reachable.set(i64::from(status.reachable.load(Ordering::Relaxed)));
                epoch.set(gauge(status.epoch.load(Ordering::Relaxed)));
                set_size.set(gauge(
                    status
                        .sync_state_set
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .len() as u64,
                ));
            }
            dispatch_lag.set(i64::try_from(store.dispatch_lag()).unwrap_or(i64::MAX));
            idempotence_windows
                .set(i64::try_from(store.sequences().window_count()).unwrap_or(i64::MAX));
            let held_back = store
                .read_limit()
                .get()
                .map_or(0, |end| store.log_end().saturating_sub(end));
            unconfirmed.set(i64::try_from(held_back).unwrap_or(i64::MAX));
            let size = store.log_end().saturating_sub(store.log_start());
            commitlog_bytes.set(i64::try_from(size).unwrap_or(i64::MAX));
            let (count, took) = store.flush_totals();
            flushes.set(i64::try_from(count).unwrap_or(i64::MAX));
            flush_seconds.set(took.as_secs_f64());
            pull_in_flight.set(i64::try_from(pull_budget.in_flight()).unwrap_or(i64::MAX));
            let disk = store.disk_state();
            disk_used.set(disk.used_ratio);
            disk_full.set(i64::from(disk.refusing_appends));
            unexpired_deleted.set(i64::try_from(disk.unexpired_bytes_deleted).unwrap_or(i64::MAX));
            mlock_refused.set(i64::try_from(store.mlock_refusals()).unwrap_or(i64::MAX));
            consumer_lag.clear();
            for (group, topic_name, queue, committed) in offsets.all() {
                let end = store
                    .queue_offsets(&topic_name, queue)
                    .map_or(0, |(_, max)| max);
                let lag = i64::try_from(end.saturating_sub(committed)).unwrap_or(i64::MAX);
                consumer_lag
                    .get_or_create(&vec![("group".into(), group), ("topic".into(), topic_name)])
                    .inc_by(lag);
            }
        }),
    }
}

/// The `reason` label of a refused request.
fn rejection(err: &BrokerError) -> &'static str {
    match err {
        BrokerError::Shared(err) => rejection(err),
        BrokerError::InvalidArgument(_) => "invalid_argument",
        BrokerError::UnknownTopic(_) => "unknown_topic",
        BrokerError::UnknownGroup(_) => "unknown_group",
        BrokerError::NoMessage(_) => "no_message",
        BrokerError::NoPermission { .. } => "no_permission",
        BrokerError::ReadOnlyReplica { .. } => "read_only_replica",
        BrokerError::ReplicaNotConfirmed { .. } => "replica_not_confirmed",
        BrokerError::Busy { .. } => "busy",
        BrokerError::PullBacklog { .. } => "pull_backlog",
        BrokerError::Store(store) if store.is_disk_full() => "disk_full",
        BrokerError::Store(_) => "store_error",
        BrokerError::Topics(_) => "topic_table_error",
        BrokerError::PopBook(_) => "pop_book_error",
        BrokerError::Transaction(_) => "transaction_not_open",
        BrokerError::SendInFlight { .. } => "send_in_flight",
        BrokerError::SequenceForgotten { .. } => "sequence_forgotten",
        BrokerError::TooManyProducers { .. } => "too_many_producers",
    }
}
