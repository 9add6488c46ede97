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
            let Some(controller) = config.controller()? else {
                NameServer::bind(config).await?.serve(shutdown).await?;
                return Ok(());
            };
            // With an embedded controller: both stop on the one signal.
            let (stop_tx, stop) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            });
            let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let nameserver = NameServer::bind(config).await?;
            // One set of users and policies for both.
            let auth = Some(nameserver.auth());
            let (served, controlled) = tokio::join!(
                nameserver.serve(stopped(stop.clone())),
                mq_controller::server::run_with_auth(controller, auth, stopped(stop)),
            );
            served?;
            controlled?;
            Ok(())
        },
    )
}
