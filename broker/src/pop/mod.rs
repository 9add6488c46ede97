//! POP consumption (RocketMQ 5's SimpleConsumer and PushConsumer): the
//! broker, not the client, keeps each group's place. A popped message
//! stays invisible to its group for the invisible time of its lease;
//! acknowledged, it leaves the book; not acknowledged in time, the next pop
//! hands it out again with its attempt counted; past the last attempt it
//! becomes a dead letter of the group (`%DLQ%{group}`). The book is durable
//! (see [`journal`]): a restarted broker redelivers what was not
//! acknowledged, and what was acknowledged stays done. The group's
//! committed offset follows the book (every message below the first lease
//! and the cursor is done), so progress and lag read as for pulls.

pub mod book;
pub mod journal;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mq_common::{FieldError, validate};
use mq_proto::broker::v1 as pb;
use mq_store::{GetStatus, MessageStore, StoredMessage, TagFilter};

use crate::consumer_offsets::ConsumerOffsets;
use crate::error::BrokerError;
use crate::service::filter::{SqlFilters, SubscriptionFilter};
use crate::service::pull::{check_hold, check_max_messages};
use crate::service::retry::RetryPath;
use crate::topic_table::TopicTable;
use book::{Lease, PopBook, QueueKey, QueueLeases, Queues, Record};
use mq_common::receipt_handle::{ReceiptHandle, mint_token};

/// The longest a message may stay invisible (RocketMQ's limit).
pub const MAX_INVISIBLE: Duration = Duration::from_secs(12 * 3600);
/// Bytes one pop reads at most from one queue.
const MAX_POP_BYTES: usize = 4 << 20;

/// One delivery of one message.
#[derive(Debug, Clone)]
pub struct Popped {
    pub message: StoredMessage,
    pub handle: ReceiptHandle,
    pub attempt: u32,
    pub visible_at_ms: u64,
}

/// What POP needs.
#[derive(Debug, Clone)]
pub struct PopPath {
    pub store: Arc<MessageStore>,
    pub topics: Arc<TopicTable>,
    pub offsets: Arc<ConsumerOffsets>,
    pub retry: RetryPath,
    pub book: Arc<PopBook>,
    pub role: crate::replication::Role,
    pub broker_name: String,
    /// The shortest invisible time a pop may ask for.
    pub min_invisible: Duration,
    /// Which queue a pop over every queue starts with, in turn.
    pub rotation: Arc<AtomicUsize>,
    /// Compiled SQL92 filters, shared with pulls and heartbeats.
    pub filters: Arc<SqlFilters>,
}

/// A pop's settled request.
struct PopRequest {
    group: String,
    topic: String,
    queues: Vec<u32>,
    max: usize,
    invisible_ms: u64,
    filter: SubscriptionFilter,
    max_attempts: u32,
    fifo: bool,
}

/// What one round over the book decided.
#[derive(Default)]
struct Round {
    popped: Vec<Popped>,
    /// Leases past their last attempt: to the dead-letter topic.
    dead: Vec<(u32, u64)>,
    /// When the next lease becomes visible.
    wake_at_ms: Option<u64>,
    touched: Vec<u32>,
}

impl PopPath {
    fn check_invisible(&self, field: &str, invisible_ms: u64) -> Result<(), FieldError> {
        let invisible = Duration::from_millis(invisible_ms);
        if invisible < self.min_invisible || invisible > MAX_INVISIBLE {
            return Err(FieldError::new(
                field,
                format!(
                    "{} is out of range {}..={} (ms)",
                    invisible_ms,
                    self.min_invisible.as_millis(),
                    MAX_INVISIBLE.as_millis()
                ),
            ));
        }
        Ok(())
    }

