//! The delays a scheduled message can wait in: the configured delay levels
//! (what producers and retries name), plus fixed hop delays that carry a
//! message with an arbitrary delivery time towards it in a few steps.
//!
//! Each distinct delay is one queue of the schedule topic. A queue holds
//! messages in the order they were stored, and all of them wait about the
//! same delay, so they fall due in that order: the scheduler only ever
//! looks at each queue's head. A million pending messages cost a million
//! ConsumeQueue entries on disk and nothing per message in memory.

use std::time::Duration;

/// RocketMQ's default delay levels.
pub const DEFAULT_LEVELS: &str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";

/// Delays used only to hop towards a delivery time: with them a message
/// due in 7 days takes about a dozen hops (days, then hours, ...), each one
/// record, and lands within 100 ms after its time.
const HOPS: [Duration; 9] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(600),
    Duration::from_secs(3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(24 * 3600),
];

/// Most delay levels accepted.
pub const MAX_LEVELS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayTable {
    levels: Vec<Duration>,
    /// Every distinct delay, ascending; a delay's index is its queue id.
    queues: Vec<Duration>,
}

impl DelayTable {
    /// Parses levels such as `"1s 5s 10s 1m"`. No message may wait longer
    /// than `longest_stop` in one queue (the CommitLog's retention): longer
    /// levels are refused, longer hop delays left out.
    pub fn parse(text: &str, longest_stop: Duration) -> Result<DelayTable, String> {
        let levels = text
            .split_whitespace()
            .map(|token| match humantime::parse_duration(token) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err(format!("{token:?} is zero")),
                Err(e) => Err(format!("{token:?} is not a duration: {e}")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if levels.is_empty() || levels.len() > MAX_LEVELS {
            return Err(format!("must list 1 to {MAX_LEVELS} delays"));
        }
        if let Some(long) = levels.iter().find(|&&d| d > longest_stop) {
            return Err(format!(
                "{} is longer than the CommitLog's retention ({}): messages would be deleted while they wait",
                humantime::format_duration(*long),
                humantime::format_duration(longest_stop)
            ));
        }
        let hops = HOPS.into_iter().filter(|&d| d <= longest_stop);
        let mut queues: Vec<Duration> = levels.iter().copied().chain(hops).collect();
        queues.sort();
        queues.dedup();
        Ok(DelayTable { levels, queues })
    }

    /// The longest delay a message waits in one queue before it is
    /// appended anew (retention must keep records at least this long).
    pub fn longest_stop(&self) -> Duration {
        self.queues.last().copied().unwrap_or_default()
    }

    /// How many levels producers may name (1 to this).
    pub fn level_count(&self) -> u32 {
        self.levels.len() as u32
    }

    /// The delay of 1-based `level`.
    pub fn level(&self, level: u32) -> Option<Duration> {
        let index = usize::try_from(level).ok()?.checked_sub(1)?;
        self.levels.get(index).copied()
    }

    /// The queue for a message due in `remaining`, and how long it waits
    /// there: the longest delay that does not pass the due time, or the
    /// shortest one when even that is too long (it then lands at most that
    /// shortest delay late).
    pub fn hop(&self, remaining: Duration) -> (u32, Duration) {
        let index = self
            .queues
            .iter()
            .rposition(|&d| d <= remaining)
            .unwrap_or(0);
        (index as u32, self.queues[index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_one_based_and_land_in_their_own_queue() {
        let table = DelayTable::parse(DEFAULT_LEVELS, Duration::MAX).unwrap();
        assert_eq!(table.level_count(), 18);
        assert_eq!(table.level(1), Some(Duration::from_secs(1)));
        assert_eq!(table.level(18), Some(Duration::from_secs(7200)));
        assert_eq!(table.level(0), None);
        assert_eq!(table.level(19), None);
        for level in 1..=18 {
            let delay = table.level(level).unwrap();
            assert_eq!(table.hop(delay).1, delay, "level {level} waits exactly");
        }
    }

    #[test]
    fn arbitrary_times_hop_down_and_never_early() {
        let table = DelayTable::parse("1s 5s", Duration::MAX).unwrap();
        assert_eq!(
            table.hop(Duration::from_secs(7 * 86400)).1,
            Duration::from_secs(86400)
        );
        assert_eq!(
            table.hop(Duration::from_millis(4999)).1,
            Duration::from_secs(1)
        );
        assert_eq!(
            table.hop(Duration::from_millis(300)).1,
            Duration::from_millis(100)
        );
        assert_eq!(
            table.hop(Duration::from_millis(30)).1,
            Duration::from_millis(100),
            "shorter than every delay: the shortest, landing late rather than early"
        );
        // A week takes 7 days, then 6 h steps within the last day: a handful.
        let (mut remaining, mut hops) = (Duration::from_secs(7 * 86400 + 3723), 0);
        while remaining >= Duration::from_millis(100) {
            remaining -= table.hop(remaining).1;
            hops += 1;
        }
        assert!(hops <= 16, "{hops} hops");
    }

    #[test]
    fn bad_levels_are_named() {
        assert!(
            DelayTable::parse("", Duration::MAX)
                .unwrap_err()
                .contains("1 to 64")
        );
        assert!(
            DelayTable::parse("1s soon", Duration::MAX)
                .unwrap_err()
                .contains("\"soon\"")
        );
        assert!(
            DelayTable::parse("0s", Duration::MAX)
                .unwrap_err()
                .contains("zero")
        );
        let day = Duration::from_secs(86400);
        assert!(
            DelayTable::parse("1s 2d", day)
                .unwrap_err()
                .contains("retention")
        );
        let short = DelayTable::parse("1s", Duration::from_secs(3600)).unwrap();
        assert_eq!(
            short.longest_stop(),
            Duration::from_secs(3600),
            "hops past the retention are left out"
        );
    }
}
