//! The controller's state machine. Commands arrive in the Raft log's order
//! and are applied by every controller alike, so everything a command's
//! outcome depends on is in the command (the members the leader saw alive,
//! whether unclean election is allowed), never read from a clock or a
//! socket here.
//!
//! The rules that make failover safe:
//! - an epoch never decreases, and every new master gets a new epoch;
//! - a master is elected from the SyncStateSet only (members known to hold
//!   every acknowledged message), unless the operator allowed an unclean
//!   election and no member of the set is alive; among the candidates the
//!   one with the longest CommitLog wins (the least unacknowledged data is
//!   cut from the others), then the lowest id;
//! - after an election the SyncStateSet is the new master alone: the others
//!   may hold a tail the new master lacks, and rejoin it by catching up;
//! - only the current master, in its current epoch, may change the
//!   SyncStateSet, and only from the set it last saw (its set epoch), so a
//!   stale shrink or expansion racing another one fails (apache/rocketmq#5663);
//! - the master is always in its SyncStateSet.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A broker's id in its group: 0 was the first master, but after a
/// failover any member may be the master.
pub type BrokerId = u64;

/// One broker group as the controller knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Every member that registered: id -> address.
    pub members: BTreeMap<BrokerId, String>,
    pub master: Option<BrokerId>,
    /// Grows with every election.
    pub epoch: u64,
    /// Where the master's epoch begins in the CommitLog (its log's end
    /// when elected, as last heard).
    pub epoch_start_offset: u64,
    /// Members holding every acknowledged message; the master among them.
    pub sync_state_set: BTreeSet<BrokerId>,
    /// Grows with every change of the SyncStateSet.
    pub sync_state_epoch: u64,
}

/// Every broker group, by broker name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerState {
    pub groups: BTreeMap<String, Group>,
}

/// What the controller is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A broker joins its group (again, after a restart: idempotent). The
    /// first member of a group without a master becomes its master.
    Register {
        group: String,
        id: BrokerId,
        addr: String,
        /// The end of its CommitLog.
        max_offset: u64,
        /// The highest epoch its CommitLog holds: a new group's first
        /// epoch is above it.
        last_log_epoch: u64,
    },
    /// The master changes its SyncStateSet (a replica fell behind or
    /// caught up).
    AlterSyncStateSet {
        group: String,
        master: BrokerId,
        master_epoch: u64,
        /// The set epoch the master last saw.
        sync_state_epoch: u64,
        new_set: BTreeSet<BrokerId>,
    },
    /// Elects a master: after the master fell silent (the leader's
    /// heartbeat table says who is `alive`), or an operator's switch-over
    /// to `preferred`.
    ElectMaster {
        group: String,
        /// The members heard from, with the end of each one's CommitLog.
        alive: BTreeMap<BrokerId, u64>,
        preferred: Option<BrokerId>,
        allow_unclean: bool,
    },
}

/// What applying a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Registered {
        master: Option<BrokerId>,
        epoch: u64,
    },
    SyncStateSetChanged {
        sync_state_epoch: u64,
    },
    Elected {
        master: BrokerId,
        epoch: u64,
        /// From outside the SyncStateSet (acknowledged messages may be lost).
        unclean: bool,
    },
    /// No member may become master: the group takes no writes until one
    /// of the SyncStateSet returns (or an unclean election is allowed).
    NoCandidate,
    Refused(Refusal),
}

/// Why a command was refused; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    #[error("no broker group {0:?}")]
    UnknownGroup(String),
    #[error("broker {id} is not a member of group {group:?}")]
    NotAMember { group: String, id: BrokerId },
    #[error("broker {id} of {group:?} is not its master (the master is {master:?})")]
    NotTheMaster {
        group: String,
        id: BrokerId,
        master: Option<BrokerId>,
    },
    #[error("epoch {given} of {group:?} is stale: the current epoch is {current}")]
    StaleEpoch {
        group: String,
        given: u64,
        current: u64,
    },
    #[error("SyncStateSet epoch {given} of {group:?} is stale: the current one is {current}")]
    StaleSyncStateSet {
        group: String,
        given: u64,
        current: u64,
    },
    #[error("the SyncStateSet of {group:?} must hold its master and members only")]
    BadSyncStateSet { group: String },
    #[error("broker {id} of {group:?} may not become master: {why}")]
    NotElectable {
        group: String,
        id: BrokerId,
        why: String,
    },
}

impl ControllerState {
    /// Applies one command.
    pub fn apply(&mut self, command: Command) -> Outcome {
        match command {
            Command::Register {
                group,
                id,
                addr,
                max_offset,
                last_log_epoch,
            } => self.register(group, id, addr, max_offset, last_log_epoch),
            Command::AlterSyncStateSet {
                group,
                master,
                master_epoch,
                sync_state_epoch,
                new_set,
            } => self.alter(&group, master, master_epoch, sync_state_epoch, new_set),
            Command::ElectMaster {
                group,
                alive,
                preferred,
                allow_unclean,
            } => self.elect(&group, &alive, preferred, allow_unclean),
        }
    }

