//! `SendMany` against the real broker: the sends in one request are each
//! stored, in the request's order, and answered on their own; a refusal
//! is that send's outcome only; numbered sends keep their idempotence;
//! bad requests are refused by name.

#![allow(clippy::unwrap_used)]

use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_proto::broker::v1::send_item::Send;
use mq_test_support::{ServerProcess, workspace_binary};
use tonic::Code;
use tonic::transport::Channel;

fn start() -> ServerProcess {
    start_with(&[])
}

fn start_with(env: &[(&str, &str)]) -> ServerProcess {
    let env: Vec<(&str, &str)> = [("MQ_BROKER_AUTO_CREATE_TOPIC", "false")]
        .into_iter()
        .chain(env.iter().copied())
        .collect();
    ServerProcess::start_until(
        workspace_binary("broker"),
        &[
            "--standalone",
            "--store-dir",
            tempfile::tempdir().unwrap().keep().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--namesrv-listen",
            "127.0.0.1:0",
        ],
        &env,
        "broker listening",
    )
}

fn message(body: &str) -> pb::Message {
    mq_test_support::cluster::message("orders", body)
}

fn one(body: &str, queue_id: u32) -> pb::SendItem {
    numbered(body, queue_id, 0, 0)
}

fn numbered(body: &str, queue_id: u32, producer_id: u64, sequence: u64) -> pb::SendItem {
    item(message(body), queue_id, producer_id, sequence)
}

fn item(message: pb::Message, queue_id: u32, producer_id: u64, sequence: u64) -> pb::SendItem {
    pb::SendItem {
        send: Some(Send::Message(pb::SendMessageRequest {
            message: Some(message),
            queue_id,
            producer_id,
            sequence,
        })),
    }
}

async fn send_many(
    rpc: &mut BrokerClient<Channel>,
    sends: Vec<pb::SendItem>,
) -> Result<Vec<pb::SendOutcome>, tonic::Status> {
    rpc.send_many(pb::SendManyRequest { sends })
        .await
        .map(|r| r.into_inner().outcomes)
}

fn offsets(outcome: &pb::SendOutcome) -> Vec<u64> {
    assert!(outcome.refusal.is_none(), "refused: {outcome:?}");
    outcome.results.iter().map(|r| r.queue_offset).collect()
}

