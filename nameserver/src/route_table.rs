//! The route table: which brokers are alive and which topics they serve.
//!
//! Routes are read far more often than written, so readers never wait for
//! each other: the routes live in an immutable [`Routes`] snapshot behind an
//! `Arc`, and a reader only clones that `Arc`. A writer (registration,
//! unregistration, expiry, topic deletion) takes the writer lock, which also
//! guards the liveness map, builds a new snapshot and swaps it in. A heartbeat
//! that changes nothing but a timestamp touches only the liveness map.
//!
//! Time is passed in by the caller (milliseconds since the Unix epoch), so
//! tests drive expiry exactly, without sleeping.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use thiserror::Error;

use crate::model::QueueConfig;
use crate::model::{
    BrokerData, BrokerInstance, DataVersion, Expired, LiveInstance, RegisterOutcome, Registration,
    TopicRoute,
};

/// A request the route table refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouteError {
    #[error("topic {0:?} is not served by any live broker")]
    UnknownTopic(String),
    #[error(
        "broker name {broker_name:?} already belongs to cluster {existing:?}; \
         it cannot register in cluster {requested:?} until it is unregistered or expires"
    )]
    ClusterConflict {
        broker_name: String,
        existing: String,
        requested: String,
    },
    #[error(
        "broker {broker_name:?} id {broker_id} is already registered from {existing_addr} \
         (heard from {silent_for_ms} ms ago); a second broker with that name and id is refused \
         until that one unregisters or expires"
    )]
    SlotTaken {
        broker_name: String,
        broker_id: u64,
        existing_addr: String,
        silent_for_ms: u64,
    },
}

/// An immutable view of every route; replaced whole on each change.
#[derive(Debug, Clone, Default)]
struct Routes {
    /// topic -> broker name -> queues.
    topics: BTreeMap<String, BTreeMap<String, QueueConfig>>,
    /// broker name -> cluster and live addresses.
    brokers: BTreeMap<String, BrokerData>,
}

impl Routes {
    /// Removes one instance; a broker name without instances leaves every topic.
    fn remove_instance(&mut self, instance: &BrokerInstance) {
        let Some(broker) = self.brokers.get_mut(&instance.broker_name) else {
            return;
        };
        if broker.addrs.get(&instance.broker_id) == Some(&instance.addr) {
            broker.addrs.remove(&instance.broker_id);
            broker.proxy_addrs.remove(&instance.broker_id);
        }
        if broker.addrs.is_empty() {
            self.brokers.remove(&instance.broker_name);
            self.topics.retain(|_, queues| {
                queues.remove(&instance.broker_name);
                !queues.is_empty()
            });
        }
    }

    /// Makes `topics` exactly the set this broker name serves.
    fn replace_topics(&mut self, broker_name: &str, topics: &BTreeMap<String, QueueConfig>) {
        self.topics.retain(|topic, queues| {
            if !topics.contains_key(topic) {
                queues.remove(broker_name);
            }
            !queues.is_empty()
        });
        for (topic, config) in topics {
            self.topics
                .entry(topic.clone())
                .or_default()
                .insert(broker_name.to_owned(), *config);
        }
    }

    fn master_addr(&self, broker_name: &str) -> Option<String> {
        self.brokers.get(broker_name)?.addrs.get(&0).cloned()
    }
}

/// What the nameserver remembers of a live instance, keyed by its address.
#[derive(Debug, Clone)]
struct Liveness {
    instance: BrokerInstance,
    data_version: DataVersion,
    last_heartbeat_ms: u64,
    master_epoch: u64,
}

/// The nameserver's whole state. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: RwLock<Arc<Routes>>,
    /// Writer lock and liveness map in one: every writer holds it.
    live: Mutex<HashMap<String, Liveness>>,
}

