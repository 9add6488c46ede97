//! Operator RPCs: the broker's counters, a group's progress per queue,
//! resetting a group's offsets, and finding messages by id or key. Each
//! read first lets the dispatcher index what was acknowledged before it.

use std::net::SocketAddr;
use std::sync::Arc;

use mq_common::{FieldError, offset_id, validate};
use mq_proto::broker::v1 as pb;
use mq_store::{MessageStore, TagFilter};

use crate::consumer_groups::ConsumerGroups;
use crate::consumer_offsets::ConsumerOffsets;
use crate::error::BrokerError;
use crate::service::{INDEX_PATIENCE, wire};
use crate::topic_table::TopicTable;

/// Most messages one key query returns.
const MAX_QUERY: u32 = 256;

#[derive(Debug, Clone)]
pub struct AdminPath {
    pub store: Arc<MessageStore>,
    pub topics: Arc<TopicTable>,
    pub offsets: Arc<ConsumerOffsets>,
    pub groups: Arc<ConsumerGroups>,
    pub metrics: crate::metrics::BrokerMetrics,
    /// When the broker started, ms since the epoch.
    pub started_ms: u64,
    pub store_host: SocketAddr,
    pub replication: crate::replication::ReplicationView,
    /// "async" or "sync".
    pub replication_mode: &'static str,
}

impl AdminPath {
    pub fn stats(&self) -> pb::GetBrokerStatsResponse {
        let s = self.metrics.totals();
        pb::GetBrokerStatsResponse {
            messages_in: s.messages_in,
            bytes_in: s.bytes_in,
            messages_out: s.messages_out,
            bytes_out: s.bytes_out,
            started_ms: self.started_ms,
            commitlog_min_offset: self.store.log_start(),
            commitlog_max_offset: self.store.log_end(),
            dispatch_lag: self.store.dispatch_lag(),
            ..self.replication_stats()
        }
    }

    /// The replication part of the stats.
    fn replication_stats(&self) -> pb::GetBrokerStatsResponse {
        use crate::replication::ReplicationView;
        let end = self.store.commitlog_max_offset();
        match &self.replication {
            ReplicationView::Master { replicas } => pb::GetBrokerStatsResponse {
                role: "master".into(),
                replication: self.replication_mode.into(),
                replicas: replicas
                    .report(end)
                    .into_iter()
                    .map(|r| pb::ReplicaProgress {
                        broker_id: r.id,
                        acked_offset: r.acked,
                        lag_bytes: r.lag,
                        in_sync: r.in_sync,
                        lag_ms: millis(r.lag_time),
                    })
                    .collect(),
                ..Default::default()
            },
            ReplicationView::Replica { status } => pb::GetBrokerStatsResponse {
                role: "replica".into(),
                following: status.connected.load(std::sync::atomic::Ordering::Acquire),
                replication_lag_bytes: status.lag(end),
                replication_lag_ms: millis(status.lag_time(end)),
                ..Default::default()
            },
        }
    }

    pub async fn progress(
        &self,
        request: pb::GetConsumerProgressRequest,
    ) -> Result<pb::GetConsumerProgressResponse, BrokerError> {
        validate::topic("group", &request.group)?;
        self.store.indexed_up_to_now(INDEX_PATIENCE).await;
        // Every queue of every topic its members subscribe to (as RocketMQ's
        // consumerProgress), committed or not, and every queue it committed:
        // a queue not consumed yet is lag too.
        let mut queues: std::collections::BTreeMap<(String, u32), Option<u64>> = self
            .offsets
            .of_group(&request.group)
            .into_iter()
            .map(|(topic, queue_id, offset)| ((topic, queue_id), Some(offset)))
            .collect();
        let subscribed = self
            .groups
            .members(&request.group)
            .map(|(members, _)| members)
            .unwrap_or_default()
            .into_iter()
            .filter(|member| !member.broadcasting)
            .flat_map(|member| member.subscriptions.into_iter().map(|(topic, _, _)| topic));
        for topic in subscribed {
            let Some(config) = self.topics.get(&topic) else {
                continue;
            };
            for queue_id in 0..config.read_queue_count {
                queues.entry((topic.clone(), queue_id)).or_insert(None);
            }
        }
        let queues = queues
            .into_iter()
            .map(|((topic, queue_id), committed)| self.queue_progress(topic, queue_id, committed))
            .collect();
        Ok(pb::GetConsumerProgressResponse { queues })
    }

