//! Registration with the nameservers: at start, every `register_interval`
//! and right after a topic change, the broker reports itself and its
//! topics to every nameserver; an unchanged data version makes it a cheap
//! heartbeat. A nameserver that is down is retried on the next round.
//! On shutdown the broker unregisters. A first round that a nameserver
//! refuses because another live broker holds this name and id (a second
//! master of the group) stops the broker from starting.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mq_nameserver_client::NameServerClient;
use mq_proto::nameserver::v1 as pb;
use tokio::sync::watch;

use crate::topic_table::TopicTable;

/// Who this broker is, as the nameservers know it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cluster: String,
    pub broker_name: String,
    pub broker_id: u64,
    pub addr: String,
    /// Where this broker's proxy serves RocketMQ 5's protocol, if it does.
    pub proxy_addr: Option<String>,
    /// Controller mode: the epoch in which this master was elected (0
    /// otherwise); it deposes a master of an older epoch in the routes.
    pub master_epoch: u64,
}

#[derive(Debug)]
pub struct Registry {
    pub client: NameServerClient,
    pub identity: Identity,
    pub topics: Arc<TopicTable>,
    /// Start time: with the topic version it makes the data version, so
    /// that a restarted broker always registers in full.
    pub started_ms: u64,
    pub interval: Duration,
    /// Queue count to advertise under [`mq_common::AUTO_CREATE_TOPIC`]
    /// when topics are auto-created; `None` when they are not.
    pub auto_create_queues: Option<u32>,
}

impl Registry {
    /// Registers until `shutdown` turns true, then unregisters.
    /// `registered` fires after the first round, so that the broker can
    /// announce readiness only once clients can find it.
    pub async fn run(
        self,
        mut shutdown: watch::Receiver<bool>,
        registered: tokio::sync::oneshot::Sender<Result<(), String>>,
    ) {
        let mut healthy: HashMap<String, bool> = HashMap::new();
        let mut registered = Some(registered);
        loop {
            let taken = self.register_once(&mut healthy).await;
            if let Some(first) = registered.take() {
                if let Some(why) = taken {
                    let _ = first.send(Err(why));
                    return;
                }
                let _ = first.send(Ok(()));
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = self.topics.changed.notified() => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
        self.unregister().await;
    }

    fn request(&self) -> pb::RegisterBrokerRequest {
        let (mut topics, version) = self.topics.snapshot();
        if let Some(queues) = self.auto_create_queues {
            topics.push(crate::topic_table::TopicConfig::new(
                mq_common::AUTO_CREATE_TOPIC,
                queues,
            ));
        }
        pb::RegisterBrokerRequest {
            cluster_name: self.identity.cluster.clone(),
            broker_name: self.identity.broker_name.clone(),
            broker_id: self.identity.broker_id,
            broker_addr: self.identity.addr.clone(),
            topics: topics
                .into_iter()
                .map(|t| pb::TopicConfig {
                    topic: t.topic,
                    read_queue_count: t.read_queue_count,
                    write_queue_count: t.write_queue_count,
                    perm: t.perm,
                    message_type: t.message_type.as_str().to_owned(),
                })
                .collect(),
            data_version: Some(pb::DataVersion {
                timestamp_ms: self.started_ms,
                counter: version,
            }),
            master_epoch: self.identity.master_epoch,
            proxy_addr: self.identity.proxy_addr.clone().unwrap_or_default(),
        }
    }

    /// One round; logs a nameserver only when its state changes. Returns
    /// why a nameserver refused this broker's slot as taken, if one did.
    async fn register_once(&self, healthy: &mut HashMap<String, bool>) -> Option<String> {
        let mut taken = None;
        for (addr, result) in self.client.register_broker(self.request()).await {
            if let Err(err) = &result
                && err.code() == tonic::Code::AlreadyExists
            {
                taken = Some(err.to_string());
            }
            let ok = result.is_ok();
            let was = healthy.insert(addr.clone(), ok);
            match result {
                Ok(response) if was != Some(true) => {
                    tracing::info!(nameserver = %addr, heartbeat_only = response.heartbeat_only, "registered with nameserver");
                }
                Err(err) if was != Some(false) => {
                    tracing::warn!(nameserver = %addr, error = %err, "cannot register with nameserver; retrying every round");
                }
                _ => {}
            }
        }
        taken
    }

    async fn unregister(&self) {
        let request = pb::UnregisterBrokerRequest {
            cluster_name: self.identity.cluster.clone(),
            broker_name: self.identity.broker_name.clone(),
            broker_id: self.identity.broker_id,
            broker_addr: self.identity.addr.clone(),
        };
        for (addr, result) in self.client.unregister_broker(request).await {
            match result {
                Ok(_) => tracing::info!(nameserver = %addr, "unregistered from nameserver"),
                Err(err) => {
                    tracing::warn!(nameserver = %addr, error = %err, "cannot unregister from nameserver")
                }
            }
        }
    }
}
