//! Controller mode (`--controller-addr`): the controllers, not the
//! configuration, say which member of the group is master. At start the
//! broker registers and takes the role the controller names ([`join`]);
//! while it runs it heartbeats ([`ControllerLink`]) and restarts in its
//! process as soon as the controller names another master or epoch. A
//! master also keeps the SyncStateSet true: it asks the controller to drop
//! replicas that fell out of sync and to add those that caught up.
//!
//! The rule that keeps acknowledged messages safe across failovers (with
//! sync replication): a send is acknowledged only once every replica the
//! master requires has it, and the master requires the controller's
//! SyncStateSet *and* any member it is asking to add, from before it
//! checks that member holds the whole log; a member leaves the required
//! set only after the controller confirmed it left the SyncStateSet. So
//! every member of the SyncStateSet, the only ones the controller elects,
//! holds every acknowledged message. A master cut off from the controller
//! cannot shrink its set, so it acknowledges only what its in-sync replicas
//! confirmed, and a replica stops confirming once it follows a new master.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mq_controller::client::ControllerClient;
use mq_proto::controller::v1 as pb;
use mq_store::MessageStore;
use tokio::sync::watch;

use crate::replication::replicas::Replicas;
use crate::replication::{Restart, Role};

/// Who this broker is to the controller.
#[derive(Debug, Clone)]
pub struct Member {
    pub group: String,
    pub id: u64,
    pub addr: String,
}

impl Member {
    fn heartbeat(&self, store: &MessageStore, epoch: u64) -> pb::BrokerHeartbeat {
        // Sealed first: once sealed, the end read after it is final.
        let sealed = store.is_sealed();
        pb::BrokerHeartbeat {
            group: self.group.clone(),
            broker_id: self.id,
            addr: self.addr.clone(),
            max_offset: store.commitlog_max_offset(),
            epoch,
            last_log_epoch: store.epochs().last().map_or(0, |e| e.epoch),
            sealed,
        }
    }

    /// The role `view` gives this member.
    pub fn role_in(&self, view: &pb::GroupView) -> Role {
        if view.master_id == self.id {
            Role::Master
        } else {
            Role::Replica {
                id: self.id,
                master_addr: view.master_addr.clone(),
            }
        }
    }
}

/// Registers until the controller answers with a master for the group.
pub async fn join(
    client: &ControllerClient,
    member: &Member,
    store: &MessageStore,
    interval: Duration,
) -> pb::GroupView {
    let mut last_problem = String::new();
    loop {
        let problem = match client.register(member.heartbeat(store, 0)).await {
            Ok(view) if view.master_id != 0 => {
                tracing::info!(
                    group = %member.group,
                    master = view.master_id,
                    master_addr = %view.master_addr,
                    epoch = view.epoch,
                    sync_state_set = ?view.sync_state_set,
                    "joined the group through the controller"
                );
                return view;
            }
            Ok(_) => {
                "the group has no master: no member of its SyncStateSet is alive; waiting for one"
                    .to_owned()
            }
            Err(status) => format!("cannot register with the controller: {}", status.message()),
        };
        if problem != last_problem {
            tracing::warn!(group = %member.group, "{problem}");
            last_problem = problem;
        }
        tokio::time::sleep(interval).await;
    }
}

/// The running broker's link to the controller.
pub struct ControllerLink {
    pub client: ControllerClient,
    pub member: Member,
    pub store: Arc<MessageStore>,
    /// What the broker joined as: the role and the view it came from.
    pub role: Role,
    pub joined: pb::GroupView,
    pub replicas: Arc<Replicas>,
    pub restart: Arc<Restart>,
    pub interval: Duration,
    /// What the link last heard (for metrics).
    pub status: Arc<LinkStatus>,
    /// A replica's following: while it has lost its master it heartbeats
    /// every [`FAST_INTERVAL`], to learn of its own election at once.
    pub following: Arc<crate::replication::follower::FollowStatus>,
}

/// How often a replica that lost its master heartbeats, and every member
/// while a switch-over is under way (the controller waits on them).
const FAST_INTERVAL: Duration = Duration::from_millis(100);

