//! The nameserver's errors and their one translation into gRPC statuses.

use mq_common::FieldError;
use thiserror::Error;
use tonic::Status;

use crate::route_table::RouteError;

/// Why a nameserver request failed.
#[derive(Debug, Error)]
pub enum NameServerError {
    /// A field of the request breaks a rule.
    #[error(transparent)]
    InvalidArgument(#[from] FieldError),
    /// The route table refused the request.
    #[error(transparent)]
    Route(#[from] RouteError),
}

impl From<NameServerError> for Status {
    fn from(err: NameServerError) -> Status {
        let message = err.to_string();
        match err {
            NameServerError::InvalidArgument(_) => Status::invalid_argument(message),
            NameServerError::Route(RouteError::UnknownTopic(_)) => Status::not_found(message),
            NameServerError::Route(RouteError::ClusterConflict { .. }) => {
                Status::failed_precondition(message)
            }
            NameServerError::Route(RouteError::SlotTaken { .. }) => Status::already_exists(message),
        }
    }
}
