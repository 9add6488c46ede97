//! One owned queue: a task that owns the queue's whole state (where the
//! next pull starts, what is cached and not yet done, what was committed)
//! and runs its pull loop. Others reach it only through its [`QueueLink`]:
//! handlers report what they finished, `poll()` reports what it took,
//! `seek` and the coordinator send commands. Nothing polls a clock: a
//! queue over its cache limits sleeps until a report frees room.
//!
//! Reports and commands come on separate channels. Reports (one per
//! handled batch, so many under load) are drained in one go when the task
//! next runs; they wake it only when it waits for room, so a busy queue is
//! not woken once per message.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mq_proto::broker::v1 as pb;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use super::{Engine, Sink, Subscription, into_chunks};
use crate::error::ConsumerError;
use crate::message::ReceivedMessage;
use crate::queue::MessageQueue;

/// How long a released queue waits for its in-flight handlers before it
/// commits (a slow message is never skipped: the commit stops before it).
const HANDLER_GRACE: Duration = Duration::from_secs(5);

/// The handle others hold on a queue task.
#[derive(Debug)]
pub(crate) struct QueueLink {
    pub queue: MessageQueue,
    /// Owned under a broker lock (renewed by heartbeats, released with it).
    pub locked: bool,
    /// Bumped by a seek or an offset reset: batches pulled before it are
    /// stale, and reports about them are ignored.
    epoch: AtomicU64,
    /// Released (or its task gone): handlers stop retrying, batches are
    /// dropped.
    retired: AtomicBool,
    commands: mpsc::UnboundedSender<Command>,
    reports: mpsc::UnboundedSender<Report>,
}

impl QueueLink {
    /// Goes on from `offset`; batches pulled before are dropped at once.
    pub fn seek(&self, offset: u64) {
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        self.command(Command::Seek { offset, epoch });
    }

