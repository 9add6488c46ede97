//! The broker: stores messages of every topic in one append-only CommitLog on
//! memory-mapped segment files, indexes them per queue (ConsumeQueue) and by
//! key (IndexFile), and serves producers and consumers over gRPC.
//!
//! This crate is being built issue by issue: the storage engine comes first,
//! then the gRPC service with registration at the nameservers (through
//! `mq-nameserver-client`), then consumption. Nothing is exposed before it
//! works.

pub mod store;
