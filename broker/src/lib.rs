//! The broker: serves producers and consumers over gRPC, on the storage
//! engine of the `mq-store` crate (one append-only CommitLog of every
//! topic, indexed per queue and by key). Depends on `mq-store`,
//! `mq-nameserver` (standalone mode), `mq-nameserver-client`, `mq-common`
//! and `mq-proto`; nothing depends on it.
//!
//! Where to start reading:
//! - `mq_store` (its own crate): the storage engine, with `MessageStore`
//!   as its face;
//! - [`service`]: the gRPC edge (`mq.broker.v1.Broker`), one file per RPC family;
//! - [`topic_table`]: the topic table, persisted and reported to the nameservers;
//! - [`registry`]: registration and heartbeats with the nameservers;
//! - [`server`]: wiring it all up, standalone mode, graceful shutdown;
//! - [`config`]: layered configuration (defaults < TOML < env < flags).

pub mod backpressure;
pub mod config;
pub mod consumer_groups;
pub mod consumer_offsets;
pub mod error;
pub mod metrics;
pub mod pop;
pub mod proxy_local;
pub mod registry;
pub mod replication;
pub mod schedule;
pub mod server;
pub mod service;
pub mod topic_table;
pub mod transaction;
