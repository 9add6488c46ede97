//! What consuming can fail with.

use mq_common::FieldError;
use thiserror::Error;

#[derive(Debug, Clone, Error)]
pub enum ConsumerError {
    #[error("invalid consumer settings: {0}")]
    Config(String),
    #[error("invalid argument: {0}")]
    Invalid(#[from] FieldError),
    #[error("no route to topic {topic:?}: {reason}")]
    NoRoute { topic: String, reason: String },
    #[error("broker {broker}: {message}")]
    Broker {
        broker: String,
        code: tonic::Code,
        message: String,
    },
    #[error("the consumer is shut down")]
    Closed,
}

impl ConsumerError {
    pub(crate) fn broker(broker: &str, status: tonic::Status) -> Self {
        ConsumerError::Broker {
            broker: broker.to_owned(),
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}
