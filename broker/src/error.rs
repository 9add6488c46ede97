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
    /// An idempotent producer's retry of a send that is still being
    /// stored: its outcome is not known yet.
    #[error(
        "send {sequence} of producer {producer:016x} to {topic:?} queue {queue_id} is still being stored; retry shortly"
    )]
    SendInFlight {
        producer: u64,
        sequence: u64,
        topic: String,
        queue_id: u32,
    },
    /// An idempotent producer's send numbered below what the broker still
    /// remembers for it: stored or not, it cannot tell.
    #[error(
        "send {sequence} of producer {producer:016x} to {topic:?} queue {queue_id} is older than this broker remembers (sequences from {lowest} on, within idempotence_window): it may or may not be stored, so it is not stored again"
    )]
    SequenceForgotten {
        producer: u64,
        sequence: u64,
        topic: String,
        queue_id: u32,
        lowest: u64,
    },
    /// Too many idempotent producers are remembered to take another.
    #[error(
        "this broker remembers {limit} idempotent producer queues already (idempotence_max_windows); retry later"
    )]
    TooManyProducers { limit: usize },
    /// A transaction that cannot be ended as asked (ended already, being
    /// ended, or another group's).
    #[error("{0}")]
    Transaction(String),
    /// One failure of an append shared by several sends (`SendMany`).
    #[error(transparent)]
    Shared(std::sync::Arc<BrokerError>),
}

impl BrokerError {
    /// Whether the request stored nothing: every refusal but an append
    /// that failed part way (an I/O error) and a send still in flight.
    pub fn nothing_stored(&self) -> bool {
        match self {
            BrokerError::Shared(err) => err.nothing_stored(),
            BrokerError::SendInFlight { .. } => false,
            BrokerError::Store(store) => !matches!(
                store,
                StoreError::Io { .. }
                    | StoreError::Corrupted { .. }
                    | StoreError::Replication { .. }
            ),
            _ => true,
        }
    }
}

impl From<BrokerError> for Status {
    fn from(err: BrokerError) -> Status {
        let nothing_stored = err.nothing_stored();
        let mut status = status_of(&err);
        if nothing_stored {
            status.metadata_mut().insert(
                mq_common::message::NOTHING_STORED,
                tonic::metadata::MetadataValue::from_static("true"),
            );
        }
        status
    }
}

fn status_of(err: &BrokerError) -> Status {
    let message = err.to_string();
    match err {
        BrokerError::Shared(err) => status_of(err),
        BrokerError::InvalidArgument(_) => Status::invalid_argument(message),
        BrokerError::UnknownTopic(_) | BrokerError::UnknownGroup(_) | BrokerError::NoMessage(_) => {
            Status::not_found(message)
        }
        BrokerError::NoPermission { .. } => Status::permission_denied(message),
        BrokerError::ReadOnlyReplica { .. } | BrokerError::Transaction(_) => {
            Status::failed_precondition(message)
        }
        BrokerError::ReplicaNotConfirmed { .. } => Status::unavailable(message),
        BrokerError::SendInFlight { .. } => Status::aborted(message),
        BrokerError::SequenceForgotten { .. } => Status::out_of_range(message),
        BrokerError::Busy { .. }
        | BrokerError::PullBacklog { .. }
        | BrokerError::TooManyProducers { .. } => Status::resource_exhausted(message),
        BrokerError::Store(store) => match store {
            StoreError::MessageTooLarge { .. }
            | StoreError::BatchTooLarge { .. }
            | StoreError::EmptyBatch
            | StoreError::Record(mq_store::commitlog::record::RecordError::TooLong { .. }) => {
                Status::invalid_argument(message)
            }
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
