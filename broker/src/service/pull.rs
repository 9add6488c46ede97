//! Pulls with long polling: read what is there; if nothing is, hold the
//! request (as a waiting future, not a thread) until the dispatcher rings
//! the topic's bell, the group confirms messages held back (see
//! `mq_store::ReadLimit`), or the suspend timeout passes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_common::{FieldError, validate};
use mq_proto::broker::v1 as pb;
use mq_store::{GetResult, GetStatus, MessageFilter, MessageStore};

use crate::error::BrokerError;
use crate::service::filter::SqlFilters;
use crate::service::pull_budget::{BytesInFlight, PullBudget};
use crate::service::{INDEX_PATIENCE, wire};
use crate::topic_table::TopicTable;

/// The most messages one pull returns.
pub const MAX_PULL_MESSAGES: u32 = 1024;
/// The most bytes one pull asks for (a single larger message still comes).
pub const MAX_PULL_BYTES: u64 = 64 << 20;
/// The longest a pull may be held.
pub const MAX_SUSPEND: Duration = Duration::from_secs(30);
const DEFAULT_PULL_BYTES: u64 = 4 << 20;

/// How long a pull waits for its client's earlier responses to be read.
const BUDGET_PATIENCE: Duration = Duration::from_secs(3);

/// `max_messages` of a pull or a pop: 1 to [`MAX_PULL_MESSAGES`].
pub fn check_max_messages(max_messages: u32) -> Result<(), FieldError> {
    if max_messages == 0 || max_messages > MAX_PULL_MESSAGES {
        return Err(FieldError::new(
            "max_messages",
            format!("{max_messages} is out of range 1..={MAX_PULL_MESSAGES}"),
        ));
    }
    Ok(())
}

/// How long a pull or pop may be held (`field`, in ms): at most
/// [`MAX_SUSPEND`].
pub fn check_hold(field: &str, ms: u64) -> Result<Duration, FieldError> {
    let hold = Duration::from_millis(ms);
    if hold > MAX_SUSPEND {
        return Err(FieldError::new(
            field,
            format!("{ms} is above the limit of {}", MAX_SUSPEND.as_millis()),
        ));
    }
    Ok(hold)
}

#[derive(Debug, Clone)]
pub struct PullPath {
    pub store: Arc<MessageStore>,
    pub budget: Arc<PullBudget>,
    pub topics: Arc<TopicTable>,
    pub store_host: SocketAddr,
    pub metrics: crate::metrics::BrokerMetrics,
    pub advice: crate::replication::ReadAdvice,
    /// On a replica: its following, which says whether its master
    /// confirmed its log (reads wait for that).
    pub following: Option<Arc<crate::replication::follower::FollowStatus>>,
    pub broker_name: String,
    /// Compiled SQL92 filters, shared with pops and heartbeats.
    pub filters: Arc<SqlFilters>,
}

