//! The client side of the nameservers, shared by the broker (registration),
//! the producer and consumer SDKs (routes) and the admin tools.
//!
//! Nameservers share nothing, so a client holds a list of them. Queries go
//! to one nameserver at a time: the last one that answered, then the others
//! in turn when it cannot be reached. Writes that every nameserver must see
//! (broker registration, topic deletion) go to all of them.

mod addresses;
mod client;
mod error;

pub use addresses::parse_addresses;
pub use client::{ClientOptions, NameServerClient};
pub use error::NameServerClientError;
