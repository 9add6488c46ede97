//! Transactions at the edge: half messages, ends and producer sessions
//! (see `crate::transaction` for how they are kept).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use mq_common::system_topics::{TRANSACTION_HALF_TOPIC, check_not_reserved};
use mq_common::{FieldError, offset_id, validate};
use mq_proto::broker::v1 as pb;
use mq_store::StoredMessage;
use tokio::sync::watch;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::error::BrokerError;
use crate::service::INDEX_PATIENCE;
use crate::service::send::SendPath;
use crate::service::wire;
use crate::transaction::book::{EndError, NotOpen, TransactionBook};
use crate::transaction::sessions::ProducerSessions;
use crate::transaction::{self, HalfRef, Outcome, half_of, producer_group};

/// The stream a producer session answers.
pub type CheckStream = Pin<Box<dyn Stream<Item = Result<pb::TransactionCheck, Status>> + Send>>;

/// What transactions need.
#[derive(Debug, Clone)]
pub struct TransactionPath {
    pub send: SendPath,
    pub book: Arc<TransactionBook>,
    pub sessions: Arc<ProducerSessions>,
    /// True once the broker stops: sessions end.
    pub draining: watch::Receiver<bool>,
}

impl TransactionPath {
    /// Stores a half message: checked as a send, kept invisible.
    pub async fn send_half(
        &self,
        request: pb::SendHalfMessageRequest,
        peer: Option<SocketAddr>,
    ) -> Result<pb::SendHalfMessageResponse, BrokerError> {
        let send = &self.send;
        send.role.check_writable(&send.broker_name)?;
        validate::topic("producer_group", &request.producer_group)?;
        let msg = request
            .message
            .ok_or_else(|| FieldError::new("message", "is required"))?;
        let topic = msg.topic.clone();
        validate::topic("message.topic", &topic)?;
        check_not_reserved("message.topic", &topic)?;
        let config = send.writable_topic(&topic)?;
        if request.queue_id >= config.write_queue_count {
            return Err(FieldError::new(
                "queue_id",
                format!(
                    "{} is out of range: topic {topic:?} has {} write queues",
                    request.queue_id, config.write_queue_count
                ),
            )
            .into());
        }
        if msg.delay_level != 0 || msg.deliver_at_ms != 0 {
            return Err(FieldError::new(
                "message.delay_level",
                "a transactional message cannot be delayed (as in RocketMQ): send it without delay_level and deliver_at_ms",
            )
            .into());
        }
        let stored = wire::message(
            "message",
            msg,
            request.queue_id,
            send.max_message_size,
            peer,
        )?;
        let half = transaction::half(stored, &request.producer_group);
        let bytes = half.body.len();
        let _room = send.pressure.admit(bytes).await?;
        let appending = std::time::Instant::now();
        let put = send.store.put(half.clone()).await?;
        send.metrics
            .stored(TRANSACTION_HALF_TOPIC, 1, bytes, appending.elapsed());
        let status = send
            .replicated(
                wire::status(put.status),
                put.appended.last().map(|a| a.end_offset()),
            )
            .await;
        let at = put.appended[0];
        Ok(pb::SendHalfMessageResponse {
            result: Some(pb::SendResult {
                status,
                message_id: half.unique_id.unwrap_or_default(),
                offset_message_id: offset_id::encode(send.store_host, at.physical_offset),
                queue_id: request.queue_id,
                queue_offset: at.queue_offset,
            }),
            transaction_id: transaction::transaction_id(at.queue_offset, at.physical_offset),
        })
    }

    /// The half message `half` names. Found by its queue offset only (an
    /// id of the first format), one sent a moment ago is waited for (the
    /// dispatcher indexes it microseconds after the send).
    async fn half_at(&self, half: HalfRef) -> Option<StoredMessage> {
        let store = &self.send.store;
        if let Some(found) = transaction::find_half(store, half) {
            return Some(found);
        }
        if half.physical.is_some() {
            return None;
        }
        store.indexed_up_to_now(INDEX_PATIENCE).await;
        transaction::find_half(store, half)
    }

    /// The real topic of transaction `id`, if its half message is here.
    pub async fn topic_of(&self, id: &str) -> Option<String> {
        let half = self.half_at(half_of(id)?).await?;
        transaction::destination(&half).map(|(topic, _)| topic)
    }

