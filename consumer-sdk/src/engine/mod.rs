//! The machinery shared by push and pull consumers: heartbeats, rebalance,
//! one long-polling pull task per owned queue with flow control, and
//! offset commits.
//!
//! In clustering mode a member owns a queue only while it holds the
//! queue's lock on the broker. Handing a queue over is therefore ordered:
//! the old owner stops, commits its offset and unlocks; only then can the
//! new owner lock it and read the committed offset. That keeps duplicates
//! to crashes, where the lock expires with the dead member.
//!
//! Rooms: this file holds the engine's state, queue ownership (acquire,
//! release, locks), the pull loop and offset commits; `membership.rs`
//! heartbeats; `rebalance.rs` decides what to own (its `plan` is pure);
//! `delivery.rs` hands messages to handlers and sends failures back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use mq_proto::broker::v1 as pb;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::allocate::{AllocateStrategy, Holdings};
use crate::cluster::Cluster;
use crate::error::ConsumerError;
use crate::message::{ConsumeResult, ReceivedMessage};
use crate::offset_store::OffsetStore;
use crate::queue::MessageQueue;

mod delivery;
mod membership;
mod rebalance;

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
    Channel(mpsc::Sender<Vec<ReceivedMessage>>),
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

/// A subscription with its parsed tags (empty: every tag).
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub topic: String,
    pub expression: String,
    pub tags: Vec<String>,
}

impl Subscription {
    /// The exact check behind the broker's hash filter.
    fn accepts(&self, msg: &ReceivedMessage) -> bool {
        self.tags.is_empty() || msg.tags.as_ref().is_some_and(|t| self.tags.contains(t))
    }
}

/// One owned queue.
#[derive(Debug)]
pub(crate) struct QueueState {
    pub queue: MessageQueue,
    /// Where the next pull starts.
    pub next_offset: AtomicU64,
    /// Pulled, not yet done, by offset (flow control and commit point).
    cache: Mutex<BTreeMap<u64, usize>>,
    cached_bytes: AtomicU64,
    /// For the pull consumer: offset after the last polled message.
    pub polled: AtomicU64,
    /// Changes on `seek`, so that batches pulled before it are dropped.
    pub epoch: AtomicU64,
    dropped: AtomicBool,
    task: Mutex<Option<JoinHandle<()>>>,
    last_committed: AtomicU64,
    /// Owned under a broker lock, to release with the queue.
    locked: AtomicBool,
}

impl QueueState {
    fn new(queue: MessageQueue, offset: u64) -> Self {
        QueueState {
            queue,
            next_offset: AtomicU64::new(offset),
            cache: Mutex::new(BTreeMap::new()),
            cached_bytes: AtomicU64::new(0),
            polled: AtomicU64::new(offset),
            epoch: AtomicU64::new(0),
            dropped: AtomicBool::new(false),
            task: Mutex::new(None),
            last_committed: AtomicU64::new(u64::MAX),
            locked: AtomicBool::new(false),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, usize>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, messages: &[ReceivedMessage]) {
        let mut cache = self.cache();
        for msg in messages {
            cache.insert(msg.queue_offset, msg.body.len());
            self.cached_bytes
                .fetch_add(msg.body.len() as u64, Ordering::AcqRel);
        }
    }

    fn done(&self, messages: &[ReceivedMessage]) {
        let mut cache = self.cache();
        for msg in messages {
            if let Some(bytes) = cache.remove(&msg.queue_offset) {
                self.cached_bytes.fetch_sub(bytes as u64, Ordering::AcqRel);
            }
        }
    }

    /// The offset to commit: the lowest message not done yet (a slow
    /// message is never skipped), or where the next pull starts.
    fn commit_point(&self, channel: bool) -> u64 {
        if channel {
            return self.polled.load(Ordering::Acquire);
        }
        self.cache()
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| self.next_offset.load(Ordering::Acquire))
    }

    fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }
}

