//! [`NameServerClient`]: one handle over every configured nameserver.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use mq_auth::Connector;
use mq_auth::client::SignedChannel;
use mq_proto::auth::v1::auth_client::AuthClient;
use mq_proto::nameserver::v1 as pb;
use mq_proto::nameserver::v1::name_server_client::NameServerClient as RpcClient;
use tokio::task::JoinSet;
use tonic::{Code, Status};

use crate::addresses::parse_addresses;
use crate::error::NameServerClientError;

/// How long a nameserver may stay silent before the next is asked as well.
pub const HEDGE_AFTER: Duration = Duration::from_millis(250);

/// Timeouts of calls to nameservers, and who makes them.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long to wait for a TCP connection before trying the next nameserver.
    pub connect_timeout: Duration,
    /// How long one call may take.
    pub request_timeout: Duration,
    /// Signs every call (nameservers with authentication on refuse
    /// unsigned ones).
    pub connector: Connector,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            connector: Connector::default(),
        }
    }
}

/// The stubs of one nameserver's services, sharing its connection.
#[derive(Debug, Clone)]
pub struct Stubs {
    pub names: RpcClient<SignedChannel>,
    pub auth: AuthClient<SignedChannel>,
}

#[derive(Debug)]
struct Node {
    addr: String,
    stubs: Stubs,
}

/// Talks to a list of nameservers. Cheap to clone; clones share connections
/// and the memory of which nameserver answered last.
#[derive(Debug, Clone)]
pub struct NameServerClient {
    nodes: Arc<[Node]>,
    preferred: Arc<AtomicUsize>,
}

impl NameServerClient {
    /// A client of the `;`-separated nameserver list, with default timeouts.
    /// Connections open lazily, so nameservers may be down at this point.
    pub fn from_list(list: &str) -> Result<Self, NameServerClientError> {
        Self::new(parse_addresses(list)?, ClientOptions::default())
    }

    /// A client of the `;`-separated nameserver list reaching them through
    /// `connector` (TLS, credentials).
    pub fn from_list_with(list: &str, connector: Connector) -> Result<Self, NameServerClientError> {
        Self::new(
            parse_addresses(list)?,
            ClientOptions {
                connector,
                ..ClientOptions::default()
            },
        )
    }

