//! The replica's side: follows the master's CommitLog from this store's
//! end, appending every chunk at its offset and recording the master's
//! epochs it carries, and reconnects (with backoff) whenever the stream
//! breaks, until the broker stops. When the master says the log diverged
//! (by epochs), the replica records the cut durably and restarts the
//! broker in its process: the store applies the cut when it opens, and
//! following resumes from the common point. A chunk the store refuses
//! stops following with an error: a divergent tail is never kept
//! silently.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_proto::replication::v1 as pb;
use mq_store::{MessageStore, StoreError};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// First and longest pause before reconnecting to the master.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Keepalive ping interval and timeout on the stream from the master.
const KEEPALIVE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct Follower {
    pub store: Arc<MessageStore>,
    /// `host:port` of the master's broker port.
    pub master_addr: String,
    pub broker_name: String,
    pub broker_id: u64,
    pub status: Arc<FollowStatus>,
    pub restart: Arc<super::Restart>,
    /// How the master is reached: TLS, signed (a master with
    /// authentication on refuses others).
    pub connector: mq_auth::Connector,
}

/// What a replica knows of its following, for metrics and admin.
#[derive(Debug)]
pub struct FollowStatus {
    /// 1 while a stream from the master is open.
    pub connected: AtomicBool,
    /// The master said this replica's log agrees with its own (in this
    /// run): until then the replica serves no reads, since its tail may be
    /// one the group never had (a deposed master's).
    pub agreed: AtomicBool,
    /// The master's CommitLog end with the last chunk.
    pub master_end: AtomicU64,
    /// Bytes appended from the master since start.
    pub bytes: AtomicU64,
    /// When this replica last had the master's whole log (as of a chunk);
    /// at first, when it started.
    caught_up: Mutex<Instant>,
    /// Bytes per second of the last catch-up (f64 bits): from the stream's
    /// start to the first time it had the master's whole log.
    pub catch_up_rate: AtomicU64,
}

impl Default for FollowStatus {
    fn default() -> Self {
        FollowStatus {
            connected: AtomicBool::new(false),
            agreed: AtomicBool::new(false),
            master_end: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            caught_up: Mutex::new(Instant::now()),
            catch_up_rate: AtomicU64::new(0),
        }
    }
}

impl FollowStatus {
    /// How far this replica's log (ending at `end`) is behind the master's
    /// end as last heard.
    pub fn lag(&self, end: u64) -> u64 {
        self.master_end.load(Ordering::Acquire).saturating_sub(end)
    }

