//! `mqadmin consumer progress|connections`.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use mq_common::validate;
use mq_proto::broker::v1 as pb;
use serde_json::json;

use super::client::{Admin, refused};
use super::output::{Table, emit, time};

#[derive(Debug, Subcommand)]
pub enum ConsumerCommand {
    /// Per queue: broker offset, the group's offset and the lag; and the total lag.
    Progress(GroupArg),
    /// The group's live members: client ids, subscriptions, consume model.
    Connections(GroupArg),
}

#[derive(Debug, Args)]
pub struct GroupArg {
    #[arg(long)]
    pub group: String,
}

pub async fn run(admin: &Admin, command: ConsumerCommand) -> anyhow::Result<()> {
    match command {
        ConsumerCommand::Progress(args) => progress(admin, &args.group).await,
        ConsumerCommand::Connections(args) => connections(admin, &args.group).await,
    }
}

async fn progress(admin: &Admin, group: &str) -> anyhow::Result<()> {
    validate::topic("--group", group)?;
    let mut table = Table::new(&[
        ("TOPIC", "topic"),
        ("BROKER", "broker"),
        ("QUEUE", "queue"),
        ("BROKER OFFSET", "broker_offset"),
        ("CONSUMER OFFSET", "consumer_offset"),
        ("LAG", "lag"),
        ("LAST MESSAGE", "last_message"),
    ]);
    let mut total = 0u64;
    for m in admin.masters(None).await? {
        let mut rows = admin
            .broker(&m.name, &m.addr)
            .await?
            .get_consumer_progress(pb::GetConsumerProgressRequest {
                group: group.to_owned(),
            })
            .await
            .map_err(|s| refused(&m.name, &m.addr, s))?
            .into_inner()
            .queues;
        rows.sort_by(|a, b| (&a.topic, a.queue_id).cmp(&(&b.topic, b.queue_id)));
        for q in rows {
            let lag = q.broker_offset.saturating_sub(q.consumer_offset);
            total += lag;
            // A queue the group never committed shows no consumer offset;
            // its lag counts every message still stored.
            let consumer_offset = if q.committed {
                json!(q.consumer_offset)
            } else {
                json!(null)
            };
            table.push(
                json!({"topic": q.topic, "broker": m.name, "queue": q.queue_id,
                "broker_offset": q.broker_offset, "consumer_offset": consumer_offset, "lag": lag,
                "last_message": time(q.last_timestamp_ms)}),
            );
        }
    }
    if table.rows().is_empty() {
        anyhow::bail!("group {group:?} has no member and committed no offset on any broker");
    }
    let json = json!({"group": group, "queues": table.rows(), "total_lag": total});
    emit(admin.json, &table, &[format!("total lag: {total}")], json);
    Ok(())
}

async fn connections(admin: &Admin, group: &str) -> anyhow::Result<()> {
    validate::topic("--group", group)?;
    // Members heartbeat to every broker of their topics: merge by client id.
    let mut members: BTreeMap<String, pb::MemberInfo> = BTreeMap::new();
    for m in admin.masters(None).await? {
        match admin
            .broker(&m.name, &m.addr)
            .await?
            .get_consumer_list(pb::GetConsumerListRequest {
                group: group.to_owned(),
            })
            .await
        {
            Ok(list) => {
                for member in list.into_inner().members {
                    let known = members
                        .entry(member.client_id.clone())
                        .or_insert_with(|| member.clone());
                    known.last_heartbeat_ms = known.last_heartbeat_ms.max(member.last_heartbeat_ms);
                }
            }
            Err(status) if status.code() == tonic::Code::NotFound => {}
            Err(status) => return Err(refused(&m.name, &m.addr, status)),
        }
    }
    if members.is_empty() {
        anyhow::bail!("group {group:?} has no live member");
    }
    let mut table = Table::new(&[
        ("CLIENT ID", "client_id"),
        ("MODEL", "consume_model"),
        ("CLIENT", "client"),
        ("SUBSCRIPTIONS", "subscriptions"),
        ("LAST HEARTBEAT", "last_heartbeat"),
    ]);
    for member in members.into_values() {
        let model = match pb::ConsumeModel::try_from(member.consume_model) {
            Ok(pb::ConsumeModel::Broadcasting) => "BROADCASTING",
            _ => "CLUSTERING",
        };
        let subscriptions: Vec<String> = member
            .subscriptions
            .iter()
            .map(|s| match s.sql_expression.as_str() {
                "" => format!("{}:{}", s.topic, s.tag_expression),
                sql => format!("{}:SQL({sql})", s.topic),
            })
            .collect();
        table.push(
            json!({"client_id": member.client_id, "consume_model": model,
            "client": if member.client_kind.is_empty() { "mq-consumer" } else { member.client_kind.as_str() },
            "subscriptions": subscriptions, "last_heartbeat": time(member.last_heartbeat_ms)}),
        );
    }
    emit(
        admin.json,
        &table,
        &[],
        json!({"group": group, "members": table.rows()}),
    );
    Ok(())
}