    /// A client of `addrs` (each `host:port`).
    pub fn new(addrs: Vec<String>, options: ClientOptions) -> Result<Self, NameServerClientError> {
        if addrs.is_empty() {
            return Err(NameServerClientError::NoAddress);
        }
        let nodes = addrs
            .into_iter()
            .map(|addr| {
                let endpoint = options
                    .connector
                    .endpoint(&addr)
                    .map_err(|e| NameServerClientError::InvalidAddress {
                        addr: addr.clone(),
                        reason: e.to_string(),
                    })?
                    .connect_timeout(options.connect_timeout)
                    .timeout(options.request_timeout);
                let channel = options.connector.lazy(endpoint);
                let stubs = Stubs {
                    names: RpcClient::new(channel.clone()),
                    auth: AuthClient::new(channel),
                };
                Ok(Node { addr, stubs })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NameServerClient {
            nodes: nodes.into(),
            preferred: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The configured nameserver addresses, in order.
    pub fn addresses(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.addr.as_str()).collect()
    }

    /// The route of `topic` from the first nameserver that answers.
    pub async fn query_route(
        &self,
        topic: &str,
    ) -> Result<pb::QueryRouteResponse, NameServerClientError> {
        let request = pb::QueryRouteRequest {
            topic: topic.to_owned(),
        };
        self.first_answer(|mut stubs| {
            let request = request.clone();
            async move { stubs.names.query_route(request).await }
        })
        .await
    }

    /// Every routed topic, from the first nameserver that answers.
    pub async fn list_topics(&self) -> Result<Vec<String>, NameServerClientError> {
        let response = self
            .first_answer(|mut stubs| async move {
                stubs.names.list_topics(pb::ListTopicsRequest {}).await
            })
            .await?;
        Ok(response.topics)
    }

    /// Clusters and their live brokers, from the first nameserver that answers.
    pub async fn cluster_info(&self) -> Result<pb::GetClusterInfoResponse, NameServerClientError> {
        self.first_answer(|mut stubs| async move {
            stubs
                .names
                .get_cluster_info(pb::GetClusterInfoRequest {})
                .await
        })
        .await
    }

    /// Registers (or heartbeats) with every nameserver; one result per
    /// nameserver, in configuration order.
    pub async fn register_broker(
        &self,
        request: pb::RegisterBrokerRequest,
    ) -> Vec<(
        String,
        Result<pb::RegisterBrokerResponse, NameServerClientError>,
    )> {
        self.every_answer(move |mut stubs| {
            let request = request.clone();
            async move { stubs.names.register_broker(request).await }
        })
        .await
    }

    /// Unregisters from every nameserver.
    pub async fn unregister_broker(
        &self,
        request: pb::UnregisterBrokerRequest,
    ) -> Vec<(
        String,
        Result<pb::UnregisterBrokerResponse, NameServerClientError>,
    )> {
        self.every_answer(move |mut stubs| {
            let request = request.clone();
            async move { stubs.names.unregister_broker(request).await }
        })
        .await
    }

    /// Deletes `topic` from the routes of every nameserver.
    pub async fn delete_topic(
        &self,
        topic: &str,
    ) -> Vec<(String, Result<(), NameServerClientError>)> {
        let request = pb::DeleteTopicRequest {
            topic: topic.to_owned(),
        };
        self.every_answer(move |mut stubs| {
            let request = request.clone();
            async move {
                stubs
                    .names
                    .delete_topic(request)
                    .await
                    .map(|r| r.map(|_| ()))
            }
        })
        .await
    }

    /// Asks the nameservers, starting with the one that answered last, until
    /// one answers. A nameserver that fails is followed by the next at once;
    /// one that says nothing for [`HEDGE_AFTER`] (hung, or stopped with its
    /// socket still accepting) gets company: the next is asked too, and the
    /// first answer wins, so a hung nameserver first in the list costs
    /// milliseconds, not the request timeout. A refusal is an answer: it is
    /// not retried elsewhere, since nameservers apply the same rules.
    pub async fn first_answer<T, F, Fut>(&self, call: F) -> Result<T, NameServerClientError>
    where
        F: Fn(Stubs) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let count = self.nodes.len();
        let start = self.preferred.load(Ordering::Relaxed);
        let ask = |step: usize| {
            let index = (start + step) % count;
            let pending = call(self.nodes[index].stubs.clone());
            async move { (index, pending.await) }
        };
        let mut asked = 1;
        let mut pending = FuturesUnordered::new();
        pending.push(ask(0));
        let mut failures = Vec::new();
        loop {
            let hedge = tokio::time::sleep(HEDGE_AFTER);
            tokio::select! {
                Some((index, result)) = pending.next() => {
                    let node = &self.nodes[index];
                    match result {
                        Ok(response) => {
                            self.preferred.store(index, Ordering::Relaxed);
                            return Ok(response.into_inner());
                        }
                        Err(status) if unreachable(&status) => {
                            tracing::debug!(nameserver = %node.addr, error = %status.message(), "nameserver unreachable, trying the next");
                            failures.push(format!("{}: {}", node.addr, status.message()));
                        }
                        Err(status) => {
                            self.preferred.store(index, Ordering::Relaxed);
                            return Err(refused(&node.addr, status));
                        }
                    }
                    if asked < count {
                        pending.push(ask(asked));
                        asked += 1;
                    } else if pending.is_empty() {
                        break;
                    }
                }
                () = hedge, if asked < count => {
                    pending.push(ask(asked));
                    asked += 1;
                }
            }
        }
        Err(NameServerClientError::Unreachable {
            tried: self.nodes.iter().map(|n| n.addr.clone()).collect(),
            last: failures.pop().unwrap_or_default(),
        })
    }

    /// Sends one call to every nameserver at once and collects the results.
    pub async fn every_answer<T, F, Fut>(
        &self,
        call: F,
    ) -> Vec<(String, Result<T, NameServerClientError>)>
    where
        T: Send + 'static,
        F: Fn(Stubs) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>> + Send + 'static,
    {
        let mut calls = JoinSet::new();
        for (index, node) in self.nodes.iter().enumerate() {
            let (addr, pending) = (node.addr.clone(), call(node.stubs.clone()));
            calls.spawn(async move {
                let result = match pending.await {
                    Ok(response) => Ok(response.into_inner()),
                    Err(status) if unreachable(&status) => {
                        Err(NameServerClientError::Unreachable {
                            tried: vec![addr.clone()],
                            last: status.message().to_owned(),
                        })
                    }
                    Err(status) => Err(refused(&addr, status)),
                };
                (index, addr, result)
            });
        }
        let mut results: Vec<_> = calls.join_all().await;
        results.sort_by_key(|(index, _, _)| *index);
        results
            .into_iter()
            .map(|(_, addr, result)| (addr, result))
            .collect()
    }
}

/// Transport-level failures, after which another nameserver may answer.
fn unreachable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}

fn refused(addr: &str, status: Status) -> NameServerClientError {
    NameServerClientError::Refused {
        addr: addr.to_owned(),
        code: status.code(),
        message: status.message().to_owned(),
    }
}
