//! Idempotent sends: a producer's numbered messages are claimed in its
//! window before they are appended, answered from the window when they
//! are stored already (a retry), and filled in as soon as their records
//! are in the log (see `mq_store::sequences`; `together` stores them).

use mq_common::FieldError;
use mq_store::commitlog::Appended;
use mq_store::message::Properties;
use mq_store::sequences::{ProducerSequences, Refusal, StoredAt, WindowKey};

use crate::error::BrokerError;

/// A send's claimed numbers: filled as soon as its records are in the log,
/// released if it ends before (refused, failed or cancelled while waiting
/// for room), so that its retries are neither told it is in flight
/// forever nor stored twice.
pub(crate) struct Claims<'a> {
    sequences: &'a ProducerSequences,
    key: WindowKey,
    /// The numbers claimed and not yet filled.
    pub pending: Vec<u64>,
}

impl<'a> Claims<'a> {
    pub(crate) fn new(sequences: &'a ProducerSequences, key: WindowKey) -> Self {
        Claims {
            sequences,
            key,
            pending: Vec::new(),
        }
    }

    /// Whether `sequence` of `key` is among the pending numbers.
    pub(crate) fn holds(&self, key: &WindowKey, sequence: u64) -> bool {
        self.key == *key && self.pending.contains(&sequence)
    }

    /// The pending numbers are stored at `appended`, in order.
    pub(crate) fn fill(&mut self, appended: &[Appended]) {
        let time_ms = appended.first().map_or(0, |a| a.store_timestamp_ms);
        let pending = std::mem::take(&mut self.pending);
        self.sequences.fill(
            &self.key,
            pending.into_iter().zip(appended.iter().map(stored_at)),
            time_ms,
        );
    }
}

impl Drop for Claims<'_> {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.sequences
                .release(&self.key, std::mem::take(&mut self.pending));
        }
    }
}

pub(crate) fn stored_at(a: &Appended) -> StoredAt {
    StoredAt {
        physical_offset: a.physical_offset,
        size: a.size,
        queue_offset: a.queue_offset,
    }
}

/// The error that names why a send's numbers were refused.
pub(crate) fn refused(refusal: Refusal, key: &WindowKey, max_windows: usize) -> BrokerError {
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
    pub producer: u64,
    pub first: u64,
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
