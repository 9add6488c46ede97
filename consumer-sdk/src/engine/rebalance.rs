//! Rebalancing: which queues this member should own, by the group's
//! strategy (or everything when broadcasting, or what was assigned by
//! hand), and the plan that turns what it owns into that.

use std::collections::{BTreeSet, HashMap};

use mq_proto::broker::v1 as pb;

use super::coordinator::Coordinator;
use crate::allocate::Holdings;
use crate::queue::{Members, MessageQueue};

/// What a rebalance changes for one topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    /// Owned queues no longer wanted: committed, unlocked, dropped.
    pub release: Vec<MessageQueue>,
    /// Wanted queues not owned yet: locked, started.
    pub acquire: Vec<MessageQueue>,
}

/// From the queues a member `owned` to those it `wanted`: releases first,
/// so that a queue handed over is committed before its new owner takes it.
pub(crate) fn plan(owned: &[MessageQueue], wanted: &BTreeSet<MessageQueue>) -> Plan {
    Plan {
        release: owned
            .iter()
            .filter(|q| !wanted.contains(*q))
            .cloned()
            .collect(),
        acquire: wanted
            .iter()
            .filter(|q| !owned.contains(q))
            .cloned()
            .collect(),
    }
}

impl Coordinator {
    /// One rebalance over every subscribed topic; false if some queue this
    /// member should own could not be taken yet.
    pub(super) async fn rebalance(&mut self) -> bool {
        let manual = self.manual.clone();
        let mut complete = true;
        for topic in self.engine.topics() {
            let Ok(route) = self.engine.cluster.route(&topic).await else {
                complete = false;
                continue;
            };
            let wanted: BTreeSet<MessageQueue> = match &manual {
                Some(assigned) => assigned
                    .iter()
                    .filter(|q| q.topic == topic)
                    .cloned()
                    .collect(),
                None if self.engine.settings.broadcasting => route.queues.iter().cloned().collect(),
                None => match self.allocate(&topic, &route.queues, &route.brokers).await {
                    Some(mine) => mine.into_iter().collect(),
                    None => {
                        complete = false;
                        continue;
                    }
                },
            };
            let owned: Vec<MessageQueue> = self
                .owned
                .keys()
                .filter(|q| q.topic == topic)
                .cloned()
                .collect();
            let Plan { release, acquire } = plan(&owned, &wanted);
            for queue in &release {
                self.release(queue).await;
            }
            if !acquire.is_empty() && !self.acquire(acquire).await {
                complete = false;
            }
        }
        complete
    }

    async fn allocate(
        &self,
        topic: &str,
        queues: &[MessageQueue],
        brokers: &HashMap<String, Members>,
    ) -> Option<Vec<MessageQueue>> {
        // Any member knows the group: replicas take heartbeats too.
        let mut addrs: Vec<&String> = brokers.values().flat_map(|m| m.values()).collect();
        addrs.sort();
        for addr in addrs {
            let Ok(mut client) = self.engine.cluster.client(addr) else {
                continue;
            };
            let settings = &self.engine.settings;
            let request = pb::GetConsumerListRequest {
                group: settings.group.clone(),
            };
            let response = match client.get_consumer_list(request).await {
                Ok(response) => response,
                Err(status) => {
                    self.engine.cluster.failed(addr, &status);
                    continue;
                }
            };
            let response = response.into_inner();
            if !response.client_ids.contains(&settings.client_id) {
                // Our heartbeat has not reached this broker yet.
                continue;
            }
            let holdings: Holdings = response
                .members
                .into_iter()
                .map(|m| {
                    let held = m
                        .held
                        .into_iter()
                        .filter(|q| q.topic == topic)
                        .map(|q| MessageQueue {
                            topic: q.topic,
                            broker_name: q.broker_name,
                            queue_id: q.queue_id,
                        })
                        .collect();
                    (m.client_id, held)
                })
                .collect();
            return Some(settings.strategy.allocate(
                &settings.client_id,
                &response.client_ids,
                queues,
                &holdings,
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(ids: &[u32]) -> Vec<MessageQueue> {
        ids.iter()
            .map(|&queue_id| MessageQueue {
                topic: "t".into(),
                broker_name: "b".into(),
                queue_id,
            })
            .collect()
    }

    #[test]
    fn a_plan_releases_what_is_no_longer_wanted_and_acquires_what_is_missing() {
        let owned = queues(&[0, 1, 2]);
        let wanted: BTreeSet<MessageQueue> = queues(&[2, 3]).into_iter().collect();
        let Plan { release, acquire } = plan(&owned, &wanted);
        assert_eq!(release, queues(&[0, 1]));
        assert_eq!(acquire, queues(&[3]));
    }

    #[test]
    fn a_settled_member_plans_nothing_and_a_new_one_takes_everything() {
        let owned = queues(&[0, 1]);
        let wanted: BTreeSet<MessageQueue> = owned.iter().cloned().collect();
        assert_eq!(plan(&owned, &wanted), Plan::default());
        let fresh = plan(&[], &wanted);
        assert!(fresh.release.is_empty());
        assert_eq!(fresh.acquire, owned);
        let leaving = plan(&owned, &BTreeSet::new());
        assert_eq!(leaving.release, owned);
    }
}