/// What the link last heard, for metrics and admin.
#[derive(Debug, Default)]
pub struct LinkStatus {
    /// The SyncStateSet as the controller last said (master included).
    pub sync_state_set: std::sync::Mutex<Vec<u64>>,
    pub epoch: std::sync::atomic::AtomicU64,
    pub reachable: std::sync::atomic::AtomicBool,
}

impl ControllerLink {
    /// Heartbeats every interval until `stop`, or until the controller
    /// names another master or epoch (then asks for a restart).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        use std::sync::atomic::Ordering;
        self.status
            .epoch
            .store(self.joined.epoch, Ordering::Relaxed);
        self.status.reachable.store(true, Ordering::Relaxed);
        *self
            .status
            .sync_state_set
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = self.joined.sync_state_set.clone();
        let mut reachable = true;
        let mut at_once = true;
        let mut handing_over = false;
        loop {
            let lost_master = matches!(self.role, Role::Replica { .. })
                && !self.following.connected.load(Ordering::Acquire);
            let wait = match () {
                () if at_once => Duration::ZERO,
                () if lost_master || handing_over => FAST_INTERVAL,
                () => self.interval,
            };
            at_once = false;
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let heartbeat = self.member.heartbeat(&self.store, self.joined.epoch);
            let view = match self.client.heartbeat(heartbeat).await {
                Ok(view) => view,
                Err(status) => {
                    if reachable {
                        tracing::warn!(
                            error = %status.message(),
                            role = ?self.role,
                            "cannot reach the controller leader: keeping this role; a master acknowledges only what its SyncStateSet confirmed and cannot change it"
                        );
                    }
                    reachable = false;
                    self.status.reachable.store(false, Ordering::Relaxed);
                    continue;
                }
            };
            if !reachable {
                tracing::info!("controller reachable again");
                reachable = true;
                self.status.reachable.store(true, Ordering::Relaxed);
            }
            *self
                .status
                .sync_state_set
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = view.sync_state_set.clone();
            if let Some(why) = self.role_changed(&view) {
                tracing::warn!(
                    group = %self.member.group,
                    master = view.master_id,
                    master_addr = %view.master_addr,
                    epoch = view.epoch,
                    "{why}; restarting in the new role"
                );
                self.restart.request();
                return;
            }
            handing_over = view.handover_to != 0;
            if self.role == Role::Master {
                // Tell the controller where the sealed log ends at once.
                at_once = self.follow_handover(&view);
                self.tend_sync_state_set(&view).await;
            }
        }
    }

    /// An operator's switch-over (see `mq_controller::handover`): while
    /// the controller hands the group over to another member, the master's
    /// log is sealed, so that the member can catch up with all of it and
    /// no send is in flight when it is elected; called off, the log takes
    /// sends again. Cut off from the controller, a sealed master stays
    /// sealed: it cannot know whether the member was elected meanwhile.
    /// Returns whether it just sealed the log.
    fn follow_handover(&self, view: &pb::GroupView) -> bool {
        match (view.handover_to, self.store.is_sealed()) {
            (0, true) => {
                self.store.unseal();
                tracing::warn!("the switch-over was called off: taking sends again");
                false
            }
            (to, false) if to != 0 => {
                let sealed_at = self.store.seal();
                tracing::warn!(
                    to,
                    sealed_at,
                    "switch-over to broker {to}: log sealed, sends are refused until it is elected"
                );
                true
            }
            _ => false,
        }
    }

    /// Why `view` calls for a restart, if it does.
    fn role_changed(&self, view: &pb::GroupView) -> Option<String> {
        match &self.role {
            Role::Master if view.master_id != self.member.id => Some(format!(
                "the controller made broker {} master (epoch {})",
                view.master_id, view.epoch
            )),
            Role::Master if view.epoch != self.joined.epoch => Some(format!(
                "the group moved to epoch {} from {}",
                view.epoch, self.joined.epoch
            )),
            Role::Master => None,
            // No master yet: keep following what we have until one is named.
            Role::Replica { .. } if view.master_id == 0 => None,
            Role::Replica { .. } if view.master_id == self.member.id => {
                Some(format!("elected master in epoch {}", view.epoch))
            }
            Role::Replica { master_addr, .. }
                if view.master_addr != *master_addr || view.epoch != self.joined.epoch =>
            {
                Some(format!(
                    "a new master, broker {} at {} (epoch {})",
                    view.master_id, view.master_addr, view.epoch
                ))
            }
            Role::Replica { .. } => None,
        }
    }

    /// Requires the replicas of `view`'s SyncStateSet.
    fn require_from(&self, view: &pb::GroupView) {
        require_sync_state_set(&self.replicas, view, self.member.id);
    }

    fn others(&self, set: &[u64]) -> BTreeSet<u64> {
        others(set, self.member.id)
    }

    /// Drops replicas that fell out of sync and adds those that hold the
    /// whole log, through the controller.
    async fn tend_sync_state_set(&self, view: &pb::GroupView) {
        let committed = self.others(&view.sync_state_set);
        let in_sync = self.replicas.in_sync_ids(self.store.commitlog_max_offset());
        let keep: BTreeSet<u64> = committed.intersection(&in_sync).copied().collect();
        let candidates: BTreeSet<u64> = in_sync.difference(&committed).copied().collect();
        if keep == committed && candidates.is_empty() {
            self.replicas.require(committed);
            return;
        }
        // Require the candidates first: every send acknowledged from here
        // on reaches them, so once one holds the log's end as read after
        // this, it holds every acknowledged message.
        self.replicas
            .require(committed.union(&candidates).copied().collect());
        let end = self.store.commitlog_max_offset();
        let ready = candidates
            .iter()
            .copied()
            .filter(|id| self.replicas.acked(*id).is_some_and(|acked| acked >= end));
        let new: BTreeSet<u64> = keep.iter().copied().chain(ready).collect();
        if new == committed {
            self.replicas.require(committed);
            return;
        }
        let mut new_set: Vec<u64> = new.iter().copied().collect();
        new_set.push(self.member.id);
        new_set.sort_unstable();
        let request = pb::AlterSyncStateSetRequest {
            group: self.member.group.clone(),
            master_id: self.member.id,
            master_epoch: self.joined.epoch,
            sync_state_epoch: view.sync_state_epoch,
            new_sync_state_set: new_set.clone(),
        };
        // Until the answer, the union stays required: a shrink is not
        // relied on before the controller has it.
        self.replicas
            .require(committed.union(&new).copied().collect());
        match self.client.alter_sync_state_set(request).await {
            Ok(view) => {
                tracing::info!(
                    from = ?view_set(&committed, self.member.id),
                    to = ?view.sync_state_set,
                    "SyncStateSet changed"
                );
                self.require_from(&view);
            }
            // Not known to be committed: keep requiring the union until a
            // heartbeat says what the controller holds.
            Err(status) => tracing::warn!(
                wanted = ?new_set,
                error = %status.message(),
                "cannot change the SyncStateSet"
            ),
        }
    }
}

