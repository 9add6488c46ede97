//! `mq.controller.v1.Controller`: what brokers and operators call. Every
//! controller serves it; only the Raft leader answers (it hears the
//! heartbeats and commits the commands), the others answer `UNAVAILABLE`
//! naming the leader.

use mq_auth::guard::Guard;
use mq_auth::model::{Action, Target};
use std::collections::BTreeSet;
use std::time::Instant;

use mq_proto::controller::v1 as pb;
use openraft::error::{ClientWriteError, RaftError};
use tonic::{Request, Response, Status};

use crate::client::LEADER_HEADER;
use crate::leader::Shared;
use crate::raft::NodeId;
use crate::state::{Command, Group, Outcome};

#[derive(Clone)]
pub struct ControllerService {
    pub shared: Shared,
    /// Brokers of the cluster and its administrators only.
    pub guard: Guard,
}

/// The group as the wire shows it.
pub fn group_view(name: &str, group: &Group) -> pb::GroupView {
    pb::GroupView {
        group: name.to_owned(),
        master_id: group.master.unwrap_or(0),
        master_addr: group
            .master
            .and_then(|m| group.members.get(&m).cloned())
            .unwrap_or_default(),
        epoch: group.epoch,
        epoch_start_offset: group.epoch_start_offset,
        sync_state_set: group.sync_state_set.iter().copied().collect(),
        sync_state_epoch: group.sync_state_epoch,
        members: group
            .members
            .iter()
            .map(|(id, addr)| (*id, addr.clone()))
            .collect(),
        handover_to: 0,
    }
}

impl ControllerService {
    /// `UNAVAILABLE` naming the leader, unless this controller leads.
    fn require_leader(&self) -> Result<(), Status> {
        if self.shared.leading_term().is_some() {
            return Ok(());
        }
        let leader = self.shared.raft.metrics().borrow().current_leader;
        Err(self.not_leader(leader))
    }

    fn not_leader(&self, leader: Option<NodeId>) -> Status {
        let addr = leader.and_then(|id| self.peer_addr(id));
        let mut status = Status::unavailable(match (&leader, &addr) {
            (Some(id), Some(addr)) => {
                format!("this controller is not the leader; controller {id} at {addr} is")
            }
            _ => "this controller is not the leader, and no leader is known (an election is under way, or too few controllers are up)".to_owned(),
        });
        if let Some(value) = addr.and_then(|a| a.parse().ok()) {
            status.metadata_mut().insert(LEADER_HEADER, value);
        }
        status
    }

    fn peer_addr(&self, id: NodeId) -> Option<String> {
        let metrics = self.shared.raft.metrics().borrow().clone();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
    }

    /// Commits `command`; its outcome, or why it could not be committed.
    pub(crate) async fn write(&self, command: Command) -> Result<Outcome, Status> {
        match self.shared.raft.client_write(command).await {
            Ok(written) => written
                .data
                .ok_or_else(|| Status::internal("a command without an outcome")),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to))) => {
                Err(self.not_leader(to.leader_id))
            }
            Err(err) => Err(Status::unavailable(format!(
                "the controllers cannot commit: {err}"
            ))),
        }
    }

    /// The group as committed, with the switch-over under way if any.
    pub(crate) fn view_of(&self, group: &str) -> Result<pb::GroupView, Status> {
        let state = self.shared.machine.state();
        let mut view = state
            .groups
            .get(group)
            .map(|g| group_view(group, g))
            .ok_or_else(|| Status::not_found(format!("no broker group {group:?}")))?;
        view.handover_to = self.shared.handover_to(group);
        Ok(view)
    }

    /// Elects `target` now, from the members alive as the leader sees them.
    pub(crate) async fn elect_now(
        &self,
        group: &str,
        target: u64,
    ) -> Result<pb::GroupView, Status> {
        let alive = self.shared.alive(group);
        let before = self.view_of(group)?.epoch;
        let outcome = self
            .write(Command::ElectMaster {
                group: group.to_owned(),
                alive,
                preferred: Some(target),
                allow_unclean: false,
            })
            .await?;
        self.shared.elected(group, before, &outcome);
        match outcome {
            Outcome::Refused(why) => Err(Status::failed_precondition(why.to_string())),
            _ => self.view_of(group),
        }
    }

    async fn hear(&self, hb: pb::BrokerHeartbeat, register: bool) -> Result<pb::GroupView, Status> {
        check_heartbeat(&hb)?;
        self.require_leader()?;
        self.shared
            .heard(&hb.group, hb.broker_id, hb.max_offset, hb.sealed);
        let known = self
            .shared
            .machine
            .state()
            .groups
            .get(&hb.group)
            .and_then(|g| g.members.get(&hb.broker_id))
            .is_some_and(|addr| *addr == hb.addr);
        if register || !known {
            let outcome = self
                .write(Command::Register {
                    group: hb.group.clone(),
                    id: hb.broker_id,
                    addr: hb.addr.clone(),
                    max_offset: hb.max_offset,
                    last_log_epoch: hb.last_log_epoch,
                })
                .await?;
            if register {
                tracing::info!(group = %hb.group, broker_id = hb.broker_id, addr = %hb.addr, ?outcome, "broker registered");
            }
        }
        self.view_of(&hb.group)
    }
}