impl PullPath {
    /// Serves a pull; the response holds a reservation of its size from
    /// the pull budget, to be kept until it is sent.
    pub async fn pull(
        &self,
        request: pb::PullMessageRequest,
        client: Option<SocketAddr>,
    ) -> Result<(pb::PullMessageResponse, BytesInFlight), BrokerError> {
        if let (Some(following), crate::replication::ReadAdvice::Replica { id, .. }) =
            (&self.following, &self.advice)
            && !following.agreed.load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(BrokerError::ReplicaNotConfirmed {
                broker_name: self.broker_name.clone(),
                id: *id,
            });
        }
        let response = self.read_or_hold(request).await?;
        let size = prost::Message::encoded_len(&response);
        let held = self.budget.reserve(client, size, BUDGET_PATIENCE).await?;
        Ok((response, held))
    }

    async fn read_or_hold(
        &self,
        request: pb::PullMessageRequest,
    ) -> Result<pb::PullMessageResponse, BrokerError> {
        validate::topic("group", &request.group)?;
        validate::topic("topic", &request.topic)?;
        check_max_messages(request.max_messages)?;
        if request.max_bytes > MAX_PULL_BYTES {
            return Err(FieldError::new(
                "max_bytes",
                format!(
                    "{} is above the limit of {MAX_PULL_BYTES}",
                    request.max_bytes
                ),
            )
            .into());
        }
        let suspend = check_hold("suspend_timeout_ms", request.suspend_timeout_ms)?;
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
        if request.queue_id >= config.read_queue_count {
            return Err(FieldError::new(
                "queue_id",
                format!(
                    "{} is out of range: topic {:?} has {} read queues",
                    request.queue_id, request.topic, config.read_queue_count
                ),
            )
            .into());
        }
        let max_bytes = if request.max_bytes == 0 {
            DEFAULT_PULL_BYTES
        } else {
            request.max_bytes
        } as usize;
        let deadline = Instant::now() + suspend;
        let bell = self.store.arrivals().bell(&request.topic);
        let mut offset = request.offset;
        loop {
            // Registered before reading, so that a message indexed between
            // the read and the wait still wakes this pull.
            let rung = bell.notified();
            tokio::pin!(rung);
            rung.as_mut().enable();
            // Messages may be there but not yet confirmed by the group.
            let confirmed = self.store.read_limit().raised().notified();
            tokio::pin!(confirmed);
            confirmed.as_mut().enable();
            let result = self.read(
                &request.topic,
                request.queue_id,
                offset,
                request.max_messages as usize,
                max_bytes,
                &filter,
            );
            // Damaged messages are reported at once, not held over.
            let waiting = matches!(
                result.status,
                GetStatus::NoNewMessage | GetStatus::NoMatchedMessage
            ) && result.unreadable.is_empty();
            if !waiting {
                return Ok(self.response(result));
            }
            offset = result.next_offset;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(self.response(result));
            }
            self.metrics.hold(true);
            tokio::select! {
                () = &mut rung => {}
                () = &mut confirmed, if result.held_back => {}
                () = tokio::time::sleep(left) => {}
            }
            self.metrics.hold(false);
        }
    }

    /// A read that treats a configured queue with no message yet as empty.
    fn read(
        &self,
        topic: &str,
        queue_id: u32,
        offset: u64,
        max: usize,
        max_bytes: usize,
        filter: &dyn MessageFilter,
    ) -> GetResult {
        let result = self
            .store
            .get_messages(topic, queue_id, offset, max, max_bytes, filter);
        if result.status != GetStatus::QueueNotFound {
            return result;
        }
        let status = if offset == 0 {
            GetStatus::NoNewMessage
        } else {
            GetStatus::OffsetIllegal
        };
        GetResult::empty(status, 0, 0, 0)
    }

    fn response(&self, result: GetResult) -> pb::PullMessageResponse {
        let status = match result.status {
            GetStatus::Found => pb::PullStatus::Found,
            GetStatus::NoNewMessage | GetStatus::QueueNotFound => pb::PullStatus::NoNewMsg,
            GetStatus::NoMatchedMessage => pb::PullStatus::NoMatchedMsg,
            GetStatus::OffsetIllegal => pb::PullStatus::OffsetIllegal,
        };
        let bytes: usize = result.messages.iter().map(|m| m.body.len()).sum();
        if let Some(first) = result.messages.first() {
            self.metrics
                .served(&first.topic, result.messages.len(), bytes);
        }
        if !result.unreadable.is_empty() {
            self.metrics.unreadable(result.unreadable.len());
        }
        let suggested_broker_id = result.messages.last().map_or(0, |m| {
            self.advice
                .suggest(m.physical_offset, self.store.commitlog_max_offset())
        });
        let mut hosts = wire::AddrText::default();
        pb::PullMessageResponse {
            status: status as i32,
            messages: result
                .messages
                .into_iter()
                .map(|msg| wire::stored_message_with(msg, &mut hosts))
                .collect(),
            next_offset: result.next_offset,
            min_offset: result.min_offset,
            max_offset: result.max_offset,
            unreadable_offsets: result.unreadable,
            suggested_broker_id,
        }
    }

    /// Min and max offsets, and the offset for a time if asked. Messages
    /// acknowledged before the request count: the answer waits (briefly)
    /// for the dispatcher to index them, so that a new group starting "at
    /// the end" does not get messages sent before it started.
    pub async fn queue_offsets(
        &self,
        request: pb::GetQueueOffsetsRequest,
    ) -> Result<pb::GetQueueOffsetsResponse, BrokerError> {
        validate::topic("topic", &request.topic)?;
        self.store.indexed_up_to_now(INDEX_PATIENCE).await;
        let config = self
            .topics
            .get(&request.topic)
            .ok_or_else(|| BrokerError::UnknownTopic(request.topic.clone()))?;
        if request.queue_id >= config.read_queue_count {
            return Err(FieldError::new(
                "queue_id",
                format!("{} is out of range", request.queue_id),
            )
            .into());
        }
        let (min_offset, max_offset) = self
            .store
            .queue_offsets(&request.topic, request.queue_id)
            .unwrap_or((0, 0));
        let search_offset = request
            .timestamp_ms
            .and_then(|at| {
                self.store
                    .offset_for_time(&request.topic, request.queue_id, at)
            })
            .unwrap_or(max_offset);
        Ok(pb::GetQueueOffsetsResponse {
            min_offset,
            max_offset,
            search_offset,
        })
    }
}
