//! Queues as consumers see them, and the readable queues of a topic.

use std::collections::{BTreeMap, HashMap};

use mq_common::Perm;
use mq_proto::nameserver::v1 as pb;

/// One queue of a topic on one broker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: u32,
}

impl std::fmt::Display for MessageQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}#{}", self.topic, self.broker_name, self.queue_id)
    }
}

/// The live members of a broker group: address by broker id, the master
/// (id 0) first.
pub type Members = BTreeMap<u64, String>;

/// The readable queues of a topic and where their brokers are.
#[derive(Debug, Clone, Default)]
pub struct ReadRoute {
    /// Sorted, so that every member of a group sees the same order.
    pub queues: Vec<MessageQueue>,
    /// Every live member of each broker group, by broker name.
    pub brokers: HashMap<String, Members>,
}

impl ReadRoute {
    pub fn from_route(route: &pb::QueryRouteResponse) -> Self {
        let brokers: HashMap<String, Members> = route
            .brokers
            .iter()
            .filter(|b| !b.addresses.is_empty())
            .map(|b| {
                let members = b.addresses.iter().map(|(&id, a)| (id, a.clone()));
                (b.broker_name.clone(), members.collect())
            })
            .collect();
        let mut queues: Vec<MessageQueue> = route
            .queues
            .iter()
            .filter(|q| Perm::from_bits("perm", q.perm).is_ok_and(|p| p.readable()))
            .filter(|q| brokers.contains_key(&q.broker_name))
            .flat_map(|q| {
                (0..q.read_queue_count).map(|queue_id| MessageQueue {
                    topic: route.topic.clone(),
                    broker_name: q.broker_name.clone(),
                    queue_id,
                })
            })
            .collect();
        queues.sort();
        ReadRoute { queues, brokers }
    }
}
