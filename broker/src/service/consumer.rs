//! Consumer bookkeeping RPCs: offsets, membership, queue locks.

use std::sync::Arc;

use mq_common::{FieldError, validate};
use mq_proto::broker::v1 as pb;
use mq_store::MessageStore;

use crate::consumer_groups::{ConsumerGroups, Member};
use crate::consumer_offsets::ConsumerOffsets;
use crate::error::BrokerError;
use crate::topic_table::TopicTable;

/// Longest client id accepted.
const MAX_CLIENT_ID: usize = 255;
/// Most queues one lock or unlock request may name.
const MAX_QUEUES_PER_REQUEST: usize = 1024;

#[derive(Debug, Clone)]
pub struct ConsumerPath {
    pub store: Arc<MessageStore>,
    pub topics: Arc<TopicTable>,
    pub offsets: Arc<ConsumerOffsets>,
    pub groups: Arc<ConsumerGroups>,
    /// True once the broker stops: open sessions end.
    pub draining: tokio::sync::watch::Receiver<bool>,
    /// Compiled SQL92 filters: a subscription's expression is checked
    /// (and compiled for its pulls) when its member joins.
    pub filters: Arc<crate::service::filter::SqlFilters>,
}

fn client_id(id: &str) -> Result<(), FieldError> {
    if id.is_empty() || id.len() > MAX_CLIENT_ID || id.chars().any(char::is_whitespace) {
        return Err(FieldError::new(
            "client_id",
            format!("must be 1 to {MAX_CLIENT_ID} characters without spaces"),
        ));
    }
    Ok(())
}

impl ConsumerPath {
    /// Checks that `topic` exists here and has a read queue `queue_id`;
    /// `field` prefixes the names in the errors.
    fn known_queue(&self, field: &str, topic: &str, queue_id: u32) -> Result<(), BrokerError> {
        validate::topic(&format!("{field}topic"), topic)?;
        let config = self
            .topics
            .get(topic)
            .ok_or_else(|| BrokerError::UnknownTopic(topic.to_owned()))?;
        if queue_id >= config.read_queue_count {
            return Err(FieldError::new(
                format!("{field}queue_id"),
                format!(
                    "{queue_id} is out of range: topic {topic:?} has {} read queues",
                    config.read_queue_count
                ),
            )
            .into());
        }
        Ok(())
    }

    /// The queues of a lock or unlock request, each checked.
    fn queues(&self, refs: Vec<pb::QueueRef>) -> Result<Vec<(String, u32)>, BrokerError> {
        if refs.len() > MAX_QUEUES_PER_REQUEST {
            return Err(FieldError::new(
                "queues",
                format!(
                    "{} queues in one request; at most {MAX_QUEUES_PER_REQUEST}",
                    refs.len()
                ),
            )
            .into());
        }
        refs.into_iter()
            .enumerate()
            .map(|(i, q)| {
                self.known_queue(&format!("queues[{i}]."), &q.topic, q.queue_id)?;
                Ok((q.topic, q.queue_id))
            })
            .collect()
    }

    pub fn commit(&self, request: pb::CommitOffsetRequest) -> Result<(), BrokerError> {
        validate::topic("group", &request.group)?;
        self.known_queue("", &request.topic, request.queue_id)?;
        let max = self
            .store
            .queue_offsets(&request.topic, request.queue_id)
            .map_or(0, |(_, max)| max);
        if request.offset > max {
            return Err(FieldError::new(
                "offset",
                format!(
                    "{} is past the end of queue {}:{} (its max offset is {max})",
                    request.offset, request.topic, request.queue_id
                ),
            )
            .into());
        }
        if request.offset_reset_version < self.offsets.reset_version(&request.group) {
            // The member has not seen the operator's reset yet.
            return Ok(());
        }
        self.offsets.commit(
            &request.group,
            &request.topic,
            request.queue_id,
            request.offset,
        );
        Ok(())
    }

    pub fn query(
        &self,
        request: pb::QueryOffsetRequest,
    ) -> Result<pb::QueryOffsetResponse, BrokerError> {
        validate::topic("group", &request.group)?;
        self.known_queue("", &request.topic, request.queue_id)?;
        Ok(pb::QueryOffsetResponse {
            offset: self
                .offsets
                .query(&request.group, &request.topic, request.queue_id),
        })
    }

    pub fn heartbeat(
        &self,
        request: pb::HeartbeatRequest,
        now_ms: u64,
    ) -> Result<pb::HeartbeatResponse, BrokerError> {
        let (group, member) = self.member(request, now_ms)?;
        let group_version = self.groups.heartbeat(&group, member);
        Ok(pb::HeartbeatResponse {
            group_version,
            offset_reset_version: self.offsets.reset_version(&group),
        })
    }

