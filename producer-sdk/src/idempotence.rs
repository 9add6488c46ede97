//! The idempotent producer's side: an id for this producer and a number
//! for every send per queue. A send that may have been stored (its answer
//! was lost, the broker died under it) is retried with the same number on
//! the same queue, where the broker (or the member elected after it)
//! answers a number it stored with the original offsets instead of storing
//! it again.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tonic::Code;

use crate::route::MessageQueue;

/// A producer's id and its next number per queue.
#[derive(Debug)]
pub(crate) struct Numbering {
    producer_id: u64,
    next: DashMap<MessageQueue, AtomicU64>,
}

/// An id and the number of a send's (first) message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Numbered {
    pub producer_id: u64,
    pub sequence: u64,
}

impl Numbering {
    pub(crate) fn new() -> Self {
        Numbering {
            producer_id: random_producer_id(),
            next: DashMap::new(),
        }
    }

    pub(crate) fn producer_id(&self) -> u64 {
        self.producer_id
    }

    /// Numbers `count` messages about to go to `queue` as one send.
    pub(crate) fn number(&self, queue: &MessageQueue, count: usize) -> Numbered {
        let count = count as u64;
        let sequence = match self.next.get(queue) {
            Some(next) => next.fetch_add(count, Ordering::Relaxed),
            None => self
                .next
                .entry(queue.clone())
                .or_default()
                .fetch_add(count, Ordering::Relaxed),
        };
        Numbered {
            producer_id: self.producer_id,
            sequence,
        }
    }
}

/// A random, non-zero id (0 means "not idempotent" on the wire): the
/// standard library's randomly keyed hasher over the time and process id,
/// so two producers never share one in practice (64 bits).
fn random_producer_id() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    hasher.finish().max(1)
}

/// Whether a send that failed with `status` may have been stored all the
/// same: its retry must then carry the same number to the same queue. A
/// broker's refusal says when it stored nothing (busy, not the master, a
/// full disk); no answer at all (a lost connection, a timeout) says
/// nothing.
pub(crate) fn maybe_stored(status: &tonic::Status) -> bool {
    let refused = status
        .metadata()
        .get(mq_common::message::NOTHING_STORED)
        .is_some();
    !refused
        && !matches!(
            status.code(),
            Code::ResourceExhausted | Code::FailedPrecondition | Code::Ok
        )
}

/// The pause before the `n`th retry (1-based) of a send pinned to its
/// queue: a failover takes seconds, so the pauses grow to 1 s.
pub(crate) fn pinned_backoff(n: u32) -> Duration {
    Duration::from_millis(50u64 << n.saturating_sub(1).min(5)).min(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(queue_id: u32) -> MessageQueue {
        MessageQueue {
            topic: "t".into(),
            broker_name: "b".into(),
            queue_id,
        }
    }

    #[test]
    fn every_queue_is_numbered_on_its_own_and_batches_take_a_range() {
        let numbering = Numbering::new();
        assert_ne!(numbering.producer_id(), 0);
        assert_eq!(numbering.number(&queue(0), 1).sequence, 0);
        assert_eq!(numbering.number(&queue(0), 3).sequence, 1);
        assert_eq!(numbering.number(&queue(0), 1).sequence, 4);
        assert_eq!(numbering.number(&queue(1), 1).sequence, 0);
        assert_ne!(Numbering::new().producer_id(), numbering.producer_id());
    }

    #[test]
    fn only_refusals_before_storing_free_a_send_from_its_queue() {
        let status = |code| tonic::Status::new(code, "");
        assert!(!maybe_stored(&status(Code::ResourceExhausted)));
        assert!(!maybe_stored(&status(Code::FailedPrecondition)));
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Cancelled,
            Code::Unknown,
            Code::Internal,
            Code::Aborted,
        ] {
            assert!(maybe_stored(&status(code)), "{code:?}");
            let mut refused = status(code);
            refused.metadata_mut().insert(
                mq_common::message::NOTHING_STORED,
                tonic::metadata::MetadataValue::from_static("true"),
            );
            assert!(!maybe_stored(&refused), "{code:?} with nothing stored");
        }
    }

    #[test]
    fn pinned_retries_back_off_up_to_a_second() {
        let pauses: Vec<u64> = (1..=8)
            .map(|n| pinned_backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
    }
}
