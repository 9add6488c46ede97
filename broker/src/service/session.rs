//! Consumer sessions: one long-lived stream per consumer, whose end tells
//! the broker the consumer is gone (RocketMQ reacts the same way to a
//! closed channel). A SIGKILLed process's sockets close at once and a dead
//! machine stops answering keepalive pings, so its queues move to the
//! other members within moments instead of after the heartbeat expiry.
//! While the session is open it tells its member of every change of the
//! group, so that members rebalance at once rather than at their next
//! heartbeat.

use std::pin::Pin;

use mq_proto::broker::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::consumer::ConsumerPath;
use crate::error::BrokerError;

/// The stream a session answers.
pub type SessionStream = Pin<Box<dyn Stream<Item = Result<pb::HeartbeatResponse, Status>> + Send>>;

impl ConsumerPath {
    /// Joins the member the request describes and streams its group's
    /// versions until the consumer goes (or the broker stops); then the
    /// member leaves at once.
    pub fn session(
        &self,
        request: pb::HeartbeatRequest,
        now_ms: u64,
    ) -> Result<SessionStream, BrokerError> {
        let (group, member) = self.member(request, now_ms)?;
        let client_id = member.client_id.clone();
        let mut changes = self.groups.changes();
        let (session, _) = self.groups.open_session(&group, member);
        tracing::info!(group, client_id, session, "consumer session opened");
        let (tx, rx) = mpsc::channel(4);
        let path = self.clone();
        tokio::spawn(async move {
            let mut told = None;
            let mut draining = path.draining.clone();
            loop {
                let now = path.versions(&group);
                if told != Some(now) {
                    tokio::select! {
                        sent = tx.send(Ok(now)) => if sent.is_err() { break },
                        _ = draining.wait_for(|d| *d) => return,
                    }
                    told = Some(now);
                }
                tokio::select! {
                    () = tx.closed() => break,
                    changed = changes.changed() => if changed.is_err() { break },
                    // A stopping broker ends its sessions so that draining
                    // does not wait on them; the members reconnect.
                    _ = draining.wait_for(|d| *d) => return,
                }
            }
            if path.groups.close_session(&group, &client_id, session) {
                tracing::warn!(
                    group,
                    client_id,
                    "consumer session ended; dropped from its group"
                );
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    /// What a session tells its member: the group's version and offset
    /// reset version now.
    fn versions(&self, group: &str) -> pb::HeartbeatResponse {
        pb::HeartbeatResponse {
            group_version: self.groups.version(group).unwrap_or(0),
            offset_reset_version: self.offsets.reset_version(group),
        }
    }
}
