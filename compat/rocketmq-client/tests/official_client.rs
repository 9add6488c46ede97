//! Apache RocketMQ's official Rust client (crate `rocketmq` 5.0.0),
//! unchanged, against a real broker's proxy (local mode): sends of every
//! type, SimpleConsumer receive/ack/redelivery, dead letters, credentials,
//! and messages crossing between the official client and our SDKs both
//! ways.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mq_consumer::{ConsumeFrom, PullConsumer, ReceivedMessage};
use mq_proto::broker::v1 as broker;
use mq_test_support::{ServerProcess, cluster::wait_for_route, run_to_end, workspace_binary};
use rocketmq::conf::{ClientOption, ProducerOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::{MessageBuilder, MessageView};
use rocketmq::{Producer, SimpleConsumer};

const ADMIN_SECRET: &str = "admin-S3cret-compat";

struct Broker {
    _dir: tempfile::TempDir,
    process: ServerProcess,
    namesrv: String,
    proxy: String,
}

fn broker(env: &[(&str, &str)]) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![("MQ_BROKER_POP_MIN_INVISIBLE", "1s")];
    all.extend_from_slice(env);
    let (process, namesrv) = mq_test_support::standalone_broker_with_env(dir.path(), &all);
    let proxy = process
        .logged_addr("RocketMQ 5 proxy listening")
        .unwrap()
        .to_string();
    Broker {
        _dir: dir,
        process,
        namesrv,
        proxy,
    }
}

async fn create_topic(broker: &Broker, topic: &str, message_type: &str) {
    let mut rpc = broker::broker_client::BrokerClient::connect(broker.process.url())
        .await
        .unwrap();
    rpc.create_topic(broker::CreateTopicRequest {
        config: Some(broker::TopicConfig {
            topic: topic.into(),
            read_queue_count: 2,
            write_queue_count: 2,
            perm: 6,
            message_type: message_type.into(),
        }),
    })
    .await
    .unwrap();
    wait_for_route(&broker.namesrv, topic, 1).await;
}

fn client_option(broker: &Broker) -> ClientOption {
    let mut option = ClientOption::default();
    option.set_access_url(broker.proxy.clone());
    option.set_enable_tls(false);
    option.set_long_polling_timeout(Duration::from_secs(3));
    option
}

async fn official_producer(option: ClientOption, topics: &[&str]) -> Producer {
    let mut producer_option = ProducerOption::default();
    producer_option.set_topics(topics.to_vec());
    let mut producer = Producer::new(producer_option, option).unwrap();
    producer.start().await.unwrap();
    producer
}

async fn official_consumer(option: ClientOption, group: &str, topic: &str) -> SimpleConsumer {
    let mut consumer_option = SimpleConsumerOption::default();
    consumer_option.set_consumer_group(group);
    consumer_option.set_topics(vec![topic]);
    let mut consumer = SimpleConsumer::new(consumer_option, option).unwrap();
    consumer.start().await.unwrap();
    consumer
}

/// Receives until `count` messages came or 20 s passed.
async fn receive_all(
    consumer: &SimpleConsumer,
    topic: &str,
    count: usize,
    invisible: Duration,
) -> Vec<MessageView> {
    let all = FilterExpression::new(FilterType::Tag, "*");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < count && Instant::now() < deadline {
        got.extend(
            consumer
                .receive_with(topic, &all, 32, invisible)
                .await
                .unwrap(),
        );
    }
    got
}

/// Reads `count` messages of `topic` with our consumer SDK.
async fn read_with_our_sdk(namesrv: &str, topic: &str, count: usize) -> Vec<ReceivedMessage> {
    read_with_our_sdk_by(&our_reader(namesrv, topic).await, count).await
}

/// Our consumer SDK's reader of `topic`, from its first message.
async fn our_reader(namesrv: &str, topic: &str) -> PullConsumer {
    PullConsumer::builder()
        .namesrv(namesrv)
        .group(format!("our-reader-{topic}"))
        .subscribe(topic, "*")
        .consume_from(ConsumeFrom::FirstOffset)
        .suspend(Duration::from_millis(500))
        .start()
        .await
        .unwrap()
}

/// Reads `count` messages with `consumer` (20 s at most).
async fn read_with_our_sdk_by(consumer: &PullConsumer, count: usize) -> Vec<ReceivedMessage> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut messages = Vec::new();
    while messages.len() < count && Instant::now() < deadline {
        messages.extend(consumer.poll(Duration::from_millis(500)).await);
    }
    messages
}

