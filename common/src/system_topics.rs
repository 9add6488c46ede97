//! The topics a broker keeps for itself. Clients read some of them (a
//! group's retry and dead-letter topics), but only the broker creates them
//! and writes to them: a client that could would inject entries the
//! scheduler fires, or forge another group's retries.

/// The topic that brokers with `auto_create_topic` on advertise to the
/// nameservers (RocketMQ's `TBW102`): a producer that finds no route for a
/// new topic borrows this one's, and the broker creates the topic on the
/// first send. Nobody sends to it directly.
pub const AUTO_CREATE_TOPIC: &str = "TBW102";

/// The internal topic of scheduled messages (one queue per delay).
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";

/// Half messages of transactions, invisible to consumers until committed
/// (RocketMQ's name; one queue).
pub const TRANSACTION_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";

/// Op records: a rolled-back transaction's end (RocketMQ's name).
pub const TRANSACTION_OP_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";

/// Half messages discarded after their last check, kept for operators
/// (RocketMQ's name).
pub const TRANSACTION_CHECK_MAX_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";

/// Prefix of a group's retry topic, where its failed messages come back.
pub const RETRY_PREFIX: &str = "%RETRY%";

/// Prefix of a group's dead-letter topic.
pub const DLQ_PREFIX: &str = "%DLQ%";

/// The retry topic of `group`.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_PREFIX}{group}")
}

/// The dead-letter topic of `group`.
pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_PREFIX}{group}")
}

/// Whether `topic` is one only the broker may create or write.
pub fn is_reserved(topic: &str) -> bool {
    topic == AUTO_CREATE_TOPIC
        || topic == SCHEDULE_TOPIC
        || topic == TRANSACTION_HALF_TOPIC
        || topic == TRANSACTION_OP_TOPIC
        || topic == TRANSACTION_CHECK_MAX_TOPIC
        || topic.starts_with(RETRY_PREFIX)
        || topic.starts_with(DLQ_PREFIX)
}

/// Refuses, naming `field`, a topic only the broker may create or write.
pub fn check_not_reserved(field: &str, topic: &str) -> Result<(), crate::FieldError> {
    if is_reserved(topic) {
        return Err(crate::FieldError::new(
            field,
            format!(
                "{topic:?} is reserved for the broker (TBW102, SCHEDULE_TOPIC_XXXX, RMQ_SYS_TRANS_*, TRANS_CHECK_MAX_TIME_TOPIC, %RETRY%*, %DLQ%*): only it creates and writes such topics"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_s_topics_are_reserved_and_others_are_not() {
        for topic in [
            "TBW102",
            "SCHEDULE_TOPIC_XXXX",
            "RMQ_SYS_TRANS_HALF_TOPIC",
            "RMQ_SYS_TRANS_OP_HALF_TOPIC",
            "TRANS_CHECK_MAX_TIME_TOPIC",
            &retry_topic("g"),
            &dlq_topic("g"),
        ] {
            assert!(is_reserved(topic), "{topic}");
        }
        for topic in ["orders", "RETRY_g", "DLQ", "tbw102"] {
            assert!(!is_reserved(topic), "{topic}");
            assert!(check_not_reserved("topic", topic).is_ok());
        }
        let err = check_not_reserved("topic", "%DLQ%g").unwrap_err();
        assert!(err.to_string().contains("reserved for the broker"), "{err}");
    }
}
