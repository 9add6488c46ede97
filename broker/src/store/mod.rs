//! The storage engine.
//!
//! Messages of every topic are appended to ONE [`commitlog`], so writes
//! stay sequential however many topics and queues exist. A dispatcher
//! follows the CommitLog and fills a [`consume_queue`] per (topic, queue)
//! with fixed-size entries pointing into it. Flushing ([`flush`]) is sync
//! (group commit) or async. On start, recovery checks the CommitLog's tail
//! record by record and cuts off what a crash tore.

pub mod commitlog;
pub mod config;
pub mod consume_queue;
pub mod error;
pub mod flush;
pub mod mapped_file;
pub mod message;
pub mod segments;

pub use config::{FlushMode, StoreConfig};
pub use error::StoreError;
pub use message::{MessageToStore, StoredMessage};
