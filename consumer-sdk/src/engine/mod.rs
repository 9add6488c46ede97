//! The machinery shared by push and pull consumers.
//!
//! A [`Coordinator`](coordinator) task owns the map of assigned queues and
//! takes commands (rebalance, assign, reset offsets, commit, close) over a
//! channel; every assigned queue has a task of its own
//! ([`queue_task`]) that owns the queue's state and pull loop and is
//! reached through its link; [`membership`] heartbeats; [`rebalance`]
//! decides what to own (its `plan` is pure); [`delivery`] hands messages
//! to handlers and sends failures back.
//!
//! In clustering mode a member owns a queue only while it holds the
//! queue's lock on the broker. Handing a queue over is therefore ordered:
//! the old owner stops, commits its offset and unlocks; only then can the
//! new owner lock it and read the committed offset. That keeps duplicates
//! to crashes, where the lock expires with the dead member.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_proto::broker::v1 as pb;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::allocate::AllocateStrategy;
use crate::cluster::Cluster;
use crate::error::ConsumerError;
use crate::message::{ConsumeResult, ReceivedMessage};
use crate::offset_store::OffsetStore;
use crate::queue::MessageQueue;

mod coordinator;
mod delivery;
mod membership;
mod queue_task;
mod rebalance;
mod session;

use coordinator::{Assignment, Command, Coordinator};
use membership::Membership;
pub(crate) use queue_task::{Pulled, QueueLink};

/// Where a new group starts reading a queue it has no offset for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeFrom {
    /// The end of the queue: only messages sent from now on. Applies to
    /// every new group, however young the queue.
    LastOffset,
    /// The oldest message still stored.
    FirstOffset,
    /// The first message stored at or after this time (ms since the epoch).
    Timestamp(u64),
}

/// An async message handler.
pub type Handler = Arc<
    dyn Fn(Vec<ReceivedMessage>) -> Pin<Box<dyn Future<Output = ConsumeResult> + Send>>
        + Send
        + Sync,
>;

/// Where pulled messages go.
pub(crate) enum Sink {
    /// Batches handled in parallel, up to `parallelism` at once.
    Concurrent {
        handler: Handler,
        permits: Arc<Semaphore>,
        batch: usize,
    },
    /// Each queue handled by one task, strictly in order.
    Ordered { handler: Handler, batch: usize },
    /// Batches handed to `PullConsumer::poll`.
    Channel(mpsc::Sender<Pulled>),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sink::Concurrent { .. } => "Concurrent",
            Sink::Ordered { .. } => "Ordered",
            Sink::Channel(_) => "Channel",
        })
    }
}

/// Settings of the engine.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub group: String,
    pub client_id: String,
    pub broadcasting: bool,
    pub strategy: Arc<dyn AllocateStrategy>,
    pub consume_from: ConsumeFrom,
    pub pull_batch: u32,
    pub suspend: Duration,
    pub max_cached_messages: usize,
    pub max_cached_bytes: usize,
    pub rebalance_interval: Duration,
    pub heartbeat_interval: Duration,
    pub commit_interval: Duration,
    pub retry_delay: Duration,
    pub max_reconsume_times: u32,
}

/// A subscription with its parsed tags (empty: every tag) or its SQL92
/// expression (empty: none), which the broker evaluates exactly.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub topic: String,
    pub expression: String,
    pub tags: Vec<String>,
    pub sql: String,
}

impl Subscription {
    /// The exact check behind the broker's hash filter.
    fn accepts(&self, msg: &ReceivedMessage) -> bool {
        self.tags.is_empty() || msg.tags.as_ref().is_some_and(|t| self.tags.contains(t))
    }
}

/// What every part of one consumer shares: settings, subscriptions, the
/// cluster, where offsets go and where messages go. Immutable but for
/// the offset-reset versions membership records.
pub(crate) struct Engine {
    pub settings: Settings,
    pub subscriptions: Vec<Subscription>,
    pub cluster: Cluster,
    pub offsets: OffsetStore,
    pub sink: Sink,
    /// Offset reset version last seen, by broker name. A std mutex: held
    /// for one map lookup or insert, never across an await.
    reset_versions: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("group", &self.settings.group)
            .finish()
    }
}

impl Engine {
    pub fn new(
        settings: Settings,
        subscriptions: Vec<Subscription>,
        cluster: Cluster,
        offsets: OffsetStore,
        sink: Sink,
    ) -> Arc<Self> {
        Arc::new(Engine {
            settings,
            subscriptions,
            cluster,
            offsets,
            sink,
            reset_versions: Mutex::new(HashMap::new()),
        })
    }

    fn topics(&self) -> Vec<String> {
        self.subscriptions.iter().map(|s| s.topic.clone()).collect()
    }

