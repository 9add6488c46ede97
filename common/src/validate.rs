//! Input rules shared by every service. Each check names the field it
//! rejects, so that a user reading the error knows what to fix.

use thiserror::Error;

/// The longest topic, cluster or broker name, in bytes (RocketMQ's bound).
pub const MAX_NAME_LEN: usize = 127;

/// The largest read or write queue count of one topic on one broker.
pub const MAX_QUEUE_COUNT: u32 = 1024;

/// Most messages one SendBatch may carry: its reply (a result per message)
/// then stays far below the 4 MiB a gRPC client accepts by default, so a
/// stored batch is never answered with an error that makes it be resent.
pub const MAX_BATCH_MESSAGES: usize = 4096;

/// One field of a request broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Path of the offending field, for example `topics[2].read_queue_count`.
    pub field: String,
    /// What is wrong with it, in words a user can act on.
    pub reason: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A topic name: 1 to 127 characters among letters, digits, `_`, `-`, `%`
/// and `|` (`%` and `|` appear in system topics such as `%RETRY%group`).
pub fn topic(field: &str, name: &str) -> Result<(), FieldError> {
    name_with(field, name, "letters, digits, '_', '-', '%' and '|'", |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '%' | '|')
    })
}

/// A cluster or broker name: 1 to 127 characters among letters, digits,
/// `_`, `-` and `.`.
pub fn node_name(field: &str, name: &str) -> Result<(), FieldError> {
    name_with(field, name, "letters, digits, '_', '-' and '.'", |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
    })
}

fn name_with(
    field: &str,
    name: &str,
    allowed: &str,
    legal: impl Fn(char) -> bool,
) -> Result<(), FieldError> {
    if name.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(FieldError::new(
            field,
            format!(
                "is {} characters long; at most {MAX_NAME_LEN} are allowed",
                name.len()
            ),
        ));
    }
    if let Some(bad) = name.chars().find(|&c| !legal(c)) {
        return Err(FieldError::new(
            field,
            format!("{name:?} contains the illegal character {bad:?}; allowed are {allowed}"),
        ));
    }
    Ok(())
}

/// A queue count: 1 to [`MAX_QUEUE_COUNT`].
pub fn queue_count(field: &str, count: u32) -> Result<(), FieldError> {
    if count == 0 || count > MAX_QUEUE_COUNT {
        return Err(FieldError::new(
            field,
            format!("queue count {count} is out of range 1..={MAX_QUEUE_COUNT}"),
        ));
    }
    Ok(())
}

/// A `host:port` address that clients can dial: a non-empty host without
/// spaces and a port in 1..=65535. Host names are allowed (containers).
pub fn host_port(field: &str, addr: &str) -> Result<(), FieldError> {
    let bad =
        |why: &str| FieldError::new(field, format!("{addr:?} is not a host:port address: {why}"));
    if addr.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| bad("the :port is missing"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad("the host contains a space or '/'"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad("the port must be a number in 1..=65535")),
        Ok(_) => Ok(()),
    }
}

/// A subscription's tag expression: `*` (or empty) for every tag, or
/// tags joined by `||` (`TagA || TagB`). Returns the tags, empty for all.
pub fn tag_expression(field: &str, expression: &str) -> Result<Vec<String>, FieldError> {
    let trimmed = expression.trim();
    if trimmed.is_empty() || trimmed == "*" {
        return Ok(Vec::new());
    }
    let mut tags = Vec::new();
    for part in trimmed.split("||") {
        let tag = part.trim();
        if tag.is_empty() {
            return Err(FieldError::new(
                field,
                format!("{expression:?} has an empty tag; write `*` or `TagA || TagB`"),
            ));
        }
        if let Some(bad) = tag
            .chars()
            .find(|c| c.is_whitespace() || matches!(c, '|' | '*'))
        {
            return Err(FieldError::new(
                field,
                format!("tag {tag:?} in {expression:?} contains {bad:?}"),
            ));
        }
        tags.push(tag.to_owned());
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_topics_pass() {
        for name in [
            "a",
            "TopicTest",
            "order_events-2",
            "%RETRY%group",
            "%DLQ%g|x",
            &"t".repeat(127),
        ] {
            topic("topic", name).unwrap();
        }
    }

    #[test]
    fn empty_topic_is_refused() {
        let err = topic("topic", "").unwrap_err();
        assert_eq!(err.to_string(), "topic: must not be empty");
    }

    #[test]
    fn over_long_topic_is_refused() {
        let err = topic("topic", &"t".repeat(128)).unwrap_err();
        assert_eq!(err.field, "topic");
        assert!(err.reason.contains("128 characters"), "{err}");
    }

    #[test]
    fn illegal_characters_are_named() {
        for (name, bad) in [
            ("a b", ' '),
            ("a.b", '.'),
            ("a/b", '/'),
            ("tópico", 'ó'),
            ("a*", '*'),
        ] {
            let err = topic("topics[1].topic", name).unwrap_err();
            assert_eq!(err.field, "topics[1].topic");
            assert!(err.reason.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn node_names_allow_dots_but_not_percent() {
        node_name("broker_name", "broker-a.zone1").unwrap();
        assert!(node_name("broker_name", "broker%a").is_err());
        assert!(node_name("cluster_name", "").is_err());
        assert!(node_name("cluster_name", &"c".repeat(128)).is_err());
    }

    #[test]
    fn queue_counts_are_bounded() {
        queue_count("q", 1).unwrap();
        queue_count("q", MAX_QUEUE_COUNT).unwrap();
        assert!(queue_count("q", 0).is_err());
        let err = queue_count("q", MAX_QUEUE_COUNT + 1).unwrap_err();
        assert!(err.reason.contains("1025"), "{err}");
    }

    #[test]
    fn tag_expressions_are_star_or_tags_joined_by_bars() {
        assert!(tag_expression("e", "*").unwrap().is_empty());
        assert!(tag_expression("e", " ").unwrap().is_empty());
        assert_eq!(
            tag_expression("e", "TagA || TagB").unwrap(),
            ["TagA", "TagB"]
        );
        assert_eq!(tag_expression("e", "solo").unwrap(), ["solo"]);
        for bad in ["a ||", "|| a", "a |||| b", "a | b", "two words", "a||*"] {
            assert_eq!(tag_expression("e", bad).unwrap_err().field, "e", "{bad}");
        }
    }

    #[test]
    fn addresses_need_host_and_port() {
        for ok in ["127.0.0.1:10911", "broker-a:10911", "[::1]:9876"] {
            host_port("broker_addr", ok).unwrap();
        }
        for bad in [
            "",
            "127.0.0.1",
            ":10911",
            "host:0",
            "host:99999",
            "host:port",
            "a b:1",
            "http://x:1",
        ] {
            assert!(host_port("broker_addr", bad).is_err(), "{bad} accepted");
        }
    }
}
