//! Backpressure on sends: a budget of bytes accepted but not yet stored.
//! A send waits for room at most `max_wait`, then is refused as busy (a
//! retryable status), so that memory stays bounded when the store cannot
//! keep up. The limit is on bytes and on wait time, not on a fixed queue
//! delay: an idle disk never makes a send busy.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::BrokerError;

/// Permits are KiB, so that the budget fits a semaphore's u32 requests.
const UNIT: u64 = 1024;

#[derive(Debug, Clone)]
pub struct Backpressure {
    budget: Arc<Semaphore>,
    limit: u64,
    max_wait: Duration,
}

impl Backpressure {
    pub fn new(max_queued_bytes: u64, max_wait: Duration) -> Self {
        let units = (max_queued_bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        Backpressure {
            budget: Arc::new(Semaphore::new(units as usize)),
            limit: units * UNIT,
            max_wait,
        }
    }

    /// Room for `bytes` of sends, held until the permit is dropped.
    pub async fn admit(&self, bytes: usize) -> Result<OwnedSemaphorePermit, BrokerError> {
        let units = (bytes as u64).div_ceil(UNIT).clamp(1, self.limit / UNIT);
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        let acquire = Arc::clone(&self.budget).acquire_many_owned(units);
        match tokio::time::timeout(self.max_wait, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(BrokerError::Busy {
                queued_bytes: self.queued_bytes(),
                limit: self.limit,
            }),
        }
    }

    /// Bytes of sends admitted and not yet finished.
    pub fn queued_bytes(&self) -> u64 {
        self.limit - self.budget.available_permits() as u64 * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sends_wait_for_room_and_are_refused_as_busy_after_the_wait() {
        let pressure = Backpressure::new(10 * 1024, Duration::from_millis(30));
        let first = pressure.admit(8 * 1024).await.unwrap();
        assert_eq!(pressure.queued_bytes(), 8 * 1024);
        let began = tokio::time::Instant::now();
        let err = pressure.admit(4 * 1024).await.unwrap_err();
        assert!(
            matches!(err, BrokerError::Busy { limit: 10240, .. }),
            "{err}"
        );
        assert_eq!(began.elapsed(), Duration::from_millis(30), "it waited");

        // Room freed within the wait lets the waiting send in.
        let waiting = {
            let pressure = pressure.clone();
            tokio::spawn(async move { pressure.admit(4 * 1024).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiting.await.unwrap(), "admitted once room was freed");

        // A send larger than the whole budget still gets in, alone.
        let _huge = pressure.admit(1 << 20).await.unwrap();
        assert_eq!(pressure.queued_bytes(), 10 * 1024);
    }
}
