//! `nameserver`: parses flags, loads the layered configuration and runs the
//! nameserver until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use mq_nameserver::NameServer;
use mq_nameserver::config::{Args, NameServerConfig};

// glibc malloc cost about a tenth of the CPU on the send path (profiled in
// BENCHMARKS.md); mimalloc keeps per-thread free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
