//! Delivery: handing pulled messages to the handler (concurrently, or in
//! queue order), retrying failures in place or sending them back to the
//! broker's retry topic, and marking them done for the offset.

use super::*;

impl Engine {
    pub(super) async fn deliver(&self, state: &Arc<QueueState>, messages: Vec<ReceivedMessage>) {
        match &self.sink {
            Sink::Channel(tx) => {
                if tx.send(messages).await.is_err() {
                    state.dropped.store(true, Ordering::Release);
                }
            }
            Sink::Ordered { handler, batch } => {
                for chunk in into_chunks(messages, *batch) {
                    if !self.handle_until_done(handler, state, chunk).await {
                        return;
                    }
                }
            }
            Sink::Concurrent {
                handler,
                permits,
                batch,
            } => {
                for chunk in into_chunks(messages, *batch) {
                    let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
                        return;
                    };
                    let (engine, state, handler) =
                        (self.self_arc(), Arc::clone(state), Arc::clone(handler));
                    let Some(engine) = engine else { return };
                    tokio::spawn(async move {
                        engine.handle_until_done(&handler, &state, chunk).await;
                        drop(permit);
                    });
                }
            }
        }
    }

    /// Runs the handler until the batch is done with, or the queue is
    /// dropped; true when done. A failed batch (reconsume-later or a
    /// panic) goes back to the broker's retry path in clustering mode, is
    /// retried in place in ordered mode (dead letters past the limit), and
    /// is retried locally when the broker cannot take it back (or in
    /// broadcasting mode).
    async fn handle_until_done(
        &self,
        handler: &Handler,
        state: &QueueState,
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
                state.done(&batch);
                return true;
            }
            if state.is_dropped() || self.closed.load(Ordering::Acquire) {
                return false;
            }
            let max = self.settings.max_reconsume_times;
            if ordered {
                if batch.iter().all(|m| m.reconsume_times >= max) {
                    batch = self.send_back_all(batch, true).await;
                    if batch.is_empty() {
                        return true;
                    }
                }
            } else if !self.settings.broadcasting {
                // Messages the broker took back are done here; the rest
                // are retried locally.
                let refused = self.send_back_all(batch.clone(), false).await;
                let refused: Vec<u64> = refused.iter().map(|m| m.queue_offset).collect();
                let (left, back): (Vec<_>, Vec<_>) = batch
                    .into_iter()
                    .partition(|m| refused.contains(&m.queue_offset));
                state.done(&back);
                if left.is_empty() {
                    return true;
                }
                batch = left;
            }
            tokio::time::sleep(self.settings.retry_delay).await;
            for msg in &mut batch {
                msg.reconsume_times += 1;
            }
        }
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
            .map_err(|s| ConsumerError::broker(&msg.queue.broker_name, s))?
            .into_inner();
        if response.dead_lettered {
            tracing::warn!(group = %self.settings.group, id = %msg.unique_id, topic = %msg.topic, reconsume_times = msg.reconsume_times, "message moved to the dead-letter topic");
        }
        Ok(())
    }
}
