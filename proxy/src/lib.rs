//! The proxy: Apache RocketMQ 5's gRPC protocol (`apache.rocketmq.v2`,
//! spoken by the official clients of every language) translated to our
//! brokers. As in RocketMQ 5 it runs in two modes: inside each broker on a
//! port of its own (local mode, no extra hop), or as its own process in
//! front of a cluster (cluster mode). The protocol's handling lives here
//! once; a [`Backend`](backend::Backend) reaches the brokers, in-process or
//! over gRPC.
//!
//! Where to start reading:
//! - [`service`]: `MessagingService`, one handler per RPC; [`send`] and
//!   [`members`] (heartbeats, settings, group membership) behind it;
//! - [`backend`]: what the proxy needs of the brokers; [`cluster`]: the
//!   standalone proxy's, over gRPC (the broker has the local one);
//! - [`server`], [`config`]: the standalone `proxy` binary;
//! - [`consume`]: receiving (POP), acknowledging, changing invisible time;
//! - [`pull`]: the pull consumer's reads and offsets;
//! - [`message`]: messages translated both ways, with the send rules;
//! - [`route`]: routes as RocketMQ 5 clients expect them;
//! - [`settings`]: the answer to a client's settings (Telemetry);
//! - [`clients`]: the clients connected, for operators;
//! - [`status`]: failures as the protocol's status codes.

pub mod backend;
pub mod clients;
pub mod cluster;
pub mod config;
pub mod consume;
pub mod filter;
pub mod members;
pub mod message;
pub mod metrics;
pub mod pull;
pub mod route;
pub mod send;
pub mod server;
pub mod service;
pub mod settings;
pub mod status;
pub mod transaction;

pub use backend::Backend;
pub use service::MessagingProxy;
