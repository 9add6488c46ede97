//! `broker`: parses flags, loads the layered configuration and runs the
//! broker until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use mq_broker::config::{Args, BrokerConfig};

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("broker: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = BrokerConfig::load(&args, std::env::vars())?;
    mq_common::telemetry::init(&config.log_level, config.log_format).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = mq_common::shutdown::signal()?;
        mq_broker::server::run(config, shutdown).await?;
        anyhow::Ok(())
    })
}
