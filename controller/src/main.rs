//! `controller`: parses flags, loads the layered configuration and runs a
//! controller until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use mq_controller::config::{Args, ControllerConfig};

fn main() -> ExitCode {
    let args = Args::parse();
    mq_common::shutdown::run_main(
        "controller",
        || {
            let config = ControllerConfig::load(&args, std::env::vars())?;
            mq_common::telemetry::init(&config.log_level, config.log_format)?;
            Ok(config)
        },
        |config, shutdown| async move {
            mq_controller::server::run(config, shutdown).await?;
            Ok(())
        },
    )
}