    fn subscription(&self, topic: &str) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.topic == topic)
    }

    fn addr_of(&self, queue: &MessageQueue) -> Result<String, ConsumerError> {
        self.cluster
            .addr_of(queue)
            .ok_or_else(|| ConsumerError::NoRoute {
                topic: queue.topic.clone(),
                reason: "no broker".into(),
            })
    }

    /// One long-polling pull.
    async fn pull(
        &self,
        queue: &MessageQueue,
        subscription: Subscription,
        offset: u64,
    ) -> Result<pb::PullMessageResponse, ConsumerError> {
        let addr = self
            .cluster
            .read_addr_of(queue)
            .ok_or_else(|| ConsumerError::NoRoute {
                topic: queue.topic.clone(),
                reason: "no broker".into(),
            })?;
        let mut request = tonic::Request::new(pb::PullMessageRequest {
            group: self.settings.group.clone(),
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            offset,
            max_messages: self.settings.pull_batch,
            max_bytes: 0,
            tag_expression: subscription.expression,
            suspend_timeout_ms: self.settings.suspend.as_millis() as u64,
            sql_expression: subscription.sql,
        });
        request.set_timeout(self.settings.suspend + Duration::from_secs(5));
        let response = self
            .cluster
            .client(&addr)?
            .pull_message(request)
            .await
            .map_err(|s| {
                self.cluster.failed(&addr, &s);
                ConsumerError::broker(&queue.broker_name, s)
            })?
            .into_inner();
        self.cluster.suggest(queue, response.suggested_broker_id);
        Ok(response)
    }

    async fn unlock(&self, queue: &MessageQueue) {
        let Ok(addr) = self.addr_of(queue) else {
            return;
        };
        let Ok(mut client) = self.cluster.client(&addr) else {
            return;
        };
        let _ = client
            .unlock_queues(pb::UnlockQueuesRequest {
                group: self.settings.group.clone(),
                client_id: self.settings.client_id.clone(),
                queues: vec![queue_ref(queue)],
            })
            .await;
    }
}

/// A started consumer: its coordinator and membership tasks. Dropping it
/// stops them (and every queue task) without committing; `shutdown`
/// stops them cleanly.
#[derive(Debug)]
pub(crate) struct Running {
    commands: mpsc::UnboundedSender<Command>,
    assignment: watch::Receiver<Assignment>,
    coordinator: JoinHandle<()>,
    membership: JoinHandle<()>,
    /// Dropped last: ends the sessions once the consumer has left.
    _sessions_stop: watch::Sender<()>,
}

impl Running {
    /// Fetches the routes, heartbeats once (so that the first rebalance
    /// sees this member) and starts the coordinator and membership.
    pub async fn start(engine: Arc<Engine>) -> Result<Running, ConsumerError> {
        // A topic no broker serves yet (the retry topic, created on the
        // first heartbeat, or a topic created later) is picked up by the
        // rebalance loop once it has a route, as RocketMQ's consumers do;
        // a nameserver that does not answer at all fails the start.
        for subscription in &engine.subscriptions {
            if engine
                .cluster
                .route_if_any(&subscription.topic)
                .await?
                .is_none()
                && !subscription.topic.starts_with(crate::message::RETRY_PREFIX)
            {
                tracing::warn!(topic = %subscription.topic, "no broker serves this topic yet; consuming it once one does");
            }
        }
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (published, assignment) = watch::channel(Assignment::default());
        let (sessions_stop, sessions_stopped) = watch::channel(());
        let mut membership = Membership::new(
            Arc::clone(&engine),
            commands.clone(),
            assignment.clone(),
            sessions_stopped,
        );
        membership.heartbeat().await;
        let coordinator = Coordinator::new(Arc::clone(&engine), commands_rx, published);
        Ok(Running {
            commands,
            assignment,
            coordinator: tokio::spawn(coordinator.run()),
            membership: tokio::spawn(membership.run()),
            _sessions_stop: sessions_stop,
        })
    }

    /// The queues owned now, sorted.
    pub fn assignment(&self) -> Vec<MessageQueue> {
        self.assignment.borrow().keys().cloned().collect()
    }

    /// The link to an owned queue.
    pub fn link(&self, queue: &MessageQueue) -> Option<Arc<QueueLink>> {
        self.assignment.borrow().get(queue).cloned()
    }

    /// Asks the coordinator and waits for its answer (none if it is gone).
    async fn ask(&self, command: impl FnOnce(oneshot::Sender<()>) -> Command) {
        let (reply, answered) = oneshot::channel();
        if self.commands.send(command(reply)).is_ok() {
            let _ = answered.await;
        }
    }

    /// Consumes only `queues` from now on, without rebalancing.
    pub async fn assign(&self, queues: std::collections::BTreeSet<MessageQueue>) {
        self.ask(|reply| Command::Assign(queues, reply)).await;
    }

    /// Commits every owned queue's position now.
    pub async fn commit_all(&self) {
        self.ask(Command::CommitAll).await;
    }

    /// Finishes in-flight work (bounded), commits, releases the queues and
    /// leaves the group; the sessions end with `self`, after.
    pub async fn shutdown(self) {
        self.membership.abort();
        self.ask(Command::Close).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.membership.abort();
        // The coordinator's queue tasks go with it.
        self.coordinator.abort();
    }
}

fn queue_ref(queue: &MessageQueue) -> pb::QueueRef {
    pb::QueueRef {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        broker_name: queue.broker_name.clone(),
    }
}

/// Splits `messages` into batches of at most `size`, moving, not cloning.
fn into_chunks<T>(messages: Vec<T>, size: usize) -> impl Iterator<Item = Vec<T>> {
    let size = size.max(1);
    let mut rest = messages.into_iter().peekable();
    std::iter::from_fn(move || {
        rest.peek()?;
        Some(rest.by_ref().take(size).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::into_chunks;

    #[test]
    fn chunks_keep_order_and_size() {
        let chunks: Vec<Vec<u32>> = into_chunks((0..7).collect(), 3).collect();
        assert_eq!(chunks, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        assert_eq!(into_chunks(Vec::<u32>::new(), 3).count(), 0);
        assert_eq!(into_chunks(vec![1, 2], 0).count(), 2, "size 0 means 1");
    }
}
