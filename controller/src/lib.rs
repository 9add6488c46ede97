//! The controller (RocketMQ 5's controller mode): per broker group it holds
//! the members, the master, the master's epoch and the SyncStateSet (the
//! replicas in sync with the master), and elects a new master from the
//! SyncStateSet when the master dies. Its state is replicated by Raft; this
//! crate's [`state`] is the deterministic state machine every controller
//! applies the same commands to, in the Raft log's order.
//!
//! [`raft`] keeps the Raft log and snapshots on disk for openraft (no
//! home-made consensus). May depend on `mq-store` for its atomic file
//! writes, nothing else of ours: brokers and the nameserver will talk to it
//! over gRPC.

pub mod liveness;
pub mod raft;
pub mod state;
