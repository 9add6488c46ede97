//! `mqadmin controller status` and `mqadmin broker elect-master`: the
//! controllers (who leads Raft, each one's term) and each broker group as
//! the leader holds it (master, epoch, SyncStateSet, members heard from);
//! and an operator's switch-over to another in-sync member.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mq_auth::Connector;
use mq_controller::client::ControllerClient;
use mq_proto::controller::v1 as pb;
use serde_json::json;

use super::output::{Table, emit};

/// Where the controllers are.
#[derive(Debug, Args)]
pub struct ControllerAddr {
    /// Controller addresses, ';'-separated (any of them; calls go to the Raft leader).
    #[arg(long, env = "MQ_CONTROLLER", default_value = "127.0.0.1:9878")]
    pub controller: String,
}

#[derive(Debug, Subcommand)]
pub enum ControllerCommand {
    /// Controllers, the Raft leader, and each group's master, epoch and SyncStateSet.
    Status(ControllerAddr),
}

#[derive(Debug, Subcommand)]
pub enum BrokerCommand {
    /// Switch a group's master to another member of its SyncStateSet: the master stops taking sends, the member catches up with it, then it is elected.
    ElectMaster {
        #[command(flatten)]
        at: ControllerAddr,
        /// The broker group (broker name).
        #[arg(long)]
        broker_name: String,
        /// The member to make master.
        #[arg(long)]
        broker_id: u64,
        /// How long the member may take to catch up before the switch-over is called off.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Elect at once without draining the master (sends in flight fail; with async replication acknowledged messages the member lacks are lost).
        #[arg(long)]
        force: bool,
    },
}

/// Beyond the switch-over's own timeout, for the election and the answer.
const CALL_MARGIN: std::time::Duration = std::time::Duration::from_secs(3);

fn client(at: &ControllerAddr, connector: &Connector) -> anyhow::Result<ControllerClient> {
    ControllerClient::from_list_with(&at.controller, connector)
        .with_context(|| format!("--controller {:?}", at.controller))
}

pub async fn status(
    at: &ControllerAddr,
    connector: &Connector,
    json_output: bool,
) -> anyhow::Result<()> {
    let client = client(at, connector)?;
    let each = client.status_of_each().await;
    let mut controllers = Table::new(&[
        ("CONTROLLER", "address"),
        ("ID", "id"),
        ("ROLE", "role"),
        ("TERM", "term"),
        ("LEADER", "leader"),
    ]);
    let mut leader_status = None;
    for (addr, answer) in &each {
        match answer {
            Ok(s) => {
                let leads = s.leader_id == s.node_id && s.leader_id != 0;
                controllers.push(json!({
                    "address": addr, "id": s.node_id, "term": s.term,
                    "role": if leads { "leader" } else { "follower" },
                    "leader": (s.leader_id != 0).then_some(s.leader_id),
                }));
                if leads {
                    leader_status = Some(s.clone());
                }
            }
            Err(status) => controllers.push(json!({
                "address": addr, "role": "down", "error": status.message(),
            })),
        }
    }
    if each.iter().all(|(_, a)| a.is_err()) {
        bail!(
            "no controller answers at {}: {}",
            at.controller,
            each.first()
                .and_then(|(_, a)| a.as_ref().err())
                .map_or("", |s| s.message())
        );
    }
    let mut groups = Table::new(&[
        ("GROUP", "group"),
        ("MASTER", "master"),
        ("MASTER ADDRESS", "master_addr"),
        ("EPOCH", "epoch"),
        ("SYNC STATE SET", "sync_state_set"),
        ("MEMBERS", "members"),
        ("ALIVE", "alive"),
        ("SINCE ELECTION", "since_election"),
    ]);
    let shown = leader_status
        .clone()
        .or_else(|| each.iter().find_map(|(_, a)| a.as_ref().ok().cloned()));
    for group in shown.iter().flat_map(|s| &s.groups) {
        let Some(view) = &group.view else { continue };
        groups.push(group_row(view, group, leader_status.is_some()));
    }
    let mut footer = vec![String::new(), groups.render()];
    if leader_status.is_none() {
        footer.push(
            "no controller leads: no election is possible until a majority of the controllers is up (masters keep serving)".into(),
        );
    }
    emit(
        json_output,
        &controllers,
        &footer,
        json!({
            "controllers": controllers.rows(),
            "leader": leader_status.as_ref().map(|s| s.leader_id),
            "groups": groups.rows(),
        }),
    );
    Ok(())
}

fn group_row(
    view: &pb::GroupView,
    group: &pb::GroupStatus,
    from_leader: bool,
) -> serde_json::Value {
    let mut members: Vec<_> = view.members.iter().collect();
    members.sort();
    json!({
        "group": view.group,
        "master": (view.master_id != 0).then_some(view.master_id),
        "master_addr": (!view.master_addr.is_empty()).then_some(&view.master_addr),
        "epoch": view.epoch,
        "epoch_start_offset": view.epoch_start_offset,
        "sync_state_set": view.sync_state_set,
        "sync_state_epoch": view.sync_state_epoch,
        "members": members.iter().map(|(id, addr)| format!("{id}={addr}")).collect::<Vec<_>>(),
        "alive": from_leader.then_some(&group.alive),
        "since_election": (group.since_last_election_ms > 0)
            .then(|| format!("{:.1}s", group.since_last_election_ms as f64 / 1000.0)),
    })
}

/// What `mqadmin broker elect-master` was asked.
#[derive(Debug)]
pub struct SwitchOver<'a> {
    pub broker_name: &'a str,
    pub broker_id: u64,
    pub timeout: std::time::Duration,
    pub force: bool,
}

pub async fn elect_master(
    at: &ControllerAddr,
    connector: &Connector,
    switch: SwitchOver<'_>,
    json_output: bool,
) -> anyhow::Result<()> {
    let SwitchOver {
        broker_name,
        broker_id,
        timeout,
        force,
    } = switch;
    if timeout.is_zero() {
        bail!("--timeout must be above 0");
    }
    // The controller answers once the member caught up and was elected.
    let client =
        ControllerClient::with_call_timeout(&at.controller, timeout + CALL_MARGIN, connector)
            .with_context(|| format!("--controller {:?}", at.controller))?;
    let answer = client
        .elect_master(pb::ElectMasterRequest {
            group: broker_name.to_owned(),
            broker_id,
            force,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        })
        .await
        .map_err(|s| {
            anyhow::anyhow!(
                "cannot elect broker {broker_id} of {broker_name}: {}",
                s.message()
            )
        })?;
    let view = answer.group.unwrap_or_default();
    if json_output {
        println!(
            "{}",
            json!({"group": view.group, "master": view.master_id, "epoch": view.epoch,
                   "sealed_at": answer.sealed_at})
        );
    } else if let Some(sealed_at) = answer.sealed_at {
        println!(
            "{}: broker {} ({}) is master in epoch {}; it held the old master's whole log (sealed at offset {}) when elected, and the old master turns replica within a heartbeat",
            view.group, view.master_id, view.master_addr, view.epoch, sealed_at
        );
    } else {
        println!(
            "{}: broker {} ({}) is master in epoch {}; the old master turns replica within a heartbeat",
            view.group, view.master_id, view.master_addr, view.epoch
        );
    }
    Ok(())
}
