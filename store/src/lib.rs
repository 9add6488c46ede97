//! The storage engine of the broker, as RocketMQ keeps `store` apart from
//! `broker`. It may depend on files, mappings and threads, never on gRPC
//! or on the broker (of ours only `mq-common`, for names and the clock):
//! the broker's services call it, and replication will live beside it.
//!
//! Messages of every topic are appended to ONE [`commitlog`], so writes
//! stay sequential however many topics and queues exist. A [`dispatch`]er
//! follows the CommitLog and fills a [`consume_queue`] per (topic, queue)
//! with fixed-size entries pointing into it. Flushing ([`flush`]) is sync
//! (group commit) or async. On open, recovery checks the CommitLog's tail
//! record by record from the [`checkpoint`] on, cuts off what a crash tore,
//! and replays the ConsumeQueues. Start at [`MessageStore`].

pub mod arrivals;
pub use mq_common::atomic_file;
pub mod checkpoint;
pub mod commitlog;
pub mod config;
pub mod consume_queue;
mod core;
pub mod dispatch;
pub mod durable;
pub mod env;
pub mod epochs;
pub mod error;
pub mod fences;
pub mod flush;
mod housekeeping;
pub mod index;
pub mod layout;
pub mod mapped_file;
pub mod message;
pub mod message_store;
pub mod open;
pub mod read;
pub mod read_limit;
pub mod retention;
pub mod segments;
pub mod sequences;
pub mod space;
pub mod truncate;
pub mod worker;

pub use commitlog::record::StoredProperties;
pub use config::{DiskFullPolicy, FlushMode, RecoveryMode, StoreConfig};
pub use error::StoreError;
pub use message::{MessageToStore, StoredMessage};
pub use message_store::{MessageStore, PutResult, PutStatus};
pub use open::OpenReport;
pub use read::{GetResult, GetStatus, MessageFilter, TagFilter};
pub use read_limit::ReadLimit;
