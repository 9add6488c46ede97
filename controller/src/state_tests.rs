use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn register(state: &mut ControllerState, id: BrokerId) -> Outcome {
    state.apply(Command::Register {
        group: "g".into(),
        id,
        addr: format!("10.0.0.{id}:10911"),
    })
}

fn elect(state: &mut ControllerState, alive: &[BrokerId], unclean: bool) -> Outcome {
    state.apply(Command::ElectMaster {
        group: "g".into(),
        alive: alive.iter().copied().collect(),
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
fn a_switch_over_goes_to_an_alive_in_sync_member_only() {
    let mut state = ControllerState::default();
    register(&mut state, 0);
    register(&mut state, 1);
    register(&mut state, 2);
    alter(&mut state, 0, &[0, 1]);
    let switch = |state: &mut ControllerState, id| {
        state.apply(Command::ElectMaster {
            group: "g".into(),
            alive: BTreeSet::from([0, 1, 2]),
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
        alive: BTreeSet<BrokerId>,
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
            ids(),
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
                Step::Register(id) => Command::Register { group: "g".into(), id: *id, addr: format!("a{id}") },
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
                (Outcome::Elected { master, epoch, unclean }, Step::Elect { alive, unclean: allowed, .. }) => {
                    prop_assert!(alive.contains(master), "elected a dead broker");
                    if *epoch > before.epoch {
                        prop_assert_eq!(*epoch, before.epoch + 1);
                        if *unclean {
                            prop_assert!(*allowed, "unclean without leave");
                            prop_assert!(!before.sync_state_set.iter().any(|id| alive.contains(id)),
                                "unclean while an in-sync member was alive");
                        } else {
                            prop_assert!(before.sync_state_set.contains(master),
                                "elected {master} outside {:?}", before.sync_state_set);
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
