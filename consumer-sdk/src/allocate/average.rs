//! Contiguous blocks of queues per member, as even as they can be.

use super::{AllocateStrategy, Holdings};
use crate::queue::MessageQueue;

#[derive(Debug, Default, Clone, Copy)]
pub struct Averagely;

impl AllocateStrategy for Averagely {
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
        let (n, q) = (members.len(), queues.len());
        let base = q / n;
        let extra = q % n;
        let start = index * base + index.min(extra);
        let len = base + usize::from(index < extra);
        queues[start..start + len].to_vec()
    }

    fn name(&self) -> &'static str {
        "averagely"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocate::tests::{assert_partition, members, queues};

    #[test]
    fn blocks_differ_by_at_most_one() {
        let shares = assert_partition(&Averagely, &members(3), &queues(8));
        let sizes: Vec<usize> = shares.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 3, 2]);
        assert_eq!(shares[0], queues(8)[0..3]);
    }
}
