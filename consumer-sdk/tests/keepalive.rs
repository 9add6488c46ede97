//! A broker connection that goes silent (a machine or a network that died
//! without closing it) fails a long-polling pull within seconds, by the
//! HTTP/2 keepalive ping going unanswered, instead of holding it for its
//! whole timeout: after a master's machine dies, its queues are read from
//! the new master seconds later, not 20 s later.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use mq_consumer::Connector;
use mq_consumer::cluster::Cluster;
use mq_nameserver_client::NameServerClient;
use mq_proto::broker::v1 as pb;
use mq_test_support::proxy::Proxy;
use mq_test_support::standalone_broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_fails_a_held_pull_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, namesrv) = standalone_broker(dir.path());
    mq_test_support::cluster::create_topic(&broker.url(), "quiet", 1).await;
    let proxy = Proxy::start(broker.addr).await;
    let cluster = Cluster::new(
        NameServerClient::from_list(&namesrv).unwrap(),
        Connector::default(),
    );
    let mut client = cluster.client(&proxy.addr.to_string()).unwrap();
    let pull = |suspend_ms: u64| {
        let mut request = tonic::Request::new(pb::PullMessageRequest {
            group: "g".into(),
            topic: "quiet".into(),
            max_messages: 32,
            suspend_timeout_ms: suspend_ms,
            ..Default::default()
        });
        request.set_timeout(Duration::from_secs(20));
        request
    };
    // Connected and answered.
    client.pull_message(pull(0)).await.unwrap();

    // A pull held (nothing to read), then the network goes quiet.
    let held = tokio::spawn({
        let mut client = client.clone();
        let request = pull(15_000);
        async move {
            let started = Instant::now();
            (client.pull_message(request).await, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.silence();
    let (result, took) = held.await.unwrap();
    let err = result.unwrap_err();
    assert_ne!(
        err.code(),
        tonic::Code::DeadlineExceeded,
        "{err:?} after {took:?}"
    );
    assert!(
        took < Duration::from_secs(12),
        "the dead connection was noticed after {took:?} ({err:?})"
    );
}
