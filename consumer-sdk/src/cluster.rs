//! Access to the cluster: readable routes from the nameservers (cached:
//! a nameserver outage does not stop consumption), one shared channel per
//! broker address, and which member of a broker group to talk to.
//!
//! A group is a master and its replicas. Everything goes to the master
//! while it answers; a member whose connection failed is passed over for
//! [`UNREACHABLE_FOR`], so that reads and offset commits turn to a
//! replica within seconds of the master's death, long before the
//! nameserver drops it from the route. Pulls also follow the broker's
//! suggestion (a master sends a consumer far behind the head to a
//! replica, so that its cold reads do not thrash the master's page cache).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use mq_auth::Connector;
use mq_auth::client::SignedChannel;
use mq_nameserver_client::NameServerClient;
use mq_proto::broker::v1::broker_client::BrokerClient;

use crate::error::ConsumerError;
use crate::queue::{Members, MessageQueue, ReadRoute};

/// How long a member that failed to answer is passed over.
pub const UNREACHABLE_FOR: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Cluster {
    namesrv: NameServerClient,
    clients: DashMap<String, BrokerClient<SignedChannel>>,
    routes: RwLock<HashMap<String, ReadRoute>>,
    /// Addresses whose connection failed, until when they are passed over.
    unreachable: DashMap<String, Instant>,
    /// The member each queue's broker suggested pulling from.
    suggested: DashMap<MessageQueue, u64>,
    connector: Connector,
}

impl Cluster {
    pub fn new(namesrv: NameServerClient, connector: Connector) -> Self {
        Cluster {
            connector,
            namesrv,
            clients: DashMap::new(),
            routes: RwLock::new(HashMap::new()),
            unreachable: DashMap::new(),
            suggested: DashMap::new(),
        }
    }

    /// The route of `topic` from the nameservers (the cached one when
    /// they do not answer).
    pub async fn route(&self, topic: &str) -> Result<ReadRoute, ConsumerError> {
        self.route_if_any(topic)
            .await?
            .ok_or_else(|| ConsumerError::NoRoute {
                topic: topic.to_owned(),
                reason: "no broker serves it".into(),
            })
    }

    /// The route of `topic`, or `None` while no broker serves it (it may be
    /// created later); an error only when no nameserver answers and nothing
    /// is cached.
    pub async fn route_if_any(&self, topic: &str) -> Result<Option<ReadRoute>, ConsumerError> {
        let cached = || {
            self.routes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(topic)
                .cloned()
        };
        match self.namesrv.query_route(topic).await {
            Ok(response) => {
                let route = ReadRoute::from_route(&response);
                self.routes
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(topic.to_owned(), route.clone());
                Ok(Some(route))
            }
            Err(err) if err.code() == tonic::Code::NotFound => Ok(cached()),
            Err(err) => cached().map(Some).ok_or_else(|| ConsumerError::NoRoute {
                topic: topic.to_owned(),
                reason: err.to_string(),
            }),
        }
    }

    /// Where a queue's offsets, locks and send-backs go: its master, or a
    /// replica while the master does not answer.
    pub fn addr_of(&self, queue: &MessageQueue) -> Option<String> {
        pick(&self.members(queue)?, 0, |a| self.reachable(a))
    }

    /// Where a queue's pulls go: the member its broker suggested, else as
    /// [`Self::addr_of`].
    pub fn read_addr_of(&self, queue: &MessageQueue) -> Option<String> {
        let suggested = self.suggested.get(queue).map_or(0, |s| *s);
        pick(&self.members(queue)?, suggested, |a| self.reachable(a))
    }

    /// Remembers which member a queue's broker suggested pulling from next.
    pub fn suggest(&self, queue: &MessageQueue, broker_id: u64) {
        if broker_id == 0 {
            self.suggested.remove(queue);
        } else {
            self.suggested.insert(queue.clone(), broker_id);
        }
    }

