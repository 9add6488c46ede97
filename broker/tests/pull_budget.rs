//! A client that pulls and never reads: the broker holds at most its share
//! of response bytes for it, refuses it more, keeps serving others, and
//! frees everything when its connection goes.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_test_support::ServerProcess;
use prost::Message;

const PER_CLIENT: u64 = 16 << 20;

fn start(store: &std::path::Path) -> ServerProcess {
    let per_client = PER_CLIENT.to_string();
    mq_test_support::standalone_broker_with_env(
        store,
        &[
            ("MQ_BROKER_PULL_BYTES_IN_FLIGHT", "67108864"),
            ("MQ_BROKER_PULL_BYTES_IN_FLIGHT_PER_CLIENT", &per_client),
        ],
    )
    .0
}

fn pull(max_bytes: u64) -> pb::PullMessageRequest {
    pb::PullMessageRequest {
        group: "g".into(),
        topic: "big".into(),
        queue_id: 0,
        offset: 0,
        max_messages: 1024,
        max_bytes,
        ..pb::PullMessageRequest::default()
    }
}

/// A gRPC frame: not compressed, length, message.
fn grpc_frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + body.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(body.len()).unwrap());
    frame.put_slice(&body);
    frame.freeze()
}

/// Opens an HTTP/2 connection that sends `count` pulls and never reads a
/// byte of the answers (its windows stay at the 64 KiB minimum).
async fn stalled_client(addr: SocketAddr, count: usize) -> Vec<h2::client::ResponseFuture> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(65_535)
        .initial_connection_window_size(65_535)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut responses = Vec::new();
    for _ in 0..count {
        let mut client = client.clone().ready().await.unwrap();
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/mq.broker.v1.Broker/PullMessage"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (response, mut stream) = client.send_request(request, false).unwrap();
        stream.send_data(grpc_frame(&pull(8 << 20)), true).unwrap();
        responses.push(response);
    }
    responses
}

fn in_flight(broker: &ServerProcess) -> u64 {
    let line = broker
        .wait_for_log("metrics endpoint ready", Duration::from_secs(5))
        .unwrap();
    let addr = mq_test_support::parse_addr(&line).unwrap();
    let (_, body) = mq_test_support::http_get(addr, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix("mq_broker_pull_bytes_in_flight "))
        .unwrap_or_else(|| panic!("no pull_bytes_in_flight in\n{body}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_holds_at_most_its_share() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path());
    mq_test_support::cluster::create_topic(&broker.url(), "big", 1).await;
    let mut rpc = BrokerClient::connect(broker.url()).await.unwrap();
    // 12 MiB in one queue: every pull of 8 MiB gets 8 MiB.
    for _ in 0..12 {
        let messages = (0..4)
            .map(|_| pb::Message {
                topic: "big".into(),
                body: vec![7u8; 256 << 10].into(),
                ..pb::Message::default()
            })
            .collect();
        rpc.send_batch(pb::SendBatchRequest {
            topic: "big".into(),
            queue_id: 0,
            messages,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let end = rpc
        .get_queue_offsets(pb::GetQueueOffsetsRequest {
            topic: "big".into(),
            queue_id: 0,
            timestamp_ms: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(end.max_offset, 48);

    // 24 pulls of 8 MiB would be 192 MiB held for one client.
    let unread = stalled_client(broker.addr, 24).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut peak = 0;
    while Instant::now() < deadline {
        peak = peak.max(in_flight(&broker));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(peak > 0, "the stalled client's first response is held");
    assert!(
        peak <= PER_CLIENT,
        "at most one client's share is held for it: {peak}"
    );

    // Another client is served meanwhile, and is refused nothing.
    let mut other = BrokerClient::connect(broker.url()).await.unwrap();
    let pulled = other
        .pull_message(pull(2 << 20))
        .await
        .unwrap()
        .into_inner();
    assert!(!pulled.messages.is_empty());

    // The stalled client goes: what it held is freed.
    drop(unread);
    let deadline = Instant::now() + Duration::from_secs(10);
    while in_flight(&broker) > 0 {
        assert!(
            Instant::now() < deadline,
            "responses of a gone client are freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
