//! The client side of the nameservers, shared by the broker (registration),
//! the producer and consumer SDKs (routes) and the admin tools.
//!
//! Nameservers share nothing, so a client holds a list of them. Queries go
//! to the last one that answered, then to the others in turn when it cannot
//! be reached, or as well when it stays silent for 250 ms. Writes that
//! every nameserver must see (broker registration, topic deletion) go to
//! all of them. Depends on `mq-common` and `mq-proto`.

mod addresses;
#[cfg(feature = "auth-sync")]
pub mod auth_sync;
mod client;
mod error;

pub use addresses::parse_addresses;
pub use client::{ClientOptions, NameServerClient, Stubs};
pub use error::NameServerClientError;
