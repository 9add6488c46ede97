//! The standalone proxy (RocketMQ 5's cluster mode) in front of a
//! nameserver and two brokers, all real processes: routes name the proxy
//! for every queue, sends spread over both brokers, receives and
//! acknowledgements reach the broker that holds each message.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mq_proto::apache::rocketmq::v2::messaging_service_client::MessagingServiceClient;
use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use mq_proto::broker::v1 as broker;
use mq_test_support::{ProxiedCluster, cluster::wait_for_route, proxied_cluster};

mod support;
use support::{ack, code, duration, message, receive, request, resource, send};

async fn create_topic_everywhere(cluster: &ProxiedCluster, topic: &str) {
    for b in &cluster.brokers {
        let mut rpc = broker::broker_client::BrokerClient::connect(b.url())
            .await
            .unwrap();
        rpc.create_topic(broker::CreateTopicRequest {
            config: Some(broker::TopicConfig {
                topic: topic.into(),
                read_queue_count: 2,
                write_queue_count: 2,
                perm: 6,
                message_type: String::new(),
            }),
        })
        .await
        .unwrap();
    }
    wait_for_route(&cluster.namesrv, topic, cluster.brokers.len()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_proxy_serves_a_whole_cluster() {
    let root = tempfile::tempdir().unwrap();
    let cluster = proxied_cluster(
        root.path(),
        2,
        &[("MQ_BROKER_POP_MIN_INVISIBLE", "1s")],
        &[("MQ_PROXY_MIN_INVISIBLE", "1s")],
    );
    create_topic_everywhere(&cluster, "orders").await;
    let mut rpc = MessagingServiceClient::connect(format!("http://{}", cluster.proxy_addr))
        .await
        .unwrap();

    // Every queue of both brokers, each reached through the proxy.
    let route = rpc
        .query_route(request(v2::QueryRouteRequest {
            topic: resource("orders"),
            endpoints: Some(mq_proxy::route::endpoints(&cluster.proxy_addr)),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&route.status), Code::Ok, "{route:?}");
    assert_eq!(route.message_queues.len(), 4);
    let brokers: BTreeSet<String> = route
        .message_queues
        .iter()
        .map(|q| q.broker.as_ref().unwrap().name.clone())
        .collect();
    assert_eq!(
        brokers,
        BTreeSet::from(["broker-a".into(), "broker-b".into()])
    );
    for queue in &route.message_queues {
        let address = &queue
            .broker
            .as_ref()
            .unwrap()
            .endpoints
            .as_ref()
            .unwrap()
            .addresses[0];
        assert_eq!(
            format!("{}:{}", address.host, address.port),
            cluster.proxy_addr
        );
    }

    // Sends spread over both brokers.
    for i in 0..20 {
        let sent = send(
            &mut rpc,
            vec![message(
                "orders",
                &format!("o-{i}"),
                v2::MessageType::Normal,
            )],
        )
        .await;
        assert_eq!(code(&sent.status), Code::Ok, "{sent:?}");
    }
    for b in &cluster.brokers {
        let mut direct = broker::broker_client::BrokerClient::connect(b.url())
            .await
            .unwrap();
        let mut stored = 0;
        for queue_id in 0..2 {
            let offsets = direct
                .get_queue_offsets(broker::GetQueueOffsetsRequest {
                    topic: "orders".into(),
                    queue_id,
                    timestamp_ms: None,
                })
                .await
                .unwrap()
                .into_inner();
            stored += offsets.max_offset;
        }
        assert_eq!(stored, 10, "round robin over four queues of two brokers");
    }

    // Receive from each broker through the proxy; acknowledge; nothing
    // comes back.
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 20 && Instant::now() < deadline {
        for queue in route.message_queues.iter().step_by(2) {
            let got = receive(&mut rpc, "billing", queue, 32, 2_000, 1_500).await;
            seen.extend(got.bodies());
            if !got.messages.is_empty() {
                let acked = ack(&mut rpc, "billing", "orders", &got.handles()).await;
                assert!(acked.iter().all(|c| *c == Code::Ok), "{acked:?}");
            }
        }
    }
    assert_eq!(seen.len(), 20);
    for queue in route.message_queues.iter().step_by(2) {
        let none = receive(&mut rpc, "billing", queue, 32, 2_000, 3_000).await;
        assert_eq!(none.code(), Code::MessageNotFound, "{:?}", none.bodies());
    }

    // A change of invisible time reaches the broker the handle names.
    let one = send(
        &mut rpc,
        vec![message("orders", "late", v2::MessageType::Normal)],
    )
    .await;
    assert_eq!(code(&one.status), Code::Ok);
    let mut handle = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while handle.is_none() && Instant::now() < deadline {
        for queue in route.message_queues.iter().step_by(2) {
            let got = receive(&mut rpc, "billing", queue, 1, 60_000, 1_000).await;
            if let Some(h) = got.handles().into_iter().next() {
                handle = Some(h);
            }
        }
    }
    let changed = rpc
        .change_invisible_duration(request(v2::ChangeInvisibleDurationRequest {
            group: resource("billing"),
            topic: resource("orders"),
            receipt_handle: handle.unwrap(),
            invisible_duration: Some(duration(1_000)),
            message_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&changed.status), Code::Ok, "{changed:?}");
    assert_eq!(
        ack(&mut rpc, "billing", "orders", &[changed.receipt_handle]).await,
        [Code::Ok]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_binary_says_what_is_wrong_with_its_settings() {
    let (status, _, stderr) = mq_test_support::run_to_end(
        mq_test_support::workspace_binary("proxy"),
        &["--listen", "127.0.0.1:0"],
        &[],
    );
    assert!(!status.success());
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .contains("namesrv is required"),
        "{stderr}"
    );
    let (status, stdout, _) =
        mq_test_support::run_to_end(mq_test_support::workspace_binary("proxy"), &["--help"], &[]);
    assert!(status.success());
    assert!(
        stdout.contains("--namesrv") && stdout.contains("cluster"),
        "{stdout}"
    );
}
