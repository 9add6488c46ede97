//! The producer SDK: link it into an application to send messages.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mq_producer::ProducerError> {
//! use mq_producer::{Message, Producer};
//! let producer = Producer::builder().namesrv("127.0.0.1:9876").build()?;
//! let result = producer.send(Message::new("orders", "hello").with_key("order-1")).await?;
//! println!("stored in queue {} at offset {}", result.queue_id, result.queue_offset);
//! # Ok(()) }
//! ```
//!
//! The send path, file by file: [`route_cache`] (routes from the
//! nameservers, cached and refreshed) -> [`selector`] (round-robin over
//! writable queues, skipping brokers in the [`fault`] table) ->
//! [`producer`] (latency bookkeeping, retries, compression via
//! [`compress`]) -> `lanes` (the gRPC call: alone when the broker's lane
//! has room, else together with the other waiting sends). Depends on `mq-common`, `mq-proto` and
//! `mq-nameserver-client`, never on the servers' crates.

mod accumulator;
pub mod compress;
pub mod error;
pub mod fault;
mod idempotence;
mod lanes;
pub mod message;
pub mod producer;
pub mod route;
pub mod route_cache;
pub mod selector;
pub mod transaction;

pub use error::ProducerError;
pub use fault::{FaultItem, FaultPolicy};
pub use message::{Delivery, Message, SendResult, SendStatus};
pub use mq_auth::{ClientTls, Connector, Credentials};
pub use producer::{Producer, ProducerBuilder, ProducerOptions};
pub use route::MessageQueue;
pub use transaction::{
    CheckedMessage, OrphanedTransaction, TransactionProducer, TransactionProducerBuilder,
    TransactionSent, TransactionState,
};
