//! Choosing the queue of a send: round-robin over the writable queues,
//! skipping brokers the fault table marks unavailable and, on a retry, the
//! broker that just failed; when every broker is out, the least bad one.

use crate::fault::FaultTable;
use crate::route::{MessageQueue, PublishRoute};

/// The queue for the next send to `route`, or `None` if it has no queue.
pub fn select<'r>(
    route: &'r PublishRoute,
    faults: Option<&FaultTable>,
    avoid_broker: Option<&str>,
    now_ms: u64,
) -> Option<&'r MessageQueue> {
    let count = route.queues.len();
    if count == 0 {
        return None;
    }
    let start = route.next_position();
    let candidates = (0..count).map(|i| &route.queues[(start + i) % count]);
    let Some(faults) = faults else {
        return candidates
            .clone()
            .find(|q| Some(q.broker_name.as_str()) != avoid_broker)
            .or_else(|| candidates.clone().next());
    };
    if let Some(queue) = candidates.clone().find(|q| {
        Some(q.broker_name.as_str()) != avoid_broker
            && route
                .brokers
                .get(&q.broker_name)
                .is_none_or(|addr| faults.is_available_at(&q.broker_name, addr, now_ms))
    }) {
        return Some(queue);
    }
    // Everyone is out: the least bad broker, preferring not the one that failed.
    let others: Vec<&str> = route
        .brokers
        .keys()
        .map(String::as_str)
        .filter(|b| Some(*b) != avoid_broker)
        .collect();
    let pick = faults.least_bad(others).or(avoid_broker)?;
    candidates.clone().find(|q| q.broker_name == pick)
}

/// The queue for an ordered send: the same sharding key always maps to
/// the same queue while the route stays the same (faults are ignored: a
/// different queue would break the order).
pub fn select_by_key<'r>(route: &'r PublishRoute, sharding_key: &str) -> Option<&'r MessageQueue> {
    if route.queues.is_empty() {
        return None;
    }
    let index = mq_hash(sharding_key) % route.queues.len() as u64;
    route.queues.get(index as usize)
}

/// A stable hash of a sharding key (FNV-1a 64): the same in every producer
/// process and version.
fn mq_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use mq_proto::nameserver::v1 as pb;

    use super::*;
    use crate::fault::FaultPolicy;

    fn route(brokers: &[(&str, u32)]) -> PublishRoute {
        PublishRoute::from_route(&pb::QueryRouteResponse {
            topic: "t".into(),
            queues: brokers
                .iter()
                .map(|(name, queues)| pb::QueueData {
                    broker_name: name.to_string(),
                    read_queue_count: *queues,
                    write_queue_count: *queues,
                    perm: 6,
                    message_type: String::new(),
                })
                .collect(),
            brokers: brokers
                .iter()
                .map(|(name, _)| pb::BrokerData {
                    cluster_name: "c".into(),
                    broker_name: name.to_string(),
                    addresses: [(0, format!("{name}:1"))].into(),
                    proxy_addresses: Default::default(),
                })
                .collect(),
        })
    }

    #[test]
    fn round_robin_visits_every_queue_evenly() {
        let route = route(&[("a", 2), ("b", 2)]);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..400 {
            let q = select(&route, None, None, 0).unwrap();
            *counts
                .entry((q.broker_name.clone(), q.queue_id))
                .or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 4);
        assert!(counts.values().all(|&c| c == 100), "{counts:?}");
    }

    #[test]
    fn unavailable_brokers_are_skipped_and_come_back() {
        let route = route(&[("a", 2), ("b", 2)]);
        let faults = FaultTable::new(FaultPolicy::default());
        faults.record_failure("b", "b:1", 1_000);
        for _ in 0..50 {
            assert_eq!(
                select(&route, Some(&faults), None, 2_000)
                    .unwrap()
                    .broker_name,
                "a"
            );
        }
        let later: Vec<_> = (0..50)
            .map(|_| {
                select(&route, Some(&faults), None, 11_000)
                    .unwrap()
                    .broker_name
                    .clone()
            })
            .collect();
        assert!(
            later.contains(&"b".to_string()),
            "b is back after its isolation"
        );
    }

    #[test]
    fn a_retry_avoids_the_broker_that_failed_and_all_out_picks_the_least_bad() {
        let route = route(&[("a", 1), ("b", 1)]);
        let faults = FaultTable::new(FaultPolicy::default());
        for _ in 0..20 {
            assert_eq!(
                select(&route, Some(&faults), Some("a"), 0)
                    .unwrap()
                    .broker_name,
                "b"
            );
        }
        faults.record_failure("a", "a:1", 0);
        faults.record_latency("b", "b:1", 20_000, 0);
        for _ in 0..20 {
            assert_eq!(
                select(&route, Some(&faults), None, 1).unwrap().broker_name,
                "a",
                "a is back first"
            );
        }
        let empty = route_with_no_queues();
        assert!(select(&empty, Some(&faults), None, 0).is_none());
    }

    fn route_with_no_queues() -> PublishRoute {
        route(&[])
    }

    #[test]
    fn ordered_sends_map_a_key_to_one_queue() {
        let route = route(&[("a", 4), ("b", 4)]);
        let first = select_by_key(&route, "order-42").unwrap().clone();
        for _ in 0..10 {
            assert_eq!(select_by_key(&route, "order-42").unwrap(), &first);
        }
        let spread: std::collections::HashSet<_> = (0..100)
            .map(|i| select_by_key(&route, &format!("k{i}")).unwrap().clone())
            .collect();
        assert!(spread.len() > 4, "keys spread over queues");
    }

    #[test]
    fn read_only_queues_and_brokers_without_master_are_not_written() {
        let mut response = pb::QueryRouteResponse {
            topic: "t".into(),
            queues: vec![
                pb::QueueData {
                    broker_name: "ro".into(),
                    read_queue_count: 2,
                    write_queue_count: 2,
                    perm: 4,
                    message_type: String::new(),
                },
                pb::QueueData {
                    broker_name: "replica-only".into(),
                    read_queue_count: 2,
                    write_queue_count: 2,
                    perm: 6,
                    message_type: String::new(),
                },
                pb::QueueData {
                    broker_name: "ok".into(),
                    read_queue_count: 2,
                    write_queue_count: 3,
                    perm: 6,
                    message_type: String::new(),
                },
            ],
            brokers: vec![],
        };
        for (name, id) in [("ro", 0), ("replica-only", 1), ("ok", 0)] {
            response.brokers.push(pb::BrokerData {
                cluster_name: "c".into(),
                broker_name: name.into(),
                addresses: [(id, format!("{name}:1"))].into(),
                proxy_addresses: Default::default(),
            });
        }
        let route = PublishRoute::from_route(&response);
        assert_eq!(route.queues.len(), 3);
        assert!(route.queues.iter().all(|q| q.broker_name == "ok"));
    }
}
