//! [`PushConsumer`]: the SDK pulls and calls your handler.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::builder::{ConsumerOptions, option_setters};
use crate::engine::{Handler, Running, Sink};
use crate::error::ConsumerError;
use crate::message::{ConsumeResult, ReceivedMessage};
use crate::queue::MessageQueue;

/// How the handler is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeMode {
    /// Batches of up to `batch` messages, up to `parallelism` at once.
    Concurrent { parallelism: usize, batch: usize },
    /// Each queue by one task at a time, strictly in queue order.
    Ordered { batch: usize },
}

/// Builds a [`PushConsumer`].
pub struct PushConsumerBuilder {
    options: ConsumerOptions,
    mode: ConsumeMode,
    handler: Option<Handler>,
}

impl std::fmt::Debug for PushConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConsumerBuilder")
            .field("options", &self.options)
            .field("mode", &self.mode)
            .finish()
    }
}

impl PushConsumerBuilder {
    option_setters!();

    /// Concurrent (default: 20 at once, batches of 1) or ordered.
    pub fn mode(mut self, mode: ConsumeMode) -> Self {
        self.mode = mode;
        self
    }

    /// Ordered mode: how long a queue pauses before a failed batch is
    /// delivered again in place (RocketMQ's suspend time). Concurrent mode:
    /// the pause before a local retry when the broker cannot take a failed
    /// message back [default: 1 s].
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.options.retry_delay = delay;
        self
    }

    /// Reconsumptions before a failing message goes to the group's
    /// dead-letter topic `%DLQ%{group}` [default: 16].
    pub fn max_reconsume_times(mut self, times: u32) -> Self {
        self.options.max_reconsume_times = times;
        self
    }

    /// The handler: called with a batch, says whether it is done.
    pub fn handler<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Vec<ReceivedMessage>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ConsumeResult> + Send + 'static,
    {
        self.handler = Some(Arc::new(move |batch| Box::pin(handler(batch))));
        self
    }

    /// Starts consuming (on the current Tokio runtime).
    pub async fn start(self) -> Result<PushConsumer, ConsumerError> {
        let handler = self
            .handler
            .ok_or_else(|| ConsumerError::Config("a push consumer needs a handler".into()))?;
        if self.options.subscriptions.is_empty() {
            return Err(ConsumerError::Config(
                "subscribe to at least one topic".into(),
            ));
        }
        let sink = match self.mode {
            ConsumeMode::Concurrent { parallelism, batch } => Sink::Concurrent {
                handler,
                permits: Arc::new(Semaphore::new(parallelism.max(1))),
                batch: batch.max(1),
            },
            ConsumeMode::Ordered { batch } => Sink::Ordered {
                handler,
                batch: batch.max(1),
            },
        };
        let mut options = self.options;
        // Clustering groups also consume their retry topic, where failed
        // messages come back.
        let retry = crate::message::retry_topic(&options.group);
        if !options.broadcasting && !options.subscriptions.iter().any(|(t, _, _)| *t == retry) {
            options
                .subscriptions
                .push((retry, "*".into(), String::new()));
        }
        let running = Running::start(options.engine(sink)?).await?;
        Ok(PushConsumer { running })
    }
}

/// A running push consumer. Call [`PushConsumer::shutdown`] to commit
/// offsets and leave the group cleanly.
#[derive(Debug)]
pub struct PushConsumer {
    running: Running,
}

impl PushConsumer {
    pub fn builder() -> PushConsumerBuilder {
        PushConsumerBuilder {
            options: ConsumerOptions::default(),
            mode: ConsumeMode::Concurrent {
                parallelism: 20,
                batch: 1,
            },
            handler: None,
        }
    }

    /// The queues of the subscribed topics this member consumes now (its
    /// share of the group's retry queue is not listed).
    pub fn assignment(&self) -> Vec<MessageQueue> {
        let mut queues = self.running.assignment();
        queues.retain(|q| !q.topic.starts_with(crate::message::RETRY_PREFIX));
        queues
    }

    /// Finishes in-flight batches (bounded), commits offsets, releases the
    /// queues and leaves the group. Without it, a dropped consumer commits
    /// nothing beyond its last periodic commit.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}
