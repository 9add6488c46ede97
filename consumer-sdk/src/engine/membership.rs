//! Membership: heartbeats to every broker of the subscribed topics (which
//! renew the locks of the queues held), the [`Sessions`] beside them, and
//! what comes back from both: a changed group version asks the coordinator
//! to rebalance, a newer offset-reset version makes the broker's queues
//! reread offsets.

use std::collections::HashMap;
use std::sync::Arc;

use mq_proto::broker::v1 as pb;
use tokio::sync::{mpsc, watch};

use super::coordinator::{Assignment, Command};
use super::session::{Heard, Sessions};
use super::{Engine, queue_ref};

pub(crate) struct Membership {
    engine: Arc<Engine>,
    coordinator: mpsc::UnboundedSender<Command>,
    assignment: watch::Receiver<Assignment>,
    /// Group version last seen, by broker address (each member of a broker
    /// group counts its consumers' joins on its own).
    versions: HashMap<String, u64>,
    sessions: Sessions,
    heard: mpsc::UnboundedReceiver<Heard>,
}

impl Membership {
    pub fn new(
        engine: Arc<Engine>,
        coordinator: mpsc::UnboundedSender<Command>,
        assignment: watch::Receiver<Assignment>,
        sessions_stop: watch::Receiver<()>,
    ) -> Self {
        let (heard_tx, heard) = mpsc::unbounded_channel();
        Membership {
            sessions: Sessions::new(Arc::clone(&engine), heard_tx, sessions_stop),
            engine,
            coordinator,
            assignment,
            versions: HashMap::new(),
            heard,
        }
    }

    /// Heartbeats every `heartbeat_interval` and hears the sessions,
    /// forever (the consumer stops the task).
    pub async fn run(mut self) {
        let next = tokio::time::sleep(self.engine.settings.heartbeat_interval);
        tokio::pin!(next);
        loop {
            tokio::select! {
                () = &mut next => {
                    self.heartbeat().await;
                    next.as_mut().reset(tokio::time::Instant::now() + self.engine.settings.heartbeat_interval);
                }
                Some((broker, addr, versions)) = self.heard.recv() => self.heard(&broker, &addr, versions),
            }
        }
    }

    /// Tells every broker of the subscribed topics we are alive and which
    /// queues we hold, and renews their locks.
    pub async fn heartbeat(&mut self) {
        let held: Vec<Arc<super::queue_task::QueueLink>> =
            self.assignment.borrow().values().cloned().collect();
        let engine = Arc::clone(&self.engine);
        let settings = &engine.settings;
        let request = pb::HeartbeatRequest {
            group: settings.group.clone(),
            client_id: settings.client_id.clone(),
            subscriptions: engine
                .subscriptions
                .iter()
                .map(|s| pb::Subscription {
                    topic: s.topic.clone(),
                    tag_expression: s.expression.clone(),
                    sql_expression: s.sql.clone(),
                })
                .collect(),
            consume_model: if settings.broadcasting {
                pb::ConsumeModel::Broadcasting
            } else {
                pb::ConsumeModel::Clustering
            } as i32,
            held: held.iter().map(|l| queue_ref(&l.queue)).collect(),
            client_kind: String::new(),
        };
        self.sessions.keep(
            &engine.cluster.all_broker_addrs(&engine.topics()),
            request.clone(),
        );
        for (broker, addr) in engine.cluster.broker_addrs(&engine.topics()) {
            let Ok(mut client) = engine.cluster.client(&addr) else {
                continue;
            };
            match client.heartbeat(request.clone()).await {
                Ok(response) => self.heard(&broker, &addr, response.into_inner()),
                Err(status) => {
                    engine.cluster.failed(&addr, &status);
                    tracing::debug!(broker, error = %status.message(), "heartbeat failed")
                }
            }
            let locked: Vec<pb::QueueRef> = held
                .iter()
                .filter(|l| l.locked && l.queue.broker_name == broker)
                .map(|l| queue_ref(&l.queue))
                .collect();
            if !locked.is_empty() {
                let _ = client
                    .lock_queues(pb::LockQueuesRequest {
                        group: settings.group.clone(),
                        client_id: settings.client_id.clone(),
                        queues: locked,
                    })
                    .await;
            }
        }
    }

    fn heard(&mut self, broker: &str, addr: &str, response: pb::HeartbeatResponse) {
        let reset = response.offset_reset_version;
        if self
            .engine
            .note_reset_version(broker, reset)
            .is_some_and(|before| before < reset)
        {
            let _ = self.coordinator.send(Command::ResetOffsets {
                broker: broker.to_owned(),
            });
        }
        let version = response.group_version;
        let previous = self.versions.insert(addr.to_owned(), version);
        if previous.is_some_and(|p| p != version) {
            let _ = self.coordinator.send(Command::Rebalance);
        }
    }
}

impl Engine {
    /// Records `broker`'s offset-reset version; returns the one before.
    fn note_reset_version(&self, broker: &str, version: u64) -> Option<u64> {
        self.reset_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(broker.to_owned(), version)
    }

    /// The reset version to send with commits to `broker`.
    pub(super) fn reset_version(&self, broker: &str) -> u64 {
        self.reset_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(broker)
            .copied()
            .unwrap_or(0)
    }
}
