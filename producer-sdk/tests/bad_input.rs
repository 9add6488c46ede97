//! Bad input, at the producer and straight at the broker's gRPC service:
//! a clear error naming what is wrong, no retry, nothing stored.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use mq_producer::{Message, Producer, ProducerError};
use mq_proto::broker::v1 as pb;
use support::*;
use tonic::Code;

fn wire(topic: &str, body: &'static [u8]) -> pb::Message {
    pb::Message {
        topic: topic.into(),
        body: Bytes::from_static(body),
        ..pb::Message::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_refused_with_clear_errors_and_nothing_is_stored() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    // auto_create_topic is off outside standalone; messages up to 1 KiB.
    let mut broker = Broker::start(
        "broker-a",
        &namesrv,
        root.path(),
        &["--store-set", "max_message_size=1024"],
    );
    broker.create_topic("known", 2).await;
    wait_for_route(&namesrv, "known", 1).await;

    // At the producer: refused before anything is sent, never retried.
    let producer = Producer::builder()
        .namesrv(&namesrv)
        .max_message_size(1024)
        .build()
        .unwrap();
    let started = Instant::now();
    let cases = [
        (Message::new("known", vec![0u8; 2000]), "body"),
        (Message::new("bad topic", "x"), "topic"),
        (Message::new("", "x"), "topic"),
        (Message::new("known", Bytes::new()), "body"),
        (Message::new("known", "x").with_key("two words"), "keys[0]"),
        (Message::new("known", "x").with_tags("a || b"), "tags"),
        (Message::new("SCHEDULE_TOPIC_XXXX", "x"), "topic"),
        (Message::new("%RETRY%g", "x"), "topic"),
    ];
    for (msg, field) in cases {
        match producer.send(msg).await.unwrap_err() {
            ProducerError::InvalidMessage(err) => assert_eq!(err.field, field),
            other => panic!("expected an invalid {field}, got {other}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no retries, no waiting"
    );
    let err = producer
        .send(Message::new("unknown_topic", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProducerError::NoRoute { .. }), "{err}");
    assert!(err.to_string().contains("no broker serves it"), "{err}");

    // Straight at the broker, past the producer's checks.
    let mut rpc = broker.rpc().await;
    let send = |message: Option<pb::Message>, queue_id| pb::SendMessageRequest {
        message,
        queue_id,
        ..Default::default()
    };
    let mut reserved = wire("known", b"x");
    reserved.properties.insert("TAGS".into(), "sneaky".into());
    let mut bad_host = wire("known", b"x");
    bad_host.born_host = "not-an-address".into();
    let mut fat_properties = wire("known", b"x");
    for i in 0..200 {
        fat_properties
            .properties
            .insert(format!("p{i}"), "v".repeat(400));
    }
    let cases: Vec<(pb::SendMessageRequest, Code, &str)> = vec![
        (send(None, 0), Code::InvalidArgument, "message: is required"),
        (
            send(Some(wire("known", b"x")), 2),
            Code::InvalidArgument,
            "queue_id: 2 is out of range",
        ),
        (
            send(Some(wire("known", b"")), 0),
            Code::InvalidArgument,
            "message.body: must not be empty",
        ),
        (
            send(Some(wire("known", &[7; 2000])), 0),
            Code::InvalidArgument,
            "message.body: is 2000 bytes",
        ),
        (
            send(Some(wire("bad/topic", b"x")), 0),
            Code::InvalidArgument,
            "topic",
        ),
        (
            send(Some(reserved), 0),
            Code::InvalidArgument,
            "message.properties.TAGS: is reserved",
        ),
        (
            send(Some(bad_host), 0),
            Code::InvalidArgument,
            "message.born_host",
        ),
        (
            send(Some(fat_properties), 0),
            Code::InvalidArgument,
            "message.properties: take",
        ),
        (
            send(Some(wire("unknown_topic", b"x")), 0),
            Code::NotFound,
            "unknown_topic",
        ),
    ];
    // Only the broker writes its own topics (scheduled entries, retries,
    // dead letters) and creates them.
    for topic in ["SCHEDULE_TOPIC_XXXX", "%RETRY%g", "%DLQ%g", "TBW102"] {
        let status = rpc
            .send_message(send(Some(wire(topic, b"x")), 0))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{topic}: {status:?}");
        assert!(
            status.message().contains("reserved for the broker"),
            "{status:?}"
        );
        let status = rpc
            .create_topic(pb::CreateTopicRequest {
                config: Some(pb::TopicConfig {
                    topic: topic.into(),
                    read_queue_count: 1,
                    write_queue_count: 1,
                    perm: 6,
                    message_type: String::new(),
                }),
            })
            .await
            .unwrap_err();
        assert!(
            status.message().contains("config.topic") && status.message().contains("reserved"),
            "{topic}: {status:?}"
        );
    }
    // A batch whose reply would not fit a client's 4 MiB: refused whole.
    let status = rpc
        .send_batch(pb::SendBatchRequest {
            topic: "known".into(),
            queue_id: 0,
            messages: vec![wire("known", b"x"); 4097],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("4097 messages in one batch; at most 4096"),
        "{}",
        status.message()
    );
    let err = producer
        .send_batch(vec![Message::new("known", "x"); 4097])
        .await
        .unwrap_err();
    assert!(matches!(err, ProducerError::InvalidMessage(_)), "{err}");
    for (request, code, needle) in cases {
        let status = rpc.send_message(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{}", status.message());
        assert!(
            status.message().contains(needle),
            "{:?} should contain {needle:?}",
            status.message()
        );
    }
    let status = rpc
        .send_batch(pb::SendBatchRequest {
            topic: "known".into(),
            queue_id: 0,
            messages: vec![wire("known", b"ok"), wire("other", b"x")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("messages[1].topic"),
        "{}",
        status.message()
    );
    let status = rpc
        .create_topic(pb::CreateTopicRequest {
            config: Some(pb::TopicConfig {
                topic: "t".into(),
                read_queue_count: 0,
                write_queue_count: 1,
                perm: 6,
                message_type: String::new(),
            }),
        })
        .await
        .unwrap_err();
    assert!(
        status.message().contains("config.read_queue_count"),
        "{}",
        status.message()
    );

    let stored = broker.stop_and_read();
    assert_eq!(
        stored.values().map(Vec::len).sum::<usize>(),
        0,
        "nothing was stored: {stored:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_cannot_keep_up_answers_busy_instead_of_queueing_without_bound() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = Broker::start(
        "broker-a",
        &namesrv,
        root.path(),
        &[
            "--flush",
            "sync",
            "--store-set",
            "max_message_size=8192",
            "--config",
            &busy_config(root.path()),
        ],
    );
    broker.create_topic("busy", 1).await;
    let sends: Vec<_> = (0..64)
        .map(|_| {
            let url = broker.process.url();
            tokio::spawn(async move {
                let mut rpc = pb::broker_client::BrokerClient::connect(url).await.unwrap();
                let mut busy = 0;
                for _ in 0..20 {
                    let request = pb::SendMessageRequest {
                        message: Some(pb::Message {
                            topic: "busy".into(),
                            body: Bytes::from(vec![1u8; 8000]),
                            ..pb::Message::default()
                        }),
                        queue_id: 0,
                        ..Default::default()
                    };
                    match rpc.send_message(request).await {
                        Ok(_) => {}
                        Err(status) if status.code() == Code::ResourceExhausted => {
                            assert!(
                                status.message().contains("broker busy"),
                                "{}",
                                status.message()
                            );
                            busy += 1;
                        }
                        Err(status) => panic!("unexpected {status:?}"),
                    }
                }
                busy
            })
        })
        .collect();
    let mut busy = 0;
    for send in sends {
        busy += send.await.unwrap();
    }
    assert!(
        busy > 0,
        "64 senders over a 16 KiB budget with a 1 ms wait must see BUSY"
    );
}

/// 16 KiB of queued sends at most, waiting 1 ms for room.
fn busy_config(dir: &std::path::Path) -> String {
    let path = dir.join("busy.toml");
    std::fs::write(
        &path,
        "max_queued_bytes = 16384\nmax_queue_wait = \"1ms\"\n",
    )
    .unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn bad_settings_are_refused_by_name() {
    let settings = |builder: mq_producer::ProducerBuilder| match builder.build() {
        Err(ProducerError::Config(message)) => message,
        Err(other) => panic!("expected a settings error, got {other}"),
        Ok(_) => panic!("built"),
    };
    let builder = || Producer::builder().namesrv("127.0.0.1:9");
    assert!(settings(builder().send_timeout(Duration::ZERO)).contains("send_timeout"));
    assert!(settings(builder().max_in_flight(0)).contains("max_in_flight"));
    let producer = builder().build().unwrap();
    match producer
        .send_with_timeout(Message::new("known", "x"), Duration::ZERO)
        .await
    {
        Err(ProducerError::Config(message)) => assert!(message.contains("timeout"), "{message}"),
        other => panic!("expected a settings error, got {other:?}"),
    }
}
