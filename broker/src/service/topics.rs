//! Topic management on this broker.

use std::sync::Arc;

use mq_proto::broker::v1 as pb;

use crate::error::BrokerError;
use crate::service::wire;
use crate::topics::TopicTable;

pub fn create(topics: &TopicTable, request: pb::CreateTopicRequest) -> Result<(), BrokerError> {
    let config = wire::topic_config("config", request.config)?;
    if config.topic == mq_common::AUTO_CREATE_TOPIC {
        return Err(mq_common::FieldError::new(
            "config.topic",
            "is reserved for auto-creating topics",
        )
        .into());
    }
    tracing::info!(topic = %config.topic, read = config.read_queue_count, write = config.write_queue_count, perm = config.perm, "topic created or updated");
    topics.upsert(config)?;
    Ok(())
}

pub fn delete(topics: &TopicTable, request: pb::DeleteTopicRequest) -> Result<(), BrokerError> {
    mq_common::validate::topic("topic", &request.topic)?;
    if !topics.delete(&request.topic)? {
        return Err(BrokerError::UnknownTopic(request.topic));
    }
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
