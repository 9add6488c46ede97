//! `broker`: parses flags, loads the layered configuration and runs the
//! broker until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use mq_broker::config::{Args, BrokerConfig};

fn main() -> ExitCode {
    let args = Args::parse();
    mq_common::shutdown::run_main(
        "broker",
        || {
            let config = BrokerConfig::load(&args, std::env::vars())?;
            mq_common::telemetry::init(&config.log_level, config.log_format)?;
            Ok(config)
        },
        |config, shutdown| async move {
            mq_broker::server::run(config, shutdown).await?;
            Ok(())
        },
    )
}
