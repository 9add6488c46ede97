//! The nameserver: the route registry of the queue.
//!
//! Brokers register with every nameserver and heartbeat; a broker not heard
//! from within `broker_expire` is dropped from every route. Clients ask any
//! nameserver which brokers serve a topic. Nameservers share nothing, so
//! several run side by side for availability. Depends on `mq-common` and
//! `mq-proto`; knows nothing of how brokers store messages.
//!
//! Where to start reading:
//! - [`route_table`]: the state, pure and clock-free, with its rules;
//! - [`service`]: the gRPC edge, validating requests into [`model`] types;
//! - [`server`]: listening, health, reflection, the expiry task, shutdown;
//! - [`auth_service`]: the cluster's users and policies, kept here;
//! - [`config`]: layered configuration (defaults < TOML < env < flags).

pub mod auth_service;
pub mod config;
pub mod error;
pub mod metrics;
pub mod model;
pub mod route_table;
pub mod server;
pub mod service;
mod wire;

pub use config::NameServerConfig;
pub use route_table::RouteTable;
pub use server::NameServer;
