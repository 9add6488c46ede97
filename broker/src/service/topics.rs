//! Topic management on this broker.

use std::sync::Arc;

use mq_common::system_topics::{SCHEDULE_TOPIC, check_not_reserved};
use mq_proto::broker::v1 as pb;
use mq_store::MessageStore;

use crate::consumer_offsets::ConsumerOffsets;
use crate::error::BrokerError;
use crate::service::wire;
use crate::topic_table::TopicTable;

pub fn create(topics: &TopicTable, request: pb::CreateTopicRequest) -> Result<(), BrokerError> {
    let config = wire::topic_config("config", request.config)?;
    check_not_reserved("config.topic", &config.topic)?;
    tracing::info!(topic = %config.topic, read = config.read_queue_count, write = config.write_queue_count, perm = config.perm, "topic created or updated");
    topics.upsert(config)?;
    Ok(())
}

/// How long a deletion waits for the dispatcher to pass the topic's fence.
const DELETE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Deletes a topic with its messages and every group's offsets of it: a
/// topic created again under the name starts empty.
pub async fn delete(
    topics: &TopicTable,
    store: &MessageStore,
    offsets: &ConsumerOffsets,
    request: pb::DeleteTopicRequest,
) -> Result<(), BrokerError> {
    mq_common::validate::topic("topic", &request.topic)?;
    // A group's retry and dead-letter topics may go with the group; the
    // broker's own machinery may not.
    if request.topic == mq_common::AUTO_CREATE_TOPIC || request.topic == SCHEDULE_TOPIC {
        check_not_reserved("topic", &request.topic)?;
    }
    if topics.get(&request.topic).is_none() {
        return Err(BrokerError::UnknownTopic(request.topic));
    }
    store.delete_topic(&request.topic, DELETE_PATIENCE).await?;
    offsets.forget_topic(&request.topic);
    topics.delete(&request.topic)?;
    tracing::info!(topic = %request.topic, "topic deleted");
    Ok(())
}

pub fn list(topics: &Arc<TopicTable>) -> Vec<pb::TopicConfig> {
    topics
        .snapshot()
        .0
        .into_iter()
        .map(wire::pb_topic_config)
        .collect()
}
