//! Access to the cluster: readable routes from the nameservers (cached:
//! a nameserver outage does not stop consumption) and one shared channel
//! per broker address.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use dashmap::DashMap;
use mq_nameserver_client::NameServerClient;
use mq_proto::broker::v1::broker_client::BrokerClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::ConsumerError;
use crate::queue::{MessageQueue, ReadRoute};

#[derive(Debug)]
pub struct Cluster {
    namesrv: NameServerClient,
    clients: DashMap<String, BrokerClient<Channel>>,
    routes: RwLock<HashMap<String, ReadRoute>>,
}

impl Cluster {
    pub fn new(namesrv: NameServerClient) -> Self {
        Cluster {
            namesrv,
            clients: DashMap::new(),
            routes: RwLock::new(HashMap::new()),
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

    /// The address of a queue's broker, from the cached route.
    pub fn addr_of(&self, queue: &MessageQueue) -> Option<String> {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&queue.topic)?
            .brokers
            .get(&queue.broker_name)
            .cloned()
    }

    /// Every broker address of the cached routes of `topics`.
    pub fn broker_addrs(&self, topics: &[String]) -> Vec<(String, String)> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut addrs: Vec<(String, String)> = topics
            .iter()
            .filter_map(|t| routes.get(t))
            .flat_map(|r| r.brokers.iter().map(|(n, a)| (n.clone(), a.clone())))
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// The shared client of a broker.
    pub fn client(&self, addr: &str) -> Result<BrokerClient<Channel>, ConsumerError> {
        if let Some(client) = self.clients.get(addr) {
            return Ok(client.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| ConsumerError::Config(format!("broker address {addr:?}: {e}")))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .initial_stream_window_size(mq_common::http2::STREAM_WINDOW)
            .initial_connection_window_size(mq_common::http2::CONNECTION_WINDOW);
        let client =
            BrokerClient::new(endpoint.connect_lazy()).max_decoding_message_size(128 << 20);
        Ok(self
            .clients
            .entry(addr.to_owned())
            .or_insert(client)
            .clone())
    }
}
