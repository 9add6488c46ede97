//! Cluster mode (RocketMQ 5's standalone proxy): one proxy in front of a
//! whole cluster. It finds brokers through the nameservers and calls each
//! broker's master over gRPC, signed as the cluster's administrator (the
//! proxy authorized its caller itself). Every route it hands out names the
//! proxy itself as the endpoint of every queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use mq_auth::Connector;
use mq_auth::client::SignedChannel;
use mq_nameserver_client::NameServerClient;
use mq_proto::broker::v1 as broker;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_proto::nameserver::v1 as names;
use tokio::sync::Mutex;
use tonic::Status;

use crate::backend::{Backend, Call};

/// How long the brokers' addresses are trusted before asking again.
const CLUSTER_TTL: Duration = Duration::from_secs(2);

/// (broker name, master address) of every broker, and when learned.
type Masters = (Vec<(String, String)>, Option<Instant>);

/// The brokers of a cluster, over gRPC.
pub struct ClusterBackend {
    nameservers: NameServerClient,
    connector: Connector,
    /// Where clients reach this proxy (`host:port`).
    advertised: String,
    /// Broker name -> its master's address, and when that was learned.
    masters: Mutex<Masters>,
    clients: DashMap<String, BrokerClient<SignedChannel>>,
    max_message_size: usize,
}

impl std::fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBackend")
            .field("advertised", &self.advertised)
            .finish_non_exhaustive()
    }
}

impl ClusterBackend {
    pub fn new(
        nameservers: NameServerClient,
        connector: Connector,
        advertised: String,
        max_message_size: usize,
    ) -> Arc<Self> {
        Arc::new(ClusterBackend {
            nameservers,
            connector,
            advertised,
            masters: Mutex::new((Vec::new(), None)),
            clients: DashMap::new(),
            max_message_size,
        })
    }

    /// Every broker name with a live master.
    async fn masters(&self) -> Result<Vec<(String, String)>, Status> {
        let mut cached = self.masters.lock().await;
        if cached.1.is_some_and(|at| at.elapsed() < CLUSTER_TTL) {
            return Ok(cached.0.clone());
        }
        let info = self
            .nameservers
            .cluster_info()
            .await
            .map_err(|e| Status::new(e.code(), e.to_string()))?;
        let masters: Vec<(String, String)> = info
            .clusters
            .iter()
            .flat_map(|c| &c.brokers)
            .filter_map(|b| {
                b.instances
                    .iter()
                    .find(|i| i.broker_id == 0)
                    .map(|i| (b.broker_name.clone(), i.address.clone()))
            })
            .collect();
        *cached = (masters.clone(), Some(Instant::now()));
        Ok(masters)
    }

    /// A client of `broker_name`'s master.
    async fn master(&self, broker_name: &str) -> Result<BrokerClient<SignedChannel>, Status> {
        let masters = self.masters().await?;
        let addr = masters
            .iter()
            .find(|(name, _)| name == broker_name)
            .map(|(_, addr)| addr.clone())
            .ok_or_else(|| {
                Status::unavailable(format!("broker {broker_name:?} has no live master"))
            })?;
        if let Some(client) = self.clients.get(&addr) {
            return Ok(client.clone());
        }
        let endpoint = self
            .connector
            .endpoint(&addr)
            .map_err(|e| Status::internal(e.to_string()))?;
        let client = BrokerClient::new(self.connector.lazy(endpoint))
            .max_decoding_message_size(self.max_message_size.saturating_mul(4).max(4 << 20));
        self.clients.insert(addr, client.clone());
        Ok(client)
    }
}

#[tonic::async_trait]
impl Backend for ClusterBackend {
    async fn route(&self, topic: &str) -> Result<names::QueryRouteResponse, Status> {
        self.nameservers
            .query_route(topic)
            .await
            .map_err(|e| Status::new(e.code(), e.to_string()))
    }

