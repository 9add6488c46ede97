//! One producer queue's window: the numbers seen lately, in a ring indexed
//! by number (a producer numbers its sends to a queue consecutively, so
//! the ring is dense; out-of-order arrivals and numbers never stored are
//! holes). O(1) per number, where a tree of the 65,536 numbers a busy
//! queue holds would cost a cache-missing walk per claim, fill and
//! observation.

use std::collections::VecDeque;

use super::StoredAt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// Claimed by a send not finished yet.
    Pending,
    Stored(StoredAt),
}

/// What a window knows of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    Known(Slot),
    /// Never seen (or released): new.
    Unknown,
    /// Below what the window remembers: it may have been stored.
    Forgotten {
        lowest: u64,
    },
}

#[derive(Debug, Default)]
pub(super) struct Window {
    /// `slots[i]` is number `base + i`, with the store time (ms) it was
    /// claimed or stored; `None` is a hole.
    slots: VecDeque<Option<(Slot, u64)>>,
    base: u64,
    /// Stored numbers below this were dropped.
    forgotten_below: u64,
    /// The newest store time seen, ms.
    pub(super) last_ms: u64,
}

impl Window {
    /// One past the highest number held.
    fn end(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    pub(super) fn lookup(&self, seq: u64, entries: usize) -> Lookup {
        if seq < self.forgotten_below {
            return Lookup::Forgotten {
                lowest: self.forgotten_below,
            };
        }
        if self.slots.is_empty() {
            return Lookup::Unknown;
        }
        if seq < self.base {
            // A straggler the ring could not hold next to what it has.
            return match self.end() - seq > entries as u64 {
                true => Lookup::Forgotten {
                    lowest: self.end() - entries as u64,
                },
                false => Lookup::Unknown,
            };
        }
        match self.slots.get((seq - self.base) as usize) {
            Some(Some((slot, _))) => Lookup::Known(*slot),
            _ => Lookup::Unknown,
        }
    }

    /// Holds `slot` for `seq`, dropping the lowest numbers past `entries`.
    /// A number the window cannot hold (below what it forgot, or a
    /// straggler too far below the rest) is ignored.
    pub(super) fn set(&mut self, seq: u64, slot: Slot, time_ms: u64, entries: usize) {
        if seq < self.forgotten_below {
            return;
        }
        self.last_ms = self.last_ms.max(time_ms);
        let entry = Some((slot, time_ms));
        if self.slots.is_empty() {
            self.base = seq;
            self.slots.push_back(entry);
        } else if seq < self.base {
            if self.end() - seq > entries as u64 {
                return;
            }
            for _ in seq + 1..self.base {
                self.slots.push_front(None);
            }
            self.slots.push_front(entry);
            self.base = seq;
        } else if seq - self.base < self.slots.len() as u64 {
            self.slots[(seq - self.base) as usize] = entry;
        } else if seq - self.end() >= entries as u64 {
            // A jump past everything held: all of it would go.
            self.forget_through(self.end());
            self.base = seq;
            self.slots.push_back(entry);
        } else {
            for _ in self.end()..seq {
                self.slots.push_back(None);
            }
            self.slots.push_back(entry);
        }
        while self.slots.len() > entries {
            self.pop_front();
        }
    }

    /// Makes `seq` a hole again if it is claimed and not stored.
    pub(super) fn release(&mut self, seq: u64) {
        if seq >= self.base
            && let Some(held) = self.slots.get_mut((seq - self.base) as usize)
            && matches!(held, Some((Slot::Pending, _)))
        {
            *held = None;
        }
    }

    /// Drops stored numbers older than `horizon` (store time, ms) from
    /// the front, and the holes before them.
    pub(super) fn trim_older_than(&mut self, horizon: u64) {
        while let Some(front) = self.slots.front() {
            match front {
                None => self.pop_front(),
                Some((Slot::Stored(_), at)) if *at < horizon => self.pop_front(),
                _ => break,
            }
        }
    }

    pub(super) fn has_pending(&self) -> bool {
        self.slots
            .iter()
            .any(|s| matches!(s, Some((Slot::Pending, _))))
    }

    fn pop_front(&mut self) {
        if let Some(popped) = self.slots.pop_front() {
            if popped.is_some() {
                self.forgotten_below = self.forgotten_below.max(self.base + 1);
            }
            self.base += 1;
        }
    }

    /// Forgets every number below `end` and empties the ring.
    fn forget_through(&mut self, end: u64) {
        if self.slots.iter().any(Option::is_some) {
            self.forgotten_below = self.forgotten_below.max(end);
        }
        self.slots.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(n: u64) -> Slot {
        Slot::Stored(StoredAt {
            physical_offset: n,
            size: 1,
            queue_offset: n,
        })
    }

    #[test]
    fn holes_stay_unknown_and_stragglers_fill_them() {
        let mut window = Window::default();
        window.set(10, stored(10), 0, 8);
        window.set(13, stored(13), 0, 8);
        assert_eq!(window.lookup(11, 8), Lookup::Unknown);
        window.set(8, stored(8), 0, 8);
        assert_eq!(window.lookup(8, 8), Lookup::Known(stored(8)));
        assert_eq!(window.lookup(9, 8), Lookup::Unknown);
        assert_eq!(window.lookup(13, 8), Lookup::Known(stored(13)));
    }

    #[test]
    fn the_ring_never_holds_more_than_its_entries_however_numbers_jump() {
        let mut window = Window::default();
        window.set(0, stored(0), 0, 4);
        // Far ahead: what was held is forgotten, nothing is allocated for
        // the gap.
        window.set(u64::MAX / 2, stored(1), 0, 4);
        assert_eq!(window.slots.len(), 1);
        assert_eq!(window.lookup(0, 4), Lookup::Forgotten { lowest: 1 });
        // Far below: not held, and said so.
        window.set(5, stored(5), 0, 4);
        assert_eq!(window.slots.len(), 1);
        assert!(matches!(window.lookup(5, 4), Lookup::Forgotten { .. }));
        // Close ahead: fills up, then drops from the front.
        for n in 1..=6 {
            window.set(u64::MAX / 2 + n, stored(n), 0, 4);
        }
        assert_eq!(window.slots.len(), 4);
        assert!(matches!(
            window.lookup(u64::MAX / 2 + 2, 4),
            Lookup::Forgotten { .. }
        ));
        assert_eq!(window.lookup(u64::MAX / 2 + 3, 4), Lookup::Known(stored(3)));
    }

    #[test]
    fn a_released_claim_is_a_hole_and_old_entries_go_with_the_holes_before_them() {
        let mut window = Window::default();
        window.set(0, Slot::Pending, 0, 8);
        window.release(0);
        assert_eq!(window.lookup(0, 8), Lookup::Unknown);
        window.set(1, stored(1), 100, 8);
        window.set(2, stored(2), 500, 8);
        window.trim_older_than(200);
        assert_eq!(window.lookup(0, 8), Lookup::Forgotten { lowest: 2 });
        assert_eq!(window.lookup(2, 8), Lookup::Known(stored(2)));
        assert!(!window.has_pending());
    }
}
