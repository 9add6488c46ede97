//! The controller leader's view of which brokers live. Brokers heartbeat
//! the leader; a broker not heard from for `timeout` is dead. This view is
//! not replicated (it would put a log entry per heartbeat): a new leader
//! starts with nobody heard and judges nobody for one whole `timeout`, so
//! that a change of leader never looks like every master dying at once.
//!
//! From it the leader decides which elections to propose: a group whose
//! master is silent, or a group left without a master (no candidate last
//! time) once any member is heard again. The state machine then picks the
//! master by its rules; this only says when to ask.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::state::{BrokerId, Command, ControllerState};

#[derive(Debug)]
pub struct Liveness {
    timeout: Duration,
    /// When this controller became leader.
    since: Instant,
    /// When each member was last heard, and the end of its log then.
    heard: HashMap<(String, BrokerId), (Instant, u64)>,
}

impl Liveness {
    pub fn new(timeout: Duration, now: Instant) -> Self {
        Liveness {
            timeout,
            since: now,
            heard: HashMap::new(),
        }
    }

    /// Broker `id` of `group`, whose log ends at `max_offset`, was heard
    /// from at `now`.
    pub fn heard(&mut self, group: &str, id: BrokerId, max_offset: u64, now: Instant) {
        self.heard.insert((group.to_owned(), id), (now, max_offset));
    }

    /// Broker `id` of `group` was just elected master: it restarts into
    /// its new role (its store closes and opens again), which may take
    /// a while on a loaded machine, so it is judged alive for one more
    /// timeout than its last heartbeat gives it.
    pub fn elected(&mut self, group: &str, id: BrokerId, now: Instant) {
        let offset = self
            .heard
            .get(&(group.to_owned(), id))
            .map_or(0, |(_, offset)| *offset);
        self.heard
            .insert((group.to_owned(), id), (now + self.timeout, offset));
    }

    /// The members of `group` heard from within the timeout, with the end
    /// of each one's log.
    pub fn alive(&self, group: &str, now: Instant) -> BTreeMap<BrokerId, u64> {
        self.heard
            .iter()
            .filter(|((g, _), (at, _))| {
                g == group && now.saturating_duration_since(*at) < self.timeout
            })
            .map(|((_, id), (_, offset))| (*id, *offset))
            .collect()
    }

    /// The elections to propose now: for each group whose master is not
    /// alive, or that has no master while a member that may become master
    /// is (so that a group nobody can lead does not log an election per
    /// check).
    pub fn elections(
        &self,
        state: &ControllerState,
        now: Instant,
        allow_unclean: bool,
    ) -> Vec<Command> {
        if now.saturating_duration_since(self.since) < self.timeout {
            return Vec::new();
        }
        state
            .groups
            .iter()
            .filter_map(|(name, group)| {
                let alive = self.alive(name, now);
                let wanted = match group.master {
                    Some(master) => !alive.contains_key(&master),
                    // Masterless: worth asking once someone could win.
                    None => alive.keys().any(|id| {
                        group.sync_state_set.contains(id)
                            || (allow_unclean && group.members.contains_key(id))
                    }),
                };
                wanted.then(|| Command::ElectMaster {
                    group: name.clone(),
                    alive,
                    preferred: None,
                    allow_unclean,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(3);

    fn state_with_master(master: BrokerId, members: &[BrokerId]) -> ControllerState {
        let mut state = ControllerState::default();
        for &id in std::iter::once(&master).chain(members) {
            state.apply(Command::Register {
                group: "g".into(),
                id,
                addr: format!("a{id}"),
                max_offset: 0,
                last_log_epoch: 0,
            });
        }
        state
    }

    #[test]
    fn a_new_leader_judges_nobody_for_one_timeout() {
        let start = Instant::now();
        let liveness = Liveness::new(TIMEOUT, start);
        let state = state_with_master(0, &[1]);
        assert!(
            liveness
                .elections(&state, start + TIMEOUT / 2, false)
                .is_empty()
        );
        // A whole timeout without hearing the master: it is silent.
        let proposed = liveness.elections(&state, start + TIMEOUT, false);
        assert_eq!(proposed.len(), 1);
    }

    #[test]
    fn a_silent_master_gets_an_election_with_the_members_heard_from() {
        let start = Instant::now();
        let mut liveness = Liveness::new(TIMEOUT, start);
        let state = state_with_master(0, &[1, 2]);
        let later = start + TIMEOUT * 2;
        liveness.heard("g", 0, 10, later - Duration::from_secs(1));
        liveness.heard("g", 1, 10, later - Duration::from_secs(1));
        liveness.heard("g", 2, 10, later - TIMEOUT - Duration::from_secs(1));
        assert!(
            liveness.elections(&state, later, false).is_empty(),
            "the master is alive"
        );

        let silent = later + TIMEOUT;
        liveness.heard("g", 1, 20, silent - Duration::from_millis(10));
        assert_eq!(
            liveness.elections(&state, silent, true),
            [Command::ElectMaster {
                group: "g".into(),
                alive: BTreeMap::from([(1, 20)]),
                preferred: None,
                allow_unclean: true,
            }]
        );
    }

    #[test]
    fn a_new_master_has_one_more_timeout_to_restart_into_its_role() {
        let start = Instant::now();
        let mut liveness = Liveness::new(TIMEOUT, start);
        let mut state = state_with_master(0, &[1]);
        state.apply(Command::AlterSyncStateSet {
            group: "g".into(),
            master: 0,
            master_epoch: 1,
            sync_state_epoch: 1,
            new_set: [0, 1].into(),
        });
        let now = start + TIMEOUT;
        liveness.heard("g", 1, 0, now);
        for command in liveness.elections(&state, now, false) {
            state.apply(command);
        }
        assert_eq!(state.groups["g"].master, Some(1));
        liveness.elected("g", 1, now);
        // Silent while it restarts: still alive one timeout later...
        let restarting = now + TIMEOUT + TIMEOUT / 2;
        assert!(liveness.alive("g", restarting).contains_key(&1));
        assert!(liveness.elections(&state, restarting, false).is_empty());
        // ...but not forever.
        let gone = now + TIMEOUT * 2;
        assert_eq!(liveness.elections(&state, gone, false).len(), 1);
    }

    #[test]
    fn a_group_left_without_a_master_is_retried_once_a_member_is_heard() {
        let start = Instant::now();
        let mut liveness = Liveness::new(TIMEOUT, start);
        let mut state = state_with_master(0, &[1]);
        let now = start + TIMEOUT;
        // Only the out-of-sync replica is alive: no candidate.
        liveness.heard("g", 1, 0, now);
        for command in liveness.elections(&state, now, false) {
            state.apply(command);
        }
        assert_eq!(state.groups["g"].master, None);
        assert!(
            liveness
                .elections(&state, now + Duration::from_millis(500), false)
                .is_empty(),
            "nobody alive may win: no new election"
        );
        // The old master returns: the next election makes it master again.
        liveness.heard("g", 0, 0, now + Duration::from_secs(1));
        let proposed = liveness.elections(&state, now + Duration::from_secs(1), false);
        assert_eq!(proposed.len(), 1);
        for command in proposed {
            state.apply(command);
        }
        assert_eq!(state.groups["g"].master, Some(0));
    }
}
