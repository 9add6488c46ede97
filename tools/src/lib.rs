//! The command-line tools of the queue. `mqbench` drives a cluster the way
//! users do, through the SDKs, and checks with its verify logs that no
//! acknowledged message was lost. `mqhealth` is the health check that
//! container images run.

pub mod admin;
pub mod bench;
pub mod health;
