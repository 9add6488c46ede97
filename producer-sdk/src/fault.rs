//! The latency-fault table: which brokers to avoid for a while.
//!
//! Every send records its latency; a slow send makes its broker
//! unavailable for a time that grows with the latency (RocketMQ 5's
//! tables by default), and a failed send isolates the broker. A probe
//! lets an isolated broker back as soon as it answers. Pure: time is
//! passed in as milliseconds, so tests are exact.

use std::collections::HashMap;
use std::sync::Mutex;

/// How latencies map to time out of rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPolicy {
    /// Latency thresholds, ms, ascending.
    pub latency_max_ms: Vec<u64>,
    /// Unavailable time for a latency at or above each threshold, ms.
    pub not_available_ms: Vec<u64>,
    /// Unavailable time after a failed send, ms.
    pub isolation_ms: u64,
}

impl Default for FaultPolicy {
    fn default() -> Self {
        FaultPolicy {
            latency_max_ms: vec![50, 100, 550, 1800, 3000, 5000, 15000],
            not_available_ms: vec![0, 0, 2000, 5000, 6000, 10000, 30000],
            isolation_ms: 10_000,
        }
    }
}

impl FaultPolicy {
    /// How long a send of `latency_ms` keeps its broker out of rotation.
    pub fn unavailable_for(&self, latency_ms: u64) -> u64 {
        self.latency_max_ms
            .iter()
            .zip(&self.not_available_ms)
            .rev()
            .find(|(max, _)| latency_ms >= **max)
            .map_or(0, |(_, duration)| *duration)
    }
}

/// What the table knows of one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultItem {
    pub broker_name: String,
    /// Address to probe while isolated.
    pub addr: String,
    pub last_latency_ms: u64,
    /// Out of rotation until this time (ms).
    pub unavailable_until_ms: u64,
    /// Isolated after a failure (as opposed to merely slow).
    pub isolated: bool,
}

impl FaultItem {
    pub fn available(&self, now_ms: u64) -> bool {
        now_ms >= self.unavailable_until_ms
    }
}

/// Brokers to avoid, by broker name.
#[derive(Debug, Default)]
pub struct FaultTable {
    policy: FaultPolicy,
    items: Mutex<HashMap<String, FaultItem>>,
}

impl FaultTable {
    pub fn new(policy: FaultPolicy) -> Self {
        FaultTable {
            policy,
            items: Mutex::new(HashMap::new()),
        }
    }

    /// Records a successful send's latency.
    pub fn record_latency(&self, broker: &str, addr: &str, latency_ms: u64, now_ms: u64) {
        let duration = self.policy.unavailable_for(latency_ms);
        self.update(broker, addr, |item| {
            item.last_latency_ms = latency_ms;
            item.unavailable_until_ms = now_ms + duration;
            item.isolated = false;
        });
    }

    /// Records a failed send: the broker is isolated.
    pub fn record_failure(&self, broker: &str, addr: &str, now_ms: u64) {
        let until = now_ms + self.policy.isolation_ms;
        self.update(broker, addr, |item| {
            item.unavailable_until_ms = item.unavailable_until_ms.max(until);
            item.isolated = true;
        });
    }

    /// Applies `change` to the broker's item, created if new.
    fn update(&self, broker: &str, addr: &str, change: impl FnOnce(&mut FaultItem)) {
        let mut items = self.lock();
        let item = items.entry(broker.to_owned()).or_insert_with(|| FaultItem {
            broker_name: broker.to_owned(),
            addr: addr.to_owned(),
            last_latency_ms: 0,
            unavailable_until_ms: 0,
            isolated: false,
        });
        item.addr = addr.to_owned();
        change(item);
    }

    /// A probe reached the broker: it is available again at once.
    pub fn recovered(&self, broker: &str) {
        if let Some(item) = self.lock().get_mut(broker) {
            item.unavailable_until_ms = 0;
            item.isolated = false;
        }
    }

