//! Rules that servers and clients must agree on: what a legal topic, cluster
//! or broker name is, what the permission bits mean, and the bounds on queue
//! counts. Checking them in one place means a client can refuse bad input
//! before it crosses the network, with the same message the server would give.
//!
//! With the `server` feature it also carries the start-up kit every binary
//! shares: logging set-up ([`telemetry`]), the shutdown signal
//! ([`shutdown`]), gRPC serving with health and reflection ([`grpc`]) and
//! connection limits ([`incoming`]).
//!
//! Also here: the broker's own topic names ([`system_topics`]), message flag
//! bits and property names ([`message`]), and the one clock ([`clock`]).
//! Without `server` it does no I/O; it depends on nothing of ours but
//! `mq-proto` (for reflection).

#[cfg(feature = "atomic-file")]
pub mod atomic_file;
pub mod clock;
#[cfg(feature = "compression")]
pub mod compression;
pub mod http2;
pub mod message;
pub mod message_id;
pub mod message_type;
pub mod offset_id;
pub mod perm;
pub mod receipt_handle;
pub mod system_topics;
pub mod validate;

#[cfg(feature = "server")]
pub mod grpc;
#[cfg(feature = "server")]
pub mod incoming;
#[cfg(feature = "server")]
pub mod metrics_http;
#[cfg(feature = "server")]
pub mod shutdown;
#[cfg(feature = "server")]
pub mod telemetry;
#[cfg(feature = "server")]
pub mod tls;

pub use message_type::MessageType;
pub use perm::Perm;

pub use system_topics::AUTO_CREATE_TOPIC;
pub use validate::FieldError;
