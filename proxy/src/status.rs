//! Failures as RocketMQ 5 clients expect them: a `Status` with one of the
//! protocol's codes in the response, not a gRPC error (the official
//! clients read `status.code`; a gRPC error is for a broken transport).

use mq_proto::apache::rocketmq::v2::{Code, Status};

/// The status of a request that went well.
pub fn ok() -> Status {
    Status {
        code: Code::Ok as i32,
        message: "OK".to_owned(),
    }
}

/// A failure with the protocol's `code` and a message that says what is
/// wrong.
pub fn failed(code: Code, message: impl Into<String>) -> Status {
    Status {
        code: code as i32,
        message: message.into(),
    }
}

/// A refusal from a broker or the nameservers (gRPC status) in the
/// protocol's terms.
pub fn from_grpc(status: &tonic::Status) -> Status {
    let code = match status.code() {
        tonic::Code::Ok => Code::Ok,
        tonic::Code::NotFound => Code::TopicNotFound,
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => Code::BadRequest,
        tonic::Code::PermissionDenied => Code::Forbidden,
        tonic::Code::Unauthenticated => Code::Unauthorized,
        tonic::Code::ResourceExhausted => Code::TooManyRequests,
        tonic::Code::FailedPrecondition => Code::PreconditionFailed,
        tonic::Code::DeadlineExceeded => Code::ProxyTimeout,
        tonic::Code::Unimplemented => Code::NotImplemented,
        _ => Code::InternalServerError,
    };
    failed(code, status.message())
}

/// What a request-level failure carries: the code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub Status);

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal(failed(code, message))
    }

    pub fn code(&self) -> Code {
        Code::try_from(self.0.code).unwrap_or(Code::InternalServerError)
    }
}

impl From<tonic::Status> for Refusal {
    fn from(status: tonic::Status) -> Refusal {
        Refusal(from_grpc(&status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_refusals_keep_their_message_under_the_protocols_code() {
        let status = from_grpc(&tonic::Status::not_found("topic \"t\" does not exist"));
        assert_eq!(status.code, Code::TopicNotFound as i32);
        assert_eq!(status.message, "topic \"t\" does not exist");
        let status = from_grpc(&tonic::Status::permission_denied("no"));
        assert_eq!(status.code, Code::Forbidden as i32);
        let status = from_grpc(&tonic::Status::resource_exhausted("busy"));
        assert_eq!(status.code, Code::TooManyRequests as i32);
    }
}
