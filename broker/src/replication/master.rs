//! The master's side: streams its CommitLog to a replica from where the
//! replica's log ends, in chunks as large as are written, then live,
//! woken by the dispatcher's bell.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mq_auth::model::{Action, Target};
use mq_proto::replication::v1 as pb;
use mq_store::MessageStore;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::CHUNK_BYTES;
use super::divergence::{Agreement, agree, covering, from_wire, to_wire};
use super::replicas::Replicas;
use super::state_sync::BrokerState;

/// Longest wait for new data before looking again: the bell rings after
/// dispatch, and a missed ring costs at most this.
const IDLE_RECHECK: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct ReplicationService {
    pub store: Arc<MessageStore>,
    pub broker_name: String,
    pub broker_id: u64,
    /// Only a master serves replicas (in controller mode any member may
    /// be the master).
    pub role: crate::replication::Role,
    pub replicas: Arc<Replicas>,
    pub state: BrokerState,
    /// How long a live stream waits after new records arrive before it
    /// reads them: zero for sync replication (sends wait for the replica),
    /// [`ASYNC_LINGER`] for async.
    pub linger: Duration,
    /// Only the cluster's members (and administrators) may read the log.
    pub guard: mq_auth::guard::Guard,
}

/// Async replication's linger: fewer, larger chunks and acks for a
/// replica that is at most this much further behind.
pub const ASYNC_LINGER: Duration = Duration::from_millis(2);

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::LogChunk, Status>> + Send>>;

#[tonic::async_trait]
impl pb::replication_server::Replication for ReplicationService {
    type FollowStream = ChunkStream;

