//! The controller (RocketMQ 5's controller mode): per broker group it holds
//! the members, the master, the master's epoch and the SyncStateSet (the
//! replicas in sync with the master), and elects a new master from the
//! SyncStateSet when the master dies. Its state is replicated by Raft; this
//! crate's [`state`] is the deterministic state machine every controller
//! applies the same commands to, in the Raft log's order.
//!
//! [`raft`] keeps the Raft log and snapshots on disk for openraft (no
//! home-made consensus); [`leader`] is what the Raft leader does (hear
//! brokers, propose elections); [`handover`] an operator's graceful
//! switch-over; [`service`] is the gRPC API brokers and
//! operators call, and [`client`] the side they call it with. May depend
//! on `mq-store` (atomic file writes), `mq-common` and `mq-proto`.

pub mod client;
pub mod config;
pub mod handover;
pub mod leader;
pub mod liveness;
pub mod metrics;
pub mod raft;
pub mod server;
pub mod service;
pub mod state;
