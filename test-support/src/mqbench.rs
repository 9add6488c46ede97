//! The verifiable clients from tests: `mqbench consume` of a whole topic
//! and `mqbench verify` of what was acknowledged against what was read.

use std::path::Path;
use std::process::ExitStatus;

use crate::{run_to_end, workspace_binary};

/// Runs `mqbench` to its end: its status, stdout and stderr.
pub fn run(args: &[&str]) -> (ExitStatus, String, String) {
    run_to_end(workspace_binary("mqbench"), args, &[])
}

/// Reads `topic` from its first message as `group` until nothing arrives
/// for 3 s (60 s at most), logging every message to `log`; panics with
/// mqbench's output if it fails.
pub fn consume_all(namesrv: &str, topic: &str, group: &str, log: &Path) {
    let (status, out, err) = run(&[
        "consume",
        "--namesrv",
        namesrv,
        "--topic",
        topic,
        "--group",
        group,
        "--from-first",
        "--idle",
        "3",
        "--timeout",
        "60",
        "--verify-log",
        log.to_str().unwrap_or_default(),
    ]);
    assert!(status.success(), "mqbench consume: {out}\n{err}");
}

/// `mqbench verify PRODUCED CONSUMED`: its status (a failure when an
/// acknowledged message was not read) and its report.
pub fn verify(produced: &Path, consumed: &Path) -> (ExitStatus, String) {
    let (status, out, _) = run(&[
        "verify",
        produced.to_str().unwrap_or_default(),
        consumed.to_str().unwrap_or_default(),
    ]);
    (status, out)
}
