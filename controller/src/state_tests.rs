use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn register(state: &mut ControllerState, id: BrokerId) -> Outcome {
    state.apply(Command::Register {
        group: "g".into(),
        id,
        addr: format!("10.0.0.{id}:10911"),
        max_offset: 0,
        last_log_epoch: 0,
    })
}

/// Every member in `alive` with a log of the same length.
fn heard(alive: &[BrokerId]) -> BTreeMap<BrokerId, u64> {
    alive.iter().map(|&id| (id, 100)).collect()
}

fn elect(state: &mut ControllerState, alive: &[BrokerId], unclean: bool) -> Outcome {
    state.apply(Command::ElectMaster {
        group: "g".into(),
        alive: heard(alive),
        preferred: None,
        allow_unclean: unclean,
    })
}

fn alter(state: &mut ControllerState, master: BrokerId, set: &[BrokerId]) -> Outcome {
    let group = &state.groups["g"];
    let (epoch, set_epoch) = (group.epoch, group.sync_state_epoch);
    state.apply(Command::AlterSyncStateSet {
        group: "g".into(),
        master,
        master_epoch: epoch,
        sync_state_epoch: set_epoch,
        new_set: set.iter().copied().collect(),
    })
}

#[test]
fn the_first_member_is_master_and_a_dead_master_gives_way_to_an_in_sync_replica() {
    let mut state = ControllerState::default();
    assert_eq!(
        register(&mut state, 0),
        Outcome::Registered {
            master: Some(0),
            epoch: 1
        }
    );
    register(&mut state, 1);
    register(&mut state, 2);
    assert_eq!(
        alter(&mut state, 0, &[0, 1]),
        Outcome::SyncStateSetChanged {
            sync_state_epoch: 2
        }
    );
    // The master is alive: it stays.
    assert_eq!(
        elect(&mut state, &[0, 1, 2], false),
        Outcome::Elected {
            master: 0,
            epoch: 1,
            unclean: false
        }
    );
    // It dies: 1 is in sync, 2 is not.
    assert_eq!(
        elect(&mut state, &[1, 2], false),
        Outcome::Elected {
            master: 1,
            epoch: 2,
            unclean: false
        }
    );
    let group = &state.groups["g"];
    assert_eq!(group.sync_state_set, BTreeSet::from([1]));
    // The old master returns as a member; it must catch up to rejoin.
    assert_eq!(
        register(&mut state, 0),
        Outcome::Registered {
            master: Some(1),
            epoch: 2
        }
    );
}

#[test]
fn a_replica_holding_unreplicated_data_is_never_promoted_unless_allowed() {
    // apache/rocketmq#3015: the only survivor is out of sync.
    let mut state = ControllerState::default();
    register(&mut state, 0);
    register(&mut state, 1);
    assert_eq!(elect(&mut state, &[1], false), Outcome::NoCandidate);
    assert_eq!(state.groups["g"].master, None);
    assert_eq!(state.groups["g"].epoch, 1, "no new epoch without a master");
    // The operator allows an unclean election: it is said so.
    assert_eq!(
        elect(&mut state, &[1], true),
        Outcome::Elected {
            master: 1,
            epoch: 2,
            unclean: true
        }
    );
}

#[test]
fn the_master_returning_after_no_candidate_is_elected_again() {
    let mut state = ControllerState::default();
    register(&mut state, 0);
    register(&mut state, 1);
    assert_eq!(elect(&mut state, &[1], false), Outcome::NoCandidate);
    assert_eq!(
        elect(&mut state, &[0, 1], false),
        Outcome::Elected {
            master: 0,
            epoch: 2,
            unclean: false
        }
    );
}

