//! `mqadmin message get|query|resend-dlq`.

use anyhow::bail;
use clap::{Args, Subcommand};
use mq_common::{offset_id, validate};
use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::view_message_request::Id;
use serde_json::json;

use super::client::{Admin, refused};
use super::offset::parse_time;
use super::output::{Table, emit, time};

#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// One message by its unique id or its offset message id.
    Get(GetArgs),
    /// Messages of a topic by business key, newest first.
    Query(QueryArgs),
    /// Sends a group's dead letters back to the topic they came from.
    ResendDlq(ResendArgs),
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// A unique id, or an offset message id (the broker's address and offset, hex).
    #[arg(long)]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[arg(long)]
    pub topic: String,
    #[arg(long)]
    pub key: String,
    /// Stored at or after: ms since the epoch or RFC 3339.
    #[arg(long)]
    pub begin: Option<String>,
    /// Stored at or before: ms since the epoch or RFC 3339.
    #[arg(long)]
    pub end: Option<String>,
    /// At most this many (1 to 256).
    #[arg(long, default_value_t = 32)]
    pub max: u32,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["id", "all"]))]
pub struct ResendArgs {
    #[arg(long)]
    pub group: String,
    /// The dead letter with this unique id.
    #[arg(long)]
    pub id: Option<String>,
    /// Every dead letter of the group.
    #[arg(long)]
    pub all: bool,
}

pub async fn run(admin: &Admin, command: MessageCommand) -> anyhow::Result<()> {
    match command {
        MessageCommand::Get(args) => get(admin, &args.id).await,
        MessageCommand::Query(args) => query(admin, args).await,
        MessageCommand::ResendDlq(args) => resend(admin, args).await,
    }
}

const COLUMNS: [(&str, &str); 8] = [
    ("ID", "unique_id"),
    ("TOPIC", "topic"),
    ("QUEUE", "queue"),
    ("OFFSET", "queue_offset"),
    ("TAGS", "tags"),
    ("KEYS", "keys"),
    ("STORED", "stored"),
    ("BODY", "body"),
];

fn row(broker_name: &str, m: &pb::StoredMessage) -> serde_json::Value {
    json!({
        "unique_id": m.unique_id, "offset_message_id": m.offset_message_id, "broker": broker_name,
        "topic": m.topic, "queue": m.queue_id, "queue_offset": m.queue_offset,
        "tags": (!m.tags.is_empty()).then(|| m.tags.clone()), "keys": m.keys,
        "stored": time(m.store_timestamp_ms), "store_timestamp_ms": m.store_timestamp_ms,
        "born_timestamp_ms": m.born_timestamp_ms, "reconsume_times": m.reconsume_times,
        "properties": m.properties, "body_size": m.body.len(),
        "body": body_preview(&m.body),
    })
}

/// The body as text when it is text (first 64 characters), else its size.
fn body_preview(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(text) if !text.chars().any(char::is_control) => text.chars().take(64).collect(),
        _ => format!("<{} bytes>", body.len()),
    }
}

async fn get(admin: &Admin, id: &str) -> anyhow::Result<()> {
    if id.is_empty() {
        bail!("--id must not be empty");
    }
    // An offset message id names its broker: ask that one. Otherwise ask
    // every broker for the unique id.
    let targets: Vec<(String, String, Id)> = match offset_id::decode("--id", id) {
        Ok((host, _)) => vec![(
            host.to_string(),
            host.to_string(),
            Id::OffsetMessageId(id.to_owned()),
        )],
        Err(_) => admin
            .masters(None)
            .await?
            .into_iter()
            .map(|m| (m.name, m.addr, Id::UniqueId(id.to_owned())))
            .collect(),
    };
    for (name, addr, which) in targets {
        match admin
            .broker(&name, &addr)
            .await?
            .view_message(pb::ViewMessageRequest { id: Some(which) })
            .await
        {
            Ok(found) => {
                let message = found.into_inner().message.unwrap_or_default();
                let mut table = Table::new(&COLUMNS);
                table.push(row(&name, &message));
                let json = table.rows()[0].clone();
                emit(admin.json, &table, &[], json);
                return Ok(());
            }
            Err(status) if status.code() == tonic::Code::NotFound => continue,
            Err(status) => return Err(refused(&name, &addr, status)),
        }
    }
    bail!("no message with id {id:?} on any broker")
}

async fn query(admin: &Admin, args: QueryArgs) -> anyhow::Result<()> {
    validate::topic("--topic", &args.topic)?;
    let begin = args
        .begin
        .as_deref()
        .map(|t| parse_time("--begin", t))
        .transpose()?
        .unwrap_or(0);
    let end = args
        .end
        .as_deref()
        .map(|t| parse_time("--end", t))
        .transpose()?
        .unwrap_or(0);
    let mut found = Vec::new();
    for (name, addr) in admin.brokers_of(&args.topic).await? {
        let messages = admin
            .broker(&name, &addr)
            .await?
            .query_message(pb::QueryMessageRequest {
                topic: args.topic.clone(),
                key: args.key.clone(),
                begin_ms: begin,
                end_ms: end,
                max: args.max,
            })
            .await
            .map_err(|s| refused(&name, &addr, s))?
            .into_inner()
            .messages;
        found.extend(messages.into_iter().map(|m| (name.clone(), m)));
    }
    found.sort_by_key(|(_, m)| std::cmp::Reverse(m.store_timestamp_ms));
    found.truncate(args.max as usize);
    let mut table = Table::new(&COLUMNS);
    for (name, m) in &found {
        table.push(row(name, m));
    }
    let json = json!({"topic": args.topic, "key": args.key, "messages": table.rows()});
    emit(
        admin.json,
        &table,
        &[format!("{} message(s)", found.len())],
        json,
    );
    Ok(())
}

async fn resend(admin: &Admin, args: ResendArgs) -> anyhow::Result<()> {
    validate::topic("--group", &args.group)?;
    let unique_id = args.id.clone().unwrap_or_default();
    let mut table = Table::new(&[("BROKER", "broker"), ("RESENT", "resent")]);
    let mut total = 0;
    for m in admin.masters(None).await? {
        let resent = match admin
            .broker(&m.name, &m.addr)
            .await?
            .resend_dead_letters(pb::ResendDeadLettersRequest {
                group: args.group.clone(),
                unique_id: unique_id.clone(),
            })
            .await
        {
            Ok(answer) => answer.into_inner().resent,
            // This broker has none of the group's dead letters (or not that one).
            Err(status) if status.code() == tonic::Code::NotFound => 0,
            Err(status) => return Err(refused(&m.name, &m.addr, status)),
        };
        total += resent;
        table.push(json!({"broker": m.name, "resent": resent}));
    }
    if total == 0 {
        match &args.id {
            Some(id) => bail!("no dead letter of group {:?} has id {id:?}", args.group),
            None => bail!("group {:?} has no dead letters", args.group),
        }
    }
    let json = json!({"group": args.group, "resent": total, "brokers": table.rows()});
    emit(
        admin.json,
        &table,
        &[format!("resent {total} dead letter(s)")],
        json,
    );
    Ok(())
}
