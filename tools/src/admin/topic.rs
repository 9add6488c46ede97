//! `mqadmin topic ...`.

use anyhow::bail;
use clap::{Args, Subcommand};
use mq_common::{Perm, validate};
use mq_proto::broker::v1 as pb;
use serde_json::json;

use super::client::{Admin, refused};
use super::output::{Table, emit, time};

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Creates a topic on every master of a cluster, or on one broker.
    Create(CreateArgs),
    /// Changes a topic's queue counts or permission (same flags as create).
    Update(CreateArgs),
    /// Deletes a topic from the brokers and the nameservers.
    Delete(DeleteArgs),
    /// Every topic the nameservers route.
    List,
    /// Which brokers serve a topic, with their queues and permission.
    Route(TopicArg),
    /// Per queue: min and max offset and the time of the last message.
    Status(TopicArg),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("where").required(true).args(["cluster", "broker"]))]
pub struct CreateArgs {
    #[arg(long)]
    pub topic: String,
    /// Queues per broker, read and write.
    #[arg(long, default_value_t = 8)]
    pub queues: u32,
    /// Read queues (default: --queues).
    #[arg(long)]
    pub read_queues: Option<u32>,
    /// Write queues (default: --queues).
    #[arg(long)]
    pub write_queues: Option<u32>,
    /// Permission: rw, r or w.
    #[arg(long, default_value = "rw")]
    pub perm: String,
    /// What RocketMQ 5 clients may send: NORMAL, FIFO (messages with a
    /// message group), DELAY (with a delivery time) or TRANSACTION.
    #[arg(long, default_value = "NORMAL", value_parser = parse_message_type)]
    pub message_type: mq_common::MessageType,
    /// Every master broker of this cluster, as the nameservers know them.
    #[arg(long)]
    pub cluster: Option<String>,
    /// One broker, host:port.
    #[arg(long)]
    pub broker: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[arg(long)]
    pub topic: String,
    /// Only from the masters of this cluster (default: every broker).
    #[arg(long)]
    pub cluster: Option<String>,
}

#[derive(Debug, Args)]
pub struct TopicArg {
    #[arg(long)]
    pub topic: String,
}

pub async fn run(admin: &Admin, command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create(args) => create(admin, args, "created").await,
        TopicCommand::Update(args) => create(admin, args, "updated").await,
        TopicCommand::Delete(args) => delete(admin, args).await,
        TopicCommand::List => list(admin).await,
        TopicCommand::Route(args) => route(admin, &args.topic).await,
        TopicCommand::Status(args) => status(admin, &args.topic).await,
    }
}

async fn create(admin: &Admin, args: CreateArgs, done: &str) -> anyhow::Result<()> {
    validate::topic("--topic", &args.topic)?;
    let read = args.read_queues.unwrap_or(args.queues);
    let write = args.write_queues.unwrap_or(args.queues);
    validate::queue_count("--read-queues", read)?;
    validate::queue_count("--write-queues", write)?;
    let perm = parse_perm(&args.perm)?;
    let brokers = match (&args.cluster, &args.broker) {
        (_, Some(addr)) => {
            validate::host_port("--broker", addr)?;
            vec![(addr.clone(), addr.clone())]
        }
        (Some(cluster), None) => {
            let masters = admin.masters(Some(cluster)).await?;
            if masters.is_empty() {
                bail!("cluster {cluster:?} has no master broker");
            }
            masters.into_iter().map(|m| (m.name, m.addr)).collect()
        }
        (None, None) => bail!("give --cluster or --broker"),
    };
    let mut table = Table::new(&[
        ("BROKER", "broker"),
        ("ADDRESS", "address"),
        ("TOPIC", "topic"),
        ("READ", "read_queues"),
        ("WRITE", "write_queues"),
        ("PERM", "perm"),
        ("TYPE", "message_type"),
    ]);
    for (name, addr) in brokers {
        admin
            .broker(&name, &addr)
            .await?
            .create_topic(pb::CreateTopicRequest {
                config: Some(pb::TopicConfig {
                    topic: args.topic.clone(),
                    read_queue_count: read,
                    write_queue_count: write,
                    perm: perm.bits(),
                    message_type: args.message_type.as_str().to_owned(),
                }),
            })
            .await
            .map_err(|s| refused(&name, &addr, s))?;
        table.push(json!({"broker": name, "address": addr, "topic": args.topic,
            "read_queues": read, "write_queues": write, "perm": perm.to_string(),
            "message_type": args.message_type.as_str()}));
    }
    let json = json!({"result": done, "brokers": table.rows()});
    emit(
        admin.json,
        &table,
        &[format!("{done} topic {}", args.topic)],
        json,
    );
    Ok(())
}

