//! [`PullConsumer`]: the lite pull style. Subscribe (the group shares the
//! queues as push consumers do) or assign queues, then `poll()`.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};

use crate::builder::{ConsumerOptions, option_setters};
use crate::engine::{Pulled, Running, Sink};
use crate::error::ConsumerError;
use crate::message::ReceivedMessage;
use crate::queue::MessageQueue;

/// Builds a [`PullConsumer`].
#[derive(Debug)]
pub struct PullConsumerBuilder {
    options: ConsumerOptions,
    auto_commit: bool,
    buffer: usize,
}

impl PullConsumerBuilder {
    option_setters!();

    /// Commit polled offsets every `commit_interval` [default: on]; off
    /// means [`PullConsumer::commit`] does it.
    pub fn auto_commit(mut self, on: bool) -> Self {
        self.auto_commit = on;
        self
    }

    /// Batches buffered ahead of `poll` [default: 64].
    pub fn buffer(mut self, batches: usize) -> Self {
        self.buffer = batches.max(1);
        self
    }

    /// Starts pulling (on the current Tokio runtime).
    pub async fn start(self) -> Result<PullConsumer, ConsumerError> {
        if self.options.subscriptions.is_empty() {
            return Err(ConsumerError::Config(
                "subscribe to at least one topic".into(),
            ));
        }
        let (tx, rx) = mpsc::channel(self.buffer);
        let mut options = self.options;
        if !self.auto_commit {
            // Effectively never: commits happen on `commit()` and shutdown.
            options.commit_interval = Duration::from_secs(60 * 60 * 24 * 365);
        }
        let running = Running::start(options.engine(Sink::Channel(tx))?).await?;
        Ok(PullConsumer {
            running,
            batches: Mutex::new(rx),
        })
    }
}

/// A running pull consumer.
#[derive(Debug)]
pub struct PullConsumer {
    running: Running,
    batches: Mutex<mpsc::Receiver<Pulled>>,
}

impl PullConsumer {
    pub fn builder() -> PullConsumerBuilder {
        PullConsumerBuilder {
            options: ConsumerOptions::default(),
            auto_commit: true,
            buffer: 64,
        }
    }

    /// The next batch, waiting at most `timeout`; empty if none came.
    pub async fn poll(&self, timeout: Duration) -> Vec<ReceivedMessage> {
        let mut batches = self.batches.lock().await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let batch = match tokio::time::timeout_at(deadline, batches.recv()).await {
                Ok(Some(batch)) => batch,
                _ => return Vec::new(),
            };
            // Skip batches of queues released or seeked since.
            if !batch.link.is_current(batch.epoch) {
                continue;
            }
            let Some(last) = batch.messages.last() else {
                continue;
            };
            batch.link.report_polled(batch.epoch, last.queue_offset + 1);
            return batch.messages;
        }
    }

    /// Consumes only `queues` from now on, without rebalancing.
    pub async fn assign(&self, queues: Vec<MessageQueue>) {
        self.running
            .assign(queues.into_iter().collect::<BTreeSet<_>>())
            .await;
    }

    /// Goes on from `offset` in `queue` (which must be owned).
    pub fn seek(&self, queue: &MessageQueue, offset: u64) -> Result<(), ConsumerError> {
        let link = self.running.link(queue).ok_or_else(|| {
            ConsumerError::Config(format!("{queue} is not assigned to this consumer"))
        })?;
        link.seek(offset);
        Ok(())
    }

    /// Commits the polled positions now.
    pub async fn commit(&self) {
        self.running.commit_all().await;
    }

    /// The queues this member consumes now.
    pub fn assignment(&self) -> Vec<MessageQueue> {
        self.running.assignment()
    }

    /// Commits, releases the queues and leaves the group.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}
