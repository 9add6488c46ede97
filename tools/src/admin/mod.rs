//! `mqadmin`: the operator's command line. It starts with what a cluster
//! needs before anything can be sent (`topic create`); issue 9 grows it.
//!
//! Every failure is one readable line on stderr and a non-zero exit.

mod topic;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Topics: create.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
}

/// Runs one command; the error is the line to print.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Topic(command) => topic::run(&cli.namesrv, command).await,
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
            eprintln!("mqadmin: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
