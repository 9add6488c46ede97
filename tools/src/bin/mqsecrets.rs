//! `mqsecrets`: makes a secured cluster's certificates and administrator secret. See `mqsecrets --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    mq_tools::secrets::main()
}
