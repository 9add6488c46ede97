//! Signing our clients' calls: every gRPC client of the SDKs, tools and
//! servers goes through a [`SignedChannel`], which adds the signature
//! headers when it has credentials and passes calls through when not.

use std::sync::Arc;
use std::time::SystemTime;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::credentials::Credentials;
use crate::signature;

/// A channel whose calls are signed with the given credentials, if any.
pub type SignedChannel = InterceptedService<Channel, Signer>;

/// Signs `channel`'s calls with `credentials` (none: unsigned).
pub fn signed(channel: Channel, credentials: Option<&Credentials>) -> SignedChannel {
    InterceptedService::new(channel, Signer::new(credentials))
}

/// The interceptor that adds `authorization` and `x-mq-date-time`.
#[derive(Debug, Clone, Default)]
pub struct Signer {
    credentials: Option<Arc<Credentials>>,
}

impl Signer {
    /// Signs with `credentials`; `None` signs nothing.
    pub fn new(credentials: Option<&Credentials>) -> Self {
        Signer {
            credentials: credentials.cloned().map(Arc::new),
        }
    }
}

impl Interceptor for Signer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(credentials) = &self.credentials else {
            return Ok(request);
        };
        let (authorization, date_time) = signature::headers(credentials, SystemTime::now());
        let metadata = request.metadata_mut();
        // Both are ASCII by construction (a checked access key, hex, digits).
        let value = |s: String| {
            MetadataValue::try_from(s)
                .map_err(|_| Status::invalid_argument("the access key is not ASCII"))
        };
        metadata.insert(signature::AUTHORIZATION, value(authorization)?);
        metadata.insert(signature::DATE_TIME, value(date_time)?);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_carry_a_verifiable_signature_only_with_credentials() {
        let mut unsigned = Signer::new(None);
        let request = unsigned.call(Request::new(())).unwrap();
        assert!(request.metadata().get(signature::AUTHORIZATION).is_none());

        let credentials = Credentials::new("alice", "pw");
        let mut signer = Signer::new(Some(&credentials));
        let request = signer.call(Request::new(())).unwrap();
        let header = request.metadata().get(signature::AUTHORIZATION).unwrap();
        let date_time = request.metadata().get(signature::DATE_TIME).unwrap();
        let claim = signature::parse_authorization(header.to_str().unwrap()).unwrap();
        assert_eq!(claim.access_key, "alice");
        assert!(claim.signed_with("pw", date_time.to_str().unwrap()));
    }
}