    /// True while batches pulled in `epoch` are still wanted.
    pub fn is_current(&self, epoch: u64) -> bool {
        !self.is_retired() && self.epoch.load(Ordering::Acquire) == epoch
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Handlers finished `messages` (or handed them back to the broker).
    pub fn report_done(&self, epoch: u64, messages: &[ReceivedMessage]) {
        if !messages.is_empty() {
            self.report(Report::Done {
                epoch,
                offsets: messages.iter().map(|m| m.queue_offset).collect(),
            });
        }
    }

    /// `poll()` handed out everything before `next`.
    pub fn report_polled(&self, epoch: u64, next: u64) {
        self.report(Report::Polled { epoch, next });
    }

    /// The group's offsets were reset by an operator: reread them.
    pub fn reread(&self) {
        self.command(Command::Reread);
    }

    /// Commits the queue's position; answers when done.
    pub fn commit(&self) -> oneshot::Receiver<()> {
        let (reply, done) = oneshot::channel();
        self.command(Command::Commit(reply));
        done
    }

    /// Stops the queue: no more pulls, in-flight handlers finish (bounded),
    /// the position is committed and the lock released; answers when done.
    pub fn stop(&self) -> oneshot::Receiver<()> {
        self.retired.store(true, Ordering::Release);
        let (reply, done) = oneshot::channel();
        self.command(Command::Stop(reply));
        done
    }

    // The task ends only on `Stop`; what comes after has no one to see it.
    fn command(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    fn report(&self, report: Report) {
        let _ = self.reports.send(report);
    }
}

/// What others ask of a queue task.
enum Command {
    Seek { offset: u64, epoch: u64 },
    Reread,
    Commit(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

/// What handlers and `poll()` tell a queue task; stale epochs are ignored.
enum Report {
    Done { epoch: u64, offsets: Vec<u64> },
    Polled { epoch: u64, next: u64 },
}

/// A batch on its way to `PullConsumer::poll`.
#[derive(Debug)]
pub(crate) struct Pulled {
    pub link: Arc<QueueLink>,
    pub epoch: u64,
    pub messages: Vec<ReceivedMessage>,
}

type PullFuture =
    Pin<Box<dyn Future<Output = Result<pb::PullMessageResponse, ConsumerError>> + Send>>;

/// The task's state; nobody else touches it.
pub(crate) struct QueueTask {
    engine: Arc<Engine>,
    link: Arc<QueueLink>,
    commands: mpsc::UnboundedReceiver<Command>,
    reports: mpsc::UnboundedReceiver<Report>,
    subscription: Subscription,
    /// Where the next pull starts.
    next_offset: u64,
    epoch: u64,
    /// Pulled and not yet done (push) or not yet polled (pull), by offset,
    /// with their sizes: flow control and the commit point.
    cache: BTreeMap<u64, usize>,
    cached_bytes: usize,
    /// Pull consumers: the offset after the last polled message.
    polled: u64,
    last_committed: Option<u64>,
    /// Nothing takes what is pulled any more (the pull consumer is gone).
    parked: bool,
    /// Ordered push consumers: the queue's one handler lane.
    lane: Option<mpsc::UnboundedSender<(u64, Vec<ReceivedMessage>)>>,
}

impl QueueTask {
    /// A task for `queue` starting at `offset`, and the link to it.
    pub fn new(
        engine: Arc<Engine>,
        subscription: Subscription,
        queue: MessageQueue,
        offset: u64,
        locked: bool,
    ) -> (QueueTask, Arc<QueueLink>) {
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let link = Arc::new(QueueLink {
            queue,
            locked,
            epoch: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            commands: commands_tx,
            reports: reports_tx,
        });
        let task = QueueTask {
            engine,
            link: Arc::clone(&link),
            commands,
            reports,
            subscription,
            next_offset: offset,
            epoch: 0,
            cache: BTreeMap::new(),
            cached_bytes: 0,
            polled: offset,
            last_committed: None,
            parked: false,
            lane: None,
        };
        (task, link)
    }

    fn is_channel(&self) -> bool {
        matches!(self.engine.sink, Sink::Channel(_))
    }

    fn has_room(&self) -> bool {
        self.cache.len() < self.engine.settings.max_cached_messages
            && self.cached_bytes < self.engine.settings.max_cached_bytes
    }

    /// Pulls, delivers and answers events until stopped.
    pub async fn run(mut self) {
        let mut commit_tick = tokio::time::interval_at(
            Instant::now() + self.engine.settings.commit_interval,
            self.engine.settings.commit_interval,
        );
        commit_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut pull: Option<PullFuture> = None;
        let mut backoff: Option<Pin<Box<tokio::time::Sleep>>> = None;
        // A pull consumer's batch waiting for room in the poll channel.
        let mut outbox: Option<Pulled> = None;
        let mut failures = 0u32;
        loop {
            self.drain_reports();
            let idle = pull.is_none() && backoff.is_none() && outbox.is_none();
            if idle && !self.parked && self.has_room() {
                pull = Some(self.start_pull());
            }
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { return };
                    match command {
                        Command::Stop(reply) => {
                            drop(pull);
                            self.stop().await;
                            let _ = reply.send(());
                            return;
                        }
                        Command::Seek { offset, epoch } => {
                            self.restart_at(offset, epoch);
                            // What was pulled or is being pulled is stale.
                            (pull, outbox, backoff) = (None, None, None);
                        }
                        Command::Reread => {
                            if self.reread().await {
                                (pull, outbox, backoff) = (None, None, None);
                            }
                        }
                        Command::Commit(reply) => {
                            self.commit().await;
                            let _ = reply.send(());
                        }
                    }
                }
                // Waiting for room: a report may free it.
                Some(report) = self.reports.recv(), if !self.has_room() => self.apply(report),
                response = async { pull.as_mut().expect("guarded").await }, if pull.is_some() => {
                    pull = None;
                    match response {
                        Ok(response) => {
                            failures = 0;
                            outbox = self.pulled(response);
                        }
                        Err(err) => {
                            failures += 1;
                            tracing::debug!(queue = %self.link.queue, error = %err, "pull failed");
                            let pause = Duration::from_millis(100 * u64::from(failures.min(20)));
                            backoff = Some(Box::pin(tokio::time::sleep(pause)));
                        }
                    }
                }
                () = async { backoff.as_mut().expect("guarded").await }, if backoff.is_some() => {
                    backoff = None;
                }
                permit = poll_slot(&self.engine.sink), if outbox.is_some() => {
                    let batch = outbox.take().expect("guarded");
                    match permit {
                        Some(permit) => {
                            permit.send(batch);
                        }
                        // The pull consumer is gone: keep still until stopped.
                        None => self.parked = true,
                    }
                }
                _ = commit_tick.tick() => self.commit().await,
            }
        }
    }

    fn start_pull(&self) -> PullFuture {
        let engine = Arc::clone(&self.engine);
        let queue = self.link.queue.clone();
        let subscription = self.subscription.clone();
        let offset = self.next_offset;
        Box::pin(async move { engine.pull(&queue, subscription, offset).await })
    }

    /// Takes in a pull's answer; returns a batch for the poll channel.
    fn pulled(&mut self, response: pb::PullMessageResponse) -> Option<Pulled> {
        let status = pb::PullStatus::try_from(response.status).unwrap_or(pb::PullStatus::NoNewMsg);
        if status == pb::PullStatus::OffsetIllegal {
            tracing::warn!(queue = %self.link.queue, offset = self.next_offset, next = response.next_offset, "illegal pull offset; moving on");
            // Polled positions move with it (a seek far past the end).
            self.polled = response.next_offset;
        }
        if !response.unreadable_offsets.is_empty() {
            tracing::error!(queue = %self.link.queue, offsets = ?response.unreadable_offsets, "the broker could not read these messages (damaged on disk); they are passed over");
        }
        self.next_offset = response.next_offset;
        let messages: Vec<ReceivedMessage> = response
            .messages
            .into_iter()
            .filter_map(|m| ReceivedMessage::from_wire(&self.link.queue, m).ok())
            .filter(|m| self.subscription.accepts(m))
            .collect();
        if messages.is_empty() {
            return None;
        }
        for msg in &messages {
            self.cache.insert(msg.queue_offset, msg.body.len());
            self.cached_bytes += msg.body.len();
        }
        self.deliver(messages)
    }

    /// Hands a batch on: to the poll channel (returned, sent as room
    /// allows), to the queue's ordered lane, or to concurrent handlers.
    fn deliver(&mut self, messages: Vec<ReceivedMessage>) -> Option<Pulled> {
        let epoch = self.epoch;
        match &self.engine.sink {
            Sink::Channel(_) => {
                return Some(Pulled {
                    link: Arc::clone(&self.link),
                    epoch,
                    messages,
                });
            }
            Sink::Ordered { handler, batch } => {
                let lane = self.lane.get_or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(Arc::clone(&self.engine).ordered_lane(
                        Arc::clone(handler),
                        *batch,
                        Arc::clone(&self.link),
                        rx,
                    ));
                    tx
                });
                let _ = lane.send((epoch, messages));
            }
            Sink::Concurrent {
                handler,
                permits,
                batch,
            } => {
                // One task takes the batch's permits in order and starts a
                // handler per chunk as each comes: a waiting batch costs one
                // task, not one per message.
                let (engine, link) = (Arc::clone(&self.engine), Arc::clone(&self.link));
                let (handler, permits, batch) = (Arc::clone(handler), Arc::clone(permits), *batch);
                tokio::spawn(async move {
                    for chunk in into_chunks(messages, batch) {
                        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                            return;
                        };
                        let (engine, link, handler) =
                            (Arc::clone(&engine), Arc::clone(&link), Arc::clone(&handler));
                        tokio::spawn(async move {
                            engine
                                .handle_until_done(&handler, &link, epoch, chunk)
                                .await;
                            drop(permit);
                        });
                    }
                });
            }
        }
        None
    }

    /// Applies every report that came in since the last look.
    fn drain_reports(&mut self) {
        while let Ok(report) = self.reports.try_recv() {
            self.apply(report);
        }
    }

    /// A report from a handler or from `poll()`.
    fn apply(&mut self, report: Report) {
        match report {
            Report::Done { epoch, offsets } if epoch == self.epoch => {
                for offset in offsets {
                    if let Some(bytes) = self.cache.remove(&offset) {
                        self.cached_bytes -= bytes;
                    }
                }
            }
            Report::Polled { epoch, next } if epoch == self.epoch => {
                self.polled = next;
                let waiting = self.cache.split_off(&next);
                let taken = std::mem::replace(&mut self.cache, waiting);
                self.cached_bytes -= taken.values().sum::<usize>();
            }
            _ => {}
        }
    }

    fn restart_at(&mut self, offset: u64, epoch: u64) {
        self.epoch = epoch;
        self.next_offset = offset;
        self.polled = offset;
        self.cache.clear();
        self.cached_bytes = 0;
    }

    /// After an operator's offset reset: goes on from the committed
    /// offset. True if the position changed.
    async fn reread(&mut self) -> bool {
        let queue = &self.link.queue;
        match self.engine.offsets.query(&self.engine.cluster, queue).await {
            Ok(Some(offset)) => {
                tracing::info!(queue = %queue, offset, "offset reset by an operator; going on from there");
                let epoch = self.link.epoch.fetch_add(1, Ordering::AcqRel) + 1;
                self.restart_at(offset, epoch);
                self.last_committed = Some(offset);
                true
            }
            Ok(None) => false,
            Err(err) => {
                tracing::warn!(queue = %queue, error = %err, "cannot read the reset offset");
                false
            }
        }
    }

    /// The offset to commit: the lowest message not done yet (a slow
    /// message is never skipped), or where the next pull starts; for pull
    /// consumers, what was polled.
    fn commit_point(&self) -> u64 {
        if self.is_channel() {
            return self.polled;
        }
        self.cache
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_offset)
    }

    async fn commit(&mut self) {
        self.drain_reports();
        let offset = self.commit_point();
        if self.last_committed == Some(offset) {
            return;
        }
        let queue = &self.link.queue;
        let reset_version = self.engine.reset_version(&queue.broker_name);
        match (self.engine.offsets)
            .commit(&self.engine.cluster, queue, offset, reset_version)
            .await
        {
            Ok(()) => self.last_committed = Some(offset),
            Err(err) => {
                self.last_committed = None;
                tracing::warn!(queue = %queue, offset, error = %err, "offset commit failed");
            }
        }
    }

    /// Waits for in-flight handlers (bounded), commits, unlocks.
    async fn stop(&mut self) {
        self.lane = None;
        if !self.is_channel() {
            let deadline = Instant::now() + HANDLER_GRACE;
            self.drain_reports();
            while !self.cache.is_empty() {
                match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                    Ok(Some(report)) => self.apply(report),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        self.commit().await;
        if self.link.locked {
            self.engine.unlock(&self.link.queue).await;
        }
        tracing::info!(group = %self.engine.settings.group, queue = %self.link.queue, "released queue");
    }
}

/// Room for one batch in the pull consumer's channel; `None` once the
/// consumer is gone.
async fn poll_slot(sink: &Sink) -> Option<mpsc::OwnedPermit<Pulled>> {
    match sink {
        Sink::Channel(tx) => tx.clone().reserve_owned().await.ok(),
        _ => None,
    }
}

impl Drop for QueueTask {
    /// An aborted task (a dropped consumer) retires its link, so that
    /// handlers still retrying its messages give up.
    fn drop(&mut self) {
        self.link.retired.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::allocate::Sticky;
    use crate::cluster::Cluster;
    use crate::engine::{ConsumeFrom, Handler, Settings};
    use crate::message::ConsumeResult;
    use crate::offset_store::OffsetStore;

    /// An engine whose cluster knows no broker: pulls and commits fail at
    /// once, so only the task's own logic runs.
    fn engine(sink: Sink) -> Arc<Engine> {
        let settings = Settings {
            group: "g".into(),
            client_id: "c".into(),
            broadcasting: false,
            strategy: Arc::new(Sticky),
            consume_from: ConsumeFrom::FirstOffset,
            pull_batch: 32,
            suspend: Duration::from_secs(1),
            max_cached_messages: 10,
            max_cached_bytes: 1 << 20,
            rebalance_interval: Duration::from_secs(20),
            heartbeat_interval: Duration::from_secs(10),
            commit_interval: Duration::from_secs(5),
            retry_delay: Duration::from_secs(1),
            max_reconsume_times: 16,
        };
        let namesrv = mq_nameserver_client::NameServerClient::from_list("127.0.0.1:1").unwrap();
        Engine::new(
            settings,
            vec![Subscription {
                topic: "t".into(),
                expression: "*".into(),
                tags: Vec::new(),
                sql: String::new(),
            }],
            Cluster::new(namesrv, mq_auth::Connector::default()),
            OffsetStore::remote("g"),
            sink,
        )
    }

    fn task(sink: Sink) -> (QueueTask, Arc<QueueLink>) {
        let engine = engine(sink);
        let subscription = engine.subscriptions[0].clone();
        let queue = MessageQueue {
            topic: "t".into(),
            broker_name: "b".into(),
            queue_id: 0,
        };
        QueueTask::new(engine, subscription, queue, 0, false)
    }

    /// A pull answer with `offsets`, each message 100 bytes.
    fn response(offsets: std::ops::Range<u64>) -> pb::PullMessageResponse {
        pb::PullMessageResponse {
            status: pb::PullStatus::Found as i32,
            next_offset: offsets.end,
            messages: offsets
                .map(|queue_offset| pb::StoredMessage {
                    queue_offset,
                    body: vec![0; 100].into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn pulling_pauses_at_the_cache_limit_until_polls_free_room() {
        let (tx, _rx) = mpsc::channel(8);
        let (mut task, link) = task(Sink::Channel(tx));
        let batch = task.pulled(response(0..10)).expect("a batch for poll");
        assert!(!task.has_room(), "10 unpolled messages fill the cache");
        assert_eq!(task.cached_bytes, 1000);
        // A report from before a seek is stale and frees nothing.
        task.apply(Report::Polled { epoch: 7, next: 10 });
        assert!(!task.has_room());
        task.apply(Report::Polled {
            epoch: batch.epoch,
            next: 4,
        });
        assert!(task.has_room());
        assert_eq!((task.cache.len(), task.cached_bytes), (6, 600));
        assert_eq!(task.commit_point(), 4, "what was polled is committed");
        assert_eq!(task.next_offset, 10);
        assert!(link.is_current(batch.epoch));
        link.seek(3);
        assert!(
            !link.is_current(batch.epoch),
            "a seek makes old batches stale"
        );
    }

    #[tokio::test]
    async fn a_push_queue_commits_below_its_slowest_message() {
        let handler: Handler = Arc::new(|_| Box::pin(std::future::pending()));
        let sink = Sink::Concurrent {
            handler,
            permits: Arc::new(Semaphore::new(4)),
            batch: 1,
        };
        let (mut task, _link) = task(sink);
        assert!(task.pulled(response(0..5)).is_none());
        let epoch = task.epoch;
        task.apply(Report::Done {
            epoch,
            offsets: vec![0, 1, 3],
        });
        assert_eq!(task.commit_point(), 2, "2 is still being handled");
        task.apply(Report::Done {
            epoch,
            offsets: vec![2, 4],
        });
        assert_eq!(
            task.commit_point(),
            5,
            "all done: where the next pull starts"
        );
        assert_eq!(task.cached_bytes, 0);
    }

    /// Ordered handlers that take `handling` (on the paused clock) for each
    /// batch; how long stopping the queue takes once it holds one batch.
    async fn stop_time(handling: Option<Duration>) -> Duration {
        let started = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&started);
        let handler: Handler = Arc::new(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match handling {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => std::future::pending().await,
                }
                ConsumeResult::Success
            })
        });
        let (mut task, link) = task(Sink::Ordered { handler, batch: 3 });
        assert!(task.pulled(response(0..3)).is_none());
        tokio::spawn(task.run());
        while started.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let begin = Instant::now();
        link.stop().await.expect("the task answers");
        begin.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_queue_waits_for_its_handlers_as_long_as_they_take() {
        let took = stop_time(Some(Duration::from_millis(1500))).await;
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_millis(1600),
            "stopped after {took:?}, the handler took 1.5 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_queue_gives_a_stuck_handler_its_grace_and_no_more() {
        let took = stop_time(None).await;
        assert!(
            took >= HANDLER_GRACE && took < HANDLER_GRACE + Duration::from_millis(100),
            "stopped after {took:?}"
        );
    }
}
