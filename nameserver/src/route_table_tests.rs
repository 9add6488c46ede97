use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mq_common::Perm;

use super::*;

const EXPIRE_MS: u64 = 120_000;

fn instance(cluster: &str, name: &str, id: u64, addr: &str) -> BrokerInstance {
    BrokerInstance {
        cluster: cluster.into(),
        broker_name: name.into(),
        broker_id: id,
        addr: addr.into(),
        proxy_addr: None,
    }
}

fn queues(read: u32, write: u32) -> QueueConfig {
    QueueConfig {
        read_queue_count: read,
        write_queue_count: write,
        perm: Perm::READ_WRITE,
        message_type: Default::default(),
    }
}

fn registration(instance: BrokerInstance, topics: &[(&str, u32)], version: u64) -> Registration {
    Registration {
        instance,
        topics: topics
            .iter()
            .map(|(t, n)| (t.to_string(), queues(*n, *n)))
            .collect::<BTreeMap<_, _>>(),
        data_version: DataVersion {
            timestamp_ms: 1,
            counter: version,
        },
        master_epoch: 0,
    }
}

fn broker_a() -> BrokerInstance {
    instance("DefaultCluster", "broker-a", 0, "10.0.0.1:10911")
}

fn broker_b() -> BrokerInstance {
    instance("DefaultCluster", "broker-b", 0, "10.0.0.2:10911")
}

#[test]
fn registered_topic_has_a_route_with_queues_and_addresses() {
    let table = RouteTable::new();
    let outcome = table
        .register(registration(broker_a(), &[("orders", 8)], 1), 1_000)
        .unwrap();
    assert!(!outcome.heartbeat_only);
    assert_eq!(outcome.master_addr.as_deref(), Some("10.0.0.1:10911"));

    let route = table.query_route("orders").unwrap();
    assert_eq!(route.queues.len(), 1);
    assert_eq!(route.queues["broker-a"], queues(8, 8));
    assert_eq!(route.brokers.len(), 1);
    assert_eq!(route.brokers[0].cluster, "DefaultCluster");
    assert_eq!(route.brokers[0].addrs[&0], "10.0.0.1:10911");
}

#[test]
fn a_brokers_proxy_address_and_topic_types_are_routed_and_leave_with_it() {
    let table = RouteTable::new();
    let mut with_proxy = broker_a();
    with_proxy.proxy_addr = Some("10.0.0.1:8081".into());
    let mut reg = registration(with_proxy.clone(), &[("orders", 2)], 1);
    reg.topics.get_mut("orders").unwrap().message_type = mq_common::MessageType::Fifo;
    table.register(reg, 0).unwrap();
    let route = table.query_route("orders").unwrap();
    assert_eq!(route.brokers[0].proxy_addrs[&0], "10.0.0.1:8081");
    assert_eq!(
        route.queues["broker-a"].message_type,
        mq_common::MessageType::Fifo
    );

    // A restart without a proxy takes the address out of the routes.
    table
        .register(registration(broker_a(), &[("orders", 2)], 2), 1)
        .unwrap();
    let route = table.query_route("orders").unwrap();
    assert!(route.brokers[0].proxy_addrs.is_empty());

    // An unregistration names the instance without its proxy address.
    table
        .register(registration(with_proxy, &[("orders", 2)], 3), 2)
        .unwrap();
    assert!(table.unregister(&broker_a()));
    assert!(table.query_route("orders").is_err());
}

#[test]
fn two_brokers_serving_one_topic_both_appear() {
    let table = RouteTable::new();
    table
        .register(registration(broker_a(), &[("orders", 4)], 1), 0)
        .unwrap();
    table
        .register(registration(broker_b(), &[("orders", 2)], 1), 0)
        .unwrap();
    let route = table.query_route("orders").unwrap();
    let names: Vec<&str> = route.queues.keys().map(String::as_str).collect();
    assert_eq!(names, ["broker-a", "broker-b"]);
    assert_eq!(route.queues["broker-b"].write_queue_count, 2);
    assert_eq!(route.brokers.len(), 2);
}

#[test]
fn unknown_topic_is_an_error_naming_it() {
    let table = RouteTable::new();
    let err = table.query_route("nope").unwrap_err();
    assert_eq!(err, RouteError::UnknownTopic("nope".into()));
    assert!(err.to_string().contains("\"nope\""));
}

#[test]
fn unchanged_data_version_is_a_heartbeat_that_refreshes_liveness() {
    let table = RouteTable::new();
    table
        .register(registration(broker_a(), &[("orders", 4)], 1), 1_000)
        .unwrap();
    let again = table
        .register(registration(broker_a(), &[("orders", 4)], 1), 50_000)
        .unwrap();
    assert!(again.heartbeat_only);
    assert_eq!(table.live_instances()[0].last_heartbeat_ms, 50_000);

    // Without the heartbeat at 50 s this would expire at 121 s.
    assert!(table.expire(121_001, EXPIRE_MS).is_empty());
    assert!(table.query_route("orders").is_ok());
}