/// Shared state of one consumer.
pub(crate) struct Engine {
    pub settings: Settings,
    pub subscriptions: Vec<Subscription>,
    pub cluster: Cluster,
    pub offsets: OffsetStore,
    pub sink: Sink,
    /// Set by `assign`: no rebalance, these queues only.
    pub manual: Mutex<Option<BTreeSet<MessageQueue>>>,
    pub queues: Mutex<HashMap<MessageQueue, Arc<QueueState>>>,
    pub rebalance_now: Notify,
    versions: Mutex<HashMap<String, u64>>,
    /// Offset reset version last seen, by broker name.
    reset_versions: Mutex<HashMap<String, u64>>,
    pub closed: AtomicBool,
    /// One rebalance at a time: a background round and an `assign` must
    /// not interleave their releases and acquisitions.
    rebalancing: tokio::sync::Mutex<()>,
    /// This engine, for the tasks it spawns.
    me: Weak<Engine>,
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
        Arc::new_cyclic(|me| Engine {
            settings,
            subscriptions,
            cluster,
            offsets,
            sink,
            manual: Mutex::new(None),
            queues: Mutex::new(HashMap::new()),
            rebalance_now: Notify::new(),
            versions: Mutex::new(HashMap::new()),
            reset_versions: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            rebalancing: tokio::sync::Mutex::new(()),
            me: me.clone(),
        })
    }

    fn owned(&self) -> HashMap<MessageQueue, Arc<QueueState>> {
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The queues this member owns now.
    pub fn assignment(&self) -> Vec<MessageQueue> {
        let mut queues: Vec<_> = self.owned().into_keys().collect();
        queues.sort();
        queues
    }

    fn topics(&self) -> Vec<String> {
        self.subscriptions.iter().map(|s| s.topic.clone()).collect()
    }

    fn locking(&self) -> bool {
        !self.settings.broadcasting
            && self
                .manual
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none()
    }

    /// Starts the background loops; they run until `close`.
    pub fn start(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let engine = Arc::clone(self);
        let rebalancer = tokio::spawn(async move { engine.rebalance_loop().await });
        let engine = Arc::clone(self);
        let heart = tokio::spawn(async move { engine.heartbeat_loop().await });
        let engine = Arc::clone(self);
        let committer = tokio::spawn(async move { engine.commit_loop().await });
        vec![rebalancer, heart, committer]
    }

    /// Takes queues: locks them (clustering), finds where to start, and
    /// starts their pull tasks. False if some could not be taken.
    async fn acquire(&self, queues: Vec<MessageQueue>) -> bool {
        let mut taken = Vec::new();
        if self.locking() {
            let mut by_broker: BTreeMap<String, Vec<MessageQueue>> = BTreeMap::new();
            for queue in &queues {
                by_broker
                    .entry(queue.broker_name.clone())
                    .or_default()
                    .push(queue.clone());
            }
            for (broker, wanted) in by_broker {
                let Some(addr) = self.cluster.addr_of(&wanted[0]) else {
                    continue;
                };
                let Ok(mut client) = self.cluster.client(&addr) else {
                    continue;
                };
                let request = pb::LockQueuesRequest {
                    group: self.settings.group.clone(),
                    client_id: self.settings.client_id.clone(),
                    queues: wanted.iter().map(queue_ref).collect(),
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
                                .filter(|q| locked.contains(&(q.topic.clone(), q.queue_id))),
                        );
                    }
                    Err(status) => {
                        tracing::debug!(broker, error = %status.message(), "queue lock failed")
                    }
                }
            }
        } else {
            taken = queues.clone();
        }
        let all = taken.len() == queues.len();
        let locked = self.locking();
        for queue in taken {
            match self.start_offset(&queue).await {
                Ok(offset) => {
                    if let Some(state) = self.start_queue(queue, offset) {
                        state.locked.store(locked, Ordering::Release);
                    }
                }
                Err(err) => {
                    tracing::warn!(queue = %queue, error = %err, "cannot find where to start");
                    if locked {
                        self.unlock(&queue).await;
                    }
                    return false;
                }
            }
        }
        all
    }

    async fn start_offset(&self, queue: &MessageQueue) -> Result<u64, ConsumerError> {
        if let Some(offset) = self.offsets.query(&self.cluster, queue).await? {
            return Ok(offset);
        }
        let addr = self
            .cluster
            .addr_of(queue)
            .ok_or_else(|| ConsumerError::NoRoute {
                topic: queue.topic.clone(),
                reason: "no broker".into(),
            })?;
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
            .map_err(|s| ConsumerError::broker(&queue.broker_name, s))?
            .into_inner();
        Ok(match self.settings.consume_from {
            ConsumeFrom::LastOffset => offsets.max_offset,
            ConsumeFrom::FirstOffset => offsets.min_offset,
            ConsumeFrom::Timestamp(_) => offsets.search_offset,
        })
    }

    pub fn start_queue(&self, queue: MessageQueue, offset: u64) -> Option<Arc<QueueState>> {
        let state = Arc::new(QueueState::new(queue.clone(), offset));
        let engine = self.self_arc()?;
        let worker = Arc::clone(&state);
        let task = tokio::spawn(async move { engine.pull_loop(worker).await });
        *state.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        tracing::info!(group = %self.settings.group, queue = %queue, offset, "consuming queue");
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(queue, Arc::clone(&state));
        Some(state)
    }

    /// Stops a queue: no more pulls, in-flight handlers finish (bounded),
    /// the offset is committed, then the lock is released.
    pub async fn release(&self, queue: &MessageQueue) {
        let Some(state) = self
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(queue)
        else {
            return;
        };
        state.dropped.store(true, Ordering::Release);
        let task = state.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            // A held pull may take its whole suspend time: do not wait for it.
            task.abort();
            let _ = task.await;
        }
        let channel = matches!(self.sink, Sink::Channel(_));
        for _ in 0..200 {
            if channel || state.cache().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.commit_queue(&state).await;
        if state.locked.load(Ordering::Acquire) {
            self.unlock(queue).await;
        }
        tracing::info!(group = %self.settings.group, queue = %queue, "released queue");
    }

    async fn unlock(&self, queue: &MessageQueue) {
        let Some(addr) = self.cluster.addr_of(queue) else {
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

    async fn commit_loop(self: Arc<Self>) {
        while !self.closed.load(Ordering::Acquire) {
            tokio::time::sleep(self.settings.commit_interval).await;
            self.commit_all().await;
        }
    }

    pub async fn commit_all(&self) {
        for state in self.owned().into_values() {
            self.commit_queue(&state).await;
        }
    }

    async fn commit_queue(&self, state: &QueueState) {
        let offset = state.commit_point(matches!(self.sink, Sink::Channel(_)));
        if state.last_committed.swap(offset, Ordering::AcqRel) == offset {
            return;
        }
        if let Err(err) = self
            .offsets
            .commit(
                &self.cluster,
                &state.queue,
                offset,
                self.reset_version(&state.queue.broker_name),
            )
            .await
        {
            state.last_committed.store(u64::MAX, Ordering::Release);
            tracing::warn!(queue = %state.queue, offset, error = %err, "offset commit failed");
        }
    }

    /// Pulls one queue until it is dropped.
    async fn pull_loop(self: Arc<Self>, state: Arc<QueueState>) {
        let Some(subscription) = self
            .subscriptions
            .iter()
            .find(|s| s.topic == state.queue.topic)
            .cloned()
        else {
            return;
        };
        let mut failures = 0u32;
        while !state.is_dropped() && !self.closed.load(Ordering::Acquire) {
            // Flow control: stop pulling while too much waits to be handled.
            let cached = state.cache().len();
            if cached >= self.settings.max_cached_messages
                || state.cached_bytes.load(Ordering::Acquire) as usize
                    >= self.settings.max_cached_bytes
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let epoch = state.epoch.load(Ordering::Acquire);
            let offset = state.next_offset.load(Ordering::Acquire);
            match self.pull(&state.queue, &subscription, offset).await {
                Ok(response) => {
                    failures = 0;
                    if state.epoch.load(Ordering::Acquire) != epoch {
                        continue;
                    }
                    let status = pb::PullStatus::try_from(response.status)
                        .unwrap_or(pb::PullStatus::NoNewMsg);
                    if status == pb::PullStatus::OffsetIllegal {
                        tracing::warn!(queue = %state.queue, offset, next = response.next_offset, "illegal pull offset; moving on");
                        // Polled positions move with it (a seek far past the end).
                        state.polled.store(response.next_offset, Ordering::Release);
                    }
                    if !response.unreadable_offsets.is_empty() {
                        tracing::error!(queue = %state.queue, offsets = ?response.unreadable_offsets, "the broker could not read these messages (damaged on disk); they are passed over");
                    }
                    let messages: Vec<ReceivedMessage> = response
                        .messages
                        .into_iter()
                        .filter_map(|m| ReceivedMessage::from_wire(&state.queue, m).ok())
                        .filter(|m| subscription.accepts(m))
                        .collect();
                    if !messages.is_empty() {
                        state.cached(&messages);
                    }
                    state
                        .next_offset
                        .store(response.next_offset, Ordering::Release);
                    if !messages.is_empty() {
                        self.deliver(&state, messages).await;
                    }
                }
                Err(err) => {
                    failures += 1;
                    tracing::debug!(queue = %state.queue, error = %err, "pull failed");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(20))))
                        .await;
                }
            }
        }
    }

    async fn pull(
        &self,
        queue: &MessageQueue,
        subscription: &Subscription,
        offset: u64,
    ) -> Result<pb::PullMessageResponse, ConsumerError> {
        let addr = self
            .cluster
            .addr_of(queue)
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
            tag_expression: subscription.expression.clone(),
            suspend_timeout_ms: self.settings.suspend.as_millis() as u64,
        });
        request.set_timeout(self.settings.suspend + Duration::from_secs(5));
        Ok(self
            .cluster
            .client(&addr)?
            .pull_message(request)
            .await
            .map_err(|s| ConsumerError::broker(&queue.broker_name, s))?
            .into_inner())
    }

    /// Stops everything: releases every queue (offsets committed, locks
    /// released) and leaves the group on every broker.
    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for queue in self.assignment() {
            self.release(&queue).await;
        }
        for (_, addr) in self.cluster.broker_addrs(&self.topics()) {
            if let Ok(mut client) = self.cluster.client(&addr) {
                let _ = client
                    .unregister_consumer(pb::UnregisterConsumerRequest {
                        group: self.settings.group.clone(),
                        client_id: self.settings.client_id.clone(),
                    })
                    .await;
            }
        }
    }

    /// Stops every task at once, without committing (for drops).
    pub fn abort(&self) {
        self.closed.store(true, Ordering::Release);
        for state in self.owned().into_values() {
            state.dropped.store(true, Ordering::Release);
            if let Some(task) = state.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
                task.abort();
            }
        }
    }

    fn self_arc(&self) -> Option<Arc<Engine>> {
        self.me.upgrade()
    }
}

/// A started engine with its background loops; dropping it stops them
/// without committing, `shutdown` stops them cleanly.
#[derive(Debug)]
pub(crate) struct Running {
    pub engine: Arc<Engine>,
    loops: Vec<JoinHandle<()>>,
}

impl Running {
    /// Fetches the routes, heartbeats once (so that the first rebalance
    /// sees this member) and starts the loops.
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
        engine.heartbeat().await;
        let loops = engine.start();
        Ok(Running { engine, loops })
    }

    /// Finishes in-flight work (bounded), commits, releases the queues and
    /// leaves the group.
    pub async fn shutdown(self) {
        for task in &self.loops {
            task.abort();
        }
        self.engine.close().await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.loops {
            task.abort();
        }
        self.engine.abort();
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
