//! Every input rule of the nameserver, checked against the real binary:
//! INVALID_ARGUMENT naming the field, and no change to the route table.

mod support;

use mq_proto::nameserver::v1 as pb;
use support::*;
use tonic::Code;

type RegisterMutation = Box<dyn Fn(&mut pb::RegisterBrokerRequest)>;
type UnregisterMutation = fn(&mut pb::UnregisterBrokerRequest);

fn good() -> pb::RegisterBrokerRequest {
    registration(
        "broker-a",
        "127.0.0.1:10911",
        vec![topic("fine_topic", 4), topic("orders", 4)],
        7,
    )
}

fn assert_invalid(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with(&format!("{field}:")),
        "message {:?} should name {field}",
        status.message()
    );
}

#[tokio::test]
async fn bad_registrations_are_refused_naming_the_field_and_change_nothing() {
    let server = start_nameserver(&[]);
    let mut rpc = rpc(&server).await;
    let long = "x".repeat(128);
    let cases: Vec<(&str, RegisterMutation)> = vec![
        ("cluster_name", Box::new(|r| r.cluster_name.clear())),
        (
            "cluster_name",
            Box::new(|r| r.cluster_name = "a cluster".into()),
        ),
        ("broker_name", Box::new(|r| r.broker_name.clear())),
        ("broker_name", {
            let long = long.clone();
            Box::new(move |r| r.broker_name = long.clone())
        }),
        (
            "broker_name",
            Box::new(|r| r.broker_name = "broker/a".into()),
        ),
        ("broker_addr", Box::new(|r| r.broker_addr.clear())),
        (
            "broker_addr",
            Box::new(|r| r.broker_addr = "127.0.0.1".into()),
        ),
        (
            "broker_addr",
            Box::new(|r| r.broker_addr = "host:70000".into()),
        ),
        ("data_version", Box::new(|r| r.data_version = None)),
        ("proxy_addr", Box::new(|r| r.proxy_addr = "no-port".into())),
        (
            "topics[1].message_type",
            Box::new(|r| r.topics[1].message_type = "ORDERED".into()),
        ),
        ("topics[1].topic", Box::new(|r| r.topics[1].topic.clear())),
        ("topics[1].topic", {
            let long = long.clone();
            Box::new(move |r| r.topics[1].topic = long.clone())
        }),
        (
            "topics[1].topic",
            Box::new(|r| r.topics[1].topic = "orders.eu".into()),
        ),
        (
            "topics[1].topic",
            Box::new(|r| r.topics[1].topic = "ord ers".into()),
        ),
        (
            "topics[1].topic",
            Box::new(|r| r.topics[1].topic = "fine_topic".into()),
        ),
        (
            "topics[1].read_queue_count",
            Box::new(|r| r.topics[1].read_queue_count = 0),
        ),
        (
            "topics[1].read_queue_count",
            Box::new(|r| r.topics[1].read_queue_count = 1025),
        ),
        (
            "topics[1].write_queue_count",
            Box::new(|r| r.topics[1].write_queue_count = 0),
        ),
        (
            "topics[1].write_queue_count",
            Box::new(|r| r.topics[1].write_queue_count = u32::MAX),
        ),
        ("topics[1].perm", Box::new(|r| r.topics[1].perm = 7)),
        ("topics[1].perm", Box::new(|r| r.topics[1].perm = 8)),
    ];
    for (field, mutate) in cases {
        let mut request = good();
        mutate(&mut request);
        let status = rpc.register_broker(request.clone()).await.unwrap_err();
        assert_invalid(&status, field);
        // The valid first topic of the refused registration was not applied.
        let status = query(&mut rpc, "fine_topic").await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::NotFound,
            "partial update after {request:?}"
        );
    }
    let cluster = rpc
        .get_cluster_info(pb::GetClusterInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        cluster.clusters.is_empty(),
        "no broker registered: {cluster:?}"
    );
}

#[tokio::test]
async fn a_bad_update_leaves_the_previous_routes_intact() {
    let server = start_nameserver(&[]);
    let mut rpc = rpc(&server).await;
    rpc.register_broker(good()).await.unwrap();
    let before = query(&mut rpc, "orders").await.unwrap();

    let mut update: pb::RegisterBrokerRequest = good();
    update.data_version = Some(pb::DataVersion {
        timestamp_ms: 1,
        counter: 8,
    });
    update.topics = vec![topic("new_topic", 2), topic("bad topic", 2)];
    let status = rpc.register_broker(update).await.unwrap_err();
    assert_invalid(&status, "topics[1].topic");

    let after = query(&mut rpc, "orders").await.unwrap();
    assert_eq!(before, after);
    let topics = rpc
        .list_topics(pb::ListTopicsRequest {})
        .await
        .unwrap()
        .into_inner()
        .topics;
    assert_eq!(topics, ["fine_topic", "orders"]);
}

#[tokio::test]
async fn bad_topic_names_in_queries_and_deletions_are_refused() {
    let server = start_nameserver(&[]);
    let mut rpc = rpc(&server).await;
    for name in [String::new(), "x".repeat(128), "a*b".into(), "naïve".into()] {
        let status = query(&mut rpc, &name).await.unwrap_err();
        assert_invalid(&status, "topic");
        let status = rpc
            .delete_topic(pb::DeleteTopicRequest {
                topic: name.clone(),
            })
            .await
            .unwrap_err();
        assert_invalid(&status, "topic");
    }
}

#[tokio::test]
async fn bad_unregistrations_are_refused_naming_the_field() {
    let server = start_nameserver(&[]);
    let mut rpc = rpc(&server).await;
    let valid = pb::UnregisterBrokerRequest {
        cluster_name: "DefaultCluster".into(),
        broker_name: "broker-a".into(),
        broker_id: 0,
        broker_addr: "127.0.0.1:10911".into(),
    };
    let cases: [(&str, UnregisterMutation); 3] = [
        ("cluster_name", |r| r.cluster_name.clear()),
        ("broker_name", |r| r.broker_name = "%bad%".into()),
        ("broker_addr", |r| r.broker_addr = "no-port".into()),
    ];
    for (field, mutate) in cases {
        let mut request = valid.clone();
        mutate(&mut request);
        let status = rpc.unregister_broker(request).await.unwrap_err();
        assert_invalid(&status, field);
    }
}