    fn register(
        &mut self,
        name: String,
        id: BrokerId,
        addr: String,
        max_offset: u64,
        last_log_epoch: u64,
    ) -> Outcome {
        let group = self.groups.entry(name).or_default();
        group.members.insert(id, addr);
        if group.master.is_none() && group.epoch == 0 {
            // A new group: its first member is the master, in an epoch
            // above any its log holds.
            group.master = Some(id);
            group.epoch = last_log_epoch.saturating_add(1);
            group.epoch_start_offset = max_offset;
            group.sync_state_set = BTreeSet::from([id]);
            group.sync_state_epoch += 1;
        }
        Outcome::Registered {
            master: group.master,
            epoch: group.epoch,
        }
    }

    fn alter(
        &mut self,
        name: &str,
        master: BrokerId,
        master_epoch: u64,
        sync_state_epoch: u64,
        new_set: BTreeSet<BrokerId>,
    ) -> Outcome {
        let Some(group) = self.groups.get_mut(name) else {
            return Outcome::Refused(Refusal::UnknownGroup(name.to_owned()));
        };
        let refuse = |r| Outcome::Refused(r);
        if group.master != Some(master) {
            return refuse(Refusal::NotTheMaster {
                group: name.to_owned(),
                id: master,
                master: group.master,
            });
        }
        if master_epoch != group.epoch {
            return refuse(Refusal::StaleEpoch {
                group: name.to_owned(),
                given: master_epoch,
                current: group.epoch,
            });
        }
        if sync_state_epoch != group.sync_state_epoch {
            return refuse(Refusal::StaleSyncStateSet {
                group: name.to_owned(),
                given: sync_state_epoch,
                current: group.sync_state_epoch,
            });
        }
        if !new_set.contains(&master) || !new_set.iter().all(|id| group.members.contains_key(id)) {
            return refuse(Refusal::BadSyncStateSet {
                group: name.to_owned(),
            });
        }
        group.sync_state_set = new_set;
        group.sync_state_epoch += 1;
        Outcome::SyncStateSetChanged {
            sync_state_epoch: group.sync_state_epoch,
        }
    }

    fn elect(
        &mut self,
        name: &str,
        alive: &BTreeMap<BrokerId, u64>,
        preferred: Option<BrokerId>,
        allow_unclean: bool,
    ) -> Outcome {
        let Some(group) = self.groups.get_mut(name) else {
            return Outcome::Refused(Refusal::UnknownGroup(name.to_owned()));
        };
        let alive_member = |id: &BrokerId| alive.contains_key(id) && group.members.contains_key(id);
        // The longest log first, then the lowest id.
        let best = |ids: &mut dyn Iterator<Item = BrokerId>| {
            ids.filter(|id| alive_member(id))
                .max_by_key(|id| (alive[id], std::cmp::Reverse(*id)))
        };
        let chosen = match preferred {
            Some(id) if !alive_member(&id) => {
                return Outcome::Refused(Refusal::NotElectable {
                    group: name.to_owned(),
                    id,
                    why: "not an alive member".into(),
                });
            }
            Some(id) if !group.sync_state_set.contains(&id) => {
                return Outcome::Refused(Refusal::NotElectable {
                    group: name.to_owned(),
                    id,
                    why: "not in the SyncStateSet".into(),
                });
            }
            Some(id) => Some((id, false)),
            None => {
                // The master stays if it is alive; else the best of the
                // alive SyncStateSet, else (unclean, if allowed) the best
                // alive member.
                if let Some(master) = group.master.filter(|m| alive_member(m)) {
                    return Outcome::Elected {
                        master,
                        epoch: group.epoch,
                        unclean: false,
                    };
                }
                best(&mut group.sync_state_set.iter().copied())
                    .map(|id| (id, false))
                    .or_else(|| {
                        allow_unclean
                            .then(|| best(&mut group.members.keys().copied()))
                            .flatten()
                            .map(|id| (id, true))
                    })
            }
        };
        let Some((master, unclean)) = chosen else {
            group.master = None;
            return Outcome::NoCandidate;
        };
        if group.master == Some(master) {
            return Outcome::Elected {
                master,
                epoch: group.epoch,
                unclean: false,
            };
        }
        group.master = Some(master);
        group.epoch += 1;
        group.epoch_start_offset = alive.get(&master).copied().unwrap_or_default();
        group.sync_state_set = BTreeSet::from([master]);
        group.sync_state_epoch += 1;
        Outcome::Elected {
            master,
            epoch: group.epoch,
            unclean,
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