impl RouteTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a broker instance, or refreshes its heartbeat when its data
    /// version is unchanged. Either the whole registration applies or none.
    pub fn register(&self, reg: Registration, now_ms: u64) -> Result<RegisterOutcome, RouteError> {
        let mut live = self.lock_live();
        if let Some(known) = live.get_mut(&reg.instance.addr)
            && known.instance == reg.instance
            && known.data_version == reg.data_version
        {
            known.last_heartbeat_ms = now_ms;
            return Ok(RegisterOutcome {
                heartbeat_only: true,
                master_addr: self.snapshot().master_addr(&reg.instance.broker_name),
                data_version: reg.data_version,
            });
        }

        let mut routes = Routes::clone(&self.snapshot());
        let name = &reg.instance.broker_name;
        if let Some(existing) = routes.brokers.get(name)
            && existing.cluster != reg.instance.cluster
            && !is_sole_instance(existing, &reg.instance)
        {
            return Err(RouteError::ClusterConflict {
                broker_name: name.clone(),
                existing: existing.cluster.clone(),
                requested: reg.instance.cluster.clone(),
            });
        }

        // Two live brokers in one slot (two masters of one group) would fork
        // it: the second is refused while the first is heard from, unless
        // a controller elected it in a later epoch (the first is deposed).
        if let Some(existing_addr) = routes
            .brokers
            .get(name)
            .and_then(|b| b.addrs.get(&reg.instance.broker_id))
            && *existing_addr != reg.instance.addr
            && let Some(existing) = live.get(existing_addr)
        {
            if reg.master_epoch > existing.master_epoch {
                let deposed = existing.instance.clone();
                live.remove(&deposed.addr);
                routes.remove_instance(&deposed);
            } else {
                return Err(RouteError::SlotTaken {
                    broker_name: name.clone(),
                    broker_id: reg.instance.broker_id,
                    existing_addr: existing_addr.clone(),
                    silent_for_ms: now_ms.saturating_sub(existing.last_heartbeat_ms),
                });
            }
        }

        // The address may have belonged to another instance before (a
        // restart with new settings): that instance is gone.
        if let Some(previous) = live.remove(&reg.instance.addr)
            && previous.instance != reg.instance
        {
            routes.remove_instance(&previous.instance);
        }
        let broker = routes
            .brokers
            .entry(name.clone())
            .or_insert_with(|| BrokerData {
                cluster: reg.instance.cluster.clone(),
                broker_name: name.clone(),
                addrs: BTreeMap::new(),
                proxy_addrs: BTreeMap::new(),
            });
        broker.cluster = reg.instance.cluster.clone();
        broker
            .addrs
            .insert(reg.instance.broker_id, reg.instance.addr.clone());
        match &reg.instance.proxy_addr {
            Some(proxy) => broker
                .proxy_addrs
                .insert(reg.instance.broker_id, proxy.clone()),
            None => broker.proxy_addrs.remove(&reg.instance.broker_id),
        };
        if reg.instance.broker_id == 0 {
            routes.replace_topics(name, &reg.topics);
        }

        let master_addr = routes.master_addr(name);
        live.insert(
            reg.instance.addr.clone(),
            Liveness {
                instance: reg.instance,
                data_version: reg.data_version,
                last_heartbeat_ms: now_ms,
                master_epoch: reg.master_epoch,
            },
        );
        self.install(routes);
        Ok(RegisterOutcome {
            heartbeat_only: false,
            master_addr,
            data_version: reg.data_version,
        })
    }

    /// Removes one instance from every route. False if it was not registered.
    pub fn unregister(&self, instance: &BrokerInstance) -> bool {
        let mut live = self.lock_live();
        match live.get(&instance.addr) {
            Some(known) if known.instance.is(instance) => {}
            _ => return false,
        }
        live.remove(&instance.addr);
        let mut routes = Routes::clone(&self.snapshot());
        routes.remove_instance(instance);
        self.install(routes);
        true
    }

    /// Drops every instance not heard from for longer than `expire_after_ms`.
    pub fn expire(&self, now_ms: u64, expire_after_ms: u64) -> Vec<Expired> {
        let mut live = self.lock_live();
        let stale: Vec<Expired> = live
            .values()
            .filter_map(|l| {
                let silent_for_ms = now_ms.saturating_sub(l.last_heartbeat_ms);
                (silent_for_ms > expire_after_ms).then(|| Expired {
                    instance: l.instance.clone(),
                    silent_for_ms,
                })
            })
            .collect();
        if stale.is_empty() {
            return stale;
        }
        let mut routes = Routes::clone(&self.snapshot());
        for expired in &stale {
            live.remove(&expired.instance.addr);
            routes.remove_instance(&expired.instance);
        }
        self.install(routes);
        stale
    }

    /// Removes a topic from every route.
    pub fn delete_topic(&self, topic: &str) -> Result<(), RouteError> {
        let _writer = self.lock_live();
        let mut routes = Routes::clone(&self.snapshot());
        if routes.topics.remove(topic).is_none() {
            return Err(RouteError::UnknownTopic(topic.to_owned()));
        }
        self.install(routes);
        Ok(())
    }

    /// The brokers serving `topic`, with their queues and addresses.
    pub fn query_route(&self, topic: &str) -> Result<TopicRoute, RouteError> {
        let routes = self.snapshot();
        let queues = routes
            .topics
            .get(topic)
            .ok_or_else(|| RouteError::UnknownTopic(topic.to_owned()))?;
        let brokers = queues
            .keys()
            .filter_map(|name| routes.brokers.get(name).cloned())
            .collect();
        Ok(TopicRoute {
            topic: topic.to_owned(),
            queues: queues.clone(),
            brokers,
        })
    }

    /// Every routed topic, sorted.
    pub fn list_topics(&self) -> Vec<String> {
        self.snapshot().topics.keys().cloned().collect()
    }

    /// Every live instance, sorted by cluster, broker name and broker id.
    pub fn live_instances(&self) -> Vec<LiveInstance> {
        let mut instances: Vec<LiveInstance> = self
            .lock_live()
            .values()
            .map(|l| LiveInstance {
                instance: l.instance.clone(),
                data_version: l.data_version,
                last_heartbeat_ms: l.last_heartbeat_ms,
            })
            .collect();
        instances.sort_by(|a, b| {
            let key = |l: &LiveInstance| {
                (
                    l.instance.cluster.clone(),
                    l.instance.broker_name.clone(),
                    l.instance.broker_id,
                )
            };
            key(a).cmp(&key(b))
        });
        instances
    }

    fn snapshot(&self) -> Arc<Routes> {
        // A poisoned lock still holds a whole snapshot: writers only swap the Arc.
        Arc::clone(&self.routes.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn install(&self, routes: Routes) {
        *self.routes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(routes);
    }

    fn lock_live(&self) -> MutexGuard<'_, HashMap<String, Liveness>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// True when `instance` is the only instance of its broker name: then it
/// may move its broker name to another cluster by registering again.
fn is_sole_instance(broker: &BrokerData, instance: &BrokerInstance) -> bool {
    broker.addrs.len() == 1 && broker.addrs.get(&instance.broker_id) == Some(&instance.addr)
}

#[cfg(test)]
#[path = "route_table_tests.rs"]
mod tests;
