//! `mqadmin offset reset`: moves a group's committed offsets of a topic on
//! every broker of the topic; running members pick it up at their next
//! heartbeat.

use anyhow::bail;
use clap::{Args, Subcommand};
use mq_common::validate;
use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::reset_offset_request::To;
use serde_json::json;

use super::client::{Admin, refused};
use super::output::{Table, emit};

#[derive(Debug, Subcommand)]
pub enum OffsetCommand {
    /// Moves a group's offsets of a topic to a time, the earliest or the latest message.
    Reset(ResetArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["timestamp", "to"]))]
pub struct ResetArgs {
    #[arg(long)]
    pub group: String,
    #[arg(long)]
    pub topic: String,
    /// The first message stored at or after this time: ms since the epoch or RFC 3339.
    #[arg(long)]
    pub timestamp: Option<String>,
    /// earliest or latest.
    #[arg(long)]
    pub to: Option<String>,
}

pub async fn run(admin: &Admin, command: OffsetCommand) -> anyhow::Result<()> {
    let OffsetCommand::Reset(args) = command;
    validate::topic("--group", &args.group)?;
    let to = match (&args.timestamp, args.to.as_deref()) {
        (Some(ts), _) => To::TimestampMs(parse_time("--timestamp", ts)?),
        (None, Some("earliest")) => To::Earliest(true),
        (None, Some("latest")) => To::Latest(true),
        (None, Some(other)) => bail!("--to {other:?} is not earliest or latest"),
        (None, None) => bail!("give --timestamp or --to"),
    };
    let mut table = Table::new(&[
        ("BROKER", "broker"),
        ("QUEUE", "queue"),
        ("OFFSET", "offset"),
    ]);
    for (name, addr) in admin.brokers_of(&args.topic).await? {
        let reset = admin
            .broker(&name, &addr)
            .await?
            .reset_offset(pb::ResetOffsetRequest {
                group: args.group.clone(),
                topic: args.topic.clone(),
                to: Some(to),
            })
            .await
            .map_err(|s| refused(&name, &addr, s))?
            .into_inner();
        for q in reset.queues {
            table.push(json!({"broker": name, "queue": q.queue_id, "offset": q.consumer_offset}));
        }
    }
    let json = json!({"group": args.group, "topic": args.topic, "queues": table.rows()});
    emit(admin.json, &table, &[], json);
    Ok(())
}

/// Ms since the epoch, or an RFC 3339 time.
pub fn parse_time(flag: &str, text: &str) -> anyhow::Result<u64> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let at = humantime::parse_rfc3339_weak(text).map_err(|_| {
        anyhow::anyhow!("{flag} {text:?} is neither ms since the epoch nor an RFC 3339 time")
    })?;
    Ok(at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64))
}
