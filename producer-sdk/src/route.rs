//! What a producer knows of a topic: its writable queues and the address
//! of each broker's master, from a nameserver route.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use mq_common::Perm;
use mq_proto::nameserver::v1 as pb;

/// One queue of a topic on one broker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: u32,
}

/// The writable queues of a topic, and where their brokers are.
#[derive(Debug)]
pub struct PublishRoute {
    pub topic: String,
    /// Sorted by broker name, then queue id, so that every producer sees
    /// the same order (ordered sends rely on it).
    pub queues: Vec<MessageQueue>,
    /// Master address by broker name.
    pub brokers: HashMap<String, String>,
    /// Round-robin position.
    next: AtomicUsize,
}

impl PublishRoute {
    /// The queues a producer may write to: writable queue data of brokers
    /// with a live master.
    pub fn from_route(route: &pb::QueryRouteResponse) -> Self {
        let brokers: HashMap<String, String> = route
            .brokers
            .iter()
            .filter_map(|b| Some((b.broker_name.clone(), b.addresses.get(&0)?.clone())))
            .collect();
        let mut queues: Vec<MessageQueue> = route
            .queues
            .iter()
            .filter(|q| Perm::from_bits("perm", q.perm).is_ok_and(|p| p.writable()))
            .filter(|q| brokers.contains_key(&q.broker_name))
            .flat_map(|q| {
                (0..q.write_queue_count).map(|queue_id| MessageQueue {
                    topic: route.topic.clone(),
                    broker_name: q.broker_name.clone(),
                    queue_id,
                })
            })
            .collect();
        queues.sort_by(|a, b| (&a.broker_name, a.queue_id).cmp(&(&b.broker_name, b.queue_id)));
        PublishRoute {
            topic: route.topic.clone(),
            queues,
            brokers,
            next: AtomicUsize::new(start_position()),
        }
    }

    /// The next round-robin position.
    pub fn next_position(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// Producers start their round-robin at different queues, so that many
/// producers do not all hit queue 0 first.
fn start_position() -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos as usize % 1024
}
