//! The kind of messages a topic accepts (RocketMQ 5's `message.type` topic
//! attribute). RocketMQ 5's protocol refuses a send whose message type is
//! not its topic's: a FIFO topic takes only messages with a message group,
//! a DELAY topic only messages with a delivery time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::validate::FieldError;

/// What messages a topic accepts. On the wire (topic configs, routes) it
/// travels as its name; an empty name is [`MessageType::Normal`], the
/// type of every topic made before types existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageType {
    #[default]
    Normal,
    /// Ordered within a message group (the sharding key).
    Fifo,
    /// Delivered at a given time.
    Delay,
    /// Delivered once its transaction commits.
    Transaction,
}

impl MessageType {
    /// Every type, for help texts.
    pub const ALL: [MessageType; 4] = [
        MessageType::Normal,
        MessageType::Fifo,
        MessageType::Delay,
        MessageType::Transaction,
    ];

    /// The wire name: `NORMAL`, `FIFO`, `DELAY`, `TRANSACTION`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Normal => "NORMAL",
            MessageType::Fifo => "FIFO",
            MessageType::Delay => "DELAY",
            MessageType::Transaction => "TRANSACTION",
        }
    }

    /// Reads a wire name (case-insensitive; empty is `NORMAL`); `field`
    /// names the field in the error.
    pub fn parse(field: &str, name: &str) -> Result<MessageType, FieldError> {
        if name.is_empty() {
            return Ok(MessageType::Normal);
        }
        MessageType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    format!(
                        "{name:?} is not a message type; one of NORMAL, FIFO, DELAY, TRANSACTION"
                    ),
                )
            })
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageType {
    type Err = FieldError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        MessageType::parse("message_type", name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_empty_is_normal() {
        for t in MessageType::ALL {
            assert_eq!(MessageType::parse("t", t.as_str()).unwrap(), t);
            assert_eq!(t.as_str().to_lowercase().parse::<MessageType>().unwrap(), t);
        }
        assert_eq!(MessageType::parse("t", "").unwrap(), MessageType::Normal);
    }

    #[test]
    fn unknown_names_are_refused_with_the_choices() {
        let err = MessageType::parse("config.message_type", "ORDERED").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("config.message_type"), "{text}");
        assert!(text.contains("NORMAL, FIFO, DELAY, TRANSACTION"), "{text}");
    }
}