    /// Pops up to `max_messages` messages, holding the request while
    /// nothing is there.
    pub async fn pop(&self, request: pb::PopMessagesRequest) -> Result<Vec<Popped>, BrokerError> {
        self.role.check_writable(&self.broker_name)?;
        validate::topic("group", &request.group)?;
        validate::topic("topic", &request.topic)?;
        check_max_messages(request.max_messages)?;
        self.check_invisible("invisible_ms", request.invisible_ms)?;
        let poll = check_hold("poll_timeout_ms", request.poll_timeout_ms)?;
        let filter = self
            .filters
            .of_request(&request.tag_expression, &request.sql_expression)?;
        let config = self
            .topics
            .get(&request.topic)
            .ok_or_else(|| BrokerError::UnknownTopic(request.topic.clone()))?;
        if !config.perm().readable() {
            return Err(BrokerError::NoPermission {
                topic: request.topic,
                what: "readable",
                perm: config.perm().to_string(),
            });
        }
        let queues: Vec<u32> = match u32::try_from(request.queue_id) {
            Err(_) => (0..config.read_queue_count).collect(),
            Ok(id) if id < config.read_queue_count => vec![id],
            Ok(id) => {
                return Err(FieldError::new(
                    "queue_id",
                    format!(
                        "{id} is out of range: topic {:?} has {} read queues",
                        request.topic, config.read_queue_count
                    ),
                )
                .into());
            }
        };
        let settled = PopRequest {
            group: request.group,
            topic: request.topic,
            queues,
            max: request.max_messages as usize,
            invisible_ms: request.invisible_ms,
            filter,
            max_attempts: match request.max_attempts {
                0 => self.retry.max_reconsume_times + 1,
                n => n,
            },
            fifo: request.fifo,
        };
        let deadline = Instant::now() + poll;
        // A pop sees every message acknowledged before it (the dispatcher
        // indexes them a moment after).
        self.store
            .indexed_up_to_now(crate::service::INDEX_PATIENCE)
            .await;
        let bell = self.store.arrivals().bell(&settled.topic);
        loop {
            let rung = bell.notified();
            tokio::pin!(rung);
            rung.as_mut().enable();
            let now_ms = mq_common::clock::unix_millis();
            let round = self
                .book
                .update(|book| self.decide(book, &settled, now_ms))
                .map_err(BrokerError::PopBook)?;
            self.bury(&settled, &round.dead).await;
            self.commit(&settled.group, &settled.topic, &round.touched);
            let left = deadline.saturating_duration_since(Instant::now());
            if !round.popped.is_empty() || left.is_zero() {
                return Ok(round.popped);
            }
            let until_visible = round.wake_at_ms.map_or(left, |at| {
                Duration::from_millis(at.saturating_sub(mq_common::clock::unix_millis()))
            });
            tokio::select! {
                () = &mut rung => {}
                () = tokio::time::sleep(left.min(until_visible)) => {}
            }
        }
    }

    /// One round over the queues: expired leases first (again, or dead),
    /// then new messages; a FIFO queue with a message out hands out no
    /// more.
    fn decide(&self, book: &Queues, request: &PopRequest, now_ms: u64) -> (Vec<Record>, Round) {
        let mut records = Vec::new();
        let mut round = Round::default();
        let count = request.queues.len();
        let start = self.rotation.fetch_add(1, Ordering::Relaxed);
        for i in 0..count {
            if round.popped.len() >= request.max {
                break;
            }
            let queue_id = request.queues[(start + i) % count];
            let key = QueueKey {
                group: request.group.clone(),
                topic: request.topic.clone(),
                queue_id,
            };
            let known = book.get(&key);
            let fresh;
            let state = match known {
                Some(state) => state,
                None => {
                    fresh = QueueLeases {
                        cursor: self.first_offset(&key),
                        leases: Default::default(),
                    };
                    &fresh
                }
            };
            let mut leased = Vec::new();
            let mut gone = Vec::new();
            let mut out_still = false;
            for (&offset, lease) in &state.leases {
                if lease.visible_at_ms > now_ms {
                    out_still = true;
                    round.wake_at_ms = Some(
                        round
                            .wake_at_ms
                            .map_or(lease.visible_at_ms, |w| w.min(lease.visible_at_ms)),
                    );
                    continue;
                }
                if round.popped.len() >= request.max {
                    out_still = true;
                    continue;
                }
                if lease.attempt >= request.max_attempts {
                    // Held while it goes to the dead-letter topic, so that
                    // a concurrent pop does not send it there twice (and
                    // visible again should that fail).
                    leased.push((
                        offset,
                        Lease {
                            visible_at_ms: now_ms + request.invisible_ms,
                            ..*lease
                        },
                    ));
                    round.dead.push((queue_id, offset));
                    out_still = true;
                    continue;
                }
                match self.message_at(&key, offset) {
                    Some(message) => {
                        let lease = Lease {
                            visible_at_ms: now_ms + request.invisible_ms,
                            attempt: lease.attempt + 1,
                            token: mint_token(),
                        };
                        round.popped.push(self.popped(message, &key, offset, lease));
                        leased.push((offset, lease));
                        out_still = true;
                    }
                    // Gone with its segment (retention): nothing to deliver.
                    None => gone.push(offset),
                }
            }
            let mut cursor = state.cursor;
            if !(request.fifo && out_still) && round.popped.len() < request.max {
                let result = self.store.get_messages(
                    &request.topic,
                    queue_id,
                    cursor,
                    request.max - round.popped.len(),
                    MAX_POP_BYTES,
                    &request.filter,
                );
                match result.status {
                    GetStatus::Found => {
                        for message in result.messages {
                            let offset = message.queue_offset;
                            let lease = Lease {
                                visible_at_ms: now_ms + request.invisible_ms,
                                attempt: 1,
                                token: mint_token(),
                            };
                            round.popped.push(self.popped(message, &key, offset, lease));
                            leased.push((offset, lease));
                        }
                        cursor = result.next_offset;
                    }
                    GetStatus::NoMatchedMessage | GetStatus::OffsetIllegal => {
                        cursor = result.next_offset;
                    }
                    GetStatus::NoNewMessage | GetStatus::QueueNotFound => {}
                }
            }
            if known.is_none() || cursor != state.cursor || !leased.is_empty() {
                records.push(Record::Leased {
                    key: key.clone(),
                    cursor,
                    leases: leased,
                });
            }
            if !gone.is_empty() {
                records.push(Record::Acked { key, offsets: gone });
            }
            round.touched.push(queue_id);
        }
        (records, round)
    }

