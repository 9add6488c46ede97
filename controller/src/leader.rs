//! What only the Raft leader does: hear brokers ([`Liveness`], started
//! afresh in each term) and propose elections when a master falls silent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio::sync::watch;

use crate::liveness::Liveness;
use crate::metrics::ControllerMetrics;
use crate::raft::network::Raft;
use crate::raft::state_machine::StateMachine;
use crate::state::{BrokerId, Command, Outcome};

/// The leader's view, valid for one term.
#[derive(Debug)]
pub struct LeaderView {
    timeout: Duration,
    term: u64,
    liveness: Liveness,
    /// When each group last got a new master, this term.
    elected_at: HashMap<String, Instant>,
    /// Operators' switch-overs under way, by group.
    handovers: HashMap<String, Handover>,
}

/// A graceful switch-over under way (see `handover.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    pub master: BrokerId,
    pub target: BrokerId,
    /// Where the master sealed its log, once it said so.
    pub sealed_at: Option<u64>,
}

impl LeaderView {
    pub fn new(timeout: Duration) -> Self {
        LeaderView {
            timeout,
            term: 0,
            liveness: Liveness::new(timeout, Instant::now()),
            elected_at: HashMap::new(),
            handovers: HashMap::new(),
        }
    }

    /// The view of `term`: a new term starts with nobody heard.
    pub fn of_term(&mut self, term: u64, now: Instant) -> &mut Self {
        if term != self.term {
            self.term = term;
            self.liveness = Liveness::new(self.timeout, now);
            self.elected_at.clear();
            self.handovers.clear();
        }
        self
    }

    pub fn liveness(&mut self) -> &mut Liveness {
        &mut self.liveness
    }

    pub fn handover(&self, group: &str) -> Option<Handover> {
        self.handovers.get(group).copied()
    }

    /// The switch-over of `group` marked in `term`, if this view is still
    /// that term's (looking never starts a new term's view).
    pub fn handover_in(&self, term: u64, group: &str) -> Option<Handover> {
        (self.term == term).then(|| self.handover(group)).flatten()
    }

    /// Removes the mark of `term`'s switch-over of `group`.
    pub fn end_handover(&mut self, term: u64, group: &str) {
        if self.term == term {
            self.handovers.remove(group);
        }
    }

    pub fn handovers(&mut self) -> &mut HashMap<String, Handover> {
        &mut self.handovers
    }

    pub fn since_election(&self, group: &str, now: Instant) -> Option<Duration> {
        self.elected_at
            .get(group)
            .map(|at| now.saturating_duration_since(*at))
    }
}

/// What the controller's tasks share.
#[derive(Clone)]
pub struct Shared {
    pub id: u64,
    pub raft: Raft,
    pub machine: StateMachine,
    pub view: Arc<Mutex<LeaderView>>,
    pub allow_unclean: bool,
    pub metrics: ControllerMetrics,
}

impl Shared {
    /// The current term if this controller leads.
    pub fn leading_term(&self) -> Option<u64> {
        // Read in place: every heartbeat asks.
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        (metrics.state == ServerState::Leader).then_some(metrics.current_term)
    }

    pub fn lock_view(&self) -> std::sync::MutexGuard<'_, LeaderView> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a heartbeat, when leading: `sealed` says the broker's log
    /// is sealed for a switch-over and ends at `max_offset` for good.
    pub fn heard(&self, group: &str, id: BrokerId, max_offset: u64, sealed: bool) {
        if let Some(term) = self.leading_term() {
            let now = Instant::now();
            let mut view = self.lock_view();
            let view = view.of_term(term, now);
            view.liveness().heard(group, id, max_offset, now);
            if let Some(handover) = view.handovers.get_mut(group)
                && sealed
                && handover.master == id
            {
                handover.sealed_at = Some(max_offset);
            }
        }
    }

    /// The members of `group` heard from, with the end of each one's log
    /// (nobody when not leading).
    pub fn alive(&self, group: &str) -> std::collections::BTreeMap<BrokerId, u64> {
        let Some(term) = self.leading_term() else {
            return std::collections::BTreeMap::new();
        };
        let now = Instant::now();
        self.lock_view()
            .of_term(term, now)
            .liveness()
            .alive(group, now)
    }

    /// The member a switch-over of `group` hands over to, or 0.
    pub fn handover_to(&self, group: &str) -> u64 {
        let Some(term) = self.leading_term() else {
            return 0;
        };
        self.lock_view()
            .of_term(term, Instant::now())
            .handover(group)
            .map_or(0, |h| h.target)
    }

    /// Logs and counts what an election did.
    pub fn elected(&self, group: &str, before_epoch: u64, outcome: &Outcome) {
        match outcome {
            Outcome::Elected {
                master,
                epoch,
                unclean,
            } if *epoch > before_epoch => {
                self.metrics.elections.inc();
                let now = Instant::now();
                let mut view = self.lock_view();
                view.elected_at.insert(group.to_owned(), now);
                view.liveness.elected(group, *master, now);
                drop(view);
                if *unclean {
                    tracing::error!(
                        group,
                        master,
                        epoch,
                        "UNCLEAN election: acknowledged messages the new master lacks are lost"
                    );
                } else {
                    tracing::warn!(group, master, epoch, "elected a new master");
                }
            }
            Outcome::NoCandidate => {
                tracing::error!(
                    group,
                    "no member of the SyncStateSet is alive: the group takes no writes until one returns (or unclean election is allowed)"
                );
            }
            Outcome::Refused(why) => tracing::warn!(group, %why, "election refused"),
            _ => {}
        }
    }
}

/// Every `interval`, while leading: proposes the elections the heartbeats
/// call for, until `stop`.
pub async fn run_elections(shared: Shared, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(term) = shared.leading_term() else {
            continue;
        };
        let state = shared.machine.state();
        let proposals = {
            let now = Instant::now();
            let mut view = shared.lock_view();
            view.of_term(term, now)
                .liveness()
                .elections(&state, now, shared.allow_unclean)
        };
        for command in proposals {
            let Command::ElectMaster { group, .. } = &command else {
                continue;
            };
            let group = group.clone();
            let before = state.groups.get(&group).map_or(0, |g| g.epoch);
            match shared.raft.client_write(command).await {
                Ok(written) => {
                    if let Some(outcome) = &written.data {
                        shared.elected(&group, before, outcome);
                    }
                }
                Err(err) => tracing::warn!(group, error = %err, "cannot commit an election"),
            }
        }
    }
}
