//! Storing sends: one, or all of a `SendMany`'s, in one CommitLog append.
//! Each send keeps its own outcome: an idempotent producer's numbers are
//! claimed per send (a refused claim refuses that send alone), what a
//! window already holds is answered from there, and only the rest is
//! appended, in the sends' order, under one lock, one wait for room and
//! one wait for the disk and the replicas.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use mq_proto::broker::v1 as pb;
use mq_store::commitlog::record;
use mq_store::sequences::{Refusal, StoredAt, WindowKey};
use mq_store::{MessageToStore, StoreError};

use crate::error::BrokerError;
use crate::service::numbered::{Claims, Numbered, refused, stored_at};
use crate::service::send::{SendPath, internal};
use crate::service::wire;

/// A send checked and made records, ready to be stored with others.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub topic: String,
    pub queue_id: u32,
    pub records: Vec<MessageToStore>,
    pub numbered: Option<Numbered>,
}

/// One send on its way into the log.
struct Planned<'a> {
    queue_id: u32,
    ids: Vec<String>,
    /// Where each of its messages is stored already (a retry), if it is.
    known: Vec<Option<StoredAt>>,
    /// Its records in the shared append.
    fresh: Range<usize>,
    claims: Option<Claims<'a>>,
}

pub(crate) type Outcome = Result<Vec<pb::SendResult>, BrokerError>;

/// The next of `store_together`'s outcomes, which come one per send.
pub(crate) fn next_outcome(outcomes: &mut impl Iterator<Item = Outcome>) -> Outcome {
    outcomes
        .next()
        .unwrap_or_else(|| Err(internal("a send was stored without an outcome")))
}

impl SendPath {
    /// Stores `sends` together; an outcome per send, in their order.
    pub(crate) async fn store_together(&self, sends: Vec<Prepared>) -> Vec<Outcome> {
        let mut waiting = VecDeque::from(sends);
        let mut outcomes = Vec::with_capacity(waiting.len());
        while !waiting.is_empty() {
            outcomes.extend(self.store_round(&mut waiting).await);
        }
        outcomes
    }

