//! The command-line tools of the queue. `mqbench` drives a cluster the way
//! users do, through the SDKs, and checks with its verify logs that no
//! acknowledged message was lost. `mqhealth` is the health check that
//! container images run. Depends on the SDKs and `mq-common`, never on the
//! servers' crates.

pub mod admin;
pub mod bench;
pub mod connect;
pub mod health;
pub mod secrets;
