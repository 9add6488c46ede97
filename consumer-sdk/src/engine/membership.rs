//! Membership: heartbeats to every broker of the subscribed topics, and
//! the offset-reset versions that come back in their answers.

use super::*;

impl Engine {
    pub(super) async fn heartbeat_loop(self: Arc<Self>) {
        while !self.closed.load(Ordering::Acquire) {
            self.heartbeat().await;
            tokio::time::sleep(self.settings.heartbeat_interval).await;
        }
    }

    /// Tells every broker of the subscribed topics we are alive (and which
    /// queues we hold, renewing their locks); a changed group version
    /// triggers a rebalance at once.
    pub async fn heartbeat(&self) {
        let held: Vec<MessageQueue> = self.assignment();
        let request = pb::HeartbeatRequest {
            group: self.settings.group.clone(),
            client_id: self.settings.client_id.clone(),
            subscriptions: self
                .subscriptions
                .iter()
                .map(|s| pb::Subscription {
                    topic: s.topic.clone(),
                    tag_expression: s.expression.clone(),
                })
                .collect(),
            consume_model: if self.settings.broadcasting {
                pb::ConsumeModel::Broadcasting
            } else {
                pb::ConsumeModel::Clustering
            } as i32,
            held: held.iter().map(queue_ref).collect(),
        };
        for (broker, addr) in self.cluster.broker_addrs(&self.topics()) {
            let Ok(mut client) = self.cluster.client(&addr) else {
                continue;
            };
            match client.heartbeat(request.clone()).await {
                Ok(response) => {
                    let response = response.into_inner();
                    let version = response.group_version;
                    let reset_before = self
                        .reset_versions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(broker.clone(), response.offset_reset_version);
                    if reset_before.is_some_and(|v| v < response.offset_reset_version) {
                        self.reread_offsets(&broker).await;
                    }
                    let previous = self
                        .versions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(broker.clone(), version);
                    if previous.is_some_and(|p| p != version) {
                        self.rebalance_now.notify_one();
                    }
                }
                Err(status) => {
                    tracing::debug!(broker, error = %status.message(), "heartbeat failed")
                }
            }
            if self.locking() {
                let mine: Vec<pb::QueueRef> = held
                    .iter()
                    .filter(|q| q.broker_name == broker)
                    .map(queue_ref)
                    .collect();
                if !mine.is_empty() {
                    let _ = client
                        .lock_queues(pb::LockQueuesRequest {
                            group: self.settings.group.clone(),
                            client_id: self.settings.client_id.clone(),
                            queues: mine,
                        })
                        .await;
                }
            }
        }
    }

    /// An operator reset the group's offsets on `broker`: every queue of
    /// it this member owns goes on from the committed offset.
    async fn reread_offsets(&self, broker: &str) {
        let owned: Vec<(MessageQueue, Arc<QueueState>)> = self
            .owned()
            .into_iter()
            .filter(|(q, _)| q.broker_name == broker)
            .collect();
        for (queue, state) in owned {
            match self.offsets.query(&self.cluster, &queue).await {
                Ok(Some(offset)) => {
                    state.epoch.fetch_add(1, Ordering::AcqRel);
                    {
                        let mut cache = state.cache();
                        cache.clear();
                        state.cached_bytes.store(0, Ordering::Release);
                    }
                    state.next_offset.store(offset, Ordering::Release);
                    state.polled.store(offset, Ordering::Release);
                    state.last_committed.store(offset, Ordering::Release);
                    tracing::info!(queue = %queue, offset, "offset reset by an operator; going on from there");
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(queue = %queue, error = %err, "cannot read the reset offset")
                }
            }
        }
    }

    /// The reset version to send with commits to `broker`.
    pub(super) fn reset_version(&self, broker: &str) -> u64 {
        self.reset_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(broker)
            .copied()
            .unwrap_or(0)
    }
}
