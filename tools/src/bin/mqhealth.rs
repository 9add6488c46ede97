//! `mqhealth`: gRPC health check for containers. See `mqhealth --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    mq_tools::health::main(mq_tools::health::Cli::parse())
}
