//! `nameserver`: parses flags, loads the layered configuration and runs the
//! nameserver until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use mq_nameserver::NameServer;
use mq_nameserver::config::{Args, NameServerConfig};

fn main() -> ExitCode {
    let args = Args::parse();
    mq_common::shutdown::run_main(
        "nameserver",
        || {
            let config = NameServerConfig::load(&args, std::env::vars())?;
            mq_common::telemetry::init(&config.log_level, config.log_format)?;
            Ok(config)
        },
        |config, shutdown| async move {
            NameServer::bind(config).await?.serve(shutdown).await?;
            Ok(())
        },
    )
}
