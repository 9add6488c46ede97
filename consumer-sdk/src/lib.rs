//! The consumer SDK: link it into an application to consume messages.
//!
//! - [`PushConsumer`]: subscribe, register a handler; the SDK pulls (long
//!   polling), caches, calls the handler concurrently or in queue order,
//!   and commits offsets.
//! - [`PullConsumer`]: subscribe (or assign queues), then `poll()` batches;
//!   commit automatically or by hand; seek.
//!
//! Consumers of one group share the queues of their topics (clustering,
//! the default) through an [`allocate`] strategy, rebalancing when the
//! group changes; or each gets everything (broadcasting). The machinery
//! both share is in [`engine`]. Depends on `mq-common`, `mq-proto` and
//! `mq-nameserver-client`, never on the servers' crates.

pub mod allocate;
mod builder;
pub mod cluster;
pub mod engine;
pub mod error;
pub mod message;
pub mod offset_store;
pub mod pull_consumer;
pub mod push_consumer;
pub mod queue;

pub use engine::ConsumeFrom;
pub use error::ConsumerError;
pub use message::{ConsumeResult, ReceivedMessage};
pub use mq_auth::{ClientTls, Connector, Credentials};
pub use pull_consumer::{PullConsumer, PullConsumerBuilder};
pub use push_consumer::{ConsumeMode, PushConsumer, PushConsumerBuilder};
pub use queue::MessageQueue;
