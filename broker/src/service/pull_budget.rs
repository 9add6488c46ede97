//! A bound on the bytes of pull responses in flight, per client and in
//! total.
//!
//! A pull's response is encoded whole into memory and sits in the HTTP/2
//! send buffer until the client reads it. A client that stops reading
//! (stalled, or stopped) while asking for more would grow the broker's
//! memory without bound. So each response reserves its size from the
//! client's share and from the broker's total before it is sent, and gives
//! it back only once its body was written out or dropped (the client read
//! it, or its connection died): [`HoldUntilSent`] carries the reservation
//! from the response into its body.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::BrokerError;

/// Clients remembered before idle ones are forgotten.
const CLIENTS_KEPT: usize = 1024;

/// The broker's pull byte budget.
#[derive(Debug)]
pub struct PullBudget {
    total: Arc<Semaphore>,
    total_limit: u32,
    per_client: u32,
    /// Per client address. Entries of clients with nothing in flight are
    /// forgotten once many are kept.
    clients: DashMap<SocketAddr, Arc<Semaphore>>,
}

/// Bytes reserved for one response; given back when dropped.
#[derive(Debug)]
pub struct BytesInFlight {
    _total: OwnedSemaphorePermit,
    _client: Option<OwnedSemaphorePermit>,
}

/// A reservation carried in a response's extensions to [`HoldUntilSent`]
/// (extensions must be `Clone`).
#[derive(Debug, Clone)]
pub struct InFlight(pub Arc<BytesInFlight>);

impl PullBudget {
    /// At most `total` bytes in flight, `per_client` of them to one client.
    pub fn new(total: u64, per_client: u64) -> Self {
        let clamp = |bytes: u64| u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
        PullBudget {
            total: Arc::new(Semaphore::new(clamp(total) as usize)),
            total_limit: clamp(total),
            per_client: clamp(per_client),
            clients: DashMap::new(),
        }
    }

    /// Bytes of responses in flight now.
    pub fn in_flight(&self) -> u64 {
        u64::from(self.total_limit) - self.total.available_permits() as u64
    }

    /// Reserves `bytes` for a response to `client`, waiting at most
    /// `patience` for earlier responses to be read. A response larger than
    /// a whole share waits until it has the share to itself.
    pub async fn reserve(
        &self,
        client: Option<SocketAddr>,
        bytes: usize,
        patience: Duration,
    ) -> Result<BytesInFlight, BrokerError> {
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
        let share = client.map(|addr| self.share_of(addr));
        let reserve = async {
            let client = match &share {
                Some(share) => Some(
                    Arc::clone(share)
                        .acquire_many_owned(bytes.min(self.per_client))
                        .await
                        .ok()?,
                ),
                None => None,
            };
            let total = Arc::clone(&self.total)
                .acquire_many_owned(bytes.min(self.total_limit))
                .await
                .ok()?;
            Some(BytesInFlight {
                _total: total,
                _client: client,
            })
        };
        match tokio::time::timeout(patience, reserve).await {
            Ok(Some(reserved)) => Ok(reserved),
            _ => {
                let (held, limit) = match &share {
                    Some(share) => (
                        u64::from(self.per_client) - share.available_permits() as u64,
                        u64::from(self.per_client),
                    ),
                    None => (self.in_flight(), u64::from(self.total_limit)),
                };
                Err(BrokerError::PullBacklog {
                    held,
                    limit,
                    total: self.in_flight(),
                })
            }
        }
    }

    fn share_of(&self, client: SocketAddr) -> Arc<Semaphore> {
        if let Some(share) = self.clients.get(&client) {
            return Arc::clone(&share);
        }
        if self.clients.len() >= CLIENTS_KEPT {
            let full = self.per_client as usize;
            self.clients.retain(|_, share| {
                share.available_permits() < full || Arc::strong_count(share) > 1
            });
        }
        Arc::clone(
            &self
                .clients
                .entry(client)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_client as usize))),
        )
    }
}

/// Wraps the broker's gRPC service: a response carrying an [`InFlight`]
/// reservation keeps it until its body is written out or dropped.
#[derive(Debug, Clone)]
pub struct HoldUntilSent<S>(pub S);

impl<S: tonic::server::NamedService> tonic::server::NamedService for HoldUntilSent<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, Req> tower::Service<Req> for HoldUntilSent<S>
where
    S: tower::Service<Req, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let response = self.0.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            let Some(held) = response.extensions_mut().remove::<InFlight>() else {
                return Ok(response);
            };
            Ok(response.map(|body| tonic::body::Body::new(Holding { body, _held: held })))
        })
    }
}

/// A response body that holds its reservation until it is dropped.
struct Holding {
    body: tonic::body::Body,
    _held: InFlight,
}

impl http_body::Body for Holding {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_gets_its_share_and_no_more_until_it_reads() {
        let budget = PullBudget::new(1000, 100);
        let client: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let patience = Duration::from_millis(10);
        let first = budget.reserve(Some(client), 60, patience).await.unwrap();
        assert_eq!(budget.in_flight(), 60);
        let err = budget
            .reserve(Some(client), 60, patience)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("60 bytes of pull responses"),
            "{err}"
        );
        // Another client has a share of its own.
        let other: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let _second = budget.reserve(Some(other), 60, patience).await.unwrap();
        drop(first);
        let _third = budget.reserve(Some(client), 60, patience).await.unwrap();
        // Larger than a share: waits for the whole share, then goes alone.
        drop(_third);
        let _big = budget.reserve(Some(client), 500, patience).await.unwrap();
        assert_eq!(budget.in_flight(), 560);
    }

    #[tokio::test]
    async fn the_total_bounds_every_client_together() {
        let budget = PullBudget::new(100, 80);
        let patience = Duration::from_millis(10);
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let _a = budget.reserve(Some(a), 80, patience).await.unwrap();
        assert!(budget.reserve(Some(b), 80, patience).await.is_err());
        assert!(budget.reserve(Some(b), 20, patience).await.is_ok());
    }
}
