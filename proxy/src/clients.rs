//! The RocketMQ 5 clients connected to this proxy, by the client id every
//! request carries (`x-mq-client-id`): what they are, where from, and when
//! they were last heard, for operators.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use mq_proto::apache::rocketmq::v2;

use crate::filter::BrokerFilter;

/// Header naming the client on every request.
pub const CLIENT_ID_HEADER: &str = "x-mq-client-id";

/// One connected client.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub client_id: String,
    pub client_type: v2::ClientType,
    /// Consumers' group (empty for producers).
    pub group: String,
    pub language: String,
    pub version: String,
    pub addr: Option<SocketAddr>,
    pub last_seen: Instant,
    /// A consumer's topics and tag expressions (from its settings).
    pub subscriptions: Vec<(String, BrokerFilter)>,
}

impl ClientInfo {
    /// What the client is, for operators.
    pub fn kind(&self) -> String {
        format!(
            "RocketMQ 5 {}, {} {}",
            self.client_type.as_str_name(),
            if self.language.is_empty() {
                "?"
            } else {
                &self.language
            },
            self.version
        )
    }

    /// The group member this consumer is on a broker.
    pub fn member(&self) -> Option<mq_proto::broker::v1::HeartbeatRequest> {
        use mq_proto::broker::v1 as broker;
        if self.group.is_empty() {
            return None;
        }
        Some(broker::HeartbeatRequest {
            group: self.group.clone(),
            client_id: self.client_id.clone(),
            subscriptions: self
                .subscriptions
                .iter()
                .map(|(topic, filter)| broker::Subscription {
                    topic: topic.clone(),
                    tag_expression: filter.tag_expression.clone(),
                    sql_expression: filter.sql_expression.clone(),
                })
                .collect(),
            consume_model: broker::ConsumeModel::Clustering as i32,
            held: Vec::new(),
            client_kind: self.kind(),
        })
    }
}

/// Clients by id; a client unheard of for longer than the expiry is gone.
#[derive(Debug, Default)]
pub struct Clients {
    by_id: DashMap<String, ClientInfo>,
}

impl Clients {
    /// A client stops counting as connected this long after it was last
    /// heard (clients heartbeat every 10 to 30 seconds).
    pub const EXPIRY: Duration = Duration::from_secs(120);

    /// Records `info`, or refreshes what is known of its client.
    pub fn seen(&self, info: ClientInfo) {
        self.by_id.insert(info.client_id.clone(), info);
    }

    /// Refreshes a known client's last contact; what is known of it.
    pub fn touch(&self, client_id: &str) -> Option<ClientInfo> {
        let mut info = self.by_id.get_mut(client_id)?;
        info.last_seen = Instant::now();
        Some(info.clone())
    }

    /// Forgets a client that said it terminates; what was known of it.
    pub fn remove(&self, client_id: &str) -> Option<ClientInfo> {
        self.by_id.remove(client_id).map(|(_, info)| info)
    }

    /// The live clients, sorted by id; forgets the expired.
    pub fn live(&self) -> Vec<ClientInfo> {
        self.by_id
            .retain(|_, info| info.last_seen.elapsed() < Self::EXPIRY);
        let mut clients: Vec<ClientInfo> = self.by_id.iter().map(|e| e.value().clone()).collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        clients
    }
}

/// The client id of a request, if it carries one.
pub fn client_id<T>(request: &tonic::Request<T>) -> Option<String> {
    request
        .metadata()
        .get(CLIENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> ClientInfo {
        ClientInfo {
            client_id: id.into(),
            client_type: v2::ClientType::Producer,
            group: String::new(),
            language: "RUST".into(),
            version: "5.0.0".into(),
            addr: None,
            last_seen: Instant::now(),
            subscriptions: Vec::new(),
        }
    }

    #[test]
    fn clients_come_refresh_and_go() {
        let clients = Clients::default();
        assert!(clients.touch("a").is_none());
        clients.seen(info("b"));
        clients.seen(info("a"));
        assert!(clients.touch("a").is_some());
        let ids: Vec<String> = clients.live().into_iter().map(|c| c.client_id).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(clients.remove("a").is_some());
        assert_eq!(clients.live().len(), 1);
    }

    #[test]
    fn a_silent_client_expires() {
        let clients = Clients::default();
        let mut old = info("old");
        old.last_seen = Instant::now()
            .checked_sub(Clients::EXPIRY + Duration::from_secs(1))
            .expect("the machine has been up for minutes");
        clients.seen(old);
        assert!(clients.live().is_empty());
    }
}
