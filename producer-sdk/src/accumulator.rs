//! Client-side batching, as Kafka producers do it: with a linger time set,
//! sends of one topic wait up to that long (or until `batch_bytes` pile
//! up) and go out together as one `SendBatch`; each send still gets its
//! own result.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};

use crate::error::ProducerError;
use crate::message::{Message, SendResult};

/// A send waiting for its batch.
pub(crate) type Waiter = oneshot::Sender<Result<SendResult, ProducerError>>;

#[derive(Debug)]
struct Pending {
    messages: Vec<(Message, Waiter)>,
    bytes: usize,
    since: Instant,
}

/// Sends waiting to be batched, by topic.
#[derive(Debug)]
pub(crate) struct Accumulator {
    linger: Duration,
    batch_bytes: usize,
    /// The most messages in one batch (the broker's limit per pull is the
    /// same order; a batch must also fit one CommitLog segment).
    batch_messages: usize,
    pending: Mutex<HashMap<String, Pending>>,
    /// Wakes the flusher when a batch is full.
    full: Notify,
}

impl Accumulator {
    pub fn new(linger: Duration, batch_bytes: usize) -> Self {
        Accumulator {
            linger,
            batch_bytes: batch_bytes.max(1),
            batch_messages: 256,
            pending: Mutex::new(HashMap::new()),
            full: Notify::new(),
        }
    }

    /// Queues a send; the returned receiver yields its result.
    pub fn push(&self, msg: Message) -> oneshot::Receiver<Result<SendResult, ProducerError>> {
        let (tx, rx) = oneshot::channel();
        let mut pending = self.lock();
        let entry = pending.entry(msg.topic.clone()).or_insert_with(|| Pending {
            messages: Vec::new(),
            bytes: 0,
            since: Instant::now(),
        });
        if entry.messages.is_empty() {
            entry.since = Instant::now();
        }
        entry.bytes += msg.body.len();
        entry.messages.push((msg, tx));
        if entry.bytes >= self.batch_bytes || entry.messages.len() >= self.batch_messages {
            self.full.notify_one();
        }
        rx
    }

    /// Waits until some batch is due (full, or older than the linger
    /// time), then takes every due batch.
    pub async fn due(&self) -> Vec<Vec<(Message, Waiter)>> {
        loop {
            let batches = self.take_due();
            if !batches.is_empty() {
                return batches;
            }
            let _ = tokio::time::timeout(self.linger, self.full.notified()).await;
        }
    }

    fn take_due(&self) -> Vec<Vec<(Message, Waiter)>> {
        let mut pending = self.lock();
        let now = Instant::now();
        let mut batches = Vec::new();
        for entry in pending.values_mut() {
            let due = !entry.messages.is_empty()
                && (entry.bytes >= self.batch_bytes
                    || entry.messages.len() >= self.batch_messages
                    || now.duration_since(entry.since) >= self.linger);
            if due {
                // Split by count and bytes: every batch holds at least one
                // message and stays near `batch_bytes`.
                let mut batch: Vec<(Message, Waiter)> = Vec::new();
                let mut bytes = 0;
                for (msg, waiter) in entry.messages.drain(..) {
                    let size = msg.body.len();
                    if !batch.is_empty()
                        && (batch.len() >= self.batch_messages || bytes + size > self.batch_bytes)
                    {
                        batches.push(std::mem::take(&mut batch));
                        bytes = 0;
                    }
                    bytes += size;
                    batch.push((msg, waiter));
                }
                batches.push(batch);
                entry.bytes = 0;
            }
        }
        batches
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_wait_for_the_linger_time_or_a_full_batch() {
        let accumulator = Accumulator::new(Duration::from_millis(30), 1000);
        let started = Instant::now();
        let _a = accumulator.push(Message::new("t", vec![0; 10]));
        let _b = accumulator.push(Message::new("t", vec![0; 10]));
        let batches = accumulator.due().await;
        assert!(started.elapsed() >= Duration::from_millis(30), "lingered");
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].len(), 2);

        let started = Instant::now();
        let _c = accumulator.push(Message::new("t", vec![0; 600]));
        let _d = accumulator.push(Message::new("t", vec![0; 600]));
        let batches = accumulator.due().await;
        assert!(
            started.elapsed() < Duration::from_millis(30),
            "a full batch goes at once"
        );
        // 1200 bytes do not fit a 1000-byte batch: two batches of one.
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1]);
    }
}
