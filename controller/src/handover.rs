//! An operator's graceful switch-over (`mqadmin broker elect-master`):
//! drain, then switch. The leader marks the group as handing over to the
//! member; the master learns it from its next heartbeat's answer
//! (`handover_to`), seals its log (sends are refused as UNAVAILABLE, so
//! producers retry elsewhere) and reports where the log ends for good; once
//! the member's heartbeats show it holds that much, the leader elects it.
//! Nothing acknowledged is cut, even with async replication, and no send is
//! in flight when the old master restarts as a replica.
//!
//! The mark lives in the leader's memory for one term: if the leadership
//! moves or the member does not catch up in time, the switch-over is
//! called off and the master, seeing no mark, takes sends again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mq_proto::controller::v1 as pb;
use tonic::Status;

use crate::leader::Handover;
use crate::service::ControllerService;
use crate::state::{BrokerId, Command, ControllerState, Outcome};

/// How long the member may take to catch up when the operator does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the leader looks at the switch-over's progress.
const CHECK_EVERY: Duration = Duration::from_millis(20);

impl ControllerService {
    /// Seals `group`'s master, waits (up to `timeout`) until `target`
    /// holds its whole log, then elects `target`.
    pub(crate) async fn switch_over(
        &self,
        group: &str,
        target: BrokerId,
        timeout: Duration,
    ) -> Result<pb::ElectMasterResponse, Status> {
        let term = self
            .shared
            .leading_term()
            .ok_or_else(|| Status::unavailable("this controller is not the leader"))?;
        let state = self.shared.machine.state();
        let current = state
            .groups
            .get(group)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no broker group {group:?}")))?;
        let alive = self.shared.alive(group);
        // Refused now what the election would refuse, before any drain.
        let mut trial = ControllerState {
            groups: BTreeMap::from([(group.to_owned(), current.clone())]),
        };
        if let Outcome::Refused(why) = trial.apply(Command::ElectMaster {
            group: group.to_owned(),
            alive: alive.clone(),
            preferred: Some(target),
            allow_unclean: false,
        }) {
            return Err(Status::failed_precondition(why.to_string()));
        }
        // Nothing to drain: already master, or the master is silent (its
        // sends fail anyway; this is a failover).
        let Some(master) = current
            .master
            .filter(|m| *m != target && alive.contains_key(m))
        else {
            let view = self.elect_now(group, target).await?;
            return Ok(answer(view, None));
        };
        let _marked = self.begin(term, group, master, target)?;
        tracing::info!(
            group,
            master,
            target,
            "switch-over: asking the master to seal its log"
        );
        let outcome = self
            .await_caught_up(term, group, current.epoch, target, timeout)
            .await;
        match &outcome {
            Ok(done) => {
                tracing::info!(group, target, sealed_at = ?done.sealed_at, "switch-over done")
            }
            Err(status) => tracing::warn!(group, target, "{}", status.message()),
        }
        outcome
    }

    /// Marks the switch-over; the mark goes when the returned guard drops
    /// (also when the operator's call is dropped half way: a mark left
    /// behind would keep the master sealed).
    fn begin(
        &self,
        term: u64,
        group: &str,
        master: BrokerId,
        target: BrokerId,
    ) -> Result<Marked<'_>, Status> {
        let mut view = self.shared.lock_view();
        let handovers = view.of_term(term, Instant::now()).handovers();
        if let Some(under_way) = handovers.get(group) {
            return Err(Status::failed_precondition(format!(
                "a switch-over of {group} to broker {} is already under way",
                under_way.target
            )));
        }
        handovers.insert(
            group.to_owned(),
            Handover {
                master,
                target,
                sealed_at: None,
            },
        );
        Ok(Marked {
            shared: &self.shared,
            term,
            group: group.to_owned(),
        })
    }

    async fn await_caught_up(
        &self,
        term: u64,
        group: &str,
        epoch: u64,
        target: BrokerId,
        timeout: Duration,
    ) -> Result<pb::ElectMasterResponse, Status> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.leading_term() != Some(term) {
                return Err(Status::unavailable(format!(
                    "the switch-over of {group} was called off: this controller lost the leadership; try again"
                )));
            }
            let view = self.view_of(group)?;
            if view.epoch != epoch {
                // An election (the master died) overtook the switch-over.
                return if view.master_id == target {
                    Ok(answer(view, None))
                } else {
                    Err(Status::aborted(format!(
                        "the switch-over of {group} was called off: broker {} was elected in epoch {} meanwhile",
                        view.master_id, view.epoch
                    )))
                };
            }
            let sealed_at = self
                .shared
                .lock_view()
                .handover_in(term, group)
                .and_then(|h| h.sealed_at);
            let reached = self.shared.alive(group).get(&target).copied();
            if let (Some(end), Some(reached)) = (sealed_at, reached)
                && reached >= end
            {
                let view = self.elect_now(group, target).await?;
                return Ok(answer(view, Some(end)));
            }
            if Instant::now() >= deadline {
                let progress = match (sealed_at, reached) {
                    (None, _) => {
                        "the master did not report a sealed log (is it reachable?)".to_owned()
                    }
                    (Some(end), Some(reached)) => format!(
                        "the master sealed its log at offset {end}, broker {target} reached {reached}"
                    ),
                    (Some(end), None) => format!(
                        "the master sealed its log at offset {end}, broker {target} is not heard from"
                    ),
                };
                return Err(Status::aborted(format!(
                    "the switch-over of {group} to broker {target} was called off after {timeout:?}: {progress}; the master takes sends again"
                )));
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }
}

/// A switch-over's mark in the leader's view, removed on drop.
struct Marked<'a> {
    shared: &'a crate::leader::Shared,
    term: u64,
    group: String,
}

impl Drop for Marked<'_> {
    fn drop(&mut self) {
        self.shared.lock_view().end_handover(self.term, &self.group);
    }
}

fn answer(view: pb::GroupView, sealed_at: Option<u64>) -> pb::ElectMasterResponse {
    pb::ElectMasterResponse {
        group: Some(view),
        sealed_at,
    }
}
