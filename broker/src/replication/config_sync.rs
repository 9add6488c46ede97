//! A replica takes its master's topic configs (as RocketMQ's replicas sync
//! topics from their master), so that it registers and serves the same
//! topics: consumers can read from it when the master is away. Every
//! `interval`, until the broker stops; a master that does not answer is
//! tried again at the next round.

use std::sync::Arc;
use std::time::Duration;

use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use tokio::sync::watch;

use crate::service::wire;
use crate::topic_table::TopicTable;

#[derive(Debug, Clone)]
pub struct ConfigSync {
    pub master_addr: String,
    pub topics: Arc<TopicTable>,
    pub interval: Duration,
}

impl ConfigSync {
    /// Syncs at once, then every `interval`, until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(self.interval);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(why) = self.sync_topics().await {
                tracing::warn!(master = %self.master_addr, error = %why, "cannot take the master's topics");
            }
        }
    }

    async fn sync_topics(&self) -> Result<(), String> {
        let mut master = BrokerClient::connect(format!("http://{}", self.master_addr))
            .await
            .map_err(|e| e.to_string())?;
        let listed = master
            .list_topics(pb::ListTopicsRequest {})
            .await
            .map_err(|s| format!("{}: {}", s.code(), s.message()))?
            .into_inner();
        let mut configs = Vec::with_capacity(listed.topics.len());
        for (i, topic) in listed.topics.into_iter().enumerate() {
            configs.push(
                wire::topic_config(&format!("topics[{i}]"), Some(topic))
                    .map_err(|e| e.to_string())?,
            );
        }
        if self
            .topics
            .replace_all(configs)
            .map_err(|e| e.to_string())?
        {
            tracing::info!(master = %self.master_addr, "took the master's topics");
        }
        Ok(())
    }
}
