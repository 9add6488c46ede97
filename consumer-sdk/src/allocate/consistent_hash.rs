//! A hash ring with virtual nodes: a member leaving or joining moves only
//! the queues next to it on the ring.

use super::{AllocateStrategy, Holdings};
use crate::queue::MessageQueue;

#[derive(Debug, Clone, Copy)]
pub struct ConsistentHash {
    /// Points per member on the ring.
    pub virtual_nodes: u32,
}

impl Default for ConsistentHash {
    fn default() -> Self {
        ConsistentHash { virtual_nodes: 64 }
    }
}

fn hash(text: &str) -> u64 {
    // FNV-1a, then a finalizer so that neighbours spread over the ring.
    let mut h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

impl AllocateStrategy for ConsistentHash {
    fn allocate(
        &self,
        me: &str,
        members: &[String],
        queues: &[MessageQueue],
        _previous: &Holdings,
    ) -> Vec<MessageQueue> {
        if !members.iter().any(|m| m == me) {
            return Vec::new();
        }
        let mut ring: Vec<(u64, &str)> = members
            .iter()
            .flat_map(|m| {
                (0..self.virtual_nodes).map(move |v| (hash(&format!("{m}#{v}")), m.as_str()))
            })
            .collect();
        ring.sort_unstable();
        queues
            .iter()
            .filter(|q| {
                let point = hash(&q.to_string());
                let owner = ring
                    .iter()
                    .find(|(h, _)| *h >= point)
                    .or_else(|| ring.first())
                    .map(|(_, m)| *m);
                owner == Some(me)
            })
            .cloned()
            .collect()
    }

    fn name(&self) -> &'static str {
        "consistent-hash"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocate::Holdings;
    use crate::allocate::tests::{members, queues};

    #[test]
    fn a_member_leaving_moves_only_its_own_queues() {
        let strategy = ConsistentHash::default();
        let all = queues(32);
        let before = members(4);
        let after: Vec<String> = before.iter().filter(|m| *m != "c3").cloned().collect();
        for me in &after {
            let kept = strategy.allocate(me, &before, &all, &Holdings::new());
            let now = strategy.allocate(me, &after, &all, &Holdings::new());
            assert!(
                kept.iter().all(|q| now.contains(q)),
                "{me} lost a queue it had"
            );
        }
    }
}