async fn delete(admin: &Admin, args: DeleteArgs) -> anyhow::Result<()> {
    validate::topic("--topic", &args.topic)?;
    let masters = admin.masters(args.cluster.as_deref()).await?;
    let mut table = Table::new(&[
        ("WHERE", "where"),
        ("ADDRESS", "address"),
        ("RESULT", "result"),
    ]);
    for m in masters {
        admin
            .broker(&m.name, &m.addr)
            .await?
            .delete_topic(pb::DeleteTopicRequest {
                topic: args.topic.clone(),
            })
            .await
            .map_err(|s| refused(&m.name, &m.addr, s))?;
        table.push(
            json!({"where": format!("broker {}", m.name), "address": m.addr, "result": "deleted"}),
        );
    }
    for (addr, result) in admin.namesrv.delete_topic(&args.topic).await {
        let result = match result {
            Ok(()) => "deleted".to_owned(),
            Err(err) => format!("failed: {err}"),
        };
        table.push(json!({"where": "nameserver", "address": addr, "result": result}));
    }
    let json = json!({"topic": args.topic, "results": table.rows()});
    emit(admin.json, &table, &[], json);
    Ok(())
}

async fn list(admin: &Admin) -> anyhow::Result<()> {
    let mut topics = admin
        .namesrv
        .list_topics()
        .await
        .map_err(anyhow::Error::new)?;
    topics.sort();
    let mut table = Table::new(&[("TOPIC", "topic")]);
    for topic in &topics {
        table.push(json!({"topic": topic}));
    }
    emit(admin.json, &table, &[], json!({"topics": topics}));
    Ok(())
}

async fn route(admin: &Admin, topic: &str) -> anyhow::Result<()> {
    let route = admin.route(topic).await?;
    let mut table = Table::new(&[
        ("BROKER", "broker"),
        ("CLUSTER", "cluster"),
        ("ADDRESS", "address"),
        ("READ", "read_queues"),
        ("WRITE", "write_queues"),
        ("PERM", "perm"),
        ("TYPE", "message_type"),
    ]);
    for queues in &route.queues {
        let data = route
            .brokers
            .iter()
            .find(|b| b.broker_name == queues.broker_name);
        table.push(json!({
            "broker": queues.broker_name,
            "cluster": data.map(|b| b.cluster_name.clone()),
            "address": data.and_then(|b| b.addresses.get(&0).cloned()),
            "read_queues": queues.read_queue_count,
            "write_queues": queues.write_queue_count,
            "perm": Perm::from_bits("perm", queues.perm).map(|p| p.to_string()).unwrap_or_default(),
            "message_type": mq_common::MessageType::parse("message_type", &queues.message_type)
                .map(|t| t.as_str())
                .unwrap_or("?"),
        }));
    }
    emit(
        admin.json,
        &table,
        &[],
        json!({"topic": topic, "brokers": table.rows()}),
    );
    Ok(())
}

async fn status(admin: &Admin, topic: &str) -> anyhow::Result<()> {
    let route = admin.route(topic).await?;
    let mut table = Table::new(&[
        ("BROKER", "broker"),
        ("QUEUE", "queue"),
        ("MIN", "min_offset"),
        ("MAX", "max_offset"),
        ("LAST UPDATED", "last_updated"),
    ]);
    for queues in &route.queues {
        let Some(addr) = route
            .brokers
            .iter()
            .find(|b| b.broker_name == queues.broker_name)
            .and_then(|b| b.addresses.get(&0))
        else {
            continue;
        };
        let name = &queues.broker_name;
        let mut client = admin.broker(name, addr).await?;
        for queue_id in 0..queues.read_queue_count {
            let offsets = client
                .get_queue_offsets(pb::GetQueueOffsetsRequest {
                    topic: topic.to_owned(),
                    queue_id,
                    timestamp_ms: None,
                })
                .await
                .map_err(|s| refused(name, addr, s))?
                .into_inner();
            let last = match offsets.max_offset.checked_sub(1) {
                Some(offset) if offset >= offsets.min_offset => client
                    .pull_message(pb::PullMessageRequest {
                        group: "mqadmin".into(),
                        topic: topic.to_owned(),
                        queue_id,
                        offset,
                        max_messages: 1,
                        max_bytes: 0,
                        tag_expression: "*".into(),
                        suspend_timeout_ms: 0,
                        sql_expression: String::new(),
                    })
                    .await
                    .map_err(|s| refused(name, addr, s))?
                    .into_inner()
                    .messages
                    .first()
                    .map_or(0, |m| m.store_timestamp_ms),
                _ => 0,
            };
            table.push(json!({"broker": name, "queue": queue_id, "min_offset": offsets.min_offset,
                "max_offset": offsets.max_offset, "last_updated": time(last), "last_updated_ms": last}));
        }
    }
    emit(
        admin.json,
        &table,
        &[],
        json!({"topic": topic, "queues": table.rows()}),
    );
    Ok(())
}

fn parse_perm(text: &str) -> anyhow::Result<Perm> {
    let bits = match text {
        "rw" => Perm::READ | Perm::WRITE,
        "r" => Perm::READ,
        "w" => Perm::WRITE,
        other => bail!("--perm {other:?} is not one of rw, r, w"),
    };
    Ok(Perm::from_bits("--perm", bits)?)
}

/// `--message-type`, with the choices in the error.
fn parse_message_type(name: &str) -> Result<mq_common::MessageType, String> {
    mq_common::MessageType::parse("--message-type", name).map_err(|e| e.to_string())
}
