//! The command-line tools of the queue. `mqbench` drives a cluster the way
//! users do, through the SDKs, and checks with its verify logs that no
//! acknowledged message was lost.

pub mod bench;
