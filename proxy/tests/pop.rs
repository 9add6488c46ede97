//! POP consumption through the proxy in a real broker: receive, ack,
//! change invisible duration, redelivery with attempts counted, dead
//! letters, FIFO groups, the book surviving SIGKILL, and bad input.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use mq_proto::broker::v1 as broker;
use support::*;

/// Invisible times down to 1 s, so that redelivery tests are quick; a
/// message is dead after 3 deliveries.
const ENV: &[(&str, &str)] = &[
    ("MQ_BROKER_POP_MIN_INVISIBLE", "1s"),
    ("MQ_BROKER_MAX_RECONSUME_TIMES", "2"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_messages_come_back_until_acknowledged_with_their_attempts_counted() {
    let cluster = Cluster::start(ENV);
    create_topic(&cluster, "jobs", 2, "").await;
    let mut rpc = client(&cluster).await;
    send_many(&mut rpc, "jobs", "j", 6).await;
    let queue = some_queue(&mut rpc, &cluster, "jobs").await;

    let first = receive(&mut rpc, "workers", &queue, 32, 1_000, 2_000).await;
    assert_eq!(first.code(), Code::Ok);
    let mut bodies = first.bodies();
    bodies.sort();
    assert_eq!(bodies, ["j-0", "j-1", "j-2", "j-3", "j-4", "j-5"]);
    assert!(first.messages.iter().all(|m| attempt_of(m) == 1));

    // Acknowledge four; the other two are invisible, then come back.
    let (done, pending): (Vec<&v2::Message>, Vec<&v2::Message>) = first
        .messages
        .iter()
        .partition(|m| !m.body.ends_with(b"-1") && !m.body.ends_with(b"-4"));
    let done_handles: Vec<String> = done.iter().map(|m| handle_of(m)).collect();
    assert_eq!(
        ack(&mut rpc, "workers", "jobs", &done_handles).await,
        [Code::Ok; 4]
    );
    let hidden = receive(&mut rpc, "workers", &queue, 32, 1_000, 0).await;
    assert_eq!(hidden.code(), Code::MessageNotFound, "still invisible");

    let again = receive(&mut rpc, "workers", &queue, 32, 1_000, 5_000).await;
    let mut bodies = again.bodies();
    bodies.sort();
    assert_eq!(bodies, ["j-1", "j-4"]);
    assert!(again.messages.iter().all(|m| attempt_of(m) == 2));
    // The first delivery's handles are spent.
    let stale: Vec<String> = pending.iter().map(|m| handle_of(m)).collect();
    assert_eq!(
        ack(&mut rpc, "workers", "jobs", &stale).await,
        [Code::InvalidReceiptHandle; 2]
    );
    assert_eq!(
        ack(&mut rpc, "workers", "jobs", &again.handles()).await,
        [Code::Ok; 2]
    );
    // Acknowledged twice: the second is refused.
    assert_eq!(
        ack(&mut rpc, "workers", "jobs", &again.handles()[..1]).await,
        [Code::InvalidReceiptHandle]
    );
    let empty = receive(&mut rpc, "workers", &queue, 32, 1_000, 2_500).await;
    assert_eq!(empty.code(), Code::MessageNotFound);

    // Another group reads the topic on its own.
    let other = receive(&mut rpc, "auditors", &queue, 32, 1_000, 2_000).await;
    assert_eq!(other.messages.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_invisible_duration_moves_the_redelivery_and_spends_the_old_handle() {
    let cluster = Cluster::start(ENV);
    create_topic(&cluster, "slow", 1, "").await;
    let mut rpc = client(&cluster).await;
    send_many(&mut rpc, "slow", "s", 1).await;
    let queue = some_queue(&mut rpc, &cluster, "slow").await;

    let got = receive(&mut rpc, "g", &queue, 1, 60_000, 2_000).await;
    let old = got.handles()[0].clone();
    let changed = rpc
        .change_invisible_duration(request(v2::ChangeInvisibleDurationRequest {
            group: resource("g"),
            topic: resource("slow"),
            receipt_handle: old.clone(),
            invisible_duration: Some(duration(1_000)),
            message_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&changed.status), Code::Ok, "{changed:?}");
    assert_ne!(changed.receipt_handle, old);
    assert_eq!(
        ack(&mut rpc, "g", "slow", &[old]).await,
        [Code::InvalidReceiptHandle]
    );

    // Visible again after 1 s rather than 60.
    let started = Instant::now();
    let again = receive(&mut rpc, "g", &queue, 1, 60_000, 5_000).await;
    assert_eq!(again.bodies(), ["s-0"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(attempt_of(&again.messages[0]), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_never_acknowledged_becomes_a_dead_letter_after_its_last_attempt() {
    let cluster = Cluster::start(ENV);
    create_topic(&cluster, "poison", 1, "").await;
    let mut rpc = client(&cluster).await;
    send_many(&mut rpc, "poison", "p", 1).await;
    let queue = some_queue(&mut rpc, &cluster, "poison").await;

    for attempt in 1..=3 {
        let got = receive(&mut rpc, "eaters", &queue, 1, 1_000, 5_000).await;
        assert_eq!(got.bodies(), ["p-0"], "attempt {attempt}");
        assert_eq!(attempt_of(&got.messages[0]), attempt);
    }
    // Past its third delivery: no fourth, a dead letter instead.
    let none = receive(&mut rpc, "eaters", &queue, 1, 1_000, 3_000).await;
    assert_eq!(none.code(), Code::MessageNotFound);

    let mut broker_rpc = broker::broker_client::BrokerClient::connect(cluster.broker.url())
        .await
        .unwrap();
    let dead = broker_rpc
        .pull_message(broker::PullMessageRequest {
            group: "inspector".into(),
            topic: "%DLQ%eaters".into(),
            queue_id: 0,
            offset: 0,
            max_messages: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dead.messages.len(), 1);
    assert_eq!(&dead.messages[0].body[..], b"p-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_group_gets_its_next_message_only_after_the_previous_is_acknowledged() {
    let cluster = Cluster::start(ENV);
    create_topic(&cluster, "steps", 2, "FIFO").await;
    let mut rpc = client(&cluster).await;
    for i in 0..3 {
        let mut m = message("steps", &format!("step-{i}"), v2::MessageType::Fifo);
        m.system_properties.as_mut().unwrap().message_group = Some("order-7".into());
        let sent = send(&mut rpc, vec![m]).await;
        assert_eq!(code(&sent.status), Code::Ok);
    }
    let queue = some_queue(&mut rpc, &cluster, "steps").await;
    // The consumer learns that its topic is FIFO.
    let (answer, _telemetry) = handshake(&mut rpc, consumer_settings("fulfil", "steps", "*")).await;
    assert_eq!(fifo_of(&answer), Some(true));
    for i in 0..3 {
        let got = receive(&mut rpc, "fulfil", &queue, 1, 30_000, 2_000).await;
        assert_eq!(got.bodies(), [format!("step-{i}")]);
        let group = got.messages[0]
            .system_properties
            .as_ref()
            .unwrap()
            .message_group
            .clone();
        assert_eq!(group.as_deref(), Some("order-7"));
        // Unacknowledged, the group's next message waits.
        let blocked = receive(&mut rpc, "fulfil", &queue, 1, 30_000, 0).await;
        assert_eq!(blocked.code(), Code::MessageNotFound, "step {i}");
        assert_eq!(
            ack(&mut rpc, "fulfil", "steps", &got.handles()).await,
            [Code::Ok]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigkill_unacknowledged_messages_come_back_and_acknowledged_ones_do_not() {
    let mut cluster = Cluster::start(ENV);
    create_topic(&cluster, "durable", 2, "").await;
    let mut rpc = client(&cluster).await;
    send_many(&mut rpc, "durable", "d", 10).await;
    let queue = some_queue(&mut rpc, &cluster, "durable").await;
    let got = receive(&mut rpc, "keepers", &queue, 32, 2_000, 2_000).await;
    assert_eq!(got.messages.len(), 10);
    let (acked, unacked): (Vec<&v2::Message>, Vec<&v2::Message>) = got
        .messages
        .iter()
        .partition(|m| attempt_of(m) == 1 && m.body.last().is_some_and(|b| b % 2 == 0));
    let handles: Vec<String> = acked.iter().map(|m| handle_of(m)).collect();
    assert_eq!(ack(&mut rpc, "keepers", "durable", &handles).await.len(), 5);

    cluster.crash_and_restart();
    create_topic(&cluster, "durable", 2, "").await;
    let mut rpc = client(&cluster).await;
    let queue = some_queue(&mut rpc, &cluster, "durable").await;
    let mut back = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while back.len() < 5 && Instant::now() < deadline {
        let got = receive(&mut rpc, "keepers", &queue, 32, 2_000, 2_000).await;
        back.extend(got.bodies());
        ack(&mut rpc, "keepers", "durable", &got.handles()).await;
    }
    back.sort();
    let mut expected: Vec<String> = unacked
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect();
    expected.sort();
    assert_eq!(back, expected);
    // And nothing else comes.
    let more = receive(&mut rpc, "keepers", &queue, 32, 2_000, 3_000).await;
    assert_eq!(more.code(), Code::MessageNotFound, "{:?}", more.bodies());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_receives_acks_and_changes_get_the_protocols_codes() {
    let cluster = Cluster::start(ENV);
    create_topic(&cluster, "t", 1, "").await;
    let mut rpc = client(&cluster).await;
    send_many(&mut rpc, "t", "m", 1).await;
    let queue = some_queue(&mut rpc, &cluster, "t").await;

    // Invisible durations out of range, bad batch sizes, bad groups.
    assert_eq!(
        receive(&mut rpc, "g", &queue, 1, 500, 0).await.code(),
        Code::IllegalInvisibleTime
    );
    assert_eq!(
        receive(&mut rpc, "g", &queue, 1, 13 * 3_600_000, 0)
            .await
            .code(),
        Code::IllegalInvisibleTime
    );
    assert_eq!(
        receive(&mut rpc, "g", &queue, 0, 1_000, 0).await.code(),
        Code::BadRequest
    );
    assert_eq!(
        receive(&mut rpc, "g", &queue, 33, 1_000, 0).await.code(),
        Code::BadRequest
    );
    assert_eq!(
        receive(&mut rpc, "bad group", &queue, 1, 1_000, 0)
            .await
            .code(),
        Code::IllegalConsumerGroup
    );
    let mut unknown = queue.clone();
    unknown.topic = resource("nowhere");
    assert_eq!(
        receive(&mut rpc, "g", &unknown, 1, 1_000, 0).await.code(),
        Code::TopicNotFound
    );

    // Forged and malformed handles.
    let got = receive(&mut rpc, "g", &queue, 1, 30_000, 2_000).await;
    let real = got.handles()[0].clone();
    let mut parts: Vec<&str> = real.splitn(4, '.').collect();
    let forged_token = "0123456789abcdef";
    parts[2] = forged_token;
    let forged = parts.join(".");
    assert_eq!(
        ack(&mut rpc, "g", "t", &[forged, "not-a-handle".into()]).await,
        [Code::InvalidReceiptHandle, Code::InvalidReceiptHandle]
    );
    // Another group may not acknowledge this group's delivery.
    assert_eq!(
        ack(&mut rpc, "h", "t", std::slice::from_ref(&real)).await,
        [Code::InvalidReceiptHandle]
    );

    let changed = rpc
        .change_invisible_duration(request(v2::ChangeInvisibleDurationRequest {
            group: resource("g"),
            topic: resource("t"),
            receipt_handle: real.clone(),
            invisible_duration: Some(duration(100)),
            message_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&changed.status), Code::IllegalInvisibleTime);
    // The real handle still works after the refused change.
    assert_eq!(ack(&mut rpc, "g", "t", &[real]).await, [Code::Ok]);

    // A SQL filter that does not parse: said so, at once, with where.
    let sql = |expression: &str| v2::FilterExpression {
        r#type: v2::FilterType::Sql as i32,
        expression: expression.into(),
    };
    let refused = receive_filtered(&mut rpc, "g", &queue, sql("a > 1 AND"), 1, 1_000, 0).await;
    assert_eq!(refused.code(), Code::IllegalFilterExpression);
    let message = &refused.statuses[0].message;
    assert!(message.contains("position 10"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_filter_receives_only_the_messages_it_selects() {
    let cluster = Cluster::start(ENV);
    create_topic(&cluster, "props", 1, "").await;
    let mut rpc = client(&cluster).await;
    for i in 0..10 {
        let mut msg = message("props", &format!("p-{i}"), v2::MessageType::Normal);
        msg.user_properties.insert("n".into(), i.to_string());
        let sent = send(&mut rpc, vec![msg]).await;
        assert_eq!(code(&sent.status), Code::Ok, "{sent:?}");
    }
    let queue = some_queue(&mut rpc, &cluster, "props").await;
    let filter = v2::FilterExpression {
        r#type: v2::FilterType::Sql as i32,
        expression: "n >= 7 OR (n < 2 AND TAGS = 'TagA' AND color = 'red')".into(),
    };
    let got = receive_filtered(&mut rpc, "g-sql", &queue, filter, 32, 10_000, 2_000).await;
    assert_eq!(got.code(), Code::Ok);
    let mut bodies = got.bodies();
    bodies.sort();
    assert_eq!(bodies, ["p-0", "p-1", "p-7", "p-8", "p-9"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rocketmq_5_consumer_is_listed_among_its_groups_connections() {
    let cluster = Cluster::start(ENV);
    create_topic(&cluster, "listed", 1, "").await;
    let mut rpc = client(&cluster).await;
    // The settings a SimpleConsumer sends when it starts.
    let (answer, _telemetry) =
        handshake(&mut rpc, consumer_settings("watchers", "listed", "TagA")).await;
    assert_eq!(fifo_of(&answer), Some(false), "a normal topic");

    let connections = || {
        mq_test_support::run_to_end(
            mq_test_support::workspace_binary("mqadmin"),
            &[
                "--namesrv",
                &cluster.namesrv,
                "--json",
                "consumer",
                "connections",
                "--group",
                "watchers",
            ],
            &[],
        )
    };
    let (status, stdout, stderr) = connections();
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("test-client@1"), "{stdout}");
    assert!(
        stdout.contains("RocketMQ 5 SIMPLE_CONSUMER, RUST 5.0.0"),
        "{stdout}"
    );
    assert!(stdout.contains("listed:TagA"), "{stdout}");

    // A client that says it terminates leaves the group.
    let bye = rpc
        .notify_client_termination(request(v2::NotifyClientTerminationRequest {
            group: resource("watchers"),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&bye.status), Code::Ok);
    let (status, _, stderr) = connections();
    assert!(
        !status.success() && stderr.contains("no live member"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_is_received_at_its_time_with_its_delivery_timestamp() {
    let cluster = Cluster::start(ENV);
    create_topic(&cluster, "later", 1, "DELAY").await;
    let mut rpc = client(&cluster).await;
    let due_ms = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 1_500) as u64;
    let mut delayed = message("later", "tick", v2::MessageType::Delay);
    delayed
        .system_properties
        .as_mut()
        .unwrap()
        .delivery_timestamp = Some(prost_types::Timestamp {
        seconds: (due_ms / 1000) as i64,
        nanos: ((due_ms % 1000) * 1_000_000) as i32,
    });
    let sent = send(&mut rpc, vec![delayed]).await;
    assert_eq!(code(&sent.status), Code::Ok, "{sent:?}");
    let queue = some_queue(&mut rpc, &cluster, "later").await;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.is_empty() && Instant::now() < deadline {
        got = receive(&mut rpc, "g", &queue, 1, 30_000, 2_000)
            .await
            .messages;
    }
    assert_eq!(got.len(), 1);
    let at = got[0]
        .system_properties
        .as_ref()
        .unwrap()
        .delivery_timestamp
        .expect("a delivery timestamp");
    let at_ms = at.seconds as u64 * 1000 + at.nanos as u64 / 1_000_000;
    assert!(
        at_ms >= due_ms && at_ms < due_ms + 5_000,
        "delivered at {at_ms}, due {due_ms}"
    );
}
