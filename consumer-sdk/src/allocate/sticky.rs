//! The default: every member ends with an even share (sizes differ by at
//! most one), and queues stay with the member that held them whenever that
//! allows, so a membership change moves as few queues as possible. What
//! each member held comes from the members' own heartbeats, so every
//! member computes the same plan.

use std::collections::{BTreeMap, BTreeSet};

use super::{AllocateStrategy, Holdings};
use crate::queue::MessageQueue;

#[derive(Debug, Default, Clone, Copy)]
pub struct Sticky;

impl Sticky {
    /// The whole group's assignment, given what each member held.
    pub fn plan(members: &[String], queues: &[MessageQueue], previous: &Holdings) -> Holdings {
        let n = members.len();
        let mut plan: BTreeMap<String, Vec<MessageQueue>> =
            members.iter().map(|m| (m.clone(), Vec::new())).collect();
        if n == 0 {
            return plan;
        }
        let (base, extra) = (queues.len() / n, queues.len() % n);
        // Members that held the most keep the larger shares, so fewer move.
        let mut by_holding: Vec<&String> = members.iter().collect();
        by_holding.sort_by_key(|m| {
            (
                std::cmp::Reverse(previous.get(*m).map_or(0, Vec::len)),
                (*m).clone(),
            )
        });
        let quota: BTreeMap<&String, usize> = by_holding
            .iter()
            .enumerate()
            .map(|(rank, m)| (*m, base + usize::from(rank < extra)))
            .collect();
        let live: BTreeSet<&MessageQueue> = queues.iter().collect();
        let mut taken: BTreeSet<MessageQueue> = BTreeSet::new();
        for member in members {
            let mine = plan.get_mut(member).expect("every member has a plan");
            for queue in previous.get(member).into_iter().flatten() {
                if mine.len() < quota[member] && live.contains(queue) && taken.insert(queue.clone())
                {
                    mine.push(queue.clone());
                }
            }
        }
        let mut free = queues.iter().filter(|q| !taken.contains(*q));
        for member in members {
            let mine = plan.get_mut(member).expect("every member has a plan");
            while mine.len() < quota[member] {
                match free.next() {
                    Some(queue) => mine.push(queue.clone()),
                    None => break,
                }
            }
            mine.sort();
        }
        plan
    }
}

impl AllocateStrategy for Sticky {
    fn allocate(
        &self,
        me: &str,
        members: &[String],
        queues: &[MessageQueue],
        previous: &Holdings,
    ) -> Vec<MessageQueue> {
        Sticky::plan(members, queues, previous)
            .remove(me)
            .unwrap_or_default()
    }

    fn name(&self) -> &'static str {
        "sticky"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocate::tests::{members, queues};

    fn moved(before: &Holdings, after: &Holdings) -> usize {
        after
            .iter()
            .map(|(m, qs)| {
                qs.iter()
                    .filter(|q| !before.get(m).is_some_and(|b| b.contains(q)))
                    .count()
            })
            .sum()
    }

    #[test]
    fn a_member_joining_takes_only_its_share_from_the_others() {
        let all = queues(12);
        let three = Sticky::plan(&members(3), &all, &Holdings::new());
        let four = Sticky::plan(&members(4), &all, &three);
        assert!(four.values().all(|qs| qs.len() == 3), "{four:?}");
        assert_eq!(moved(&three, &four), 3, "only the newcomer's 3 queues move");
    }

    #[test]
    fn a_member_leaving_only_its_queues_move() {
        let all = queues(12);
        let four = Sticky::plan(&members(4), &all, &Holdings::new());
        let three = Sticky::plan(&members(3), &all, &four);
        assert!(three.values().all(|qs| qs.len() == 4));
        assert_eq!(
            moved(&four, &three),
            3,
            "the leaver's 3 queues, nothing else"
        );
    }
}