fn check_heartbeat(hb: &pb::BrokerHeartbeat) -> Result<(), Status> {
    let bad = |e: mq_common::FieldError| Status::invalid_argument(e.to_string());
    mq_common::validate::node_name("group", &hb.group).map_err(bad)?;
    mq_common::validate::host_port("addr", &hb.addr).map_err(bad)?;
    if hb.broker_id == 0 {
        return Err(Status::invalid_argument(
            "broker_id: must be 1 or above in controller mode (0 is the master's slot in routes, whoever holds it)",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl pb::controller_server::Controller for ControllerService {
    async fn register_broker(
        &self,
        request: Request<pb::BrokerHeartbeat>,
    ) -> Result<Response<pb::GroupView>, Status> {
        self.guard.check(&request, Action::Admin, Target::Cluster)?;
        self.hear(request.into_inner(), true)
            .await
            .map(Response::new)
    }

    async fn heartbeat(
        &self,
        request: Request<pb::BrokerHeartbeat>,
    ) -> Result<Response<pb::GroupView>, Status> {
        self.guard.check(&request, Action::Admin, Target::Cluster)?;
        self.hear(request.into_inner(), false)
            .await
            .map(Response::new)
    }

    async fn alter_sync_state_set(
        &self,
        request: Request<pb::AlterSyncStateSetRequest>,
    ) -> Result<Response<pb::GroupView>, Status> {
        self.guard.check(&request, Action::Admin, Target::Cluster)?;
        let r = request.into_inner();
        self.require_leader()?;
        let outcome = self
            .write(Command::AlterSyncStateSet {
                group: r.group.clone(),
                master: r.master_id,
                master_epoch: r.master_epoch,
                sync_state_epoch: r.sync_state_epoch,
                new_set: r
                    .new_sync_state_set
                    .iter()
                    .copied()
                    .collect::<BTreeSet<_>>(),
            })
            .await?;
        match outcome {
            Outcome::Refused(why) => Err(Status::failed_precondition(why.to_string())),
            _ => {
                tracing::info!(group = %r.group, set = ?r.new_sync_state_set, "SyncStateSet changed");
                self.view_of(&r.group).map(Response::new)
            }
        }
    }

    async fn elect_master(
        &self,
        request: Request<pb::ElectMasterRequest>,
    ) -> Result<Response<pb::ElectMasterResponse>, Status> {
        self.guard.check(&request, Action::Admin, Target::Cluster)?;
        let r = request.into_inner();
        self.require_leader()?;
        if r.force {
            tracing::warn!(group = %r.group, broker_id = r.broker_id, "forced switch-over: no drain");
            let view = self.elect_now(&r.group, r.broker_id).await?;
            return Ok(Response::new(pb::ElectMasterResponse {
                group: Some(view),
                sealed_at: None,
            }));
        }
        let timeout = match r.timeout_ms {
            0 => crate::handover::DEFAULT_TIMEOUT,
            ms => std::time::Duration::from_millis(ms),
        };
        self.switch_over(&r.group, r.broker_id, timeout)
            .await
            .map(Response::new)
    }

    async fn get_status(
        &self,
        request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::ControllerStatus>, Status> {
        self.guard.check(&request, Action::Get, Target::Cluster)?;
        let metrics = self.shared.raft.metrics().borrow().clone();
        let leading = self.shared.leading_term();
        let now = Instant::now();
        let groups = self
            .shared
            .machine
            .state()
            .groups
            .iter()
            .map(|(name, group)| {
                let (alive, since) = match leading {
                    Some(term) => {
                        let mut view = self.shared.lock_view();
                        let view = view.of_term(term, now);
                        let since = view.since_election(name, now);
                        (
                            view.liveness().alive(name, now).into_keys().collect(),
                            since,
                        )
                    }
                    None => (Vec::new(), None),
                };
                pb::GroupStatus {
                    view: Some(pb::GroupView {
                        handover_to: self.shared.handover_to(name),
                        ..group_view(name, group)
                    }),
                    alive,
                    since_last_election_ms: since
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                }
            })
            .collect();
        let leader_id = metrics.current_leader.unwrap_or(0);
        Ok(Response::new(pb::ControllerStatus {
            node_id: self.shared.id,
            leader_id,
            leader_addr: metrics
                .current_leader
                .and_then(|id| self.peer_addr(id))
                .unwrap_or_default(),
            term: metrics.current_term,
            controllers: metrics
                .membership_config
                .membership()
                .nodes()
                .map(|(id, node)| (*id, node.addr.clone()))
                .collect(),
            groups,
            elections: self.shared.metrics.elections.get(),
        }))
    }
}
