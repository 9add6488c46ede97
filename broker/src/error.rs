//! The broker service's errors and their one translation into gRPC
//! statuses. Clients decide on retries by the code: UNAVAILABLE and
//! RESOURCE_EXHAUSTED are worth retrying (elsewhere), the others are not.

use mq_common::FieldError;
use mq_store::StoreError;
use thiserror::Error;
use tonic::Status;

use crate::topic_table::TopicTableError;

#[derive(Debug, Error)]
pub enum BrokerError {
    /// A field of the request breaks a rule.
    #[error(transparent)]
    InvalidArgument(#[from] FieldError),
    #[error("topic {0:?} does not exist on this broker (auto_create_topic is off)")]
    UnknownTopic(String),
    #[error("group {0:?} has no live member on this broker")]
    UnknownGroup(String),
    /// No message where the request says one is.
    #[error("{0}")]
    NoMessage(String),
    #[error("topic {topic:?} is not {what} on this broker (perm {perm})")]
    NoPermission {
        topic: String,
        what: &'static str,
        perm: String,
    },
    /// More sends are queued than the store keeps up with: retry later.
    #[error(
        "broker busy: {queued_bytes} bytes of sends already wait for the store (limit {limit}); retry later"
    )]
    Busy { queued_bytes: u64, limit: u64 },
    /// A client asks for more while responses it has not read hold memory.
    #[error(
        "{held} bytes of pull responses to this client are not read yet (limit {limit}; {total} in flight to all clients): read them first, or pull fewer bytes"
    )]
    PullBacklog { held: u64, limit: u64, total: u64 },
    /// A write sent to a replica.
    #[error(
        "this broker is replica {id} of {broker_name} and takes no writes; send to its master at {master_addr}"
    )]
    ReadOnlyReplica {
        broker_name: String,
        id: u64,
        master_addr: String,
    },
    /// A read from a replica whose log its master has not yet confirmed.
    #[error(
        "replica {id} of {broker_name} serves no reads until its master confirms its log (it may hold a tail the group never had); read from the master"
    )]
    ReplicaNotConfirmed { broker_name: String, id: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Topics(#[from] TopicTableError),
    /// The POP book could not be written: nothing changed.
    #[error("POP book: {0}")]
    PopBook(std::io::Error),
    /// A transaction that cannot be ended as asked (ended already, being
    /// ended, or another group's).
    #[error("{0}")]
    Transaction(String),
}

impl From<BrokerError> for Status {
    fn from(err: BrokerError) -> Status {
        let message = err.to_string();
        match err {
            BrokerError::InvalidArgument(_) => Status::invalid_argument(message),
            BrokerError::UnknownTopic(_)
            | BrokerError::UnknownGroup(_)
            | BrokerError::NoMessage(_) => Status::not_found(message),
            BrokerError::NoPermission { .. } => Status::permission_denied(message),
            BrokerError::ReadOnlyReplica { .. } | BrokerError::Transaction(_) => {
                Status::failed_precondition(message)
            }
            BrokerError::ReplicaNotConfirmed { .. } => Status::unavailable(message),
            BrokerError::Busy { .. } | BrokerError::PullBacklog { .. } => {
                Status::resource_exhausted(message)
            }
            BrokerError::Store(store) => match store {
                StoreError::MessageTooLarge { .. }
                | StoreError::BatchTooLarge { .. }
                | StoreError::EmptyBatch
                | StoreError::Record(mq_store::commitlog::record::RecordError::TooLong {
                    ..
                }) => Status::invalid_argument(message),
                // Another broker may well take it: retryable.
                StoreError::DiskFull { .. }
                | StoreError::NoSpace { .. }
                | StoreError::Behind { .. }
                | StoreError::Sealed
                | StoreError::Closed => Status::unavailable(message),
                _ => Status::internal(message),
            },
            BrokerError::Topics(_) | BrokerError::PopBook(_) => Status::internal(message),
        }
    }
}
