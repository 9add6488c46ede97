//! Allocation strategies: how the queues of a topic are shared among the
//! live members of a consumer group. Every member runs the same strategy
//! over the same sorted inputs, so they agree without talking to each
//! other. Pure functions, tested exactly.

mod average;
mod circle;
mod consistent_hash;
mod sticky;

pub use average::Averagely;
pub use circle::AveragelyByCircle;
pub use consistent_hash::ConsistentHash;
pub use sticky::Sticky;

use std::collections::BTreeMap;

use crate::queue::MessageQueue;

/// What each member reported holding in its last heartbeat.
pub type Holdings = BTreeMap<String, Vec<MessageQueue>>;

/// Decides which queues one member consumes.
pub trait AllocateStrategy: Send + Sync + std::fmt::Debug {
    /// The queues of `queues` (sorted) that `me` takes, given every live
    /// member (sorted, containing `me`) and what each member held before
    /// (as the members reported it; the same for every member).
    fn allocate(
        &self,
        me: &str,
        members: &[String],
        queues: &[MessageQueue],
        previous: &Holdings,
    ) -> Vec<MessageQueue>;

    /// A name for logs.
    fn name(&self) -> &'static str;
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashSet;

    use super::*;

    pub fn queues(n: u32) -> Vec<MessageQueue> {
        (0..n)
            .map(|i| MessageQueue {
                topic: "t".into(),
                broker_name: format!("b{}", i % 2),
                queue_id: i / 2,
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    pub fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    /// Every queue goes to exactly one member.
    pub fn assert_partition(
        strategy: &dyn AllocateStrategy,
        members: &[String],
        queues: &[MessageQueue],
    ) -> Vec<Vec<MessageQueue>> {
        let shares: Vec<Vec<MessageQueue>> = members
            .iter()
            .map(|me| strategy.allocate(me, members, queues, &Holdings::new()))
            .collect();
        let all: Vec<&MessageQueue> = shares.iter().flatten().collect();
        assert_eq!(
            all.len(),
            queues.len(),
            "{}: every queue once",
            strategy.name()
        );
        assert_eq!(
            all.iter().collect::<HashSet<_>>().len(),
            queues.len(),
            "{}: no queue twice",
            strategy.name()
        );
        shares
    }

    #[test]
    fn every_strategy_partitions_the_queues() {
        let strategies: Vec<Box<dyn AllocateStrategy>> = vec![
            Box::new(Averagely),
            Box::new(AveragelyByCircle),
            Box::new(ConsistentHash::default()),
            Box::new(Sticky),
        ];
        for strategy in &strategies {
            for (m, q) in [(1, 8), (3, 8), (8, 8), (5, 3), (2, 16)] {
                assert_partition(strategy.as_ref(), &members(m), &queues(q));
            }
            assert!(
                strategy
                    .allocate("stranger", &members(2), &queues(4), &Holdings::new())
                    .is_empty()
            );
        }
    }
}
