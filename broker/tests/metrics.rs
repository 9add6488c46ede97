//! `/metrics` of a real broker and a real nameserver after a known
//! workload: the counters equal what was done, and the output parses as
//! Prometheus text; `/healthz` answers.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_test_support::{ServerProcess, http_get as get, parse_addr, workspace_binary};
use prometheus_parse::{Scrape, Value};

const BROKER: &str = env!("CARGO_BIN_EXE_broker");

fn metrics_addr(server: &ServerProcess) -> SocketAddr {
    let line = server
        .wait_for_log("metrics endpoint ready", Duration::from_secs(10))
        .unwrap();
    parse_addr(&line).unwrap()
}

/// Scrapes and parses; the value of `name` with `labels`.
fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no {name}{labels:?}"));
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{name} is {other:?}"),
    }
}

#[tokio::test]
async fn broker_metrics_count_a_known_workload() {
    let dir = tempfile::tempdir().unwrap();
    let broker = ServerProcess::start_until(
        BROKER,
        &[
            "--standalone",
            "--store-dir",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--namesrv-listen",
            "127.0.0.1:0",
        ],
        &[],
        "broker listening",
    );
    let metrics = metrics_addr(&broker);
    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();
    mq_test_support::cluster::create_topic(&broker.url(), "m", 1).await;

    // 7 messages of 5 bytes, one refused, 7 read, 3 committed by group g.
    for _ in 0..7 {
        rpc.send_message(pb::SendMessageRequest {
            message: Some(pb::Message {
                topic: "m".into(),
                body: "abcde".into(),
                ..pb::Message::default()
            }),
            queue_id: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let refused = rpc
        .send_message(pb::SendMessageRequest {
            message: Some(pb::Message {
                topic: "m".into(),
                ..pb::Message::default()
            }),
            queue_id: 0,
            ..Default::default()
        })
        .await;
    assert!(refused.is_err(), "an empty body is refused");
    let mut read = 0;
    while read < 7 {
        read += rpc
            .pull_message(pb::PullMessageRequest {
                group: "g".into(),
                topic: "m".into(),
                queue_id: 0,
                offset: read as u64,
                max_messages: 32,
                max_bytes: 0,
                tag_expression: "*".into(),
                suspend_timeout_ms: 1000,
                sql_expression: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .messages
            .len();
    }
    rpc.commit_offset(pb::CommitOffsetRequest {
        group: "g".into(),
        topic: "m".into(),
        queue_id: 0,
        offset: 3,
        offset_reset_version: 0,
    })
    .await
    .unwrap();

    let scrape = scrape(metrics);
    let topic = [("topic", "m")];
    assert_eq!(value(&scrape, "mq_broker_messages_in_total", &topic), 7.0);
    assert_eq!(value(&scrape, "mq_broker_bytes_in_total", &topic), 35.0);
    assert_eq!(value(&scrape, "mq_broker_messages_out_total", &topic), 7.0);
    assert_eq!(value(&scrape, "mq_broker_bytes_out_total", &topic), 35.0);
    assert_eq!(
        value(
            &scrape,
            "mq_broker_rejected_requests_total",
            &[("reason", "invalid_argument")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "mq_broker_consumer_lag_messages",
            &[("group", "g"), ("topic", "m")]
        ),
        4.0
    );
    assert_eq!(value(&scrape, "mq_broker_long_polls_held", &[]), 0.0);
    assert_eq!(value(&scrape, "mq_broker_store_disk_full", &[]), 0.0);
    assert_eq!(
        value(&scrape, "mq_broker_store_unexpired_bytes_deleted", &[]),
        0.0
    );
    assert_eq!(value(&scrape, "mq_broker_store_mlock_refused", &[]), 0.0);
    let used = value(&scrape, "mq_broker_store_disk_used_ratio", &[]);
    assert!(used > 0.0 && used < 1.0, "{used}");
    assert!(value(&scrape, "mq_broker_commitlog_bytes", &[]) > 35.0);
    let histogram = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| s.value.clone())
    };
    match histogram("mq_broker_send_latency_seconds") {
        Some(Value::Histogram(buckets)) => {
            assert_eq!(buckets.last().unwrap().count, 7.0, "7 sends answered")
        }
        other => panic!("send latency is {other:?}"),
    }
    assert!(matches!(
        histogram("mq_broker_store_append_seconds"),
        Some(Value::Histogram(_))
    ));

    let (status, body) = get(metrics, "/healthz");
    assert!(
        status.contains("200") && body.trim() == "ok",
        "{status} {body}"
    );
    let (status, _) = get(metrics, "/nope");
    assert!(status.contains("404"), "{status}");

    // A deleted topic's series go with it.
    rpc.delete_topic(pb::DeleteTopicRequest { topic: "m".into() })
        .await
        .unwrap();
    let after = self::scrape(metrics);
    let of_m: Vec<&str> = after
        .samples
        .iter()
        .filter(|s| s.labels.get("topic") == Some("m") && !s.metric.contains("consumer_lag"))
        .map(|s| s.metric.as_str())
        .collect();
    assert!(of_m.is_empty(), "still there after the delete: {of_m:?}");
}

#[tokio::test]
async fn nameserver_metrics_count_registrations_and_queries() {
    let nameserver =
        ServerProcess::start(workspace_binary("nameserver"), &["--listen", "127.0.0.1:0"]);
    let metrics = metrics_addr(&nameserver);
    let dir = tempfile::tempdir().unwrap();
    let _broker = ServerProcess::start_until(
        BROKER,
        &[
            "--namesrv",
            &nameserver.addr.to_string(),
            "--store-dir",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
        "broker listening",
    );
    let client =
        mq_nameserver_client::NameServerClient::from_list(&nameserver.addr.to_string()).unwrap();
    assert!(client.query_route("nowhere").await.is_err());

    let scrape = scrape(metrics);
    assert_eq!(value(&scrape, "mq_namesrv_registrations_total", &[]), 1.0);
    assert_eq!(value(&scrape, "mq_namesrv_live_brokers", &[]), 1.0);
    assert_eq!(
        value(
            &scrape,
            "mq_namesrv_route_queries_total",
            &[("result", "not_found")]
        ),
        1.0
    );
    assert_eq!(value(&scrape, "mq_namesrv_expiries_total", &[]), 0.0);
}

#[tokio::test]
async fn a_damaged_record_on_a_live_broker_is_reported_to_the_consumer_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _) = mq_test_support::standalone_broker(dir.path());
    let metrics = metrics_addr(&broker);
    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();
    mq_test_support::cluster::create_topic(&broker.url(), "rot", 1).await;
    let mut physical = Vec::new();
    for i in 0..3 {
        let sent = rpc
            .send_message(pb::SendMessageRequest {
                message: Some(pb::Message {
                    topic: "rot".into(),
                    body: format!("body-{i}-{}", "x".repeat(100)).into(),
                    ..pb::Message::default()
                }),
                queue_id: 0,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .result
            .unwrap();
        let (_, offset) = mq_common::offset_id::decode("id", &sent.offset_message_id).unwrap();
        physical.push(offset);
    }
    // Answered once the dispatcher indexed every acknowledged message.
    let offsets = rpc
        .get_queue_offsets(pb::GetQueueOffsetsRequest {
            topic: "rot".into(),
            queue_id: 0,
            timestamp_ms: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(offsets.max_offset, 3);
    // Bit rot under the running broker: the file shares its pages with
    // the broker's mapping.
    {
        use std::os::unix::fs::FileExt;
        let segment = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.path().join("commitlog").join(format!("{:020}", 0)))
            .unwrap();
        let at = physical[1] + 120;
        let mut byte = [0u8];
        segment.read_exact_at(&mut byte, at).unwrap();
        segment.write_all_at(&[byte[0] ^ 0xFF], at).unwrap();
    }
    let pulled = rpc
        .pull_message(pb::PullMessageRequest {
            group: "g".into(),
            topic: "rot".into(),
            queue_id: 0,
            offset: 0,
            max_messages: 32,
            ..pb::PullMessageRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let offsets: Vec<u64> = pulled.messages.iter().map(|m| m.queue_offset).collect();
    assert_eq!(offsets, [0, 2]);
    assert_eq!(pulled.unreadable_offsets, [1]);
    assert_eq!(pulled.next_offset, 3);
    assert_eq!(
        value(&scrape(metrics), "mq_broker_unreadable_messages_total", &[]),
        1.0
    );
}
