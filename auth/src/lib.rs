//! Who may do what.
//!
//! Clients sign every request the way RocketMQ 5's official clients do
//! ([`signature`]): an HMAC-SHA1, keyed by the user's secret, over the
//! request's `x-mq-date-time`, in the `authorization` header. The secret
//! itself never crosses the wire; a captured header is useless once the
//! servers' clock-skew window has passed. [`client`] signs the calls of our
//! SDKs and tools.
//!
//! With the `server` feature: the users and access policies
//! ([`model`], [`snapshot`]), the decision for one request ([`authorize`]),
//! the check every service runs before its handler ([`guard`]), the
//! durable, versioned copy each server keeps ([`store`]), the settings
//! ([`settings`]) and the audit log ([`audit`]). Where the truth lives and
//! how a change reaches every server: docs/architecture.md, "Security".

mod buffered_tcp;
pub mod client;
pub mod connector;
pub mod credentials;
pub mod secret;
pub mod signature;

#[cfg(feature = "server")]
pub mod audit;
#[cfg(feature = "server")]
pub mod authorize;
#[cfg(feature = "server")]
pub mod guard;
#[cfg(feature = "server")]
pub mod model;
#[cfg(feature = "server")]
pub mod settings;
#[cfg(feature = "server")]
pub mod snapshot;
#[cfg(feature = "server")]
pub mod store;

pub use connector::{ClientTls, ConnectError, Connector};
pub use credentials::Credentials;
pub use secret::Secret;
