//! What a send can fail with, typed so that callers can tell a mistake of
//! theirs (not worth retrying) from trouble in the cluster.

use mq_common::FieldError;
use thiserror::Error;
use tonic::Code;

#[derive(Debug, Clone, Error)]
pub enum ProducerError {
    /// The message breaks a rule; fix it, retrying will not help.
    #[error("invalid message: {0}")]
    InvalidMessage(#[from] FieldError),
    /// No nameserver knows the topic, or it has no writable queue.
    #[error("no route to topic {topic:?}: {reason}")]
    NoRoute { topic: String, reason: String },
    /// A broker refused the message for a reason retrying cannot fix
    /// (unknown topic, no permission, too large, ...).
    #[error("broker {broker} refused the message: {message}")]
    Refused {
        broker: String,
        code: Code,
        message: String,
    },
    /// Every attempt failed; the last error is kept.
    #[error("send failed after {attempts} attempt(s); last error from {broker}: {message}")]
    Failed {
        attempts: u32,
        broker: String,
        code: Code,
        message: String,
    },
    /// The producer's `send_timeout` passed before a broker answered.
    #[error("send timed out after {millis} ms ({attempts} attempt(s))")]
    Timeout { millis: u64, attempts: u32 },
    #[error("invalid producer settings: {0}")]
    Config(String),
    #[error("the producer is shut down")]
    Closed,
}

impl ProducerError {
    /// Whether the same send might succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProducerError::Failed { .. }
                | ProducerError::Timeout { .. }
                | ProducerError::NoRoute { .. }
        )
    }
}

/// Codes after which another attempt (on another broker) may succeed.
pub(crate) fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Unknown
            | Code::Cancelled
            | Code::Internal
            | Code::Aborted
    )
}