#[test]
fn heartbeat_does_not_apply_topic_changes_but_a_new_version_does() {
    let table = RouteTable::new();
    table
        .register(registration(broker_a(), &[("orders", 4)], 1), 0)
        .unwrap();
    // Same version: the nameserver trusts it is the same content.
    table
        .register(
            registration(broker_a(), &[("orders", 4), ("payments", 4)], 1),
            1,
        )
        .unwrap();
    assert!(table.query_route("payments").is_err());

    let full = table
        .register(registration(broker_a(), &[("payments", 2)], 2), 2)
        .unwrap();
    assert!(!full.heartbeat_only);
    assert_eq!(
        table.query_route("payments").unwrap().queues["broker-a"].read_queue_count,
        2
    );
    // A topic the master stopped reporting leaves its route.
    assert!(table.query_route("orders").is_err());
}

#[test]
fn silent_broker_expires_from_every_route() {
    let table = RouteTable::new();
    table
        .register(
            registration(broker_a(), &[("orders", 4), ("solo", 1)], 1),
            0,
        )
        .unwrap();
    table
        .register(registration(broker_b(), &[("orders", 4)], 1), 60_000)
        .unwrap();

    assert!(
        table.expire(EXPIRE_MS, EXPIRE_MS).is_empty(),
        "exactly at the bound is still alive"
    );
    let expired = table.expire(EXPIRE_MS + 1, EXPIRE_MS);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].instance, broker_a());
    assert_eq!(expired[0].silent_for_ms, EXPIRE_MS + 1);

    let route = table.query_route("orders").unwrap();
    assert_eq!(route.queues.keys().collect::<Vec<_>>(), ["broker-b"]);
    assert_eq!(route.brokers.len(), 1);
    assert!(
        table.query_route("solo").is_err(),
        "a topic with no broker left is gone"
    );
    assert_eq!(table.list_topics(), ["orders"]);
    assert_eq!(table.live_instances().len(), 1);
}

#[test]
fn replica_keeps_queues_readable_when_master_goes_and_never_changes_topics() {
    let table = RouteTable::new();
    let replica = instance("DefaultCluster", "broker-a", 1, "10.0.0.9:10911");
    table
        .register(registration(broker_a(), &[("orders", 4)], 1), 0)
        .unwrap();
    // A replica's topic list does not touch routes.
    let outcome = table
        .register(registration(replica.clone(), &[("ignored", 4)], 1), 0)
        .unwrap();
    assert_eq!(outcome.master_addr.as_deref(), Some("10.0.0.1:10911"));
    assert!(table.query_route("ignored").is_err());

    assert!(table.unregister(&broker_a()));
    let route = table.query_route("orders").unwrap();
    assert_eq!(route.brokers[0].addrs.len(), 1);
    assert_eq!(route.brokers[0].addrs[&1], "10.0.0.9:10911");

    assert!(table.unregister(&replica));
    assert!(table.query_route("orders").is_err());
}

#[test]
fn unregister_of_an_unknown_instance_changes_nothing() {
    let table = RouteTable::new();
    table
        .register(registration(broker_a(), &[("orders", 4)], 1), 0)
        .unwrap();
    let mut wrong_id = broker_a();
    wrong_id.broker_id = 3;
    assert!(!table.unregister(&wrong_id));
    assert!(!table.unregister(&broker_b()));
    assert!(table.query_route("orders").is_ok());
}

#[test]
fn delete_topic_removes_it_from_routes_only() {
    let table = RouteTable::new();
    table
        .register(
            registration(broker_a(), &[("orders", 4), ("keep", 1)], 1),
            0,
        )
        .unwrap();
    table.delete_topic("orders").unwrap();
    assert!(table.query_route("orders").is_err());
    assert_eq!(table.list_topics(), ["keep"]);
    assert_eq!(table.live_instances().len(), 1);
    assert_eq!(
        table.delete_topic("orders"),
        Err(RouteError::UnknownTopic("orders".into()))
    );
}

#[test]
fn broker_name_taken_by_another_cluster_is_refused_without_change() {
    let table = RouteTable::new();
    table
        .register(registration(broker_a(), &[("orders", 4)], 1), 0)
        .unwrap();
    let intruder = instance("OtherCluster", "broker-a", 1, "10.0.0.5:10911");
    let err = table
        .register(registration(intruder, &[("other", 1)], 1), 0)
        .unwrap_err();
    assert!(matches!(err, RouteError::ClusterConflict { .. }), "{err}");
    assert_eq!(table.live_instances().len(), 1);
    assert_eq!(
        table.query_route("orders").unwrap().brokers[0].cluster,
        "DefaultCluster"
    );
}