/// A member that becomes master may not yet have its old master's topic
/// configs (they are synced every few seconds, not carried in the log):
/// every topic whose messages its log holds is served, with as many
/// queues as it has, so that a topic created just before a failover keeps
/// its route. Returns the topics adopted.
pub fn adopt_logged_topics(
    store: &MessageStore,
    topics: &crate::topic_table::TopicTable,
) -> Result<Vec<String>, crate::topic_table::TopicTableError> {
    let mut queues: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    for (topic, queue_id) in store.queues() {
        if topic == mq_common::AUTO_CREATE_TOPIC
            || topic == mq_common::system_topics::SCHEDULE_TOPIC
        {
            continue;
        }
        let count = queues.entry(topic).or_default();
        *count = (*count).max(queue_id + 1);
    }
    let mut adopted = Vec::new();
    for (topic, count) in queues {
        if topics.get(&topic).is_none() {
            topics.get_or_create(crate::topic_table::TopicConfig::new(&topic, count))?;
            adopted.push(topic);
        }
    }
    Ok(adopted)
}

/// A master requires the replicas of `view`'s SyncStateSet: before it
/// serves a send, and whenever the controller confirms a change.
pub fn require_sync_state_set(replicas: &Replicas, view: &pb::GroupView, master: u64) {
    replicas.require(others(&view.sync_state_set, master));
}

fn others(set: &[u64], master: u64) -> BTreeSet<u64> {
    set.iter().copied().filter(|id| *id != master).collect()
}

fn view_set(others: &BTreeSet<u64>, master: u64) -> Vec<u64> {
    let mut all: Vec<u64> = others.iter().copied().chain([master]).collect();
    all.sort_unstable();
    all
}