#[test]
fn stale_or_foreign_changes_of_the_sync_state_set_are_refused() {
    let mut state = ControllerState::default();
    register(&mut state, 0);
    register(&mut state, 1);
    register(&mut state, 2);
    // Two changes computed from the same set: the second is stale (#5663).
    let seen = state.groups["g"].sync_state_epoch;
    let change = |set: &[BrokerId]| Command::AlterSyncStateSet {
        group: "g".into(),
        master: 0,
        master_epoch: 1,
        sync_state_epoch: seen,
        new_set: set.iter().copied().collect(),
    };
    assert!(matches!(
        state.apply(change(&[0, 1, 2])),
        Outcome::SyncStateSetChanged { .. }
    ));
    assert!(matches!(
        state.apply(change(&[0])),
        Outcome::Refused(Refusal::StaleSyncStateSet { .. })
    ));
    assert_eq!(state.groups["g"].sync_state_set, BTreeSet::from([0, 1, 2]));
    // Not the master; without the master; with a stranger.
    assert!(matches!(
        alter(&mut state, 1, &[0, 1]),
        Outcome::Refused(Refusal::NotTheMaster { .. })
    ));
    assert!(matches!(
        alter(&mut state, 0, &[1]),
        Outcome::Refused(Refusal::BadSyncStateSet { .. })
    ));
    assert!(matches!(
        alter(&mut state, 0, &[0, 9]),
        Outcome::Refused(Refusal::BadSyncStateSet { .. })
    ));
    // A deposed master's change, from its old epoch.
    elect(&mut state, &[1, 2], false);
    let refused = state.apply(Command::AlterSyncStateSet {
        group: "g".into(),
        master: 0,
        master_epoch: 1,
        sync_state_epoch: state.groups["g"].sync_state_epoch,
        new_set: BTreeSet::from([0]),
    });
    assert!(
        matches!(refused, Outcome::Refused(Refusal::NotTheMaster { .. })),
        "{refused:?}"
    );
}

#[test]
fn the_in_sync_member_with_the_longest_log_wins_and_its_end_starts_the_epoch() {
    let mut state = ControllerState::default();
    for id in [1, 2, 3, 4] {
        register(&mut state, id);
    }
    alter(&mut state, 1, &[1, 2, 3]);
    // 4 has the longest log but is not in sync; 2 and 3 tie on length.
    let outcome = state.apply(Command::ElectMaster {
        group: "g".into(),
        alive: BTreeMap::from([(2, 700), (3, 700), (4, 900)]),
        preferred: None,
        allow_unclean: false,
    });
    assert_eq!(
        outcome,
        Outcome::Elected {
            master: 2,
            epoch: 2,
            unclean: false
        }
    );
    assert_eq!(state.groups["g"].epoch_start_offset, 700);
    register(&mut state, 1);
    alter(&mut state, 2, &[1, 2]);
    let outcome = state.apply(Command::ElectMaster {
        group: "g".into(),
        alive: BTreeMap::from([(1, 800), (3, 900)]),
        preferred: None,
        allow_unclean: false,
    });
    assert_eq!(
        outcome,
        Outcome::Elected {
            master: 1,
            epoch: 3,
            unclean: false
        },
        "3 left the set at the last election"
    );
}

#[test]
fn a_new_group_begins_above_every_epoch_its_first_members_log_holds() {
    let mut state = ControllerState::default();
    let outcome = state.apply(Command::Register {
        group: "g".into(),
        id: 1,
        addr: "a1".into(),
        max_offset: 4096,
        last_log_epoch: 1_700_000_000_000,
    });
    assert_eq!(
        outcome,
        Outcome::Registered {
            master: Some(1),
            epoch: 1_700_000_000_001
        }
    );
    assert_eq!(state.groups["g"].epoch_start_offset, 4096);
}

#[test]
fn a_switch_over_goes_to_an_alive_in_sync_member_only() {
    let mut state = ControllerState::default();
    register(&mut state, 0);
    register(&mut state, 1);
    register(&mut state, 2);
    alter(&mut state, 0, &[0, 1]);
    let switch = |state: &mut ControllerState, id| {
        state.apply(Command::ElectMaster {
            group: "g".into(),
            alive: heard(&[0, 1, 2]),
            preferred: Some(id),
            allow_unclean: false,
        })
    };
    assert!(matches!(
        switch(&mut state, 2),
        Outcome::Refused(Refusal::NotElectable { .. })
    ));
    assert_eq!(
        switch(&mut state, 1),
        Outcome::Elected {
            master: 1,
            epoch: 2,
            unclean: false
        }
    );
}

/// One step of a random history over group "g" with members 0..4.
#[derive(Debug, Clone)]
enum Step {
    Register(BrokerId),
    /// Alter by `master` (or the current master when None), with the
    /// current epochs or stale ones.
    Alter {
        master: Option<BrokerId>,
        stale_epoch: bool,
        stale_set: bool,
        set: BTreeSet<BrokerId>,
    },
    Elect {
        /// Alive members with the end of their logs.
        alive: BTreeMap<BrokerId, u64>,
        preferred: Option<BrokerId>,
        unclean: bool,
    },
}