    fn endpoint(&self, broker: &names::BrokerData) -> Option<String> {
        broker
            .addresses
            .contains_key(&0)
            .then(|| self.advertised.clone())
    }

    fn serves(&self, broker: &names::BrokerData) -> bool {
        broker.addresses.contains_key(&0)
    }

    async fn send(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::SendBatchRequest,
    ) -> Result<broker::SendBatchResponse, Status> {
        let mut client = self.master(broker_name).await?;
        Ok(client.send_batch(request).await?.into_inner())
    }

    async fn pop(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::PopMessagesRequest,
    ) -> Result<broker::PopMessagesResponse, Status> {
        let mut client = self.master(broker_name).await?;
        Ok(client.pop_messages(request).await?.into_inner())
    }

    async fn ack(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::AckMessagesRequest,
    ) -> Result<broker::AckMessagesResponse, Status> {
        let mut client = self.master(broker_name).await?;
        Ok(client.ack_messages(request).await?.into_inner())
    }

    async fn change_invisible(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::ChangeInvisibleTimeRequest,
    ) -> Result<broker::ChangeInvisibleTimeResponse, Status> {
        let mut client = self.master(broker_name).await?;
        Ok(client.change_invisible_time(request).await?.into_inner())
    }

    async fn send_back(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::ConsumerSendBackRequest,
    ) -> Result<broker::ConsumerSendBackResponse, Status> {
        let mut client = self.master(broker_name).await?;
        Ok(client.consumer_send_back(request).await?.into_inner())
    }

    async fn heartbeat(
        &self,
        _call: &Call,
        request: broker::HeartbeatRequest,
    ) -> Result<(), Status> {
        for (name, _) in self.masters().await? {
            self.master(&name).await?.heartbeat(request.clone()).await?;
        }
        Ok(())
    }

    async fn unregister(
        &self,
        _call: &Call,
        request: broker::UnregisterConsumerRequest,
    ) -> Result<(), Status> {
        for (name, _) in self.masters().await? {
            self.master(&name)
                .await?
                .unregister_consumer(request.clone())
                .await?;
        }
        Ok(())
    }

    async fn pull(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::PullMessageRequest,
    ) -> Result<broker::PullMessageResponse, Status> {
        let mut client = self.master(broker_name).await?;
        Ok(client.pull_message(request).await?.into_inner())
    }

    async fn commit_offset(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::CommitOffsetRequest,
    ) -> Result<(), Status> {
        let mut client = self.master(broker_name).await?;
        client.commit_offset(request).await?;
        Ok(())
    }

    async fn committed_offset(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::QueryOffsetRequest,
    ) -> Result<broker::QueryOffsetResponse, Status> {
        let mut client = self.master(broker_name).await?;
        Ok(client.query_offset(request).await?.into_inner())
    }

    async fn send_half(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::SendHalfMessageRequest,
    ) -> Result<broker::SendHalfMessageResponse, Status> {
        let mut client = self.master(broker_name).await?;
        Ok(client.send_half_message(request).await?.into_inner())
    }

    async fn end_transaction(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::EndTransactionRequest,
    ) -> Result<broker::EndTransactionResponse, Status> {
        let mut client = self.master(broker_name).await?;
        Ok(client.end_transaction(request).await?.into_inner())
    }

    async fn producer_session(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::ProducerSessionRequest,
    ) -> Result<crate::backend::CheckStream, Status> {
        let mut client = self.master(broker_name).await?;
        Ok(Box::pin(
            client.producer_session(request).await?.into_inner(),
        ))
    }

    async fn queue_offsets(
        &self,
        _call: &Call,
        broker_name: &str,
        request: broker::GetQueueOffsetsRequest,
    ) -> Result<broker::GetQueueOffsetsResponse, Status> {
        let mut client = self.master(broker_name).await?;
        Ok(client.get_queue_offsets(request).await?.into_inner())
    }
}