fn body(view: &MessageView) -> String {
    String::from_utf8(view.body().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_producer_sends_every_type_and_our_sdk_reads_them_intact() {
    let broker = broker(&[]);
    create_topic(&broker, "plain", "").await;
    create_topic(&broker, "ordered", "FIFO").await;
    create_topic(&broker, "later", "DELAY").await;
    let producer = official_producer(client_option(&broker), &["plain", "ordered", "later"]).await;

    let message = MessageBuilder::builder()
        .set_topic("plain")
        .set_tag("TagA")
        .set_keys(vec!["order-1", "customer-9"])
        .set_properties(HashMap::from([("color", "red")]))
        .set_body(b"hello from the official client".to_vec())
        .build()
        .unwrap();
    let receipt = producer.send(message).await.unwrap();
    let got = read_with_our_sdk(&broker.namesrv, "plain", 1).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.unique_id, receipt.message_id());
    assert_eq!(m.tags.as_deref(), Some("TagA"));
    assert_eq!(m.keys, ["order-1", "customer-9"]);
    assert_eq!(m.properties.get("color").map(String::as_str), Some("red"));
    assert_eq!(&m.body[..], b"hello from the official client");
    // RocketMQ 5 message ids: version 01, 34 hex digits.
    assert!(
        m.unique_id.starts_with("01") && m.unique_id.len() == 34,
        "{}",
        m.unique_id
    );

    for i in 0..8 {
        let fifo = MessageBuilder::fifo_message_builder(
            "ordered",
            format!("step-{i}").into_bytes(),
            "order-42",
        )
        .build()
        .unwrap();
        producer.send(fifo).await.unwrap();
    }
    let got = read_with_our_sdk(&broker.namesrv, "ordered", 8).await;
    let bodies: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect();
    assert_eq!(
        bodies,
        (0..8).map(|i| format!("step-{i}")).collect::<Vec<_>>()
    );
    assert!(
        got.iter().all(|m| m.queue == got[0].queue),
        "one group, one queue"
    );
    assert_eq!(
        got[0].properties.get("SHARDING_KEY").map(String::as_str),
        Some("order-42")
    );

    let due = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 2;
    let delayed = MessageBuilder::delay_message_builder("later", b"tick".to_vec(), due)
        .build()
        .unwrap();
    producer.send(delayed).await.unwrap();
    let got = read_with_our_sdk(&broker.namesrv, "later", 1).await;
    assert_eq!(got.len(), 1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(now >= due, "delivered at {now}, before its time {due}");

    // A message of the wrong type is refused, as by Apache's broker.
    let wrong = MessageBuilder::builder()
        .set_topic("ordered")
        .set_body(b"no group".to_vec())
        .build()
        .unwrap();
    let err = producer.send(wrong).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("MESSAGE_PROPERTY_CONFLICT_WITH_TYPE"),
        "{err}"
    );
    producer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sdk_sends_and_the_official_simple_consumer_receives_acks_and_gets_redeliveries() {
    let broker = broker(&[]);
    create_topic(&broker, "work", "").await;
    let producer = mq_producer::Producer::builder()
        .namesrv(&broker.namesrv)
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        let sent = producer
            .send(
                mq_producer::Message::new("work", format!("job-{i}"))
                    .with_tags("TagB")
                    .with_key(format!("job-key-{i}"))
                    .with_property("origin", "our-sdk"),
            )
            .await
            .unwrap();
        ids.push(sent.message_id.clone());
    }

    // Our SDK makes RocketMQ 5 ids too.
    assert!(
        ids.iter().all(|id| id.len() == 34 && id.starts_with("01")),
        "{ids:?}"
    );
    let consumer = official_consumer(client_option(&broker), "workers", "work").await;
    let got = receive_all(&consumer, "work", 6, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 6);
    for view in &got {
        assert_eq!(view.tag(), Some("TagB"));
        assert_eq!(view.keys().len(), 1);
        assert_eq!(
            view.properties().get("origin").map(String::as_str),
            Some("our-sdk")
        );
        assert!(
            ids.contains(&view.message_id().to_owned()),
            "{}",
            view.message_id()
        );
        assert_eq!(view.delivery_attempt(), 1);
    }
    // Acknowledge all but two; those come back with their attempt counted.
    let mut kept = Vec::new();
    for view in &got {
        if body(view).ends_with('1') || body(view).ends_with('4') {
            kept.push(body(view));
        } else {
            consumer.ack(view).await.unwrap();
        }
    }
    let again = receive_all(&consumer, "work", 2, Duration::from_secs(2)).await;
    let mut bodies: Vec<String> = again.iter().map(body).collect();
    bodies.sort();
    kept.sort();
    assert_eq!(bodies, kept);
    assert!(again.iter().all(|v| v.delivery_attempt() == 2));
    for view in &again {
        consumer.ack(view).await.unwrap();
    }
    // Acknowledged twice: the broker refuses the spent handle.
    assert!(consumer.ack(&again[0]).await.is_err());
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_official_consumer_never_acknowledges_becomes_a_dead_letter() {
    // Two deliveries at most.
    let broker = broker(&[("MQ_BROKER_MAX_RECONSUME_TIMES", "1")]);
    create_topic(&broker, "poison", "").await;
    let producer = official_producer(client_option(&broker), &["poison"]).await;
    let message = MessageBuilder::builder()
        .set_topic("poison")
        .set_body(b"bad".to_vec())
        .build()
        .unwrap();
    let id = producer
        .send(message)
        .await
        .unwrap()
        .message_id()
        .to_owned();
    let consumer = official_consumer(client_option(&broker), "eaters", "poison").await;
    for attempt in 1..=2 {
        let got = receive_all(&consumer, "poison", 1, Duration::from_secs(1)).await;
        assert_eq!(got.len(), 1, "delivery {attempt}");
        assert_eq!(got[0].delivery_attempt(), attempt);
    }
    // No third delivery: the message went to %DLQ%eaters.
    let all = FilterExpression::new(FilterType::Tag, "*");
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let got = consumer
            .receive_with("poison", &all, 32, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(got.is_empty(), "delivered a third time");
    }
    let mut rpc = broker::broker_client::BrokerClient::connect(broker.process.url())
        .await
        .unwrap();
    let dead = rpc
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
    assert_eq!(dead.messages[0].unique_id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_clients_credentials_work_and_wrong_ones_are_refused() {
    let broker = broker(&[
        ("MQ_BROKER_AUTH_ENABLED", "true"),
        ("MQ_BROKER_AUTH_ACCESS_KEY", "admin"),
        ("MQ_BROKER_AUTH_SECRET_KEY", ADMIN_SECRET),
    ]);
    let admin = [("MQ_ACCESS_KEY", "admin"), ("MQ_SECRET_KEY", ADMIN_SECRET)];
    for args in [
        &[
            "topic",
            "create",
            "--topic",
            "secure",
            "--cluster",
            "DefaultCluster",
        ][..],
        &[
            "user",
            "create",
            "--user",
            "alice",
            "--secret",
            "alice-S3cret",
        ],
        &[
            "acl",
            "create",
            "--user",
            "alice",
            "--resource",
            "Topic:secure",
            "--actions",
            "Pub,Sub,Get",
        ],
        &[
            "acl",
            "create",
            "--user",
            "alice",
            "--resource",
            "Group:alice-group",
            "--actions",
            "Sub",
        ],
    ] {
        let mut all = vec!["--namesrv", broker.namesrv.as_str()];
        all.extend_from_slice(args);
        let (status, _, stderr) = run_to_end(workspace_binary("mqadmin"), &all, &admin);
        assert!(status.success(), "mqadmin {args:?}: {stderr}");
    }

    let mut alice = client_option(&broker);
    alice.set_access_key("alice");
    alice.set_secret_key("alice-S3cret");
    let producer = official_producer(alice.clone(), &["secure"]).await;
    let message = MessageBuilder::builder()
        .set_topic("secure")
        .set_body(b"signed".to_vec())
        .build()
        .unwrap();
    producer.send(message).await.unwrap();
    let consumer = official_consumer(alice, "alice-group", "secure").await;
    let got = receive_all(&consumer, "secure", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(body(&got[0]), "signed");
    consumer.ack(&got[0]).await.unwrap();

    let mut wrong = client_option(&broker);
    wrong.set_access_key("alice");
    wrong.set_secret_key("not-her-secret");
    let mut producer_option = ProducerOption::default();
    producer_option.set_topics(vec!["secure"]);
    let mut refused = Producer::new(producer_option, wrong).unwrap();
    assert!(refused.start().await.is_err(), "a wrong secret is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_clients_work_through_the_standalone_proxy_of_a_cluster() {
    let root = tempfile::tempdir().unwrap();
    let cluster = mq_test_support::proxied_cluster(
        root.path(),
        2,
        &[("MQ_BROKER_POP_MIN_INVISIBLE", "1s")],
        &[("MQ_PROXY_MIN_INVISIBLE", "1s")],
    );
    for b in &cluster.brokers {
        let mut rpc = broker::broker_client::BrokerClient::connect(b.url())
            .await
            .unwrap();
        rpc.create_topic(broker::CreateTopicRequest {
            config: Some(broker::TopicConfig {
                topic: "spread".into(),
                read_queue_count: 2,
                write_queue_count: 2,
                perm: 6,
                message_type: String::new(),
            }),
        })
        .await
        .unwrap();
    }
    wait_for_route(&cluster.namesrv, "spread", 2).await;
    let mut option = ClientOption::default();
    option.set_access_url(cluster.proxy_addr.clone());
    option.set_enable_tls(false);
    option.set_long_polling_timeout(Duration::from_secs(3));

    let producer = official_producer(option.clone(), &["spread"]).await;
    for i in 0..10 {
        let message = MessageBuilder::builder()
            .set_topic("spread")
            .set_body(format!("s-{i}").into_bytes())
            .build()
            .unwrap();
        producer.send(message).await.unwrap();
    }
    let consumer = official_consumer(option, "spreaders", "spread").await;
    let got = receive_all(&consumer, "spread", 10, Duration::from_secs(5)).await;
    let mut bodies: Vec<String> = got.iter().map(body).collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("s-{i}")).collect();
    expected.sort();
    assert_eq!(bodies, expected);
    for view in &got {
        consumer.ack(view).await.unwrap();
    }
    // Both brokers held some: the proxy spread the sends over the cluster.
    let mut held = 0;
    for b in &cluster.brokers {
        let mut rpc = broker::broker_client::BrokerClient::connect(b.url())
            .await
            .unwrap();
        let offsets = rpc
            .get_queue_offsets(broker::GetQueueOffsetsRequest {
                topic: "spread".into(),
                queue_id: 0,
                timestamp_ms: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(offsets.max_offset > 0, "a broker got nothing");
        held += 1;
    }
    assert_eq!(held, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_transaction_producer_commits_rolls_back_and_answers_checks() {
    use rocketmq::model::transaction::{Transaction, TransactionResolution};
    let broker = broker(&[
        ("MQ_BROKER_TRANSACTION_TIMEOUT", "500ms"),
        ("MQ_BROKER_TRANSACTION_CHECK_INTERVAL", "500ms"),
    ]);
    create_topic(&broker, "tx", "TRANSACTION").await;
    let mut producer_option = ProducerOption::default();
    producer_option.set_topics(vec!["tx"]);
    // Asked about the transaction it never ended: commit the orphan.
    let checker = Box::new(|_id: String, view: MessageView| {
        if view.body() == b"orphan" {
            TransactionResolution::COMMIT
        } else {
            TransactionResolution::ROLLBACK
        }
    });
    let mut producer =
        Producer::new_transaction_producer(producer_option, client_option(&broker), checker)
            .unwrap();
    producer.start().await.unwrap();
    let message = |body: &str| {
        MessageBuilder::transaction_message_builder("tx", body.as_bytes().to_vec())
            .build()
            .unwrap()
    };
    let committed = producer
        .send_transaction_message(message("committed"))
        .await
        .unwrap();
    committed.commit().await.unwrap();
    let rolled = producer
        .send_transaction_message(message("rolled"))
        .await
        .unwrap();
    rolled.rollback().await.unwrap();
    // Never ended by the producer: the broker checks back.
    let _orphan = producer
        .send_transaction_message(message("orphan"))
        .await
        .unwrap();

    let consumer = our_reader(&broker.namesrv, "tx").await;
    let mut received = read_with_our_sdk_by(&consumer, 2).await;
    // Nothing else comes: the rolled-back one ended before the orphan's check.
    received.extend(consumer.poll(Duration::from_millis(1500)).await);
    let mut bodies: Vec<String> = received
        .iter()
        .map(|msg| String::from_utf8(msg.body.to_vec()).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["committed", "orphan"]);
}