    /// Where a group new to a queue starts: its committed offset (it
    /// pulled before), else the queue's first message.
    fn first_offset(&self, key: &QueueKey) -> u64 {
        self.offsets
            .query(&key.group, &key.topic, key.queue_id)
            .unwrap_or_else(|| {
                self.store
                    .queue_offsets(&key.topic, key.queue_id)
                    .map_or(0, |(min, _)| min)
            })
    }

    fn message_at(&self, key: &QueueKey, offset: u64) -> Option<StoredMessage> {
        let result = self.store.get_messages(
            &key.topic,
            key.queue_id,
            offset,
            1,
            MAX_POP_BYTES,
            &TagFilter::All,
        );
        result
            .messages
            .into_iter()
            .next()
            .filter(|m| m.queue_offset == offset)
    }

    fn popped(&self, message: StoredMessage, key: &QueueKey, offset: u64, lease: Lease) -> Popped {
        Popped {
            message,
            handle: ReceiptHandle {
                queue_id: key.queue_id,
                offset,
                token: lease.token,
                broker_name: self.broker_name.clone(),
            },
            attempt: lease.attempt,
            visible_at_ms: lease.visible_at_ms,
        }
    }

    /// Leases past their last attempt become dead letters, then leave the
    /// book; one whose dead letter cannot be written stays for next time.
    async fn bury(&self, request: &PopRequest, dead: &[(u32, u64)]) {
        for &(queue_id, offset) in dead {
            let sent = self
                .retry
                .send_back(pb::ConsumerSendBackRequest {
                    group: request.group.clone(),
                    topic: request.topic.clone(),
                    queue_id,
                    queue_offset: offset,
                    unique_id: String::new(),
                    max_reconsume_times: 0,
                    dead_letter: true,
                })
                .await;
            match sent {
                Ok(_) | Err(BrokerError::NoMessage(_)) => {
                    let key = QueueKey {
                        group: request.group.clone(),
                        topic: request.topic.clone(),
                        queue_id,
                    };
                    let acked = self.book.update(|_| {
                        (
                            vec![Record::Acked {
                                key,
                                offsets: vec![offset],
                            }],
                            (),
                        )
                    });
                    if let Err(err) = acked {
                        tracing::warn!(error = %err, "cannot record a dead letter in the POP book");
                    }
                }
                Err(err) => {
                    tracing::warn!(group = %request.group, topic = %request.topic, queue_id, offset, error = %err, "cannot dead-letter a message; trying again on the next pop");
                }
            }
        }
    }

    /// The group's committed offsets follow the book.
    fn commit(&self, group: &str, topic: &str, queues: &[u32]) {
        for &queue_id in queues {
            let key = QueueKey {
                group: group.to_owned(),
                topic: topic.to_owned(),
                queue_id,
            };
            if let Some(committed) = self.book.committed(&key) {
                self.offsets.commit(group, topic, queue_id, committed);
            }
        }
    }

