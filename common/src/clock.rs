//! Wall-clock time in the unit every part of the queue keeps: Unix
//! milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch now; 0 if the clock is set before 1970.
pub fn unix_millis() -> u64 {
    to_unix_millis(SystemTime::now())
}

/// `time` in milliseconds since the Unix epoch (0 before it).
pub fn to_unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_the_epoch_are_zero() {
        assert_eq!(to_unix_millis(UNIX_EPOCH), 0);
        assert_eq!(
            to_unix_millis(UNIX_EPOCH - std::time::Duration::from_secs(1)),
            0
        );
        assert_eq!(
            to_unix_millis(UNIX_EPOCH + std::time::Duration::from_millis(1500)),
            1500
        );
        assert!(unix_millis() > 1_700_000_000_000);
    }
}
