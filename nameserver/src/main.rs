//! `nameserver`: parses flags, loads the layered configuration and runs the
//! nameserver until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use mq_nameserver::NameServer;
use mq_nameserver::config::{Args, NameServerConfig};

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nameserver: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = NameServerConfig::load(&args, std::env::vars())?;
    mq_common::telemetry::init(&config.log_level, config.log_format).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = mq_common::shutdown::signal()?;
        let server = NameServer::bind(config).await?;
        server.serve(shutdown).await?;
        anyhow::Ok(())
    })
}