    /// Looks a handle's lease up; the error says why a handle is refused.
    fn lease_of(
        &self,
        book: &Queues,
        group: &str,
        topic: &str,
        text: &str,
    ) -> Result<(QueueKey, ReceiptHandle, Lease), String> {
        let handle = ReceiptHandle::parse(text).map_err(|e| e.to_string())?;
        if handle.broker_name != self.broker_name {
            return Err(format!(
                "receipt handle of broker {:?}, not of {:?}",
                handle.broker_name, self.broker_name
            ));
        }
        let key = QueueKey {
            group: group.to_owned(),
            topic: topic.to_owned(),
            queue_id: handle.queue_id,
        };
        let lease = book
            .get(&key)
            .and_then(|q| q.leases.get(&handle.offset))
            .ok_or_else(|| {
                format!(
                    "no message of group {group:?} is out at {topic}:{}:{}: already acknowledged, dead-lettered, or never handed out",
                    handle.queue_id, handle.offset
                )
            })?;
        if lease.token != handle.token {
            return Err(
                "the receipt handle is spent: the message was handed out again, or its invisible time changed, since"
                    .to_owned(),
            );
        }
        Ok((key, handle, *lease))
    }

    /// Acknowledges popped messages; each handle's result says whether.
    pub fn ack(
        &self,
        request: pb::AckMessagesRequest,
    ) -> Result<pb::AckMessagesResponse, BrokerError> {
        self.role.check_writable(&self.broker_name)?;
        validate::topic("group", &request.group)?;
        validate::topic("topic", &request.topic)?;
        let (group, topic) = (&request.group, &request.topic);
        let (results, touched) = self
            .book
            .update(|book| {
                let mut records = Vec::new();
                let mut results = Vec::new();
                let mut touched = Vec::new();
                for text in &request.receipt_handles {
                    let error = match self.lease_of(book, group, topic, text) {
                        Ok((key, handle, _)) => {
                            touched.push(handle.queue_id);
                            records.push(Record::Acked {
                                key,
                                offsets: vec![handle.offset],
                            });
                            String::new()
                        }
                        Err(why) => why,
                    };
                    results.push(pb::AckResult {
                        receipt_handle: text.clone(),
                        error,
                    });
                }
                (records, (results, touched))
            })
            .map_err(BrokerError::PopBook)?;
        self.commit(group, topic, &touched);
        Ok(pb::AckMessagesResponse { results })
    }

    /// Moves a popped message's invisible time; answers its new handle.
    pub fn change_invisible(
        &self,
        request: pb::ChangeInvisibleTimeRequest,
    ) -> Result<pb::ChangeInvisibleTimeResponse, BrokerError> {
        self.role.check_writable(&self.broker_name)?;
        validate::topic("group", &request.group)?;
        validate::topic("topic", &request.topic)?;
        self.check_invisible("invisible_ms", request.invisible_ms)?;
        let visible_at_ms = mq_common::clock::unix_millis() + request.invisible_ms;
        self.book
            .update(|book| {
                match self.lease_of(
                    book,
                    &request.group,
                    &request.topic,
                    &request.receipt_handle,
                ) {
                    Err(why) => (Vec::new(), Err(why)),
                    Ok((key, handle, lease)) => {
                        let lease = Lease {
                            visible_at_ms,
                            token: mint_token(),
                            ..lease
                        };
                        let cursor = book.get(&key).map_or(0, |q| q.cursor);
                        let new = ReceiptHandle {
                            token: lease.token,
                            ..handle
                        };
                        (
                            vec![Record::Leased {
                                key,
                                cursor,
                                leases: vec![(new.offset, lease)],
                            }],
                            Ok(new),
                        )
                    }
                }
            })
            .map_err(BrokerError::PopBook)?
            .map(|handle| pb::ChangeInvisibleTimeResponse {
                receipt_handle: handle.to_string(),
                visible_at_ms,
            })
            .map_err(|why| FieldError::new("receipt_handle", why).into())
    }
}

/// How often the POP journal is made durable with async flush.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Makes the POP journal durable every [`FLUSH_INTERVAL`] until `stop`,
/// and once more then.
pub async fn keep_flushed(book: Arc<PopBook>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
    loop {
        let stopping = tokio::select! {
            _ = ticks.tick() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if let Err(err) = book.sync() {
            tracing::warn!(error = %err, "cannot sync the POP journal");
        }
        if stopping {
            return;
        }
    }
}
