//! `mqbench`: load generator and verifier. See `mqbench --help`.

use std::process::ExitCode;

use clap::Parser;

// glibc malloc cost about a tenth of the CPU on the send path (profiled in
// BENCHMARKS.md); mimalloc keeps per-thread free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = mq_tools::bench::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mqbench: error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(mq_tools::bench::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mqbench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
