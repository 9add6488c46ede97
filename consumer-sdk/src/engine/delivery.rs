//! Delivery: handing pulled messages to the handler (concurrently, or in
//! queue order), retrying failures in place or sending them back to the
//! broker's retry topic, and marking them done for the offset.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use mq_proto::broker::v1 as pb;
use tokio::sync::mpsc;

use super::queue_task::QueueLink;
use super::{Engine, Handler, Sink, into_chunks};
use crate::error::ConsumerError;
use crate::message::{ConsumeResult, ReceivedMessage};

impl Engine {
    /// An ordered queue's lane: its batches, one at a time, in order,
    /// until the queue stops (the sender goes) or is retired.
    pub(super) async fn ordered_lane(
        self: Arc<Self>,
        handler: Handler,
        batch: usize,
        link: Arc<QueueLink>,
        mut batches: mpsc::UnboundedReceiver<(u64, Vec<ReceivedMessage>)>,
    ) {
        while let Some((epoch, messages)) = batches.recv().await {
            for chunk in into_chunks(messages, batch) {
                if !link.is_current(epoch)
                    || !self.handle_until_done(&handler, &link, epoch, chunk).await
                {
                    break;
                }
            }
        }
    }

    /// Runs the handler until the batch is done with, or the queue is
    /// retired; true when done, which is reported to the queue. A failed
    /// batch (reconsume-later or a panic) goes back to the broker's retry
    /// path in clustering mode, is retried in place in ordered mode (dead
    /// letters past the limit), and is retried locally when the broker
    /// cannot take it back (or in broadcasting mode).
    pub(super) async fn handle_until_done(
        &self,
        handler: &Handler,
        link: &QueueLink,
        epoch: u64,
        mut batch: Vec<ReceivedMessage>,
    ) -> bool {
        let ordered = matches!(self.sink, Sink::Ordered { .. });
        loop {
            // A panicking handler fails its batch, not the consumer.
            let result = AssertUnwindSafe(handler(batch.clone()))
                .catch_unwind()
                .await
                .unwrap_or(ConsumeResult::ReconsumeLater);
            if result == ConsumeResult::Success {
                link.report_done(epoch, &batch);
                return true;
            }
            if link.is_retired() {
                return false;
            }
            let max = self.settings.max_reconsume_times;
            if ordered {
                if batch.iter().all(|m| m.reconsume_times >= max) {
                    batch = self.hand_back(link, epoch, batch, true).await;
                }
            } else if !self.settings.broadcasting {
                batch = self.hand_back(link, epoch, batch, false).await;
            }
            if batch.is_empty() {
                return true;
            }
            tokio::time::sleep(self.settings.retry_delay).await;
            for msg in &mut batch {
                msg.reconsume_times += 1;
            }
        }
    }

    /// Hands failed messages back to their broker; those it took are done
    /// here. Returns the rest, to retry locally.
    async fn hand_back(
        &self,
        link: &QueueLink,
        epoch: u64,
        batch: Vec<ReceivedMessage>,
        dead_letter: bool,
    ) -> Vec<ReceivedMessage> {
        let refused = self.send_back_all(batch.clone(), dead_letter).await;
        let refused: Vec<u64> = refused.iter().map(|m| m.queue_offset).collect();
        let (left, back): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|m| refused.contains(&m.queue_offset));
        link.report_done(epoch, &back);
        left
    }

    /// Hands failed messages back to their broker (`dead_letter`: straight
    /// to the dead-letter topic); returns those it could not hand back.
    async fn send_back_all(
        &self,
        batch: Vec<ReceivedMessage>,
        dead_letter: bool,
    ) -> Vec<ReceivedMessage> {
        let mut left = Vec::new();
        for msg in batch {
            if let Err(err) = self.send_back(&msg, dead_letter).await {
                tracing::warn!(queue = %msg.queue, offset = msg.queue_offset, error = %err, "cannot hand a failed message back; retrying it here");
                left.push(msg);
            }
        }
        left
    }

    async fn send_back(
        &self,
        msg: &ReceivedMessage,
        dead_letter: bool,
    ) -> Result<(), ConsumerError> {
        let addr = self
            .cluster
            .addr_of(&msg.queue)
            .ok_or_else(|| ConsumerError::NoRoute {
                topic: msg.queue.topic.clone(),
                reason: "no broker".into(),
            })?;
        let response = self
            .cluster
            .client(&addr)?
            .consumer_send_back(pb::ConsumerSendBackRequest {
                group: self.settings.group.clone(),
                topic: msg.queue.topic.clone(),
                queue_id: msg.queue.queue_id,
                queue_offset: msg.queue_offset,
                unique_id: msg.unique_id.clone(),
                max_reconsume_times: self.settings.max_reconsume_times,
                dead_letter,
            })
            .await
            .map_err(|s| {
                self.cluster.failed(&addr, &s);
                ConsumerError::broker(&msg.queue.broker_name, s)
            })?
            .into_inner();
        if response.dead_lettered {
            tracing::warn!(group = %self.settings.group, id = %msg.unique_id, topic = %msg.topic, reconsume_times = msg.reconsume_times, "message moved to the dead-letter topic");
        }
        Ok(())
    }
}
