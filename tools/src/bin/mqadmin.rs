//! `mqadmin`: administers a cluster. See `mqadmin --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    mq_tools::admin::main()
}