fn refusal(outcome: &pb::SendOutcome) -> &pb::SendRefusal {
    assert!(outcome.results.is_empty(), "{outcome:?}");
    outcome.refusal.as_ref().expect("a refusal")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_send_is_stored_in_order_and_answered_on_its_own() {
    let broker = start();
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 2).await;
    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();

    let mut too_late = message("late");
    too_late.delay_level = 99;
    let mut elsewhere = message("elsewhere");
    elsewhere.topic = "unknown-topic".into();
    let outcomes = send_many(
        &mut rpc,
        vec![
            one("a", 0),
            pb::SendItem {
                send: Some(Send::Batch(pb::SendBatchRequest {
                    topic: "orders".into(),
                    queue_id: 1,
                    messages: vec![message("b1"), message("b2"), message("b3")],
                    ..Default::default()
                })),
            },
            pb::SendItem {
                send: Some(Send::Message(pb::SendMessageRequest {
                    message: Some(too_late),
                    ..Default::default()
                })),
            },
            pb::SendItem { send: None },
            one("out-of-range", 7),
            pb::SendItem {
                send: Some(Send::Message(pb::SendMessageRequest {
                    message: Some(elsewhere),
                    ..Default::default()
                })),
            },
            one("c", 0),
        ],
    )
    .await
    .unwrap();
    assert_eq!(outcomes.len(), 7);
    assert_eq!(offsets(&outcomes[0]), [0]);
    assert_eq!(outcomes[0].results[0].message_id, "id-a");
    assert_eq!(offsets(&outcomes[1]), [0, 1, 2]);
    let ids: Vec<&str> = outcomes[1]
        .results
        .iter()
        .map(|r| r.message_id.as_str())
        .collect();
    assert_eq!(ids, ["id-b1", "id-b2", "id-b3"]);
    // The refused ones, each with the status its own call would get.
    for (i, code, names) in [
        (2, Code::InvalidArgument, "delay_level"),
        (3, Code::InvalidArgument, "sends[3].send"),
        (4, Code::InvalidArgument, "queue_id"),
        (5, Code::NotFound, "unknown-topic"),
    ] {
        let refused = refusal(&outcomes[i]);
        assert_eq!(refused.code, code as i32, "send {i}: {refused:?}");
        assert!(refused.message.contains(names), "send {i}: {refused:?}");
        assert!(refused.nothing_stored, "send {i}: {refused:?}");
    }
    // After the refusals, in the request's order: the queue's next offset.
    assert_eq!(offsets(&outcomes[6]), [1]);
    assert_eq!(
        broker.metric("mq_broker_send_many_requests_total"),
        Some(1.0)
    );
    assert_eq!(broker.metric("mq_broker_send_many_sends_total"), Some(7.0));

    // Read back (once the dispatcher indexed both): queue 0 holds a, then c.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let bodies = loop {
        let pulled = rpc
            .pull_message(pb::PullMessageRequest {
                group: "readers".into(),
                topic: "orders".into(),
                queue_id: 0,
                offset: 0,
                max_messages: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let bodies: Vec<Vec<u8>> = pulled.messages.iter().map(|m| m.body.to_vec()).collect();
        if bodies.len() >= 2 || std::time::Instant::now() > deadline {
            break bodies;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(bodies, [b"a".to_vec(), b"c".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbered_sends_in_one_request_are_stored_once() {
    let broker = start();
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 1).await;
    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();
    const PRODUCER: u64 = 0x5e4d;
    // The same number twice (a retry that caught up with its first try),
    // and the next one.
    let outcomes = send_many(
        &mut rpc,
        vec![
            numbered("a", 0, PRODUCER, 0),
            numbered("a", 0, PRODUCER, 0),
            numbered("b", 0, PRODUCER, 1),
        ],
    )
    .await
    .unwrap();
    assert_eq!(offsets(&outcomes[0]), [0]);
    assert_eq!(offsets(&outcomes[1]), [0], "the retry is the first one");
    assert_eq!(
        outcomes[1].results[0].offset_message_id,
        outcomes[0].results[0].offset_message_id
    );
    assert_eq!(offsets(&outcomes[2]), [1]);
    assert_eq!(
        broker.metric("mq_broker_duplicate_sends_dropped_total"),
        Some(1.0)
    );
}

/// The sends of one request share an append, which one segment must hold:
/// sends that together outgrow it are stored in rounds, and a send the
/// store would refuse (a record over its largest size, though its body
/// is within it) fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_that_outgrow_a_segment_together_are_stored_in_rounds() {
    let broker = start_with(&[
        ("MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE", "65536"),
        ("MQ_BROKER_STORE__MAX_MESSAGE_SIZE", "16384"),
    ]);
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 1).await;
    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();
    let sized = |fill: u8, len: usize| pb::Message {
        body: vec![fill; len].into(),
        ..message(&format!("{fill}"))
    };
    // 12 sends of 10 KiB: twice what a segment holds.
    let mut sends: Vec<pb::SendItem> = (0..12).map(|i| item(sized(i, 10 << 10), 0, 0, 0)).collect();
    sends.insert(5, item(sized(99, 16384), 0, 0, 0));
    let outcomes = send_many(&mut rpc, sends).await.unwrap();
    let refused = refusal(&outcomes[5]);
    assert_eq!(refused.code, Code::InvalidArgument as i32, "{refused:?}");
    assert!(
        refused.message.contains("exceeds the maximum message size"),
        "{refused:?}"
    );
    assert!(refused.nothing_stored, "{refused:?}");
    let stored: Vec<u64> = outcomes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 5)
        .flat_map(|(_, outcome)| offsets(outcome))
        .collect();
    assert_eq!(stored, (0..12).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_by_name() {
    let broker = start();
    mq_test_support::cluster::create_topic(&broker.url(), "orders", 1).await;
    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();

    let empty = send_many(&mut rpc, Vec::new()).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument, "{empty:?}");
    assert!(empty.message().contains("sends"), "{empty:?}");

    let max = mq_broker::service::send_many::MAX_SENDS;
    let too_many = send_many(&mut rpc, (0..=max).map(|_| one("x", 0)).collect())
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument, "{too_many:?}");
    assert!(
        too_many.message().contains(&format!("at most {max}")),
        "{too_many:?}"
    );
    // Neither stored anything.
    let offsets = rpc
        .get_queue_offsets(pb::GetQueueOffsetsRequest {
            topic: "orders".into(),
            queue_id: 0,
            timestamp_ms: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(offsets.max_offset, 0, "{offsets:?}");
}
