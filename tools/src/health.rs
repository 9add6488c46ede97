//! `mqhealth`: asks a server's gRPC health service whether it is serving,
//! for container health checks (Docker's HEALTHCHECK runs a command; the
//! image carries no grpcurl). Kubernetes calls the same service with its
//! built-in gRPC probes.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Exit 0 when the server at ADDR reports SERVING, 1 otherwise (with one
/// line saying why).
#[derive(Debug, Parser)]
#[command(name = "mqhealth", version)]
pub struct Cli {
    /// Server address, host:port.
    pub addr: String,
    /// Service to ask about; empty means the server as a whole.
    #[arg(long, default_value = "")]
    pub service: String,
    /// Give up after this long (for example 500ms, 2s).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub connect: crate::connect::ConnectArgs,
}

/// Why a server is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("{addr}: not a host:port address: {reason}")]
    Address { addr: String, reason: String },
    #[error("{addr}: unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("{addr}: health check failed: {status}")]
    Failed { addr: String, status: String },
    #[error("{addr}: service {service:?} is {status:?}")]
    NotServing {
        addr: String,
        service: String,
        status: ServingStatus,
    },
}

/// Checks `cli.addr` once.
pub async fn check(cli: &Cli) -> Result<(), HealthError> {
    let addr = cli.addr.clone();
    let connector = cli.connect.connector().map_err(|e| HealthError::Address {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let endpoint = connector
        .endpoint(&addr)
        .map_err(|e| HealthError::Address {
            addr: addr.clone(),
            reason: e.to_string(),
        })?
        .connect_timeout(cli.timeout)
        .timeout(cli.timeout);
    let channel = connector
        .connect(&endpoint)
        .await
        .map_err(|e| HealthError::Unreachable {
            addr: addr.clone(),
            reason: source_chain(&e),
        })?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: cli.service.clone(),
        })
        .await
        .map_err(|status| HealthError::Failed {
            addr: addr.clone(),
            status: status.message().to_owned(),
        })?;
    let status =
        ServingStatus::try_from(response.into_inner().status).unwrap_or(ServingStatus::Unknown);
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        Err(HealthError::NotServing {
            addr,
            service: cli.service.clone(),
            status,
        })
    }
}

/// Runs the check and turns the outcome into an exit code and one line.
pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mqhealth: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(check(&cli)) {
        Ok(()) => {
            println!("SERVING");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("mqhealth: {err}");
            ExitCode::FAILURE
        }
    }
}

/// "transport error: connection refused", not just "transport error".
fn source_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
