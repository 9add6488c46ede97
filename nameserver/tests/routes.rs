//! Route lifecycle against the real `nameserver` binary: registration,
//! heartbeats, expiry, unregistration, deletion, several nameservers.

mod support;

use std::time::{Duration, Instant};

use mq_proto::nameserver::v1 as pb;
use support::*;
use tonic::Code;

fn broker_names(route: &pb::QueryRouteResponse) -> Vec<&str> {
    route
        .queues
        .iter()
        .map(|q| q.broker_name.as_str())
        .collect()
}

#[tokio::test]
async fn two_brokers_then_one_expires() {
    let server = start_nameserver(&["--broker-expire", "2s", "--scan-interval", "100ms"]);
    let mut rpc = rpc(&server).await;
    let a = registration("broker-a", "10.0.0.1:10911", vec![topic("orders", 8)], 1);
    let b = registration("broker-b", "10.0.0.2:10911", vec![topic("orders", 4)], 1);
    assert!(
        !rpc.register_broker(a)
            .await
            .unwrap()
            .into_inner()
            .heartbeat_only
    );
    rpc.register_broker(b.clone()).await.unwrap();

    let route = query(&mut rpc, "orders").await.unwrap();
    assert_eq!(broker_names(&route), ["broker-a", "broker-b"]);
    assert_eq!(route.queues[0].write_queue_count, 8);
    assert_eq!(route.queues[1].read_queue_count, 4);
    let addrs: Vec<&str> = route
        .brokers
        .iter()
        .map(|b| b.addresses[&0].as_str())
        .collect();
    assert_eq!(addrs, ["10.0.0.1:10911", "10.0.0.2:10911"]);

    // broker-b keeps heartbeating; broker-a falls silent and must expire.
    let deadline = Instant::now() + Duration::from_secs(15);
    let route = loop {
        let heartbeat = rpc.register_broker(b.clone()).await.unwrap().into_inner();
        assert!(heartbeat.heartbeat_only, "same data version is a heartbeat");
        let route = query(&mut rpc, "orders").await.unwrap();
        if route.queues.len() == 1 || Instant::now() > deadline {
            break route;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        broker_names(&route),
        ["broker-b"],
        "broker-a should have expired"
    );
    assert_eq!(route.brokers.len(), 1);
    assert_eq!(route.brokers[0].addresses[&0], "10.0.0.2:10911");
    let line = server
        .wait_for_log("broker expired", Duration::from_secs(1))
        .expect("expiry is logged");
    assert!(
        line.contains("broker-a") && line.contains("10.0.0.1:10911"),
        "{line}"
    );

    let cluster = rpc
        .get_cluster_info(pb::GetClusterInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cluster.clusters.len(), 1);
    let brokers = &cluster.clusters[0].brokers;
    assert_eq!(brokers.len(), 1);
    assert_eq!(brokers[0].broker_name, "broker-b");
    assert!(brokers[0].instances[0].last_heartbeat_ms > 0);
}

#[tokio::test]
async fn unknown_topic_is_not_found_naming_it() {
    let server = start_nameserver(&[]);
    let mut rpc = rpc(&server).await;
    let status = query(&mut rpc, "missing_topic").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("missing_topic"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn topics_are_listed_and_deleted_and_unregistration_clears_routes() {
    let server = start_nameserver(&[]);
    let mut rpc = rpc(&server).await;
    let reg = registration(
        "broker-a",
        "10.0.0.1:10911",
        vec![topic("b_topic", 1), topic("a_topic", 2)],
        1,
    );
    rpc.register_broker(reg.clone()).await.unwrap();
    let topics = rpc
        .list_topics(pb::ListTopicsRequest {})
        .await
        .unwrap()
        .into_inner()
        .topics;
    assert_eq!(topics, ["a_topic", "b_topic"]);

    rpc.delete_topic(pb::DeleteTopicRequest {
        topic: "a_topic".into(),
    })
    .await
    .unwrap();
    let status = query(&mut rpc, "a_topic").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = rpc
        .delete_topic(pb::DeleteTopicRequest {
            topic: "a_topic".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("a_topic"));

    let unregister = pb::UnregisterBrokerRequest {
        cluster_name: reg.cluster_name.clone(),
        broker_name: reg.broker_name.clone(),
        broker_id: 0,
        broker_addr: reg.broker_addr.clone(),
    };
    assert!(
        rpc.unregister_broker(unregister.clone())
            .await
            .unwrap()
            .into_inner()
            .removed
    );
    assert!(
        !rpc.unregister_broker(unregister)
            .await
            .unwrap()
            .into_inner()
            .removed
    );
    assert!(
        rpc.list_topics(pb::ListTopicsRequest {})
            .await
            .unwrap()
            .into_inner()
            .topics
            .is_empty()
    );
    let cluster = rpc
        .get_cluster_info(pb::GetClusterInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(cluster.clusters.is_empty());
}

#[tokio::test]
async fn brokers_register_with_every_nameserver_and_clients_skip_dead_ones() {
    let first = start_nameserver(&[]);
    let second = start_nameserver(&[]);
    let both = [first.addr.to_string(), second.addr.to_string()];
    let broker_side = client_of(&both);
    let results = broker_side
        .register_broker(registration(
            "broker-a",
            "10.0.0.1:10911",
            vec![topic("orders", 4)],
            1,
        ))
        .await;
    assert_eq!(results.len(), 2);
    for (addr, result) in &results {
        assert!(result.is_ok(), "{addr}: {result:?}");
    }

    // Nothing is shared: each nameserver answers on its own.
    for server in [&first, &second] {
        let route = client_of(&[server.addr.to_string()])
            .query_route("orders")
            .await
            .unwrap();
        assert_eq!(route.brokers[0].addresses[&0], "10.0.0.1:10911");
    }

    // A client whose first nameserver is down is served by the next one.
    let mut dead = start_nameserver(&[]);
    let dead_addr = dead.addr.to_string();
    dead.kill();
    let client = client_of(&[dead_addr.clone(), second.addr.to_string()]);
    let route = client.query_route("orders").await.unwrap();
    assert_eq!(route.topic, "orders");
    // A refusal from a live nameserver is final, not a reason to try on.
    let err = client.query_route("unknown").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");

    // A hung nameserver (stopped: its socket still accepts, nothing
    // answers) first in the list: the next one is asked after a short
    // silence, not after the 5 s request timeout.
    let hung = start_nameserver(&[]);
    let pid = libc::pid_t::try_from(hung.pid()).unwrap();
    // SAFETY: kill(2) with a pid we own and valid signal numbers.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let client = client_of(&[hung.addr.to_string(), second.addr.to_string()]);
    let started = std::time::Instant::now();
    let route = client.query_route("orders").await;
    let took = started.elapsed();
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(route.unwrap().topic, "orders");
    assert!(
        took < std::time::Duration::from_secs(2),
        "a hung first nameserver cost {took:?}"
    );

    // With every nameserver down the error says which were tried.
    let nobody = client_of(std::slice::from_ref(&dead_addr));
    let err = nobody.query_route("orders").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.to_string().contains(&dead_addr), "{err}");
}
