//! The coordinator: the one task that owns the map of assigned queues. It
//! rebalances (on a timer, when membership says the group changed, or
//! when queues are assigned by hand), starts a [`QueueTask`] for every
//! queue it acquires and stops it on release, and publishes what it owns
//! for everyone else to read. Commands come over a channel, so
//! rebalances, assignments and shutdown never interleave.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use mq_proto::broker::v1 as pb;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::queue_task::{QueueLink, QueueTask};
use super::{ConsumeFrom, Engine, queue_ref};
use crate::error::ConsumerError;
use crate::queue::MessageQueue;

/// The queues owned now, as the coordinator publishes them.
pub(crate) type Assignment = Arc<BTreeMap<MessageQueue, Arc<QueueLink>>>;

/// What others ask of the coordinator.
#[derive(Debug)]
pub(crate) enum Command {
    /// The group changed: rebalance now.
    Rebalance,
    /// Consume only these queues from now on (no rebalancing); answers
    /// when they are taken.
    Assign(BTreeSet<MessageQueue>, oneshot::Sender<()>),
    /// An operator reset the group's offsets on this broker.
    ResetOffsets { broker: String },
    /// Commit every queue's position; answers when done.
    CommitAll(oneshot::Sender<()>),
    /// Release everything and leave the group; answers when done.
    Close(oneshot::Sender<()>),
}

/// Retry soon when a queue was still locked by its previous owner.
const INCOMPLETE_RETRY: Duration = Duration::from_millis(300);

pub(crate) struct Coordinator {
    pub(super) engine: Arc<Engine>,
    commands: mpsc::UnboundedReceiver<Command>,
    pub(super) owned: BTreeMap<MessageQueue, Arc<QueueLink>>,
    published: watch::Sender<Assignment>,
    /// Set by `Assign`: no rebalance, these queues only.
    pub(super) manual: Option<BTreeSet<MessageQueue>>,
    /// The queue tasks; dropping the coordinator (an aborted consumer)
    /// aborts them.
    tasks: JoinSet<()>,
}

impl Coordinator {
    pub fn new(
        engine: Arc<Engine>,
        commands: mpsc::UnboundedReceiver<Command>,
        published: watch::Sender<Assignment>,
    ) -> Self {
        Coordinator {
            engine,
            commands,
            owned: BTreeMap::new(),
            published,
            manual: None,
            tasks: JoinSet::new(),
        }
    }

