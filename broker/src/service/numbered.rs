//! Idempotent sends: a producer's numbered messages are claimed in its
//! window before they are appended, answered from the window when they
//! are stored already (a retry), and filled in as soon as their records
//! are in the log (see `mq_store::sequences`).

use mq_common::FieldError;
use mq_proto::broker::v1 as pb;
use mq_store::commitlog::Appended;
use mq_store::message::Properties;
use mq_store::sequences::{ProducerSequences, Refusal, StoredAt, WindowKey};

use crate::error::BrokerError;
use crate::service::send::{SendPath, internal};
use crate::service::wire;

impl SendPath {
    /// An idempotent producer's send: what its window already holds is
    /// answered from there, the rest is appended and remembered.
    pub(super) async fn store_numbered(
        &self,
        topic: &str,
        queue_id: u32,
        batch: Vec<mq_store::MessageToStore>,
        numbered: Numbered,
    ) -> Result<Vec<pb::SendResult>, BrokerError> {
        let key = WindowKey {
            producer: numbered.producer,
            topic: topic.to_owned(),
            queue_id,
        };
        let sequences = self.store.sequences();
        let known = sequences
            .claim(&key, numbered.first, batch.len(), self.store.now_ms())
            .map_err(|refusal| refused(refusal, &key, sequences.limits().windows))?;
        let duplicates = known.iter().filter(|at| at.is_some()).count();
        if duplicates > 0 {
            self.metrics.duplicate_sends(duplicates);
        }
        let ids: Vec<String> = batch
            .iter()
            .map(|m| m.unique_id.clone().unwrap_or_default())
            .collect();
        let (fresh, fresh_seqs): (Vec<_>, Vec<u64>) = batch
            .into_iter()
            .zip(&known)
            .zip(numbered.first..)
            .filter(|((_, at), _)| at.is_none())
            .map(|((msg, _), seq)| (msg, seq))
            .unzip();
        let mut claims = Claims {
            sequences,
            key: &key,
            pending: fresh_seqs,
        };
        let mut appended = Vec::new().into_iter();
        let mut status = None;
        if !fresh.is_empty() {
            let bytes = fresh.iter().map(|m| m.body.len()).sum();
            let _room = self.pressure.admit(bytes).await?;
            let appending = std::time::Instant::now();
            let put = self
                .store
                .put_batch_noting(&fresh, |at| claims.fill(at))
                .await?;
            self.metrics
                .stored(topic, put.appended.len(), bytes, appending.elapsed());
            status = Some(wire::status(put.status));
            appended = put.appended.into_iter();
        }
        let places: Vec<StoredAt> = known
            .into_iter()
            .map(|at| at.or_else(|| appended.next().map(|a| stored_at(&a))))
            .collect::<Option<_>>()
            .ok_or_else(|| internal("the store placed fewer messages than it was given"))?;
        let end = places.iter().map(StoredAt::end_offset).max();
        // Only duplicates: answered once they are as durable (and, below,
        // as replicated) as their first answer promised.
        let status = match (status, end) {
            (Some(status), _) => status,
            (None, Some(end)) => wire::status(self.store.durable(end).await),
            (None, None) => pb::SendStatus::SendOk as i32,
        };
        let status = self.replicated(status, end).await;
        Ok(ids
            .into_iter()
            .zip(places)
            .map(|(id, at)| self.result(status, id, queue_id, at.physical_offset, at.queue_offset))
            .collect())
    }
}

/// A send's claimed numbers: filled as soon as its records are in the log,
/// released if it ends before (refused, failed or cancelled while waiting
/// for room), so that its retries are neither told it is in flight
/// forever nor stored twice.
struct Claims<'a> {
    sequences: &'a ProducerSequences,
    key: &'a WindowKey,
    pending: Vec<u64>,
}

impl Claims<'_> {
    fn fill(&mut self, appended: &[Appended]) {
        let time_ms = appended.first().map_or(0, |a| a.store_timestamp_ms);
        let pending = std::mem::take(&mut self.pending);
        self.sequences.fill(
            self.key,
            pending.into_iter().zip(appended.iter().map(stored_at)),
            time_ms,
        );
    }
}

impl Drop for Claims<'_> {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.sequences
                .release(self.key, std::mem::take(&mut self.pending));
        }
    }
}

fn stored_at(a: &Appended) -> StoredAt {
    StoredAt {
        physical_offset: a.physical_offset,
        size: a.size,
        queue_offset: a.queue_offset,
    }
}

/// The error that names why a send's numbers were refused.
fn refused(refusal: Refusal, key: &WindowKey, max_windows: usize) -> BrokerError {
    match refusal {
        Refusal::InFlight { sequence } => BrokerError::SendInFlight {
            producer: key.producer,
            sequence,
            topic: key.topic.clone(),
            queue_id: key.queue_id,
        },
        Refusal::BelowWindow { sequence, lowest } => BrokerError::SequenceForgotten {
            producer: key.producer,
            sequence,
            topic: key.topic.clone(),
            queue_id: key.queue_id,
            lowest,
        },
        Refusal::Full => BrokerError::TooManyProducers { limit: max_windows },
    }
}

/// An idempotent producer's numbering of a send: its id and the number of
/// the (first) message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Numbered {
    producer: u64,
    first: u64,
}

impl Numbered {
    /// Producer id 0 is a producer that does not number its sends.
    pub(crate) fn of(producer: u64, first: u64) -> Option<Numbered> {
        (producer != 0).then_some(Numbered { producer, first })
    }

    /// Writes the number of the send's `i`th message into its properties.
    pub(crate) fn stamp(&self, i: usize, properties: &mut Properties) -> Result<(), FieldError> {
        let sequence = self
            .first
            .checked_add(i as u64)
            .ok_or_else(|| FieldError::new("sequence", "overflows with the batch's messages"))?;
        mq_store::sequences::stamp(properties, self.producer, sequence);
        Ok(())
    }
}