    /// Stores the sends at the front of `waiting` in one append: all of
    /// them, unless one repeats numbers an earlier one claimed (a retry
    /// in the same request), which waits for the next round so that it
    /// is answered as the duplicate it is.
    async fn store_round(&self, waiting: &mut VecDeque<Prepared>) -> Vec<Outcome> {
        let sequences = self.store.sequences();
        let now_ms = self.store.now_ms();
        let mut fresh: Vec<MessageToStore> = Vec::new();
        // Records, bytes and the topic of each run of sends to one topic.
        let mut per_topic: Vec<(String, usize, usize)> = Vec::new();
        let mut duplicates = 0;
        let mut plans: Vec<Result<Planned<'_>, BrokerError>> = Vec::with_capacity(waiting.len());
        // Encoded bytes in this round: at most a record's largest size
        // (which a segment is made to hold), unless one send is larger,
        // which then is alone in it and fails alone if the store refuses it.
        let mut round_bytes = 0;
        while let Some(send) = waiting.pop_front() {
            let size = match self.record_bytes(&send) {
                Ok(size) => size,
                Err(err) => {
                    plans.push(Err(err));
                    continue;
                }
            };
            if round_bytes > 0 && round_bytes + size > self.max_message_size as usize {
                waiting.push_front(send);
                break;
            }
            let (known, mut claims) = match send.numbered {
                None => (vec![None; send.records.len()], None),
                Some(numbered) => {
                    let key = WindowKey {
                        producer: numbered.producer,
                        topic: send.topic.clone(),
                        queue_id: send.queue_id,
                    };
                    match sequences.claim(&key, numbered.first, send.records.len(), now_ms) {
                        Ok(known) => (known, Some(Claims::new(sequences, key))),
                        Err(Refusal::InFlight { sequence })
                            if plans.iter().flatten().any(|plan| {
                                plan.claims
                                    .as_ref()
                                    .is_some_and(|claims| claims.holds(&key, sequence))
                            }) =>
                        {
                            waiting.push_front(send);
                            break;
                        }
                        Err(refusal) => {
                            plans.push(Err(refused(refusal, &key, sequences.limits().windows)));
                            continue;
                        }
                    }
                }
            };
            round_bytes += size;
            let ids = send
                .records
                .iter()
                .map(|m| m.unique_id.clone().unwrap_or_default())
                .collect();
            let start = fresh.len();
            let mut bytes = 0;
            for ((record, at), i) in send.records.into_iter().zip(&known).zip(0u64..) {
                match at {
                    Some(_) => duplicates += 1,
                    None => {
                        if let (Some(claims), Some(numbered)) = (&mut claims, send.numbered) {
                            claims.pending.push(numbered.first + i);
                        }
                        bytes += record.body.len();
                        fresh.push(record);
                    }
                }
            }
            let count = fresh.len() - start;
            match per_topic.last_mut() {
                Some((topic, n, b)) if *topic == send.topic => (*n, *b) = (*n + count, *b + bytes),
                _ => per_topic.push((send.topic, count, bytes)),
            }
            plans.push(Ok(Planned {
                queue_id: send.queue_id,
                ids,
                known,
                fresh: start..fresh.len(),
                claims,
            }));
        }
        if duplicates > 0 {
            self.metrics.duplicate_sends(duplicates);
        }

        // The append: every send's fresh records, or one failure for all
        // of them.
        let mut failure = None;
        let mut put = None;
        let _room = if fresh.is_empty() {
            None
        } else {
            let bytes = per_topic.iter().map(|(_, _, b)| b).sum();
            match self.pressure.admit(bytes).await {
                Ok(room) => {
                    let appending = std::time::Instant::now();
                    let noted = |appended: &[mq_store::commitlog::Appended]| {
                        for plan in plans.iter_mut().flatten() {
                            if let Some(claims) = &mut plan.claims {
                                claims.fill(&appended[plan.fresh.clone()]);
                            }
                        }
                    };
                    match self.store.put_batch_noting(&fresh, noted).await {
                        Ok(stored) => {
                            let took = appending.elapsed();
                            for (topic, count, bytes) in &per_topic {
                                if *count > 0 {
                                    self.metrics.stored(topic, *count, *bytes, took);
                                }
                            }
                            put = Some(stored);
                        }
                        Err(err) => failure = Some(Arc::new(BrokerError::from(err))),
                    }
                    Some(room)
                }
                Err(err) => {
                    failure = Some(Arc::new(err));
                    None
                }
            }
        };
        let (status, appended) = match put {
            Some(put) => (Some(wire::status(put.status)), put.appended),
            None => (None, Vec::new()),
        };

        // Where each send's messages are: known before, or just appended.
        let mut placed: Vec<Result<(Planned<'_>, Vec<StoredAt>), BrokerError>> = Vec::new();
        let mut end = None;
        for plan in plans {
            let plan = match plan {
                Ok(plan) if plan.fresh.is_empty() || failure.is_none() => plan,
                Ok(_) => {
                    let failure = failure.as_ref().expect("the append failed");
                    placed.push(Err(BrokerError::Shared(Arc::clone(failure))));
                    continue;
                }
                Err(err) => {
                    placed.push(Err(err));
                    continue;
                }
            };
            let mut just = appended
                .get(plan.fresh.clone())
                .unwrap_or_default()
                .iter()
                .map(stored_at);
            let places: Option<Vec<StoredAt>> = plan
                .known
                .iter()
                .map(|at| at.or_else(|| just.next()))
                .collect();
            match places {
                Some(places) => {
                    end = end.max(places.iter().map(StoredAt::end_offset).max());
                    placed.push(Ok((plan, places)));
                }
                None => placed.push(Err(internal(
                    "the store placed fewer messages than it was given",
                ))),
            }
        }

        // Answered once as durable and replicated as an answer promises;
        // sends answered only from their windows wait for what they point
        // at, as their first answer did.
        let status = match (status, end) {
            (Some(status), _) => status,
            (None, Some(end)) => wire::status(self.store.durable(end).await),
            (None, None) => pb::SendStatus::SendOk as i32,
        };
        let status = self.replicated(status, end).await;
        placed
            .into_iter()
            .map(|plan| {
                let (plan, places) = plan?;
                Ok(plan
                    .ids
                    .into_iter()
                    .zip(places)
                    .map(|(id, at)| {
                        self.result(
                            status,
                            id,
                            plan.queue_id,
                            at.physical_offset,
                            at.queue_offset,
                        )
                    })
                    .collect())
            })
            .collect()
    }
    /// The bytes `send`'s records take in the log. A record too large to
    /// encode is refused here, alone; one over the store's largest size
    /// is alone in its round (see `store_round`) and refused there.
    fn record_bytes(&self, send: &Prepared) -> Result<usize, BrokerError> {
        send.records.iter().try_fold(0, |total, record| {
            let size = record::encoded_len(record).map_err(StoreError::from)?;
            Ok(total + size)
        })
    }
}
