//! Receipt handles: what names one delivery of a popped message (made by
//! the broker, read by the proxy to find the broker). A handle
//! carries the queue and offset of the message, the broker that holds it,
//! and a random token minted for this delivery: a handle from an earlier
//! delivery (or a made-up one) names a token the broker no longer holds,
//! and is refused.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// One delivery of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptHandle {
    pub queue_id: u32,
    pub offset: u64,
    pub token: u64,
    pub broker_name: String,
}

impl fmt::Display for ReceiptHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{:016x}.{}",
            self.queue_id, self.offset, self.token, self.broker_name
        )
    }
}

/// Why a handle could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("receipt handle {0:?} is not one this broker made (QUEUE.OFFSET.TOKEN.BROKER)")]
pub struct MalformedHandle(pub String);

impl ReceiptHandle {
    pub fn parse(text: &str) -> Result<ReceiptHandle, MalformedHandle> {
        let malformed = || MalformedHandle(text.chars().take(200).collect());
        let mut parts = text.splitn(4, '.');
        let mut next = || parts.next().ok_or_else(malformed);
        let queue_id = next()?.parse().map_err(|_| malformed())?;
        let offset = next()?.parse().map_err(|_| malformed())?;
        let token = next()?;
        if token.len() != 16 {
            return Err(malformed());
        }
        let token = u64::from_str_radix(token, 16).map_err(|_| malformed())?;
        let broker_name = next()?.to_owned();
        if broker_name.is_empty() {
            return Err(malformed());
        }
        Ok(ReceiptHandle {
            queue_id,
            offset,
            token,
            broker_name,
        })
    }
}

/// A fresh token nobody can guess: SipHash under this process's random
/// keys of a counter.
pub fn mint_token() -> u64 {
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = KEYS.get_or_init(Default::default).build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_broker_names_may_hold_dots() {
        let handle = ReceiptHandle {
            queue_id: 3,
            offset: 42,
            token: mint_token(),
            broker_name: "broker.a".into(),
        };
        assert_eq!(ReceiptHandle::parse(&handle.to_string()).unwrap(), handle);
    }

    #[test]
    fn malformed_handles_are_refused() {
        for bad in [
            "",
            "1.2.3",
            "x.2.0000000000000001.b",
            "1.2.short.b",
            "1.2.0000000000000001.",
            "1.2.zzzzzzzzzzzzzzzz.b",
        ] {
            assert!(ReceiptHandle::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_differ() {
        let tokens: std::collections::HashSet<u64> = (0..1000).map(|_| mint_token()).collect();
        assert_eq!(tokens.len(), 1000);
    }
}
