//! Signing our clients' calls: every gRPC client of the SDKs, tools and
//! servers goes through a [`SignedChannel`], which adds the signature
//! headers when it has credentials and passes calls through when not.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tonic::metadata::{Ascii, MetadataValue};
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
    /// The headers of the latest second: the signature covers only the
    /// date-time, which has second resolution, so every call within a
    /// second carries the same two values; computed once, cloned after.
    /// A std mutex: held for a comparison and two clones, never across
    /// an await.
    latest: Arc<Mutex<Option<SignedSecond>>>,
}

#[derive(Debug)]
struct SignedSecond {
    second: u64,
    authorization: MetadataValue<Ascii>,
    date_time: MetadataValue<Ascii>,
}

impl Signer {
    /// Signs with `credentials`; `None` signs nothing.
    pub fn new(credentials: Option<&Credentials>) -> Self {
        Signer {
            credentials: credentials.cloned().map(Arc::new),
            latest: Arc::default(),
        }
    }

    /// The two headers for `now`, from the latest second's when it is
    /// the same second.
    fn headers(
        &self,
        credentials: &Credentials,
        now: SystemTime,
    ) -> Result<(MetadataValue<Ascii>, MetadataValue<Ascii>), Status> {
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(signed) = latest.as_ref().filter(|s| s.second == second) {
            return Ok((signed.authorization.clone(), signed.date_time.clone()));
        }
        let (authorization, date_time) = signature::headers(credentials, now);
        // Both are ASCII by construction (a checked access key, hex, digits).
        let value = |s: String| {
            MetadataValue::try_from(s)
                .map_err(|_| Status::invalid_argument("the access key is not ASCII"))
        };
        let signed = SignedSecond {
            second,
            authorization: value(authorization)?,
            date_time: value(date_time)?,
        };
        let headers = (signed.authorization.clone(), signed.date_time.clone());
        *latest = Some(signed);
        Ok(headers)
    }
}

impl Interceptor for Signer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(credentials) = &self.credentials else {
            return Ok(request);
        };
        let (authorization, date_time) = self.headers(credentials, SystemTime::now())?;
        let metadata = request.metadata_mut();
        metadata.insert(signature::AUTHORIZATION, authorization);
        metadata.insert(signature::DATE_TIME, date_time);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_signs_once_and_the_next_second_signs_anew() {
        let credentials = Credentials::new("alice", "pw");
        let signer = Signer::new(Some(&credentials));
        let at = |ms: u64| UNIX_EPOCH + std::time::Duration::from_millis(ms);
        let first = signer.headers(&credentials, at(1_700_000_000_100)).unwrap();
        let same = signer.headers(&credentials, at(1_700_000_000_900)).unwrap();
        assert_eq!(first, same);
        let next = signer.headers(&credentials, at(1_700_000_001_000)).unwrap();
        assert_ne!(next.1, first.1, "a new second carries its own date-time");
        for ((authorization, date_time), ms) in
            [(first, 1_700_000_000_100), (next, 1_700_000_001_000)]
        {
            let text = |v: &MetadataValue<Ascii>| v.to_str().unwrap().to_owned();
            assert_eq!(
                (text(&authorization), text(&date_time)),
                signature::headers(&credentials, at(ms))
            );
        }
    }

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
