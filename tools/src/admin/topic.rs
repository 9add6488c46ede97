//! `mqadmin topic ...`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mq_common::{Perm, validate};
use mq_nameserver_client::NameServerClient;
use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Creates (or updates) a topic on every master of a cluster, or on one broker.
    Create(CreateArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("where").required(true).args(["cluster", "broker"]))]
pub struct CreateArgs {
    #[arg(long)]
    pub topic: String,
    /// Queues per broker (read and write).
    #[arg(long, default_value_t = 8)]
    pub queues: u32,
    /// Permission: rw, r or w.
    #[arg(long, default_value = "rw")]
    pub perm: String,
    /// Every master broker of this cluster, as the nameservers know them.
    #[arg(long)]
    pub cluster: Option<String>,
    /// One broker, host:port.
    #[arg(long)]
    pub broker: Option<String>,
}

pub async fn run(namesrv: &str, command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create(args) => create(namesrv, args).await,
    }
}

async fn create(namesrv: &str, args: CreateArgs) -> anyhow::Result<()> {
    validate::topic("--topic", &args.topic)?;
    validate::queue_count("--queues", args.queues)?;
    let perm = parse_perm(&args.perm)?;
    let brokers = match (&args.cluster, &args.broker) {
        (_, Some(broker)) => {
            validate::host_port("--broker", broker)?;
            vec![(broker.clone(), broker.clone())]
        }
        (Some(cluster), None) => masters_of(namesrv, cluster).await?,
        (None, None) => bail!("give --cluster or --broker"),
    };
    for (name, addr) in brokers {
        let mut client = BrokerClient::connect(format!("http://{addr}"))
            .await
            .with_context(|| format!("broker {name} at {addr} is unreachable"))?;
        client
            .create_topic(pb::CreateTopicRequest {
                config: Some(pb::TopicConfig {
                    topic: args.topic.clone(),
                    read_queue_count: args.queues,
                    write_queue_count: args.queues,
                    perm: perm.bits(),
                }),
            })
            .await
            .map_err(|status| {
                anyhow::anyhow!("broker {name} at {addr} refused: {}", status.message())
            })?;
        println!(
            "created topic {} with {} queues on {name} ({addr})",
            args.topic, args.queues
        );
    }
    Ok(())
}

/// (broker name, master address) of every broker of `cluster`.
async fn masters_of(namesrv: &str, cluster: &str) -> anyhow::Result<Vec<(String, String)>> {
    let client = NameServerClient::from_list(namesrv)?;
    let info = client
        .cluster_info()
        .await
        .with_context(|| format!("nameserver {namesrv}"))?;
    let Some(found) = info.clusters.iter().find(|c| c.cluster_name == cluster) else {
        let known: Vec<_> = info
            .clusters
            .iter()
            .map(|c| c.cluster_name.as_str())
            .collect();
        bail!("no cluster {cluster:?} is registered (known: {known:?})");
    };
    let masters: Vec<_> = found
        .brokers
        .iter()
        .filter_map(|b| {
            b.instances
                .iter()
                .find(|i| i.broker_id == 0)
                .map(|i| (b.broker_name.clone(), i.address.clone()))
        })
        .collect();
    if masters.is_empty() {
        bail!("cluster {cluster:?} has no master broker");
    }
    Ok(masters)
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
