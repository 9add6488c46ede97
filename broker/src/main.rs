//! `broker`: parses flags, loads the layered configuration and runs the
//! broker until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use mq_broker::config::{Args, BrokerConfig};
use mq_broker::server::Stopped;

// glibc malloc cost about a tenth of the CPU on the send path (profiled in
// BENCHMARKS.md); mimalloc keeps per-thread free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    mq_common::shutdown::run_main(
        "broker",
        || {
            let config = BrokerConfig::load(&args, std::env::vars())?;
            mq_common::telemetry::init(&config.log_level, config.log_format)?;
            Ok(config)
        },
        |config, shutdown| async move {
            // One stop signal for every run: a replica restarts in its
            // process to apply a cut of its log (server::Stopped::Restart).
            let (stop_tx, stop) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            });
            let mut config = config;
            loop {
                let mut stop = stop.clone();
                let stopped = mq_broker::server::run(config.clone(), async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await?;
                match stopped {
                    Stopped::Shutdown => return Ok(()),
                    Stopped::Restart {
                        listen,
                        metrics_listen,
                    } => {
                        tracing::warn!("broker restarting in its process");
                        (config.listen, config.metrics_listen) = (listen, metrics_listen);
                    }
                }
            }
        },
    )
}