    /// The group and member a heartbeat or session request describes, each
    /// field checked; makes sure the group's retry topic exists.
    pub(super) fn member(
        &self,
        request: pb::HeartbeatRequest,
        now_ms: u64,
    ) -> Result<(String, Member), BrokerError> {
        validate::topic("group", &request.group)?;
        client_id(&request.client_id)?;
        let broadcasting = match pb::ConsumeModel::try_from(request.consume_model) {
            Ok(pb::ConsumeModel::Clustering) => false,
            Ok(pb::ConsumeModel::Broadcasting) => true,
            _ => {
                return Err(
                    FieldError::new("consume_model", "must be CLUSTERING or BROADCASTING").into(),
                );
            }
        };
        let mut subscriptions = Vec::with_capacity(request.subscriptions.len());
        for (i, sub) in request.subscriptions.into_iter().enumerate() {
            validate::topic(&format!("subscriptions[{i}].topic"), &sub.topic)?;
            self.filters.filter(
                &format!("subscriptions[{i}].tag_expression"),
                &sub.tag_expression,
                &format!("subscriptions[{i}].sql_expression"),
                &sub.sql_expression,
            )?;
            subscriptions.push((sub.topic, sub.tag_expression, sub.sql_expression));
        }
        subscriptions.sort();
        if !broadcasting {
            // Where the group's failed messages come back (RocketMQ creates
            // it on heartbeat too): routed before the first failure.
            // A member that cannot have it yet (a full disk refuses the
            // topic table) still consumes; the next heartbeat tries again.
            let retry = super::retry::retry_topic(&request.group);
            if self.topics.get(&retry).is_none()
                && let Err(err) = self
                    .topics
                    .get_or_create(crate::topic_table::TopicConfig::new(&retry, 1))
            {
                tracing::warn!(group = %request.group, error = %err, "cannot create the group's retry topic yet");
            }
        }
        let member = Member {
            client_id: request.client_id,
            subscriptions,
            broadcasting,
            last_heartbeat_ms: now_ms,
            held: request
                .held
                .into_iter()
                .map(|q| (q.topic, q.broker_name, q.queue_id))
                .collect(),
            client_kind: request.client_kind,
        };
        Ok((request.group, member))
    }

    pub fn unregister(&self, request: pb::UnregisterConsumerRequest) -> Result<(), BrokerError> {
        validate::topic("group", &request.group)?;
        client_id(&request.client_id)?;
        if self.groups.unregister(&request.group, &request.client_id) {
            tracing::info!(group = %request.group, client_id = %request.client_id, "consumer left");
        }
        Ok(())
    }

    pub fn members(
        &self,
        request: pb::GetConsumerListRequest,
    ) -> Result<pb::GetConsumerListResponse, BrokerError> {
        validate::topic("group", &request.group)?;
        let (members, group_version) = self
            .groups
            .members(&request.group)
            .ok_or(BrokerError::UnknownGroup(request.group))?;
        Ok(pb::GetConsumerListResponse {
            client_ids: members.iter().map(|m| m.client_id.clone()).collect(),
            group_version,
            members: members
                .into_iter()
                .map(|m| pb::MemberInfo {
                    subscriptions: m
                        .subscriptions
                        .into_iter()
                        .map(|(topic, tag_expression, sql_expression)| pb::Subscription {
                            topic,
                            tag_expression,
                            sql_expression,
                        })
                        .collect(),
                    consume_model: if m.broadcasting {
                        pb::ConsumeModel::Broadcasting
                    } else {
                        pb::ConsumeModel::Clustering
                    } as i32,
                    last_heartbeat_ms: m.last_heartbeat_ms,
                    client_kind: m.client_kind,
                    client_id: m.client_id,
                    held: m
                        .held
                        .into_iter()
                        .map(|(topic, broker_name, queue_id)| pb::QueueRef {
                            topic,
                            queue_id,
                            broker_name,
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    pub fn lock(
        &self,
        request: pb::LockQueuesRequest,
        now_ms: u64,
    ) -> Result<pb::LockQueuesResponse, BrokerError> {
        validate::topic("group", &request.group)?;
        client_id(&request.client_id)?;
        let wanted = self.queues(request.queues)?;
        let locked = self
            .groups
            .lock_queues(&request.group, &request.client_id, &wanted, now_ms);
        Ok(pb::LockQueuesResponse {
            locked: locked
                .into_iter()
                .map(|(topic, queue_id)| pb::QueueRef {
                    topic,
                    queue_id,
                    broker_name: String::new(),
                })
                .collect(),
        })
    }

    pub fn unlock(&self, request: pb::UnlockQueuesRequest) -> Result<(), BrokerError> {
        validate::topic("group", &request.group)?;
        client_id(&request.client_id)?;
        let held = self.queues(request.queues)?;
        self.groups
            .unlock_queues(&request.group, &request.client_id, &held);
        Ok(())
    }
}