    /// Commits or rolls back a transaction.
    pub async fn end(
        &self,
        request: pb::EndTransactionRequest,
    ) -> Result<pb::EndTransactionResponse, BrokerError> {
        let send = &self.send;
        send.role.check_writable(&send.broker_name)?;
        validate::topic("producer_group", &request.producer_group)?;
        let outcome = match pb::TransactionOutcome::try_from(request.outcome) {
            Ok(pb::TransactionOutcome::Commit) => Outcome::Committed,
            Ok(pb::TransactionOutcome::Rollback) => Outcome::RolledBack,
            _ => return Err(FieldError::new("outcome", "must be COMMIT or ROLLBACK").into()),
        };
        let id = &request.transaction_id;
        let at = half_of(id).ok_or_else(|| {
            FieldError::new(
                "transaction_id",
                format!(
                    "{id:?} is not a transaction id (32 hex digits, as SendHalfMessage answered)"
                ),
            )
        })?;
        let half = self.half_at(at).await.ok_or_else(|| {
            BrokerError::NoMessage(format!(
                "no transaction {id} on this broker (never begun here, or removed by retention)"
            ))
        })?;
        let message_id = half.unique_id.as_deref().unwrap_or("");
        if !request.message_id.is_empty() && request.message_id != message_id {
            return Err(BrokerError::Transaction(format!(
                "transaction {id} is message {message_id:?}, not {:?}",
                request.message_id
            )));
        }
        let group = producer_group(&half);
        if group != request.producer_group {
            return Err(BrokerError::Transaction(format!(
                "transaction {id} belongs to producer group {group:?}, not {:?}",
                request.producer_group
            )));
        }
        let ended =
            self.book
                .end(&half, outcome)
                .await
                .map_err(|err| match err {
                    EndError::NotOpen(NotOpen::Ended(Some(how))) => BrokerError::Transaction(
                        format!("transaction {id} was already {}", how.describe()),
                    ),
                    EndError::NotOpen(NotOpen::Ended(None)) => {
                        BrokerError::Transaction(format!("transaction {id} already ended"))
                    }
                    EndError::NotOpen(NotOpen::Ending) => BrokerError::Transaction(format!(
                        "transaction {id} is being ended by another request"
                    )),
                    EndError::Malformed => BrokerError::NoMessage(format!(
                        "transaction {id}: its half message lacks its topic or queue"
                    )),
                    EndError::Store(err) => BrokerError::Store(err),
                })?;
        send.metrics.transaction_ended(match outcome {
            Outcome::Committed => "commit",
            _ => "rollback",
        });
        tracing::debug!(transaction = %id, outcome = outcome.describe(), from_check = request.from_check, "transaction ended");
        let result = match outcome {
            Outcome::Committed => {
                let status = send
                    .replicated(
                        wire::status(ended.put.status),
                        ended.put.appended.last().map(|a| a.end_offset()),
                    )
                    .await;
                let at = ended.put.appended[0];
                Some(pb::SendResult {
                    status,
                    message_id: message_id.to_owned(),
                    offset_message_id: offset_id::encode(send.store_host, at.physical_offset),
                    queue_id: ended.record.queue_id,
                    queue_offset: at.queue_offset,
                })
            }
            _ => None,
        };
        Ok(pb::EndTransactionResponse { result })
    }

    /// Opens a producer's session: checks of its group arrive on it.
    pub fn session(&self, request: pb::ProducerSessionRequest) -> Result<CheckStream, BrokerError> {
        validate::topic("producer_group", &request.producer_group)?;
        if request.client_id.is_empty() {
            return Err(FieldError::new("client_id", "must not be empty").into());
        }
        let mut checks = self
            .sessions
            .open(&request.producer_group, &request.client_id);
        tracing::info!(group = %request.producer_group, client_id = %request.client_id, "producer session opened");
        // Forwarded, so that a stopping broker ends the stream (draining
        // would otherwise wait for it) and a gone client closes the
        // session's channel.
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut draining = self.draining.clone();
        tokio::spawn(async move {
            loop {
                let check = tokio::select! {
                    check = checks.recv() => check,
                    () = tx.closed() => None,
                    _ = draining.wait_for(|d| *d) => None,
                };
                let Some(check) = check else { break };
                if tx.send(check).await.is_err() {
                    break;
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}