    /// Whether new sends may go to `broker`, whose master the route says
    /// is at `addr`, now: a fault recorded against another address (a
    /// master that failed over since) does not count.
    pub fn is_available_at(&self, broker: &str, addr: &str, now_ms: u64) -> bool {
        self.lock()
            .get(broker)
            .is_none_or(|item| item.addr != addr || item.available(now_ms))
    }

    pub fn is_available(&self, broker: &str, now_ms: u64) -> bool {
        self.lock()
            .get(broker)
            .is_none_or(|item| item.available(now_ms))
    }

    /// Of `brokers`, the one available soonest (the least bad).
    pub fn least_bad<'a>(&self, brokers: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        let items = self.lock();
        brokers
            .into_iter()
            .min_by_key(|b| items.get(*b).map_or(0, |item| item.unavailable_until_ms))
    }

    /// Isolated brokers still out of rotation, for the probe.
    pub fn isolated(&self, now_ms: u64) -> Vec<FaultItem> {
        self.lock()
            .values()
            .filter(|item| item.isolated && !item.available(now_ms))
            .cloned()
            .collect()
    }

    /// Everything the table knows, for diagnostics.
    pub fn items(&self) -> Vec<FaultItem> {
        let mut items: Vec<_> = self.lock().values().cloned().collect();
        items.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        items
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, FaultItem>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_map_to_rocketmq_5_unavailable_times() {
        let policy = FaultPolicy::default();
        let cases = [
            (0, 0),
            (49, 0),
            (50, 0),
            (100, 0),
            (549, 0),
            (550, 2000),
            (1800, 5000),
            (2999, 5000),
            (3000, 6000),
            (5000, 10000),
            (15000, 30000),
            (99_999, 30000),
        ];
        for (latency, expected) in cases {
            assert_eq!(
                policy.unavailable_for(latency),
                expected,
                "latency {latency}"
            );
        }
    }

    #[test]
    fn a_slow_broker_is_skipped_for_a_while_then_back() {
        let table = FaultTable::new(FaultPolicy::default());
        table.record_latency("a", "10.0.0.1:1", 600, 1_000);
        assert!(!table.is_available("a", 1_000));
        assert!(!table.is_available("a", 2_999));
        assert!(table.is_available("a", 3_000));
        assert!(
            table.is_available("unknown", 0),
            "never seen means available"
        );
        assert!(table.isolated(1_000).is_empty(), "slow is not isolated");
    }

    #[test]
    fn a_failed_broker_is_isolated_until_the_time_passes_or_a_probe_answers() {
        let table = FaultTable::new(FaultPolicy {
            isolation_ms: 10_000,
            ..FaultPolicy::default()
        });
        table.record_failure("b", "10.0.0.2:1", 5_000);
        assert!(!table.is_available("b", 14_999));
        assert!(table.is_available("b", 15_000));
        assert_eq!(table.isolated(6_000)[0].addr, "10.0.0.2:1");
        table.recovered("b");
        assert!(table.is_available("b", 6_000));
        assert!(table.isolated(6_000).is_empty());
        // A fast send clears an isolation too.
        table.record_failure("b", "10.0.0.2:1", 7_000);
        table.record_latency("b", "10.0.0.2:1", 5, 8_000);
        assert!(table.is_available("b", 8_000));
    }

    #[test]
    fn a_fault_of_an_old_master_does_not_hold_back_the_new_one() {
        let table = FaultTable::new(FaultPolicy::default());
        table.record_failure("a", "10.0.0.1:10911", 1_000);
        assert!(!table.is_available_at("a", "10.0.0.1:10911", 2_000));
        assert!(
            table.is_available_at("a", "10.0.0.2:10911", 2_000),
            "the route names a new master"
        );
    }

    #[test]
    fn the_least_bad_broker_is_the_one_back_soonest() {
        let table = FaultTable::new(FaultPolicy::default());
        table.record_failure("a", "x", 1_000);
        table.record_latency("b", "y", 20_000, 1_000);
        assert_eq!(
            table.least_bad(["a", "b"]),
            Some("a"),
            "a is back at 11 s, b at 31 s"
        );
        assert_eq!(table.least_bad(["a", "c"]), Some("c"));
        assert_eq!(table.least_bad([]), None);
    }
}