    /// Notes a failed call to `addr`: a connection that failed passes the
    /// member over for [`UNREACHABLE_FOR`].
    pub fn failed(&self, addr: &str, status: &tonic::Status) {
        use tonic::Code;
        if matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled
        ) {
            let until = Instant::now() + UNREACHABLE_FOR;
            if self.unreachable.insert(addr.to_owned(), until).is_none() {
                tracing::warn!(broker = addr, error = %status.message(), "broker unreachable; turning to another member of its group");
            }
        }
    }

    fn reachable(&self, addr: &str) -> bool {
        let Some(until) = self.unreachable.get(addr).map(|u| *u) else {
            return true;
        };
        if until > Instant::now() {
            return false;
        }
        self.unreachable.remove(addr);
        true
    }

    fn members(&self, queue: &MessageQueue) -> Option<Members> {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&queue.topic)?
            .brokers
            .get(&queue.broker_name)
            .cloned()
    }

    /// Every reachable member of the cached routes of `topics`, as
    /// (broker name, address).
    pub fn broker_addrs(&self, topics: &[String]) -> Vec<(String, String)> {
        let mut addrs = self.all_broker_addrs(topics);
        addrs.retain(|(_, a)| self.reachable(a));
        addrs
    }

    /// Every member of the cached routes of `topics`, reachable or not, as
    /// (broker name, address), sorted.
    pub fn all_broker_addrs(&self, topics: &[String]) -> Vec<(String, String)> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut addrs: Vec<(String, String)> = topics
            .iter()
            .filter_map(|t| routes.get(t))
            .flat_map(|r| {
                r.brokers
                    .iter()
                    .flat_map(|(n, members)| members.values().map(|a| (n.clone(), a.clone())))
            })
            .collect();
        drop(routes);
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// The shared client of a broker.
    pub fn client(&self, addr: &str) -> Result<BrokerClient<SignedChannel>, ConsumerError> {
        if let Some(client) = self.clients.get(addr) {
            return Ok(client.clone());
        }
        let endpoint = self
            .connector
            .endpoint(addr)
            .map_err(|e| ConsumerError::Config(format!("broker {e}")))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .initial_stream_window_size(mq_common::http2::STREAM_WINDOW)
            .initial_connection_window_size(mq_common::http2::CONNECTION_WINDOW)
            .http2_keep_alive_interval(mq_common::http2::KEEPALIVE_INTERVAL)
            .keep_alive_timeout(mq_common::http2::KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let channel = self.connector.lazy(endpoint);
        let client = BrokerClient::new(channel).max_decoding_message_size(128 << 20);
        Ok(self
            .clients
            .entry(addr.to_owned())
            .or_insert(client)
            .clone())
    }
}

/// The member to use: `preferred` if it answers, else the first that
/// answers (the master before replicas), else the master (or any) anyway.
fn pick(members: &Members, preferred: u64, reachable: impl Fn(&str) -> bool) -> Option<String> {
    members
        .get(&preferred)
        .filter(|a| reachable(a))
        .or_else(|| members.values().find(|a| reachable(a)))
        .or_else(|| members.get(&0))
        .or_else(|| members.values().next())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_unless_it_fails_or_a_reachable_member_was_suggested() {
        let members: Members = [(0, "m".to_owned()), (1, "r1".into()), (2, "r2".into())].into();
        let all = |_: &str| true;
        assert_eq!(pick(&members, 0, all).as_deref(), Some("m"));
        assert_eq!(pick(&members, 2, all).as_deref(), Some("r2"));
        assert_eq!(pick(&members, 7, all).as_deref(), Some("m"), "gone member");
        let master_down = |a: &str| a != "m";
        assert_eq!(pick(&members, 0, master_down).as_deref(), Some("r1"));
        assert_eq!(pick(&members, 2, |a| a == "m").as_deref(), Some("m"));
        assert_eq!(
            pick(&members, 0, |_| false).as_deref(),
            Some("m"),
            "none answers"
        );
        let replicas_only: Members = [(1, "r1".to_owned())].into();
        assert_eq!(pick(&replicas_only, 0, |_| false).as_deref(), Some("r1"));
        assert_eq!(pick(&Members::new(), 0, all), None);
    }
}
