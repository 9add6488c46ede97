//! The consumer side of a real broker: pulls and their statuses, long
//! polling, tag filtering, offsets across a restart, membership, locks, and
//! bad input.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_test_support::ServerProcess;
use tonic::Code;
use tonic::transport::Channel;

const BROKER: &str = env!("CARGO_BIN_EXE_broker");

fn start(store: &std::path::Path, listen: &str) -> ServerProcess {
    ServerProcess::start_until(
        BROKER,
        &[
            "--standalone",
            "--store-dir",
            store.to_str().unwrap(),
            "--listen",
            listen,
            "--namesrv-listen",
            "127.0.0.1:0",
        ],
        &[],
        "broker listening",
    )
}

async fn client(broker: &ServerProcess) -> BrokerClient<Channel> {
    BrokerClient::connect(broker.url()).await.unwrap()
}

async fn create(broker: &ServerProcess, topic: &str, queues: u32) {
    mq_test_support::cluster::create_topic(&broker.url(), topic, queues).await;
}

async fn send(
    rpc: &mut BrokerClient<Channel>,
    topic: &str,
    queue_id: u32,
    body: &str,
    tags: &str,
) -> u64 {
    let message = pb::Message {
        topic: topic.into(),
        body: body.to_owned().into(),
        tags: tags.into(),
        ..pb::Message::default()
    };
    rpc.send_message(pb::SendMessageRequest {
        message: Some(message),
        queue_id,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .result
    .unwrap()
    .queue_offset
}

/// Waits until the dispatcher has indexed `count` messages of the queue
/// (sends are acknowledged before they are indexed).
async fn wait_indexed(rpc: &mut BrokerClient<Channel>, topic: &str, queue_id: u32, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let offsets = rpc
            .get_queue_offsets(pb::GetQueueOffsetsRequest {
                topic: topic.into(),
                queue_id,
                timestamp_ms: None,
            })
            .await
            .unwrap()
            .into_inner();
        if offsets.max_offset >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}/{queue_id} never reached {count} messages"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn pull_request(
    topic: &str,
    queue_id: u32,
    offset: u64,
    tags: &str,
    suspend_ms: u64,
) -> pb::PullMessageRequest {
    pb::PullMessageRequest {
        group: "g".into(),
        topic: topic.into(),
        queue_id,
        offset,
        max_messages: 32,
        max_bytes: 0,
        tag_expression: tags.into(),
        suspend_timeout_ms: suspend_ms,
        sql_expression: String::new(),
    }
}

fn status(response: &pb::PullMessageResponse) -> pb::PullStatus {
    pb::PullStatus::try_from(response.status).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_answer_found_no_new_illegal_offsets_and_filter_tags() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "127.0.0.1:0");
    let mut rpc = client(&broker).await;
    create(&broker, "p", 2).await;
    for (i, tag) in ["A", "B", "A", "C"].iter().enumerate() {
        send(&mut rpc, "p", 0, &format!("m{i}"), tag).await;
    }
    wait_indexed(&mut rpc, "p", 0, 4).await;
    let found = rpc
        .pull_message(pull_request("p", 0, 0, "*", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&found), pb::PullStatus::Found);
    assert_eq!(found.messages.len(), 4);
    assert_eq!(
        (found.next_offset, found.min_offset, found.max_offset),
        (4, 0, 4)
    );
    assert_eq!(found.messages[1].tags, "B");
    assert!(!found.messages[0].unique_id.is_empty());
    assert!(mq_common::offset_id::decode("id", &found.messages[0].offset_message_id).is_ok());

    let a_or_c = rpc
        .pull_message(pull_request("p", 0, 0, "A || C", 0))
        .await
        .unwrap()
        .into_inner();
    let bodies: Vec<_> = a_or_c
        .messages
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect();
    assert_eq!(bodies, ["m0", "m2", "m3"]);
    let none = rpc
        .pull_message(pull_request("p", 0, 0, "Z", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (status(&none), none.next_offset),
        (pb::PullStatus::NoMatchedMsg, 4),
        "skipped to the end"
    );

    let at_end = rpc
        .pull_message(pull_request("p", 0, 4, "*", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&at_end), pb::PullStatus::NoNewMsg);
    let beyond = rpc
        .pull_message(pull_request("p", 0, 99, "*", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (status(&beyond), beyond.next_offset),
        (pb::PullStatus::OffsetIllegal, 4)
    );
    // A configured queue without messages yet is empty, not unknown.
    let empty = rpc
        .pull_message(pull_request("p", 1, 0, "*", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&empty), pb::PullStatus::NoNewMsg);

    let offsets = rpc
        .get_queue_offsets(pb::GetQueueOffsetsRequest {
            topic: "p".into(),
            queue_id: 0,
            timestamp_ms: Some(0),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            offsets.min_offset,
            offsets.max_offset,
            offsets.search_offset
        ),
        (0, 4, 0)
    );
    let future = rpc
        .get_queue_offsets(pb::GetQueueOffsetsRequest {
            topic: "p".into(),
            queue_id: 0,
            timestamp_ms: Some(u64::MAX),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(future.search_offset, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_pull_wakes_within_milliseconds_of_a_send() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "127.0.0.1:0");
    let mut rpc = client(&broker).await;
    create(&broker, "lp", 1).await;
    let mut latencies = Vec::new();
    for round in 0..20u64 {
        let mut puller = client(&broker).await;
        let held = tokio::spawn(async move {
            let response = puller
                .pull_message(pull_request("lp", 0, round, "*", 15_000))
                .await
                .unwrap()
                .into_inner();
            (Instant::now(), response)
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let sent_at = Instant::now();
        send(&mut rpc, "lp", 0, "wake", "").await;
        let (woke_at, response) = held.await.unwrap();
        assert_eq!(status(&response), pb::PullStatus::Found);
        latencies.push(woke_at.duration_since(sent_at));
    }
    latencies.sort();
    let (p50, max) = (
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    eprintln!("long-poll wake-up after send: p50 {p50:?}, max {max:?}");
    // The suspend timeout is 15 s; a wake-up by polling would take seconds.
    assert!(
        max < Duration::from_millis(1_000),
        "p50 {p50:?}, max {max:?}"
    );

    // With nothing sent, the pull is held for its suspend timeout.
    let started = Instant::now();
    let response = rpc
        .pull_message(pull_request("lp", 0, 20, "*", 300))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&response), pb::PullStatus::NoNewMsg);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start(dir.path(), "127.0.0.1:0");
    let mut rpc = client(&broker).await;
    create(&broker, "o", 2).await;
    for i in 0..17 {
        send(&mut rpc, "o", 1, &format!("m{i}"), "").await;
    }
    wait_indexed(&mut rpc, "o", 1, 17).await;
    rpc.commit_offset(pb::CommitOffsetRequest {
        group: "g".into(),
        topic: "o".into(),
        queue_id: 1,
        offset: 17,
        offset_reset_version: 0,
    })
    .await
    .unwrap();
    drop(rpc);
    assert!(broker.terminate(Duration::from_secs(20)).unwrap().success());
    let broker = start(dir.path(), "127.0.0.1:0");
    let mut rpc = client(&broker).await;
    let query = |queue_id| pb::QueryOffsetRequest {
        group: "g".into(),
        topic: "o".into(),
        queue_id,
    };
    assert_eq!(
        rpc.query_offset(query(1))
            .await
            .unwrap()
            .into_inner()
            .offset,
        Some(17)
    );
    assert_eq!(
        rpc.query_offset(query(0))
            .await
            .unwrap()
            .into_inner()
            .offset,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_versions_and_queue_locks() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "127.0.0.1:0");
    let mut rpc = client(&broker).await;
    create(&broker, "m", 2).await;
    let beat = |id: &str| pb::HeartbeatRequest {
        group: "grp".into(),
        client_id: id.into(),
        subscriptions: vec![pb::Subscription {
            topic: "m".into(),
            tag_expression: "*".into(),
            sql_expression: String::new(),
        }],
        consume_model: pb::ConsumeModel::Clustering as i32,
        held: vec![pb::QueueRef {
            topic: "m".into(),
            queue_id: 1,
            broker_name: "broker-a".into(),
        }],
        client_kind: String::new(),
    };
    let v1 = rpc
        .heartbeat(beat("c1"))
        .await
        .unwrap()
        .into_inner()
        .group_version;
    let v2 = rpc
        .heartbeat(beat("c2"))
        .await
        .unwrap()
        .into_inner()
        .group_version;
    assert!(v2 > v1);
    let list = rpc
        .get_consumer_list(pb::GetConsumerListRequest {
            group: "grp".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        list.members[0].held[0].queue_id, 1,
        "held queues are reported back"
    );
    assert_eq!(
        (list.client_ids, list.group_version),
        (vec!["c1".to_string(), "c2".to_string()], v2)
    );

    assert_eq!(locked(&mut rpc, "c1", "m").await, 1);
    assert_eq!(locked(&mut rpc, "c2", "m").await, 0, "held by c1");
    rpc.unregister_consumer(pb::UnregisterConsumerRequest {
        group: "grp".into(),
        client_id: "c1".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        locked(&mut rpc, "c2", "m").await,
        1,
        "c1's locks left with it"
    );
    assert_eq!(members(&mut rpc).await, ["c2"]);
}

fn member(group: &str, client_id: &str) -> pb::HeartbeatRequest {
    pb::HeartbeatRequest {
        group: group.into(),
        client_id: client_id.into(),
        subscriptions: vec![pb::Subscription {
            topic: "s".into(),
            tag_expression: "*".into(),
            sql_expression: String::new(),
        }],
        consume_model: pb::ConsumeModel::Clustering as i32,
        held: vec![],
        client_kind: String::new(),
    }
}

/// How many of queue 0 of `topic` `client_id` of group "grp" holds once
/// it asked to lock it (0 or 1).
async fn locked(rpc: &mut BrokerClient<Channel>, client_id: &str, topic: &str) -> usize {
    let request = pb::LockQueuesRequest {
        group: "grp".into(),
        client_id: client_id.into(),
        queues: vec![pb::QueueRef {
            topic: topic.into(),
            queue_id: 0,
            broker_name: String::new(),
        }],
    };
    rpc.lock_queues(request)
        .await
        .unwrap()
        .into_inner()
        .locked
        .len()
}

/// The client ids of group "grp".
async fn members(rpc: &mut BrokerClient<Channel>) -> Vec<String> {
    rpc.get_consumer_list(pb::GetConsumerListRequest {
        group: "grp".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .client_ids
}

/// The next answer on a session, within 5 s.
async fn next_on(session: &mut tonic::Streaming<pb::HeartbeatResponse>) -> pb::HeartbeatResponse {
    tokio::time::timeout(Duration::from_secs(5), session.message())
        .await
        .expect("an answer on the session within 5 s")
        .unwrap()
        .expect("the session is open")
}

/// A consumer's session: it joins the group, hears every change of it at
/// once, and when the session ends (its client cancels it, as a dead
/// process's closed connection does) the member and its locks go at once,
/// long before the 120 s expiry (the broker's default here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_s_end_drops_its_member_and_tells_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "127.0.0.1:0");
    create(&broker, "s", 2).await;
    let (mut one, mut two) = (client(&broker).await, client(&broker).await);
    let mut first = one
        .consumer_session(member("grp", "c1"))
        .await
        .unwrap()
        .into_inner();
    let joined = next_on(&mut first).await;
    let mut second = two
        .consumer_session(member("grp", "c2"))
        .await
        .unwrap()
        .into_inner();
    let both = next_on(&mut second).await;
    assert!(both.group_version > joined.group_version);
    assert_eq!(
        next_on(&mut first).await.group_version,
        both.group_version,
        "c1 hears of c2's join"
    );
    assert_eq!(locked(&mut one, "c1", "s").await, 1);

    // An operator's reset reaches the member at once too.
    two.reset_offset(pb::ResetOffsetRequest {
        group: "grp".into(),
        topic: "s".into(),
        to: Some(pb::reset_offset_request::To::Earliest(true)),
    })
    .await
    .unwrap();
    let reset = next_on(&mut second).await;
    assert!(reset.offset_reset_version > both.offset_reset_version);

    drop(first);
    let left = next_on(&mut second).await;
    assert!(left.group_version > reset.group_version, "c1's leave");
    assert_eq!(members(&mut two).await, ["c2"]);
    assert_eq!(
        locked(&mut two, "c2", "s").await,
        1,
        "c1's lock left with its session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_consumer_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "127.0.0.1:0");
    let mut rpc = client(&broker).await;
    create(&broker, "b", 1).await;
    let pull = |f: fn(&mut pb::PullMessageRequest)| {
        let mut request = pull_request("b", 0, 0, "*", 0);
        f(&mut request);
        request
    };
    let cases: Vec<(pb::PullMessageRequest, Code, &str)> = vec![
        (pull(|r| r.topic = "nope".into()), Code::NotFound, "nope"),
        (
            pull(|r| r.group = String::new()),
            Code::InvalidArgument,
            "group",
        ),
        (
            pull(|r| r.max_messages = 0),
            Code::InvalidArgument,
            "max_messages",
        ),
        (
            pull(|r| r.max_messages = 1_000_000),
            Code::InvalidArgument,
            "max_messages",
        ),
        (
            pull(|r| r.max_bytes = u64::MAX),
            Code::InvalidArgument,
            "max_bytes",
        ),
        (
            pull(|r| r.suspend_timeout_ms = 3_600_000),
            Code::InvalidArgument,
            "suspend_timeout_ms",
        ),
        (
            pull(|r| r.tag_expression = "a ||".into()),
            Code::InvalidArgument,
            "tag_expression",
        ),
        (pull(|r| r.queue_id = 5), Code::InvalidArgument, "queue_id"),
        (
            pull(|r| r.sql_expression = "a > 'x'".into()),
            Code::InvalidArgument,
            "sql_expression: invalid SQL filter at position 5: string 'x' where a number is needed",
        ),
        (
            pull(|r| r.sql_expression = "(a = 1".into()),
            Code::InvalidArgument,
            "sql_expression: invalid SQL filter at position 7: expected ')'",
        ),
        (
            pull(|r| {
                r.tag_expression = "TagA".into();
                r.sql_expression = "a = 1".into();
            }),
            Code::InvalidArgument,
            "tag_expression: must be empty or \"*\" with sql_expression",
        ),
    ];
    for (request, code, needle) in cases {
        let err = rpc.pull_message(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        assert!(
            err.message().contains(needle),
            "{:?} should name {needle}",
            err.message()
        );
    }
    let err = rpc
        .get_consumer_list(pb::GetConsumerListRequest {
            group: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("ghost"));
    let err = rpc
        .heartbeat(pb::HeartbeatRequest {
            group: "g".into(),
            client_id: "c".into(),
            subscriptions: vec![],
            consume_model: 0,
            held: vec![],
            client_kind: String::new(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("consume_model"), "{}", err.message());
    let mut bad_sql = member("g", "c");
    bad_sql.subscriptions[0].sql_expression = "a IN (b)".into();
    let err = rpc.heartbeat(bad_sql).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains("subscriptions[0].sql_expression: invalid SQL filter at position 7"),
        "{}",
        err.message()
    );
    for (request, needle) in [
        (member("g", "two words"), "client_id"),
        (member("", "c"), "group"),
        (
            pb::HeartbeatRequest {
                consume_model: 7,
                ..member("g", "c")
            },
            "consume_model",
        ),
    ] {
        let err = rpc.consumer_session(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(err.message().contains(needle), "{:?}", err.message());
    }
    let err = rpc
        .commit_offset(pb::CommitOffsetRequest {
            group: "g".into(),
            topic: "nope".into(),
            queue_id: 0,
            offset: 1,
            offset_reset_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Offsets and locks only for queues that exist, offsets only up to the
    // queue's end: a phantom commit is refused and nothing is saved.
    send(&mut rpc, "b", 0, "one", "").await;
    wait_indexed(&mut rpc, "b", 0, 1).await;
    let commit = |queue_id, offset| pb::CommitOffsetRequest {
        group: "g".into(),
        topic: "b".into(),
        queue_id,
        offset,
        offset_reset_version: 0,
    };
    for (request, needle) in [
        (commit(u32::MAX, 1), "queue_id: 4294967295 is out of range"),
        (commit(1, 0), "queue_id: 1 is out of range"),
        (
            commit(0, u64::MAX),
            "is past the end of queue b:0 (its max offset is 1)",
        ),
        (commit(0, 2), "offset: 2 is past the end"),
    ] {
        let err = rpc.commit_offset(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(err.message().contains(needle), "{:?}", err.message());
    }
    let saved = rpc
        .query_offset(pb::QueryOffsetRequest {
            group: "g".into(),
            topic: "b".into(),
            queue_id: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.offset, None, "nothing was committed");
    rpc.commit_offset(commit(0, 1)).await.unwrap();

    let lock = |queues: Vec<pb::QueueRef>| pb::LockQueuesRequest {
        group: "g".into(),
        client_id: "c".into(),
        queues,
    };
    let queue = |queue_id| pb::QueueRef {
        topic: "b".into(),
        queue_id,
        broker_name: String::new(),
    };
    let err = rpc
        .lock_queues(lock(vec![queue(0), queue(7)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains("queues[1].queue_id: 7 is out of range"),
        "{}",
        err.message()
    );
    let many = (0..100_000).map(|_| queue(0)).collect();
    let err = rpc.lock_queues(lock(many)).await.unwrap_err();
    assert!(err.message().contains("at most 1024"), "{}", err.message());
    let locked = rpc
        .lock_queues(lock(vec![queue(0)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(locked.locked.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_offsets_count_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "127.0.0.1:0");
    let mut rpc = client(&broker).await;
    create(&broker, "last", 1).await;
    for round in 1..=20u64 {
        for i in 0..10 {
            send(&mut rpc, "last", 0, &format!("{round}-{i}"), "").await;
        }
        // No waiting here: "the end of the queue" must include what was
        // just acknowledged, or a new group would start before it.
        let offsets = rpc
            .get_queue_offsets(pb::GetQueueOffsetsRequest {
                topic: "last".into(),
                queue_id: 0,
                timestamp_ms: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(offsets.max_offset, round * 10);
    }
}

async fn queue_end(rpc: &mut BrokerClient<Channel>, topic: &str) -> u64 {
    rpc.get_queue_offsets(pb::GetQueueOffsetsRequest {
        topic: topic.into(),
        queue_id: 0,
        timestamp_ms: None,
    })
    .await
    .unwrap()
    .into_inner()
    .max_offset
}

async fn keyed(rpc: &mut BrokerClient<Channel>, topic: &str, key: &str) -> usize {
    rpc.query_message(pb::QueryMessageRequest {
        topic: topic.into(),
        key: key.into(),
        ..pb::QueryMessageRequest::default()
    })
    .await
    .unwrap()
    .into_inner()
    .messages
    .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_topic_made_again_starts_empty_even_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start(dir.path(), "127.0.0.1:0");
    let mut rpc = client(&broker).await;
    create(&broker, "again", 1).await;
    for i in 0..5 {
        let message = pb::Message {
            topic: "again".into(),
            body: format!("old {i}").into(),
            keys: vec!["old-key".into()],
            ..pb::Message::default()
        };
        rpc.send_message(pb::SendMessageRequest {
            message: Some(message),
            queue_id: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    wait_indexed(&mut rpc, "again", 0, 5).await;
    rpc.commit_offset(pb::CommitOffsetRequest {
        group: "g".into(),
        topic: "again".into(),
        queue_id: 0,
        offset: 5,
        offset_reset_version: 0,
    })
    .await
    .unwrap();
    assert_eq!(keyed(&mut rpc, "again", "old-key").await, 5);

    rpc.delete_topic(pb::DeleteTopicRequest {
        topic: "again".into(),
    })
    .await
    .unwrap();
    create(&broker, "again", 1).await;
    assert_eq!(queue_end(&mut rpc, "again").await, 0, "no old queue");
    assert_eq!(keyed(&mut rpc, "again", "old-key").await, 0, "no old keys");
    let committed = rpc
        .query_offset(pb::QueryOffsetRequest {
            group: "g".into(),
            topic: "again".into(),
            queue_id: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(committed.offset, None, "no old offsets");
    assert_eq!(send(&mut rpc, "again", 0, "new", "").await, 0);
    wait_indexed(&mut rpc, "again", 0, 1).await;

    // A crash, and no checkpoint: recovery replays the whole CommitLog,
    // old records included.
    drop(rpc);
    broker.kill();
    std::fs::remove_file(dir.path().join("checkpoint")).unwrap();
    let broker = start(dir.path(), "127.0.0.1:0");
    let mut rpc = client(&broker).await;
    assert_eq!(queue_end(&mut rpc, "again").await, 1);
    let pulled = rpc
        .pull_message(pull_request("again", 0, 0, "*", 0))
        .await
        .unwrap()
        .into_inner();
    let bodies: Vec<_> = pulled.messages.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies, [bytes::Bytes::from("new")]);
    assert_eq!(keyed(&mut rpc, "again", "old-key").await, 0);
}
