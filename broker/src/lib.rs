//! The broker: stores messages of every topic in one append-only CommitLog
//! on memory-mapped segment files, indexes them per queue (ConsumeQueue)
//! and by key (IndexFile), and serves producers over gRPC.
//!
//! Where to start reading:
//! - [`store`]: the storage engine, with [`store::MessageStore`] as its face;
//! - [`service`]: the gRPC edge (`mq.broker.v1.Broker`), one file per RPC family;
//! - [`topics`]: the topic table, persisted and reported to the nameservers;
//! - [`registry`]: registration and heartbeats with the nameservers;
//! - [`server`]: wiring it all up, standalone mode, graceful shutdown;
//! - [`config`]: layered configuration (defaults < TOML < env < flags).

pub mod atomic_file;
pub mod backpressure;
pub mod config;
pub mod consumer_groups;
pub mod consumer_offsets;
pub mod error;
pub mod metrics;
pub mod registry;
pub mod schedule;
pub mod server;
pub mod service;
pub mod stats;
pub mod store;
pub mod topics;
