//! `mqadmin`: the operator's command line, as RocketMQ's. Tables for
//! people, `--json` for scripts; every failure is one readable line on
//! stderr and a non-zero exit.

mod auth;
mod client;
mod cluster;
mod consumer;
mod controller;
mod message;
mod offset;
mod output;
mod topic;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use client::Admin;

/// Administers an mq cluster through its nameservers and brokers.
#[derive(Debug, Parser)]
#[command(name = "mqadmin", version)]
pub struct Cli {
    /// Nameserver addresses, ';'-separated.
    #[arg(
        long,
        global = true,
        env = "MQ_NAMESRV",
        default_value = "127.0.0.1:9876"
    )]
    pub namesrv: String,
    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub connect: crate::connect::ConnectArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Clusters and their brokers.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Topics: create, update, delete, list, route, status.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Consumer groups: progress and lag, connections.
    #[command(subcommand)]
    Consumer(consumer::ConsumerCommand),
    /// Consumer offsets: reset.
    #[command(subcommand)]
    Offset(offset::OffsetCommand),
    /// Messages: get by id, query by key, resend dead letters.
    #[command(subcommand)]
    Message(message::MessageCommand),
    /// Controllers (controller mode): status.
    #[command(subcommand)]
    Controller(controller::ControllerCommand),
    /// Broker groups (controller mode): switch-over.
    #[command(subcommand)]
    Broker(controller::BrokerCommand),
    /// Users (authentication): create, update, delete, list.
    #[command(subcommand)]
    User(auth::UserCommand),
    /// Access policies of users: create, update, delete, list.
    #[command(subcommand)]
    Acl(auth::AclCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Clusters, brokers, addresses, versions, last heartbeat and put/get rates.
    List,
}

/// Runs one command; the error is the line to print.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let admin = Admin::new(&cli.namesrv, cli.json, cli.connect.connector()?)?;
    match cli.command {
        Command::Cluster(ClusterCommand::List) => cluster::list(&admin).await,
        Command::Topic(command) => topic::run(&admin, command).await,
        Command::Consumer(command) => consumer::run(&admin, command).await,
        Command::Offset(command) => offset::run(&admin, command).await,
        Command::Message(command) => message::run(&admin, command).await,
        Command::User(command) => auth::user(&admin, command).await,
        Command::Acl(command) => auth::acl(&admin, command).await,
        Command::Controller(controller::ControllerCommand::Status(at)) => {
            controller::status(&at, &admin.connector, cli.json).await
        }
        Command::Broker(controller::BrokerCommand::ElectMaster {
            at,
            broker_name,
            broker_id,
            timeout,
            force,
        }) => {
            let switch = controller::SwitchOver {
                broker_name: &broker_name,
                broker_id,
                timeout,
                force,
            };
            controller::elect_master(&at, &admin.connector, switch, cli.json).await
        }
    }
}

/// Parses, runs and maps the outcome to an exit code and one line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mqadmin: error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the context chain joined, newlines folded.
            let line = format!("{err:#}").replace('\n', " ");
            eprintln!("mqadmin: error: {line}");
            ExitCode::FAILURE
        }
    }
}
