//! RocketMQ 5's pull consumer through the proxy in a real broker: offsets
//! looked up, messages pulled from an offset, offsets committed and read.

#![allow(clippy::unwrap_used)]

mod support;

use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_consumer_reads_from_offsets_it_keeps_and_commits() {
    let cluster = Cluster::start(&[]);
    create_topic(&cluster, "log", 1, "").await;
    let mut rpc = client(&cluster).await;
    send_many(&mut rpc, "log", "l", 5).await;
    let queue = some_queue(&mut rpc, &cluster, "log").await;

    let query = |policy: v2::QueryOffsetPolicy, timestamp: Option<prost_types::Timestamp>| {
        request(v2::QueryOffsetRequest {
            message_queue: Some(queue.clone()),
            query_offset_policy: policy as i32,
            timestamp,
        })
    };
    let begin = rpc
        .query_offset(query(v2::QueryOffsetPolicy::Beginning, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((code(&begin.status), begin.offset), (Code::Ok, 0));
    let end = rpc
        .query_offset(query(v2::QueryOffsetPolicy::End, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((code(&end.status), end.offset), (Code::Ok, 5));
    let at = rpc
        .query_offset(query(v2::QueryOffsetPolicy::Timestamp, Some(now())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (code(&at.status), at.offset),
        (Code::Ok, 5),
        "nothing stored after now"
    );
    let bad = rpc
        .query_offset(query(v2::QueryOffsetPolicy::Timestamp, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&bad.status), Code::BadRequest);

    let pull = |offset: i64, batch: i32| {
        request(v2::PullMessageRequest {
            group: resource("readers"),
            message_queue: Some(queue.clone()),
            offset,
            batch_size: batch,
            filter_expression: None,
            long_polling_timeout: Some(duration(0)),
        })
    };
    let mut stream = rpc.pull_message(pull(2, 10)).await.unwrap().into_inner();
    let (mut statuses, mut bodies, mut next) = (Vec::new(), Vec::new(), None);
    while let Some(reply) = stream.message().await.unwrap() {
        match reply.content.unwrap() {
            v2::pull_message_response::Content::Status(s) => statuses.push(s.code),
            v2::pull_message_response::Content::Message(m) => {
                assert!(
                    m.system_properties
                        .as_ref()
                        .unwrap()
                        .receipt_handle
                        .is_none()
                );
                bodies.push(String::from_utf8(m.body.to_vec()).unwrap());
            }
            v2::pull_message_response::Content::NextOffset(n) => next = Some(n),
        }
    }
    assert_eq!(statuses, [Code::Ok as i32]);
    assert_eq!(bodies, ["l-2", "l-3", "l-4"]);
    assert_eq!(next, Some(5));

    // Nothing committed yet, then what was committed.
    let get = || {
        request(v2::GetOffsetRequest {
            group: resource("readers"),
            message_queue: Some(queue.clone()),
        })
    };
    let none = rpc.get_offset(get()).await.unwrap().into_inner();
    assert_eq!(code(&none.status), Code::NotFound);
    let updated = rpc
        .update_offset(request(v2::UpdateOffsetRequest {
            group: resource("readers"),
            message_queue: Some(queue.clone()),
            offset: 5,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&updated.status), Code::Ok);
    let got = rpc.get_offset(get()).await.unwrap().into_inner();
    assert_eq!((code(&got.status), got.offset), (Code::Ok, 5));

    // Bad input: a negative offset, a queue without its broker.
    let mut stream = rpc.pull_message(pull(-1, 10)).await.unwrap().into_inner();
    let reply = stream.message().await.unwrap().unwrap();
    let Some(v2::pull_message_response::Content::Status(status)) = reply.content else {
        panic!("a status expected");
    };
    assert_eq!(status.code, Code::BadRequest as i32);
    let mut orphan = queue.clone();
    orphan.broker = None;
    let refused = rpc
        .update_offset(request(v2::UpdateOffsetRequest {
            group: resource("readers"),
            message_queue: Some(orphan),
            offset: 1,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&refused.status), Code::BadRequest);
}
