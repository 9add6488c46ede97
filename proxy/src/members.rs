//! The clients' side of the conversation: heartbeats and settings
//! (Telemetry) record who is connected and make consumers members of
//! their groups on the brokers.

use std::time::Instant;

use mq_auth::model::{Action, Target};
use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use tonic::Request;

use crate::backend::Call;
use crate::clients::{ClientInfo, client_id};
use crate::filter::BrokerFilter;
use crate::route;
use crate::service::MessagingProxy;
use crate::status::Refusal;

impl MessagingProxy {
    pub(crate) async fn heartbeat_inner(
        &self,
        request: Request<v2::HeartbeatRequest>,
    ) -> Result<(), Refusal> {
        let id = client_id(&request).ok_or_else(|| {
            Refusal::new(
                Code::ClientIdRequired,
                "the request has no x-mq-client-id header",
            )
        })?;
        let group = request.get_ref().group.as_ref().map(|g| g.name.clone());
        if let Some(group) = &group {
            self.authorize(&request, &[Action::Sub], Target::group(group))?;
        }
        let call = Call {
            extensions: request.extensions().clone(),
        };
        let info = match self.clients.touch(&id) {
            Some(info) => info,
            None => {
                // Heard of only now (settings not sent, or expired).
                let info = ClientInfo {
                    client_id: id,
                    client_type: v2::ClientType::try_from(request.get_ref().client_type)
                        .unwrap_or(v2::ClientType::Unspecified),
                    group: group.unwrap_or_default(),
                    language: header(&request, "x-mq-language"),
                    version: header(&request, "x-mq-client-version"),
                    addr: request.remote_addr(),
                    last_seen: Instant::now(),
                    subscriptions: Vec::new(),
                };
                self.clients.seen(info.clone());
                info
            }
        };
        self.report_member(&call, &info).await;
        Ok(())
    }

    /// Whether a consumer subscribes to a FIFO topic.
    pub(crate) async fn subscribes_fifo(&self, info: &ClientInfo) -> bool {
        for (topic, _) in &info.subscriptions {
            if let Ok(route) = self.backend.route(topic).await
                && route::message_type(&route) == mq_common::MessageType::Fifo
            {
                return true;
            }
        }
        false
    }

    /// A consumer is a member of its group on the brokers (best effort:
    /// it only shows the consumer to operators).
    pub(crate) async fn report_member(&self, call: &Call, info: &ClientInfo) {
        if let Some(member) = info.member()
            && let Err(err) = self.backend.heartbeat(call, member).await
        {
            tracing::debug!(client_id = %info.client_id, error = %err, "cannot report a RocketMQ 5 consumer to its brokers");
        }
    }
}

/// What a client's settings say of it.
pub(crate) fn client_info(
    id: &str,
    settings: &v2::Settings,
    language: &str,
    version: &str,
    addr: Option<std::net::SocketAddr>,
) -> ClientInfo {
    let (group, subscriptions) = match &settings.pub_sub {
        Some(v2::settings::PubSub::Subscription(s)) => (
            s.group.as_ref().map(|g| g.name.clone()).unwrap_or_default(),
            s.subscriptions
                .iter()
                .map(|e| {
                    let topic = e.topic.as_ref().map(|t| t.name.clone()).unwrap_or_default();
                    (topic, BrokerFilter::from_v2(e.expression.as_ref()))
                })
                .collect(),
        ),
        _ => (String::new(), Vec::new()),
    };
    ClientInfo {
        client_id: id.to_owned(),
        client_type: settings
            .client_type
            .and_then(|t| v2::ClientType::try_from(t).ok())
            .unwrap_or(v2::ClientType::Unspecified),
        group,
        language: language.to_owned(),
        version: version.to_owned(),
        addr,
        last_seen: Instant::now(),
        subscriptions,
    }
}

pub(crate) fn header<T>(request: &Request<T>, name: &str) -> String {
    request
        .metadata()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