    pub async fn reset(
        &self,
        request: pb::ResetOffsetRequest,
    ) -> Result<pb::ResetOffsetResponse, BrokerError> {
        validate::topic("group", &request.group)?;
        validate::topic("topic", &request.topic)?;
        self.store.indexed_up_to_now(INDEX_PATIENCE).await;
        let config = self
            .topics
            .get(&request.topic)
            .ok_or_else(|| BrokerError::UnknownTopic(request.topic.clone()))?;
        let to = request
            .to
            .ok_or_else(|| FieldError::new("to", "give timestamp_ms, earliest or latest"))?;
        let mut offsets = Vec::new();
        for queue_id in 0..config.read_queue_count {
            let (min, max) = self
                .store
                .queue_offsets(&request.topic, queue_id)
                .unwrap_or((0, 0));
            let offset = match to {
                pb::reset_offset_request::To::Earliest(_) => min,
                pb::reset_offset_request::To::Latest(_) => max,
                pb::reset_offset_request::To::TimestampMs(at) => self
                    .store
                    .offset_for_time(&request.topic, queue_id, at)
                    .unwrap_or(max),
            };
            offsets.push((queue_id, offset));
        }
        let version = self.offsets.reset(&request.group, &request.topic, &offsets);
        // Members with a session reread their offsets at once.
        self.groups.notify();
        if let Err(err) = self.offsets.persist() {
            tracing::error!(error = %err, "cannot save consumer offsets after a reset");
        }
        tracing::info!(group = %request.group, topic = %request.topic, version, ?offsets, "consumer offsets reset");
        Ok(pb::ResetOffsetResponse {
            queues: offsets
                .into_iter()
                .map(|(queue_id, offset)| {
                    self.queue_progress(request.topic.clone(), queue_id, Some(offset))
                })
                .collect(),
        })
    }

    pub async fn view(
        &self,
        request: pb::ViewMessageRequest,
    ) -> Result<pb::ViewMessageResponse, BrokerError> {
        self.store.indexed_up_to_now(INDEX_PATIENCE).await;
        let found = match request.id {
            Some(pb::view_message_request::Id::UniqueId(id)) if !id.is_empty() => {
                self.store.find_by_unique_id(&id).ok_or_else(|| {
                    BrokerError::NoMessage(format!(
                        "no message with unique id {id:?} on this broker"
                    ))
                })?
            }
            Some(pb::view_message_request::Id::OffsetMessageId(id)) if !id.is_empty() => {
                let (host, offset) = offset_id::decode("offset_message_id", &id)?;
                if host != self.store_host {
                    return Err(BrokerError::NoMessage(format!(
                        "offset message id {id} belongs to the broker at {host}, not this one ({})",
                        self.store_host
                    )));
                }
                self.store.message_at(offset)?.ok_or_else(|| {
                    BrokerError::NoMessage(format!(
                        "no message starts at offset {offset} (id {id})"
                    ))
                })?
            }
            _ => {
                return Err(FieldError::new("id", "give unique_id or offset_message_id").into());
            }
        };
        Ok(pb::ViewMessageResponse {
            message: Some(wire::stored_message(found)),
        })
    }

    pub async fn query(
        &self,
        request: pb::QueryMessageRequest,
    ) -> Result<pb::QueryMessageResponse, BrokerError> {
        validate::topic("topic", &request.topic)?;
        self.store.indexed_up_to_now(INDEX_PATIENCE).await;
        if request.key.is_empty() || request.key.contains(' ') {
            return Err(FieldError::new("key", "must be non-empty and without spaces").into());
        }
        let max = match request.max {
            0 => 32,
            n if n <= MAX_QUERY => n,
            n => {
                return Err(
                    FieldError::new("max", format!("{n} is out of range 1..={MAX_QUERY}")).into(),
                );
            }
        };
        let end = if request.end_ms == 0 {
            u64::MAX
        } else {
            request.end_ms
        };
        if request.begin_ms > end {
            return Err(FieldError::new("begin_ms", "is after end_ms").into());
        }
        let messages = self
            .store
            .query_by_key(
                &request.topic,
                &request.key,
                request.begin_ms,
                end,
                max as usize,
            )
            .into_iter()
            .map(wire::stored_message)
            .collect();
        Ok(pb::QueryMessageResponse { messages })
    }

    /// A queue's end, the group's offset and the last store time.
    fn queue_progress(
        &self,
        topic: String,
        queue_id: u32,
        committed: Option<u64>,
    ) -> pb::QueueProgress {
        let (min_offset, broker_offset) =
            self.store.queue_offsets(&topic, queue_id).unwrap_or((0, 0));
        let last_timestamp_ms = broker_offset
            .checked_sub(1)
            .and_then(|last| {
                self.store
                    .get_messages(&topic, queue_id, last, 1, usize::MAX, &TagFilter::All)
                    .messages
                    .into_iter()
                    .next()
            })
            .map_or(0, |m| m.store_timestamp_ms);
        pb::QueueProgress {
            topic,
            queue_id,
            broker_offset,
            consumer_offset: committed.unwrap_or(min_offset),
            last_timestamp_ms,
            committed: committed.is_some(),
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
