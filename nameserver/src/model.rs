//! The nameserver's domain types: what a broker registers and what a client
//! is told. Validated at the gRPC edge; nothing here knows about protobuf.

use std::collections::BTreeMap;

use mq_common::{MessageType, Perm};

/// One running broker process: a broker name has a master (id 0) and
/// replicas (id > 0), each at its own address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInstance {
    pub cluster: String,
    pub broker_name: String,
    pub broker_id: u64,
    pub addr: String,
    /// Where it serves RocketMQ 5's protocol, if it does.
    pub proxy_addr: Option<String>,
}

impl BrokerInstance {
    /// Whether `other` names this process (an unregistration does not
    /// repeat the proxy address).
    pub fn is(&self, other: &BrokerInstance) -> bool {
        self.cluster == other.cluster
            && self.broker_name == other.broker_name
            && self.broker_id == other.broker_id
            && self.addr == other.addr
    }
}

/// One state of a broker's topic configuration; equal versions mean equal topics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataVersion {
    pub timestamp_ms: u64,
    pub counter: u64,
}

/// A topic's queues on one broker name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    pub read_queue_count: u32,
    pub write_queue_count: u32,
    pub perm: Perm,
    pub message_type: MessageType,
}

/// A broker's report of itself and the topics it serves.
#[derive(Debug, Clone)]
pub struct Registration {
    pub instance: BrokerInstance,
    pub topics: BTreeMap<String, QueueConfig>,
    pub data_version: DataVersion,
    /// Controller mode: the epoch of a master's election (0 otherwise).
    pub master_epoch: u64,
}

/// What the nameserver answers to a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOutcome {
    /// Nothing changed: only the heartbeat time was refreshed.
    pub heartbeat_only: bool,
    /// The live master of this broker name, if any.
    pub master_addr: Option<String>,
    pub data_version: DataVersion,
}

/// A broker name with the addresses of its live instances, by broker id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerData {
    pub cluster: String,
    pub broker_name: String,
    pub addrs: BTreeMap<u64, String>,
    /// RocketMQ 5 protocol addresses of the instances that serve it.
    pub proxy_addrs: BTreeMap<u64, String>,
}

/// Everything a client needs to reach a topic's queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRoute {
    pub topic: String,
    /// Queues of the topic, by broker name.
    pub queues: BTreeMap<String, QueueConfig>,
    /// The brokers named in `queues`.
    pub brokers: Vec<BrokerData>,
}

/// One live instance as seen by the nameserver, for cluster views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveInstance {
    pub instance: BrokerInstance,
    pub data_version: DataVersion,
    pub last_heartbeat_ms: u64,
}

/// A broker instance dropped because it went silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub instance: BrokerInstance,
    pub silent_for_ms: u64,
}
