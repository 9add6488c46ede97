//! The RocketMQ 5 clients connected to this proxy, by the client id every
//! request carries (`x-mq-client-id`): what they are, where from, and when
//! they were last heard, for operators.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use mq_proto::apache::rocketmq::v2;

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

    /// Refreshes a known client's last contact; false if it is unknown.
    pub fn touch(&self, client_id: &str) -> bool {
        match self.by_id.get_mut(client_id) {
            Some(mut info) => {
                info.last_seen = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Forgets a client that said it terminates.
    pub fn gone(&self, client_id: &str) {
        self.by_id.remove(client_id);
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
        }
    }

    #[test]
    fn clients_come_refresh_and_go() {
        let clients = Clients::default();
        assert!(!clients.touch("a"));
        clients.seen(info("b"));
        clients.seen(info("a"));
        assert!(clients.touch("a"));
        let ids: Vec<String> = clients.live().into_iter().map(|c| c.client_id).collect();
        assert_eq!(ids, ["a", "b"]);
        clients.gone("a");
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