    /// Rebalances at once, then serves commands until `Close`.
    pub async fn run(mut self) {
        let next_round = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(next_round);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    None => return,
                    Some(Command::Rebalance) => next_round.as_mut().reset(tokio::time::Instant::now()),
                    Some(Command::Assign(queues, reply)) => {
                        self.manual = Some(queues);
                        let pause = self.round().await;
                        next_round.as_mut().reset(tokio::time::Instant::now() + pause);
                        let _ = reply.send(());
                    }
                    Some(Command::ResetOffsets { broker }) => {
                        for link in self.owned.values().filter(|l| l.queue.broker_name == broker) {
                            link.reread();
                        }
                    }
                    Some(Command::CommitAll(reply)) => {
                        let pending: Vec<_> = self.owned.values().map(|l| l.commit()).collect();
                        for done in pending {
                            let _ = done.await;
                        }
                        let _ = reply.send(());
                    }
                    Some(Command::Close(reply)) => {
                        self.close().await;
                        let _ = reply.send(());
                        return;
                    }
                },
                () = &mut next_round => {
                    let pause = self.round().await;
                    next_round.as_mut().reset(tokio::time::Instant::now() + pause);
                }
            }
        }
    }

    /// One rebalance; how long until the next.
    async fn round(&mut self) -> Duration {
        if self.rebalance().await {
            self.engine.settings.rebalance_interval
        } else {
            INCOMPLETE_RETRY
        }
    }

    fn locking(&self) -> bool {
        !self.engine.settings.broadcasting && self.manual.is_none()
    }

    fn publish(&self) {
        self.published.send_replace(Arc::new(self.owned.clone()));
    }

    /// Takes queues: locks them (clustering), finds where to start, and
    /// starts their tasks. False if some could not be taken.
    pub(super) async fn acquire(&mut self, queues: Vec<MessageQueue>) -> bool {
        let locked = self.locking();
        let taken = if locked {
            self.lock(&queues).await
        } else {
            queues.clone()
        };
        let all = taken.len() == queues.len();
        for queue in taken {
            match self.engine.start_offset(&queue).await {
                Ok(offset) => self.start_queue(queue, offset, locked),
                Err(err) => {
                    tracing::warn!(queue = %queue, error = %err, "cannot find where to start");
                    if locked {
                        self.engine.unlock(&queue).await;
                    }
                    return false;
                }
            }
        }
        all
    }

    /// Locks `queues` on their brokers; returns those locked.
    async fn lock(&self, queues: &[MessageQueue]) -> Vec<MessageQueue> {
        let mut by_broker: BTreeMap<&str, Vec<&MessageQueue>> = BTreeMap::new();
        for queue in queues {
            by_broker.entry(&queue.broker_name).or_default().push(queue);
        }
        let mut taken = Vec::new();
        for (broker, wanted) in by_broker {
            let Some(addr) = self.engine.cluster.addr_of(wanted[0]) else {
                continue;
            };
            let Ok(mut client) = self.engine.cluster.client(&addr) else {
                continue;
            };
            let request = pb::LockQueuesRequest {
                group: self.engine.settings.group.clone(),
                client_id: self.engine.settings.client_id.clone(),
                queues: wanted.iter().map(|q| queue_ref(q)).collect(),
            };
            match client.lock_queues(request).await {
                Ok(response) => {
                    let locked: BTreeSet<(String, u32)> = response
                        .into_inner()
                        .locked
                        .into_iter()
                        .map(|q| (q.topic, q.queue_id))
                        .collect();
                    taken.extend(
                        wanted
                            .into_iter()
                            .filter(|q| locked.contains(&(q.topic.clone(), q.queue_id)))
                            .cloned(),
                    );
                }
                Err(status) => {
                    tracing::debug!(broker, error = %status.message(), "queue lock failed")
                }
            }
        }
        taken
    }

    fn start_queue(&mut self, queue: MessageQueue, offset: u64, locked: bool) {
        let Some(subscription) = self.engine.subscription(&queue.topic).cloned() else {
            return;
        };
        let (task, link) = QueueTask::new(
            Arc::clone(&self.engine),
            subscription,
            queue.clone(),
            offset,
            locked,
        );
        self.tasks.spawn(task.run());
        tracing::info!(group = %self.engine.settings.group, queue = %queue, offset, "consuming queue");
        self.owned.insert(queue, link);
        self.publish();
    }

    /// Stops a queue's task: no more pulls, in-flight handlers finish
    /// (bounded), the offset is committed, then the lock is released.
    pub(super) async fn release(&mut self, queue: &MessageQueue) {
        let Some(link) = self.owned.remove(queue) else {
            return;
        };
        self.publish();
        let _ = link.stop().await;
        while self.tasks.try_join_next().is_some() {}
    }

    /// Releases every queue and leaves the group on every broker.
    async fn close(&mut self) {
        let owned: Vec<MessageQueue> = self.owned.keys().cloned().collect();
        for queue in &owned {
            self.release(queue).await;
        }
        for (_, addr) in self.engine.cluster.broker_addrs(&self.engine.topics()) {
            if let Ok(mut client) = self.engine.cluster.client(&addr) {
                let _ = client
                    .unregister_consumer(pb::UnregisterConsumerRequest {
                        group: self.engine.settings.group.clone(),
                        client_id: self.engine.settings.client_id.clone(),
                    })
                    .await;
            }
        }
    }
}

impl Engine {
    /// Where a queue this group has no committed offset for starts.
    async fn start_offset(&self, queue: &MessageQueue) -> Result<u64, ConsumerError> {
        if let Some(offset) = self.offsets.query(&self.cluster, queue).await? {
            return Ok(offset);
        }
        let addr = self.addr_of(queue)?;
        let timestamp_ms = match self.settings.consume_from {
            ConsumeFrom::Timestamp(at) => Some(at),
            _ => None,
        };
        let offsets = self
            .cluster
            .client(&addr)?
            .get_queue_offsets(pb::GetQueueOffsetsRequest {
                topic: queue.topic.clone(),
                queue_id: queue.queue_id,
                timestamp_ms,
            })
            .await
            .map_err(|s| {
                self.cluster.failed(&addr, &s);
                ConsumerError::broker(&queue.broker_name, s)
            })?
            .into_inner();
        Ok(match self.settings.consume_from {
            ConsumeFrom::LastOffset => offsets.max_offset,
            ConsumeFrom::FirstOffset => offsets.min_offset,
            ConsumeFrom::Timestamp(_) => offsets.search_offset,
        })
    }
}
