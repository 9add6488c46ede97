//! `proxy`: parses flags, loads the layered configuration and serves
//! RocketMQ 5's protocol in front of a cluster until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use mq_proxy::config::{Args, ProxyConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    mq_common::shutdown::run_main(
        "proxy",
        || {
            let config = ProxyConfig::load(&args, std::env::vars())?;
            mq_common::telemetry::init(&config.log_level, config.log_format)?;
            Ok(config)
        },
        |config, shutdown| async move {
            mq_proxy::server::run(config, shutdown).await?;
            Ok(())
        },
    )
}
