//! SQL92 subscriptions end to end: the broker returns exactly the
//! messages the expression makes TRUE (the client does not filter SQL
//! again, so anything extra would arrive), and a mistake in the
//! expression stops the consumer before it starts, naming the position.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mq_consumer::{ConsumeFrom, PullConsumer};
use mq_producer::{Message, Producer};
use support::*;

const REGIONS: [&str; 3] = ["eu", "us", "ap"];

/// What the test sends: message i has `n = i` (none from 50 on), a
/// region in turn and tag A or B.
fn message(i: u32) -> Message {
    let mut msg = Message::new("sql", format!("m-{i}"))
        .with_tags(if i.is_multiple_of(2) { "A" } else { "B" })
        .with_property("region", REGIONS[i as usize % 3]);
    if i < 50 {
        msg = msg.with_property("n", i.to_string());
    }
    msg
}

/// `n > 10 AND region IN ('eu', 'us') AND TAGS = 'A'`, by hand; a
/// missing `n` is NULL, which never matches.
fn expected() -> BTreeSet<String> {
    (0..60u32)
        .filter(|&i| i < 50 && i > 10 && i % 3 != 2 && i.is_multiple_of(2))
        .map(|i| format!("m-{i}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_subscription_receives_exactly_the_messages_its_expression_selects() {
    let root = tempfile::tempdir().unwrap();
    let nameserver = start_nameserver();
    let namesrv = nameserver.addr.to_string();
    let broker = start_broker("broker-a", &namesrv, root.path(), "127.0.0.1:0");
    create_topic(&broker, "sql", 2).await;
    wait_for_route(&namesrv, "sql", 1).await;
    let producer = Producer::builder().namesrv(&namesrv).build().unwrap();
    for i in 0..60 {
        producer.send(message(i)).await.unwrap();
    }
    let consumer = PullConsumer::builder()
        .namesrv(&namesrv)
        .group("g-sql")
        .subscribe_sql("sql", "n > 10 AND region IN ('eu', 'us') AND TAGS = 'A'")
        .consume_from(ConsumeFrom::FirstOffset)
        .suspend(Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    let want = expected();
    assert_eq!(want.len(), 13);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < want.len() && Instant::now() < deadline {
        for msg in consumer.poll(Duration::from_millis(500)).await {
            got.push(String::from_utf8(msg.body.to_vec()).unwrap());
        }
    }
    // Both queues were read to their end: whatever else would come has.
    for msg in consumer.poll(Duration::from_secs(1)).await {
        got.push(String::from_utf8(msg.body.to_vec()).unwrap());
    }
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(distinct.len(), got.len(), "delivered twice: {got:?}");
    assert_eq!(distinct, want);
    consumer.shutdown().await;
}

#[tokio::test]
async fn an_invalid_expression_stops_the_consumer_before_it_starts_with_the_position() {
    let started = PullConsumer::builder()
        .namesrv("127.0.0.1:1")
        .group("g-bad")
        .subscribe_sql("sql", "region IN ('eu' 'us')")
        .start()
        .await;
    let Err(err) = started else {
        panic!("an invalid expression must not start");
    };
    assert_eq!(
        err.to_string(),
        "invalid argument: subscriptions[0].sql: invalid SQL filter at position 17: expected ',' or ')' in the IN list, found string 'us'"
    );
}