    async fn follow(
        &self,
        request: Request<Streaming<pb::ReplicaMessage>>,
    ) -> Result<Response<Self::FollowStream>, Status> {
        self.guard.check(&request, Action::Admin, Target::Cluster)?;
        let mut incoming = request.into_inner();
        let Some(pb::replica_message::Kind::Start(request)) =
            incoming.message().await?.and_then(|m| m.kind)
        else {
            return Err(Status::invalid_argument(
                "start: a replica's first message must say who it is and where its log ends",
            ));
        };
        self.check_replica(&request.broker_name, request.broker_id)?;
        let segment_size = self.store.commitlog_segment_size();
        if request.segment_size != segment_size {
            return Err(Status::failed_precondition(format!(
                "segment_size: the replica's commitlog_segment_size is {}, the master's {segment_size}; they must be the same",
                request.segment_size
            )));
        }
        let (start, end) = (
            self.store.commitlog_min_offset(),
            self.store.commitlog_max_offset(),
        );
        let replica_epochs = from_wire(&request.epochs);
        match agree(
            &self.store.epochs(),
            end,
            &replica_epochs,
            request.from_offset,
        ) {
            Agreement::Follow => {}
            Agreement::Refuse(why) => return Err(Status::failed_precondition(why)),
            Agreement::CutBackTo(to) => {
                tracing::warn!(
                    replica = request.broker_id,
                    replica_end = request.from_offset,
                    cut_back_to = to,
                    "the replica's log diverged from this master's; telling it to cut back"
                );
                let cut = pb::LogChunk {
                    truncate_to: Some(to),
                    ..Default::default()
                };
                let once = tokio_stream::once(Ok(cut));
                return Ok(Response::new(Box::pin(once)));
            }
        }
        if request.from_offset > end || (request.from_offset < start && request.from_offset != 0) {
            return Err(Status::out_of_range(format!(
                "from_offset: {} is outside this master's CommitLog {start}..{end}",
                request.from_offset
            )));
        }
        tracing::info!(
            replica = request.broker_id,
            from = request.from_offset,
            "replica following"
        );
        let (tx, rx) = mpsc::channel(2);
        // First, that the replica's log agrees with this one up to its end:
        // an empty chunk. Until it has one, a replica serves no reads (its
        // tail may be one the group never had).
        let agreed = pb::LogChunk {
            offset: request.from_offset,
            master_end: end,
            confirmed_end: self.replicas.confirmed(),
            ..Default::default()
        };
        let _ = tx.try_send(Ok(agreed));
        let (store, replicas) = (Arc::clone(&self.store), Arc::clone(&self.replicas));
        let (id, from) = (request.broker_id, request.from_offset.max(start));
        let linger = self.linger;
        tokio::spawn(async move {
            // Counted as connected until the stream ends either way.
            let _connected = replicas.connect(id, from);
            tokio::select! {
                () = stream_log(store, &replicas, id, from, tx, linger) => {}
                () = take_acks(&replicas, id, incoming) => {}
            }
            tracing::info!(replica = id, "replica stopped following");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn sync_state(
        &self,
        request: Request<pb::SyncStateRequest>,
    ) -> Result<Response<pb::SyncStateResponse>, Status> {
        self.guard.check(&request, Action::Admin, Target::Cluster)?;
        let request = request.into_inner();
        self.check_replica(&request.broker_name, request.broker_id)?;
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || state.answer(request))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map(Response::new)
    }
}

impl ReplicationService {
    /// Refuses a caller that is not a replica of this master.
    fn check_replica(&self, broker_name: &str, broker_id: u64) -> Result<(), Status> {
        if let crate::replication::Role::Replica { master_addr, .. } = &self.role {
            return Err(Status::failed_precondition(format!(
                "this broker is replica {} of {}, not a master; its master is {master_addr}",
                self.broker_id, self.broker_name
            )));
        }
        if broker_name != self.broker_name || broker_id == 0 || broker_id == self.broker_id {
            return Err(Status::failed_precondition(format!(
                "broker_name/broker_id: {broker_name} {broker_id} is not a replica of {} (same broker name, id above 0)",
                self.broker_name
            )));
        }
        Ok(())
    }
}

/// Records the replica's acks until it goes.
async fn take_acks(replicas: &Replicas, id: u64, mut incoming: Streaming<pb::ReplicaMessage>) {
    while let Ok(Some(message)) = incoming.message().await {
        if let Some(pb::replica_message::Kind::Ack(ack)) = message.kind {
            replicas.ack(id, ack.end_offset);
        }
    }
}

/// Sends chunks from `offset` on until the replica goes.
async fn stream_log(
    store: Arc<MessageStore>,
    replicas: &Replicas,
    id: u64,
    mut offset: u64,
    tx: mpsc::Sender<Result<pb::LogChunk, Status>>,
    linger: Duration,
) {
    let arrivals = store.arrivals();
    let mut told_confirmed = replicas.confirmed();
    loop {
        // Registered before reading, so a ring in between is not missed.
        let grown = arrivals.any().notified();
        tokio::pin!(grown);
        grown.as_mut().enable();
        let acked = replicas.changes();
        tokio::pin!(acked);
        acked.as_mut().enable();
        let (read_at, end) = (std::time::Instant::now(), store.commitlog_max_offset());
        let behind = end.saturating_sub(offset);
        let read = if behind > CHUNK_BYTES as u64 {
            // Catching up: cold pages may fault in from disk.
            let store = Arc::clone(&store);
            tokio::task::spawn_blocking(move || store.read_raw(offset, CHUNK_BYTES)).await
        } else {
            // Live: the bytes were just written and are in memory.
            Ok(store.read_raw(offset, CHUNK_BYTES))
        };
        let chunk = match read {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(err)) => {
                let _ = tx.send(Err(Status::data_loss(err.to_string()))).await;
                return;
            }
            Err(err) => {
                let _ = tx.send(Err(Status::internal(err.to_string()))).await;
                return;
            }
        };
        match chunk {
            Some(data) => {
                let next = offset + data.len() as u64;
                let epochs = to_wire(covering(&store.epochs(), offset, next));
                told_confirmed = replicas.confirmed();
                let chunk = pb::LogChunk {
                    offset,
                    data,
                    master_end: store.commitlog_max_offset(),
                    epochs,
                    truncate_to: None,
                    confirmed_end: told_confirmed,
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
                replicas.sent(id, next, next >= end, read_at);
                offset = next;
            }
            // Nothing to send but a rise of the confirmed end (the
            // replicas acknowledged the last chunk).
            None if replicas.confirmed() != told_confirmed => {
                told_confirmed = replicas.confirmed();
                let chunk = pb::LogChunk {
                    offset,
                    master_end: end,
                    confirmed_end: told_confirmed,
                    ..Default::default()
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
            None => {
                tokio::select! {
                    () = &mut acked => {}
                    () = &mut grown => {
                        // Let more records come, so that one chunk (and one
                        // ack) carries many.
                        if !linger.is_zero() {
                            tokio::time::sleep(linger).await;
                        }
                    }
                    () = tokio::time::sleep(IDLE_RECHECK) => {}
                    () = tx.closed() => return,
                }
            }
        }
    }
}
