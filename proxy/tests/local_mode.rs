//! RocketMQ 5's protocol served by the proxy inside a real broker (local
//! mode), spoken with the protocol's own stubs as the official clients
//! speak it, and the messages read back with our consumer SDK.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mq_consumer::{ConsumeFrom, PullConsumer, ReceivedMessage};
use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use support::*;

async fn read(namesrv: &str, topic: &str, count: usize) -> Vec<ReceivedMessage> {
    let consumer = PullConsumer::builder()
        .namesrv(namesrv)
        .group(format!("reader-{topic}"))
        .subscribe(topic, "*")
        .consume_from(ConsumeFrom::FirstOffset)
        .suspend(Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut messages = Vec::new();
    while messages.len() < count && Instant::now() < deadline {
        messages.extend(consumer.poll(Duration::from_millis(500)).await);
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_settings_and_sends_of_every_type_reach_our_consumers() {
    let cluster = Cluster::start(&[]);
    create_topic(&cluster, "plain", 2, "").await;
    create_topic(&cluster, "ordered", 4, "FIFO").await;
    create_topic(&cluster, "later", 1, "DELAY").await;
    let mut rpc = client(&cluster).await;

    // The route names the proxy, every queue and the topic's type.
    let route = rpc
        .query_route(request(v2::QueryRouteRequest {
            topic: resource("ordered"),
            endpoints: access_point(&cluster),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&route.status), Code::Ok, "{route:?}");
    assert_eq!(route.message_queues.len(), 4);
    for queue in &route.message_queues {
        assert_eq!(queue.accept_message_types, [v2::MessageType::Fifo as i32]);
        assert_eq!(queue.permission, v2::Permission::ReadWrite as i32);
        let endpoints = queue.broker.as_ref().unwrap().endpoints.as_ref().unwrap();
        let address = &endpoints.addresses[0];
        assert_eq!(format!("{}:{}", address.host, address.port), cluster.proxy);
    }

    // The settings handshake: the client's settings in, the server's out.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(v2::TelemetryCommand {
        status: None,
        command: Some(v2::telemetry_command::Command::Settings(v2::Settings {
            client_type: Some(v2::ClientType::Producer as i32),
            pub_sub: Some(v2::settings::PubSub::Publishing(v2::Publishing {
                topics: vec![resource("plain").unwrap()],
                ..Default::default()
            })),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut telemetry = rpc
        .telemetry(request(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .await
        .unwrap()
        .into_inner();
    let answer = telemetry.message().await.unwrap().unwrap();
    assert_eq!(code(&answer.status), Code::Ok);
    let Some(v2::telemetry_command::Command::Settings(settings)) = answer.command else {
        panic!("settings expected: {answer:?}");
    };
    let Some(v2::settings::PubSub::Publishing(publishing)) = settings.pub_sub else {
        panic!("publishing settings expected");
    };
    assert_eq!(publishing.max_body_size, 4 << 20);

    // A normal message, every field mapped.
    let sent = send(
        &mut rpc,
        vec![message("plain", "hello", v2::MessageType::Normal)],
    )
    .await;
    assert_eq!(code(&sent.status), Code::Ok, "{sent:?}");
    let message_id = sent.entries[0].message_id.clone();
    let got = read(&cluster.namesrv, "plain", 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].unique_id, message_id);
    assert_eq!(&got[0].body[..], b"hello");
    assert_eq!(got[0].tags.as_deref(), Some("TagA"));
    assert_eq!(got[0].keys.len(), 1);
    assert_eq!(
        got[0].properties.get("color").map(String::as_str),
        Some("red")
    );
    assert!(got[0].born_timestamp_ms > 0);

    // FIFO: one message group, one queue, in order.
    for i in 0..10 {
        let mut fifo = message("ordered", &format!("f-{i}"), v2::MessageType::Fifo);
        fifo.system_properties.as_mut().unwrap().message_group = Some("order-42".into());
        let sent = send(&mut rpc, vec![fifo]).await;
        assert_eq!(code(&sent.status), Code::Ok, "{sent:?}");
    }
    let got = read(&cluster.namesrv, "ordered", 10).await;
    let bodies: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect();
    let expected: Vec<String> = (0..10).map(|i| format!("f-{i}")).collect();
    assert_eq!(bodies, expected);
    assert!(
        got.iter()
            .all(|m| m.queue.queue_id == got[0].queue.queue_id)
    );

    // DELAY: not delivered before its time.
    let deliver_at = SystemTime::now() + Duration::from_millis(1500);
    let since = deliver_at.duration_since(UNIX_EPOCH).unwrap();
    let mut delayed = message("later", "tick", v2::MessageType::Delay);
    delayed
        .system_properties
        .as_mut()
        .unwrap()
        .delivery_timestamp = Some(prost_types::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    });
    let sent = send(&mut rpc, vec![delayed]).await;
    assert_eq!(code(&sent.status), Code::Ok, "{sent:?}");
    let got = read(&cluster.namesrv, "later", 1).await;
    assert_eq!(got.len(), 1, "the delayed message arrives");
    assert!(
        SystemTime::now() >= deliver_at,
        "delivered before its delivery time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_protocols_codes_and_nothing_hangs() {
    let cluster = Cluster::start(&[]);
    create_topic(&cluster, "ordered", 2, "FIFO").await;
    let mut rpc = client(&cluster).await;

    // A normal message to a FIFO topic: refused as the official broker does.
    let sent = send(
        &mut rpc,
        vec![message("ordered", "x", v2::MessageType::Normal)],
    )
    .await;
    assert_eq!(code(&sent.status), Code::MessagePropertyConflictWithType);
    assert!(sent.status.unwrap().message.contains("FIFO"));

    let sent = send(
        &mut rpc,
        vec![message("nowhere", "x", v2::MessageType::Normal)],
    )
    .await;
    assert_eq!(code(&sent.status), Code::TopicNotFound, "{sent:?}");

    let mut big = message("ordered", "x", v2::MessageType::Fifo);
    big.system_properties.as_mut().unwrap().message_group = Some("g".into());
    big.body = bytes::Bytes::from(vec![7u8; (4 << 20) + 1]);
    let sent = send(&mut rpc, vec![big]).await;
    assert_eq!(code(&sent.status), Code::MessageBodyTooLarge, "{sent:?}");

    let route = rpc
        .query_route(request(v2::QueryRouteRequest {
            topic: resource("ordered"),
            endpoints: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&route.status), Code::IllegalAccessPoint);

    let route = rpc
        .query_route(request(v2::QueryRouteRequest {
            topic: resource("nowhere"),
            endpoints: access_point(&cluster),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&route.status), Code::TopicNotFound);

    let heartbeat = rpc
        .heartbeat(tonic::Request::new(v2::HeartbeatRequest {
            group: None,
            client_type: v2::ClientType::Producer as i32,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&heartbeat.status), Code::ClientIdRequired);

    // Not served yet: the protocol's code, at once.
    let recalled = rpc
        .recall_message(request(v2::RecallMessageRequest {
            topic: resource("ordered"),
            recall_handle: "h".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&recalled.status), Code::NotImplemented);
    assert!(recalled.status.unwrap().message.contains("RecallMessage"));
    // An empty EndTransaction names no transaction.
    let ended = rpc
        .end_transaction(request(v2::EndTransactionRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&ended.status), Code::InvalidTransactionId);
}
