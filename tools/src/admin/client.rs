//! What every subcommand needs: the nameservers, the brokers they know,
//! and a gRPC client per broker.

use anyhow::{Context, bail};
use mq_auth::Connector;
use mq_auth::client::SignedChannel;
use mq_nameserver_client::NameServerClient;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_proto::nameserver::v1 as ns;

/// A master broker as the nameservers know it.
#[derive(Debug, Clone)]
pub struct Master {
    pub name: String,
    pub addr: String,
}

#[derive(Debug)]
pub struct Admin {
    pub namesrv: NameServerClient,
    pub namesrv_list: String,
    pub json: bool,
    /// How servers are reached: TLS, credentials.
    pub connector: Connector,
}

impl Admin {
    pub fn new(namesrv: &str, json: bool, connector: Connector) -> anyhow::Result<Admin> {
        Ok(Admin {
            namesrv: NameServerClient::from_list_with(namesrv, connector.clone())
                .with_context(|| format!("--namesrv {namesrv:?}"))?,
            namesrv_list: namesrv.to_owned(),
            json,
            connector,
        })
    }

    /// A client of the broker `name` at `addr`, signing as this admin.
    pub async fn broker(
        &self,
        name: &str,
        addr: &str,
    ) -> anyhow::Result<BrokerClient<SignedChannel>> {
        let endpoint = self
            .connector
            .endpoint(addr)
            .with_context(|| format!("broker {name}"))?
            .connect_timeout(std::time::Duration::from_secs(3))
            .timeout(std::time::Duration::from_secs(10));
        let channel = self
            .connector
            .connect(&endpoint)
            .await
            .with_context(|| format!("broker {name} at {addr} is unreachable"))?;
        let channel = self.connector.signed(channel);
        Ok(BrokerClient::new(channel).max_decoding_message_size(256 << 20))
    }

    pub async fn cluster_info(&self) -> anyhow::Result<ns::GetClusterInfoResponse> {
        self.namesrv
            .cluster_info()
            .await
            .with_context(|| format!("nameserver {}", self.namesrv_list))
    }

    /// Every master broker, of `cluster` only when given.
    pub async fn masters(&self, cluster: Option<&str>) -> anyhow::Result<Vec<Master>> {
        let info = self.cluster_info().await?;
        if let Some(name) = cluster
            && !info.clusters.iter().any(|c| c.cluster_name == name)
        {
            let known: Vec<_> = info
                .clusters
                .iter()
                .map(|c| c.cluster_name.as_str())
                .collect();
            bail!("no cluster {name:?} is registered (known: {known:?})");
        }
        Ok(info
            .clusters
            .into_iter()
            .filter(|c| cluster.is_none_or(|name| c.cluster_name == name))
            .flat_map(|c| c.brokers)
            .filter_map(|b| {
                b.instances
                    .iter()
                    .find(|i| i.broker_id == 0)
                    .map(|i| Master {
                        name: b.broker_name.clone(),
                        addr: i.address.clone(),
                    })
            })
            .collect())
    }

    /// The route of `topic`; an unknown topic is an error naming it.
    pub async fn route(&self, topic: &str) -> anyhow::Result<ns::QueryRouteResponse> {
        mq_common::validate::topic("--topic", topic)?;
        self.namesrv.query_route(topic).await.map_err(|e| {
            if e.code() == tonic::Code::NotFound {
                anyhow::anyhow!("unknown topic {topic:?}: {e}")
            } else {
                anyhow::Error::new(e)
            }
        })
    }

    /// (broker name, master address) of every broker routing `topic`.
    pub async fn brokers_of(&self, topic: &str) -> anyhow::Result<Vec<(String, String)>> {
        let route = self.route(topic).await?;
        Ok(route
            .brokers
            .into_iter()
            .filter_map(|b| {
                b.addresses
                    .get(&0)
                    .map(|a| (b.broker_name.clone(), a.clone()))
            })
            .collect())
    }
}

/// A broker's refusal as one line.
pub fn refused(name: &str, addr: &str, status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("broker {name} at {addr}: {}", status.message())
}
