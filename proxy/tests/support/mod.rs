//! A standalone broker with its proxy, and requests as RocketMQ 5's
//! official clients make them.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use mq_proto::apache::rocketmq::v2::messaging_service_client::MessagingServiceClient;
use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use mq_proto::broker::v1 as broker;
use mq_test_support::{ServerProcess, cluster::wait_for_route, standalone_broker_with_env};
use tonic::transport::Channel;

pub struct Cluster {
    dir: tempfile::TempDir,
    pub broker: ServerProcess,
    pub namesrv: String,
    pub proxy: String,
    env: Vec<(String, String)>,
}

impl Cluster {
    /// A standalone broker (with `MQ_BROKER_*` settings in `env`).
    pub fn start(env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let (broker, namesrv, proxy) = start_broker(dir.path(), env);
        Cluster {
            dir,
            broker,
            namesrv,
            proxy,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Kills the broker (SIGKILL) and starts it again on its store.
    pub fn crash_and_restart(&mut self) {
        self.broker.kill();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (broker, namesrv, proxy) = start_broker(self.dir.path(), &env);
        self.broker = broker;
        self.namesrv = namesrv;
        self.proxy = proxy;
    }
}

fn start_broker(dir: &Path, env: &[(&str, &str)]) -> (ServerProcess, String, String) {
    let (broker, namesrv) = standalone_broker_with_env(dir, env);
    let proxy = broker
        .logged_addr("RocketMQ 5 proxy listening")
        .expect("the broker starts its proxy")
        .to_string();
    (broker, namesrv, proxy)
}

pub async fn create_topic(cluster: &Cluster, topic: &str, queues: u32, message_type: &str) {
    let mut rpc = broker::broker_client::BrokerClient::connect(cluster.broker.url())
        .await
        .unwrap();
    rpc.create_topic(broker::CreateTopicRequest {
        config: Some(broker::TopicConfig {
            topic: topic.into(),
            read_queue_count: queues,
            write_queue_count: queues,
            perm: 6,
            message_type: message_type.into(),
        }),
    })
    .await
    .unwrap();
    wait_for_route(&cluster.namesrv, topic, 1).await;
}

pub async fn client(cluster: &Cluster) -> MessagingServiceClient<Channel> {
    MessagingServiceClient::connect(format!("http://{}", cluster.proxy))
        .await
        .unwrap()
}

/// A request as the official clients send it: with their client id.
pub fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-mq-client-id", "test-client@1".parse().unwrap());
    request
}

pub fn resource(name: &str) -> Option<v2::Resource> {
    Some(v2::Resource {
        resource_namespace: String::new(),
        name: name.into(),
    })
}

pub fn access_point(cluster: &Cluster) -> Option<v2::Endpoints> {
    Some(mq_proxy::route::endpoints(&cluster.proxy))
}

pub static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub fn message(topic: &str, body: &str, kind: v2::MessageType) -> v2::Message {
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    v2::Message {
        topic: resource(topic),
        user_properties: [("color".to_owned(), "red".to_owned())].into(),
        system_properties: Some(v2::SystemProperties {
            tag: Some("TagA".into()),
            keys: vec![format!("key-{id}")],
            message_id: format!("0100000000000001000000{id:08X}"),
            message_type: kind as i32,
            born_host: "client-host".into(),
            born_timestamp: Some(now()),
            ..Default::default()
        }),
        body: bytes::Bytes::from(body.to_owned()),
    }
}

pub fn now() -> prost_types::Timestamp {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    prost_types::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

pub async fn send(
    rpc: &mut MessagingServiceClient<Channel>,
    messages: Vec<v2::Message>,
) -> v2::SendMessageResponse {
    rpc.send_message(request(v2::SendMessageRequest { messages }))
        .await
        .unwrap()
        .into_inner()
}

pub fn code(status: &Option<v2::Status>) -> Code {
    Code::try_from(status.as_ref().unwrap().code).unwrap()
}

/// Whole seconds and milliseconds as the protocol's duration.
pub fn duration(ms: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// The first queue of `topic`'s route, as a client picks one to receive.
pub async fn some_queue(
    rpc: &mut MessagingServiceClient<Channel>,
    cluster: &Cluster,
    topic: &str,
) -> v2::MessageQueue {
    let route = rpc
        .query_route(request(v2::QueryRouteRequest {
            topic: resource(topic),
            endpoints: access_point(cluster),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&route.status), Code::Ok, "{route:?}");
    route.message_queues[0].clone()
}

/// What a receive answered: its statuses and its messages.
pub struct Received {
    pub statuses: Vec<v2::Status>,
    pub messages: Vec<v2::Message>,
}

impl Received {
    pub fn code(&self) -> Code {
        Code::try_from(self.statuses[0].code).unwrap()
    }

    pub fn bodies(&self) -> Vec<String> {
        self.messages
            .iter()
            .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
            .collect()
    }

    pub fn handles(&self) -> Vec<String> {
        self.messages.iter().map(handle_of).collect()
    }
}

pub fn handle_of(message: &v2::Message) -> String {
    message
        .system_properties
        .as_ref()
        .unwrap()
        .receipt_handle
        .clone()
        .unwrap()
}

pub fn attempt_of(message: &v2::Message) -> i32 {
    message
        .system_properties
        .as_ref()
        .unwrap()
        .delivery_attempt
        .unwrap()
}

/// One ReceiveMessage call, every tag.
pub async fn receive(
    rpc: &mut MessagingServiceClient<Channel>,
    group: &str,
    queue: &v2::MessageQueue,
    batch: i32,
    invisible_ms: u64,
    polling_ms: u64,
) -> Received {
    let every_tag = v2::FilterExpression {
        r#type: v2::FilterType::Tag as i32,
        expression: "*".into(),
    };
    receive_filtered(
        rpc,
        group,
        queue,
        every_tag,
        batch,
        invisible_ms,
        polling_ms,
    )
    .await
}

/// One ReceiveMessage call with `filter`.
pub async fn receive_filtered(
    rpc: &mut MessagingServiceClient<Channel>,
    group: &str,
    queue: &v2::MessageQueue,
    filter: v2::FilterExpression,
    batch: i32,
    invisible_ms: u64,
    polling_ms: u64,
) -> Received {
    let mut stream = rpc
        .receive_message(request(v2::ReceiveMessageRequest {
            group: resource(group),
            message_queue: Some(queue.clone()),
            filter_expression: Some(filter),
            batch_size: batch,
            invisible_duration: Some(duration(invisible_ms)),
            auto_renew: false,
            long_polling_timeout: Some(duration(polling_ms)),
            attempt_id: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut received = Received {
        statuses: Vec::new(),
        messages: Vec::new(),
    };
    while let Some(reply) = stream.message().await.unwrap() {
        match reply.content.unwrap() {
            v2::receive_message_response::Content::Status(status) => received.statuses.push(status),
            v2::receive_message_response::Content::Message(message) => {
                received.messages.push(message)
            }
            v2::receive_message_response::Content::DeliveryTimestamp(_) => {}
        }
    }
    received
}

/// One AckMessage call for `handles`; the status of each entry.
pub async fn ack(
    rpc: &mut MessagingServiceClient<Channel>,
    group: &str,
    topic: &str,
    handles: &[String],
) -> Vec<Code> {
    let response = rpc
        .ack_message(request(v2::AckMessageRequest {
            group: resource(group),
            topic: resource(topic),
            entries: handles
                .iter()
                .map(|h| v2::AckMessageEntry {
                    message_id: String::new(),
                    receipt_handle: h.clone(),
                })
                .collect(),
        }))
        .await
        .unwrap()
        .into_inner();
    response.entries.iter().map(|e| code(&e.status)).collect()
}

/// Sends `count` normal messages `{prefix}-{i}` to `topic`.
pub async fn send_many(
    rpc: &mut MessagingServiceClient<Channel>,
    topic: &str,
    prefix: &str,
    count: usize,
) {
    for i in 0..count {
        let sent = send(
            rpc,
            vec![message(
                topic,
                &format!("{prefix}-{i}"),
                v2::MessageType::Normal,
            )],
        )
        .await;
        assert_eq!(code(&sent.status), Code::Ok, "{sent:?}");
    }
}

/// A consumer's settings for `group` subscribing to `topic`.
pub fn consumer_settings(group: &str, topic: &str, tags: &str) -> v2::Settings {
    v2::Settings {
        client_type: Some(v2::ClientType::SimpleConsumer as i32),
        pub_sub: Some(v2::settings::PubSub::Subscription(v2::Subscription {
            group: resource(group),
            subscriptions: vec![v2::SubscriptionEntry {
                topic: resource(topic),
                expression: Some(v2::FilterExpression {
                    r#type: v2::FilterType::Tag as i32,
                    expression: tags.into(),
                }),
            }],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Opens a Telemetry stream, sends `settings` and returns the server's
/// answer (with the stream, which stays open while it is kept).
pub async fn handshake(
    rpc: &mut MessagingServiceClient<Channel>,
    settings: v2::Settings,
) -> (v2::Settings, tonic::Streaming<v2::TelemetryCommand>) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(v2::TelemetryCommand {
        status: None,
        command: Some(v2::telemetry_command::Command::Settings(settings)),
    })
    .await
    .unwrap();
    let mut stream = request(tokio_stream::wrappers::ReceiverStream::new(rx));
    stream
        .metadata_mut()
        .insert("x-mq-language", "RUST".parse().unwrap());
    stream
        .metadata_mut()
        .insert("x-mq-client-version", "5.0.0".parse().unwrap());
    let mut telemetry = rpc.telemetry(stream).await.unwrap().into_inner();
    let answer = telemetry.message().await.unwrap().unwrap();
    assert_eq!(code(&answer.status), Code::Ok);
    let Some(v2::telemetry_command::Command::Settings(settings)) = answer.command else {
        panic!("settings expected: {answer:?}");
    };
    (settings, telemetry)
}

/// The FIFO flag of a consumer's settings answer.
pub fn fifo_of(settings: &v2::Settings) -> Option<bool> {
    match &settings.pub_sub {
        Some(v2::settings::PubSub::Subscription(s)) => s.fifo,
        _ => None,
    }
}
