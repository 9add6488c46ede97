//! What can go wrong when talking to nameservers.

use thiserror::Error;
use tonic::Code;

/// A failed call to the nameservers.
#[derive(Debug, Clone, Error)]
pub enum NameServerClientError {
    #[error("no nameserver address given")]
    NoAddress,
    #[error("invalid nameserver address {addr:?}: {reason}")]
    InvalidAddress { addr: String, reason: String },
    /// A nameserver answered and refused the request.
    #[error("nameserver {addr}: {message}")]
    Refused {
        addr: String,
        code: Code,
        message: String,
    },
    /// No nameserver could be reached.
    #[error("no nameserver reachable (tried {}); last error: {last}", tried.join(", "))]
    Unreachable { tried: Vec<String>, last: String },
}

impl NameServerClientError {
    /// The gRPC code of a refusal (`NotFound` for an unknown topic, ...),
    /// `Unavailable` when nothing answered.
    pub fn code(&self) -> Code {
        match self {
            NameServerClientError::NoAddress | NameServerClientError::InvalidAddress { .. } => {
                Code::InvalidArgument
            }
            NameServerClientError::Refused { code, .. } => *code,
            NameServerClientError::Unreachable { .. } => Code::Unavailable,
        }
    }
}