    /// How long this replica (ending at `end`) has gone without the
    /// master's whole log; since start when it never had it.
    pub fn lag_time(&self, end: u64) -> Duration {
        if self.lag(end) == 0 && self.connected.load(Ordering::Acquire) {
            return Duration::ZERO;
        }
        self.caught_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    fn appended(&self, end: u64, master_end: u64, bytes: usize) {
        self.master_end.store(master_end, Ordering::Release);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if end >= master_end {
            *self.caught_up.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        }
    }
}

impl Follower {
    /// Follows the master until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut pause = RETRY_FIRST;
        loop {
            let outcome = tokio::select! {
                outcome = self.follow_once() => outcome,
                _ = stop.wait_for(|s| *s) => return,
            };
            match outcome {
                Ok(()) => pause = RETRY_FIRST,
                Err(FollowError::Refused(err)) => {
                    tracing::error!(master = %self.master_addr, error = %err, "replication stopped: this replica's CommitLog does not continue the master's");
                    return;
                }
                Err(FollowError::CutBack(to)) => {
                    tracing::warn!(master = %self.master_addr, cut_back_to = to, "this replica's log diverged from the master's; cut recorded, restarting to apply it");
                    self.restart.request();
                    return;
                }
                Err(FollowError::Transient(why)) => {
                    tracing::warn!(master = %self.master_addr, error = %why, retry_in = ?pause, "cannot follow the master");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// One stream: connect, ask from this store's end, append until the
    /// stream ends.
    async fn follow_once(&self) -> Result<(), FollowError> {
        // Keepalive pings find a master that vanished without closing the
        // connection (a network cut): the stream fails, and following
        // reconnects once the master can be reached again.
        let endpoint = self
            .connector
            .endpoint(&self.master_addr)
            .map_err(|e| FollowError::Transient(e.to_string()))?
            .connect_timeout(Duration::from_secs(3))
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_timeout(KEEPALIVE)
            .keep_alive_while_idle(true);
        let channel = self
            .connector
            .connect(&endpoint)
            .await
            .map_err(|e| FollowError::Transient(e.to_string()))?;
        let channel = self.connector.signed(channel);
        let mut client = pb::replication_client::ReplicationClient::new(channel)
            .max_decoding_message_size(2 * super::CHUNK_BYTES + (1 << 20));
        let from = self.store.commitlog_max_offset();
        let (to_master, outgoing) = mpsc::channel(16);
        let start = pb::FollowRequest {
            broker_name: self.broker_name.clone(),
            broker_id: self.broker_id,
            from_offset: from,
            segment_size: self.store.commitlog_segment_size(),
            epochs: super::divergence::to_wire(self.store.epochs()),
        };
        let _ = to_master
            .send(pb::ReplicaMessage {
                kind: Some(pb::replica_message::Kind::Start(start)),
            })
            .await;
        let mut stream = client
            .follow(ReceiverStream::new(outgoing))
            .await
            .map_err(|s| FollowError::Transient(format!("{}: {}", s.code(), s.message())))?
            .into_inner();
        tracing::info!(master = %self.master_addr, from, "following the master's CommitLog");
        self.status.connected.store(true, Ordering::Release);
        let followed = self.append_stream(&mut stream, &to_master).await;
        self.status.connected.store(false, Ordering::Release);
        followed
    }

    /// Appends every chunk of `stream` and acks it, until the stream ends.
    async fn append_stream(
        &self,
        stream: &mut tonic::Streaming<pb::LogChunk>,
        to_master: &mpsc::Sender<pb::ReplicaMessage>,
    ) -> Result<(), FollowError> {
        // How long this stream took to reach the master's end, once.
        let (began, from) = (Instant::now(), self.store.commitlog_max_offset());
        let mut caught_up = false;
        loop {
            let chunk = match stream.message().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ok(()),
                Err(status) => {
                    return Err(FollowError::Transient(format!(
                        "{}: {}",
                        status.code(),
                        status.message()
                    )));
                }
            };
            if let Some(to) = chunk.truncate_to {
                self.store
                    .request_truncation(to)
                    .map_err(|e| FollowError::Transient(e.to_string()))?;
                return Err(FollowError::CutBack(to));
            }
            if !self.status.agreed.swap(true, Ordering::AcqRel) {
                tracing::info!(master = %self.master_addr, "the master agrees with this replica's log; serving reads");
            }
            // Reads here stop where the master's do: at what every
            // replica of the SyncStateSet has (the master says so).
            match chunk.confirmed_end {
                Some(end) => self.store.read_limit().raise_to(end),
                None => self.store.read_limit().lift(),
            }
            if chunk.data.is_empty() {
                continue;
            }
            // In sync-flush mode the append waits for the disk, so what is
            // acknowledged is flushed.
            let end = match self.store.append_raw(chunk.offset, &chunk.data).await {
                Ok((end, _)) => end,
                Err(err @ StoreError::Replication { .. }) => return Err(FollowError::Refused(err)),
                Err(err) => return Err(FollowError::Transient(err.to_string())),
            };
            // Recorded after the bytes: a crash in between leaves the
            // replica an epoch short, which costs a refetch, never a wrong
            // agreement.
            for epoch in &chunk.epochs {
                self.store
                    .note_epoch(epoch.epoch, epoch.start_offset)
                    .map_err(|e| FollowError::Transient(e.to_string()))?;
            }
            self.status
                .appended(end, chunk.master_end, chunk.data.len());
            if !caught_up && end >= chunk.master_end {
                caught_up = true;
                let took = began.elapsed();
                let rate = (end - from) as f64 / took.as_secs_f64().max(1e-9);
                self.status
                    .catch_up_rate
                    .store(rate.to_bits(), Ordering::Release);
                tracing::info!(
                    bytes = end - from,
                    seconds = took.as_secs_f64(),
                    mb_per_sec = rate / 1e6,
                    "caught up with the master"
                );
            }
            let ack = pb::ReplicaMessage {
                kind: Some(pb::replica_message::Kind::Ack(pb::Ack { end_offset: end })),
            };
            if to_master.send(ack).await.is_err() {
                return Err(FollowError::Transient(
                    "the master stopped listening".into(),
                ));
            }
        }
    }
}

enum FollowError {
    /// Worth another try: the master is away, the connection broke, the
    /// disk was full.
    Transient(String),
    /// The store refused the master's bytes: the logs diverged.
    Refused(StoreError),
    /// The master says the log diverged after this offset; the cut is
    /// recorded.
    CutBack(u64),
}