#[test]
fn a_second_broker_in_a_live_slot_is_refused_until_the_first_expires() {
    let table = RouteTable::new();
    table
        .register(registration(broker_a(), &[("orders", 4)], 1), 0)
        .unwrap();
    // A second master of broker-a elsewhere would fork the group.
    let second = instance("DefaultCluster", "broker-a", 0, "10.0.0.7:10911");
    let err = table
        .register(registration(second.clone(), &[("orders", 4)], 1), 10)
        .unwrap_err();
    assert!(
        matches!(err, RouteError::SlotTaken { broker_id: 0, .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("broker-a") && message.contains(&broker_a().addr),
        "{message}"
    );
    let route = table.query_route("orders").unwrap();
    assert_eq!(route.brokers[0].addrs[&0], broker_a().addr);
    // A replica slot of the same group is another slot.
    let replica = instance("DefaultCluster", "broker-a", 1, "10.0.0.8:10911");
    table.register(registration(replica, &[], 1), 10).unwrap();

    // Once the first is gone (an instance that moved address), the slot is free.
    table.expire(1000, 500);
    table
        .register(registration(second, &[("orders", 4)], 1), 1000)
        .unwrap();
    let route = table.query_route("orders").unwrap();
    assert_eq!(route.brokers[0].addrs[&0], "10.0.0.7:10911");
}

#[test]
fn a_master_elected_in_a_later_epoch_takes_the_slot_of_a_live_deposed_one() {
    let table = RouteTable::new();
    let elected = |instance, epoch| Registration {
        master_epoch: epoch,
        ..registration(instance, &[("orders", 4)], 1)
    };
    table.register(elected(broker_a(), 3), 0).unwrap();
    let new_master = instance("DefaultCluster", "broker-a", 0, "10.0.0.7:10911");
    // An older epoch (a stale master re-registering) is refused...
    let err = table
        .register(elected(new_master.clone(), 2), 10)
        .unwrap_err();
    assert!(matches!(err, RouteError::SlotTaken { .. }), "{err}");
    // ...a later one deposes the live master at once.
    table.register(elected(new_master, 4), 10).unwrap();
    let route = table.query_route("orders").unwrap();
    assert_eq!(route.brokers[0].addrs[&0], "10.0.0.7:10911");
    assert_eq!(table.live_instances().len(), 1, "the deposed one is gone");
    // The deposed master cannot take the slot back in its old epoch.
    assert!(table.register(elected(broker_a(), 3), 20).is_err());
}

#[test]
fn cluster_view_lists_every_live_instance_sorted() {
    let table = RouteTable::new();
    table.register(registration(broker_b(), &[], 1), 5).unwrap();
    table.register(registration(broker_a(), &[], 1), 7).unwrap();
    table
        .register(
            registration(instance("C0", "broker-z", 0, "10.0.0.3:1"), &[], 1),
            9,
        )
        .unwrap();
    let live = table.live_instances();
    let names: Vec<_> = live
        .iter()
        .map(|l| l.instance.broker_name.as_str())
        .collect();
    assert_eq!(names, ["broker-z", "broker-a", "broker-b"]);
    assert_eq!(live[1].last_heartbeat_ms, 7);
}

#[test]
fn readers_see_whole_snapshots_while_writers_churn() {
    let table = Arc::new(RouteTable::new());
    table
        .register(registration(broker_a(), &[("orders", 4)], 1), 0)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (table, stop) = (Arc::clone(&table), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) || reads < 1_000 {
                    let route = table
                        .query_route("orders")
                        .expect("broker-a always serves orders");
                    // Every broker named by a queue has its broker data: no torn view.
                    assert_eq!(route.queues.len(), route.brokers.len(), "{route:?}");
                    for broker in &route.brokers {
                        assert!(route.queues.contains_key(&broker.broker_name));
                        assert!(!broker.addrs.is_empty());
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    let writers: Vec<_> = (0..2)
        .map(|w| {
            let table = Arc::clone(&table);
            std::thread::spawn(move || {
                for round in 0..500u64 {
                    let me = instance("C", &format!("broker-w{w}"), 0, &format!("10.1.0.{w}:1"));
                    table
                        .register(
                            registration(me.clone(), &[("orders", 2), ("extra", 1)], round),
                            round,
                        )
                        .unwrap();
                    if round % 3 == 0 {
                        assert!(table.unregister(&me));
                    }
                }
            })
        })
        .collect();

    for writer in writers {
        writer.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() >= 1_000);
    }
    // Round 499 is not a multiple of 3: both writers ended registered.
    assert_eq!(table.query_route("orders").unwrap().brokers.len(), 3);
}