fn ids() -> impl Strategy<Value = BTreeSet<BrokerId>> {
    proptest::collection::btree_set(0u64..4, 0..=4)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u64..4).prop_map(Step::Register),
        (
            proptest::option::of(0u64..4),
            any::<bool>(),
            any::<bool>(),
            ids()
        )
            .prop_map(|(master, stale_epoch, stale_set, set)| Step::Alter {
                master,
                stale_epoch,
                stale_set,
                set
            }),
        (
            proptest::collection::btree_map(0u64..4, 0u64..3, 0..=4),
            proptest::option::of(0u64..4),
            proptest::bool::weighted(0.2)
        )
            .prop_map(|(alive, preferred, unclean)| Step::Elect {
                alive,
                preferred,
                unclean
            }),
    ]
}

proptest! {
    #[test]
    fn no_history_elects_outside_the_sync_state_set_or_lowers_an_epoch(steps in proptest::collection::vec(step(), 1..60)) {
        let mut state = ControllerState::default();
        for step in steps {
            let before = state.groups.get("g").cloned().unwrap_or_default();
            let command = match &step {
                Step::Register(id) => Command::Register { group: "g".into(), id: *id, addr: format!("a{id}"), max_offset: 0, last_log_epoch: 0 },
                Step::Alter { master, stale_epoch, stale_set, set } => Command::AlterSyncStateSet {
                    group: "g".into(),
                    master: master.or(before.master).unwrap_or(0),
                    master_epoch: before.epoch.saturating_sub(u64::from(*stale_epoch)),
                    sync_state_epoch: before.sync_state_epoch.saturating_sub(u64::from(*stale_set)),
                    new_set: set.clone(),
                },
                Step::Elect { alive, preferred, unclean } => Command::ElectMaster {
                    group: "g".into(),
                    alive: alive.clone(),
                    preferred: *preferred,
                    allow_unclean: *unclean,
                },
            };
            let outcome = state.apply(command);
            let Some(after) = state.groups.get("g") else {
                prop_assert!(matches!(outcome, Outcome::Refused(Refusal::UnknownGroup(_))));
                continue;
            };
            prop_assert!(after.epoch >= before.epoch, "epoch went down: {before:?} -> {after:?}");
            prop_assert!(after.sync_state_epoch >= before.sync_state_epoch);
            prop_assert!(after.sync_state_set.iter().all(|id| after.members.contains_key(id)));
            if let Some(master) = after.master {
                prop_assert!(after.sync_state_set.contains(&master), "master outside its set: {after:?}");
                prop_assert!(after.members.contains_key(&master));
            }
            match (&outcome, &step) {
                (Outcome::Refused(_), _) => prop_assert_eq!(&before, after, "a refusal changed the state"),
                (Outcome::Elected { master, epoch, unclean }, Step::Elect { alive, unclean: allowed, preferred }) => {
                    prop_assert!(alive.contains_key(master), "elected a dead broker");
                    if *epoch > before.epoch {
                        prop_assert_eq!(*epoch, before.epoch + 1);
                        if *unclean {
                            prop_assert!(*allowed, "unclean without leave");
                            prop_assert!(!before.sync_state_set.iter().any(|id| alive.contains_key(id) && before.members.contains_key(id)),
                                "unclean while an in-sync member was alive");
                        } else {
                            prop_assert!(before.sync_state_set.contains(master),
                                "elected {master} outside {:?}", before.sync_state_set);
                            if preferred.is_none() {
                                // No alive candidate had a longer log.
                                let longest = before.sync_state_set.iter()
                                    .filter_map(|id| alive.get(id)).max();
                                prop_assert_eq!(alive.get(master), longest);
                            }
                        }
                        prop_assert_eq!(&after.sync_state_set, &BTreeSet::from([*master]));
                    } else {
                        prop_assert_eq!(before.master, Some(*master));
                    }
                }
                (Outcome::SyncStateSetChanged { .. }, Step::Alter { .. }) => {
                    prop_assert_eq!(after.master, before.master);
                    prop_assert_eq!(after.epoch, before.epoch);
                }
                _ => {}
            }
        }
    }
}
