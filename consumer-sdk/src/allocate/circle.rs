//! Queues dealt out like cards: queue i to member i mod n.

use super::{AllocateStrategy, Holdings};
use crate::queue::MessageQueue;

#[derive(Debug, Default, Clone, Copy)]
pub struct AveragelyByCircle;

impl AllocateStrategy for AveragelyByCircle {
    fn allocate(
        &self,
        me: &str,
        members: &[String],
        queues: &[MessageQueue],
        _previous: &Holdings,
    ) -> Vec<MessageQueue> {
        let Some(index) = members.iter().position(|m| m == me) else {
            return Vec::new();
        };
        queues
            .iter()
            .skip(index)
            .step_by(members.len())
            .cloned()
            .collect()
    }

    fn name(&self) -> &'static str {
        "averagely-by-circle"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocate::tests::{assert_partition, members, queues};

    #[test]
    fn members_take_every_nth_queue() {
        let shares = assert_partition(&AveragelyByCircle, &members(3), &queues(8));
        let all = queues(8);
        assert_eq!(
            shares[1],
            vec![all[1].clone(), all[4].clone(), all[7].clone()]
        );
    }
}
