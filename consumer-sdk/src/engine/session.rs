//! Sessions: one long-lived `ConsumerSession` stream to every broker of
//! the subscribed topics. While it is open the broker counts this member
//! as alive and tells it of every change of the group at once; when this
//! process dies its connections close and the broker drops it (and frees
//! its queues) within moments. Heartbeats go on beside the sessions: they
//! report the queues held and renew their locks, and keep a member whose
//! session cannot be opened in the group.
//!
//! Session tasks outlive the membership task on purpose: a consumer
//! shutting down stops heartbeating first, then finishes its queues and
//! leaves, and only then ends its sessions (when the stop sender drops),
//! so that no other member takes a queue while it is still committing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mq_proto::broker::v1 as pb;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use super::Engine;

/// How long to wait before reopening a session that ended or failed.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// What a session heard: (broker name, address, the group's versions).
pub(crate) type Heard = (String, String, pb::HeartbeatResponse);

/// The open sessions, by broker address.
pub(crate) struct Sessions {
    engine: Arc<Engine>,
    /// The newest heartbeat request: a session (re)opens with it.
    request: watch::Sender<pb::HeartbeatRequest>,
    heard: mpsc::UnboundedSender<Heard>,
    /// Never sends; dropped when the consumer has left, ending every
    /// session.
    stop: watch::Receiver<()>,
    open: HashMap<String, AbortHandle>,
}

impl Sessions {
    pub fn new(
        engine: Arc<Engine>,
        heard: mpsc::UnboundedSender<Heard>,
        stop: watch::Receiver<()>,
    ) -> Self {
        Sessions {
            engine,
            request: watch::Sender::new(pb::HeartbeatRequest::default()),
            heard,
            stop,
            open: HashMap::new(),
        }
    }

    /// Keeps a session open to each of `brokers` (name, address) and to
    /// no other, announcing the member as `request` says.
    pub fn keep(&mut self, brokers: &[(String, String)], request: pb::HeartbeatRequest) {
        self.request.send_replace(request);
        self.open.retain(|addr, task| {
            let wanted = brokers.iter().any(|(_, a)| a == addr);
            if !wanted {
                task.abort();
            }
            wanted
        });
        for (broker, addr) in brokers {
            if self.open.get(addr).is_some_and(|t| !t.is_finished()) {
                continue;
            }
            let session = Session {
                engine: Arc::clone(&self.engine),
                broker: broker.clone(),
                addr: addr.clone(),
                request: self.request.subscribe(),
                heard: self.heard.clone(),
            };
            let stop = self.stop.clone();
            let task = tokio::spawn(session.run(stop));
            self.open.insert(addr.clone(), task.abort_handle());
        }
    }
}

struct Session {
    engine: Arc<Engine>,
    broker: String,
    addr: String,
    request: watch::Receiver<pb::HeartbeatRequest>,
    heard: mpsc::UnboundedSender<Heard>,
}

impl Session {
    /// Keeps the session open (reopening it when it ends) until `stop`.
    async fn run(self, mut stop: watch::Receiver<()>) {
        loop {
            tokio::select! {
                ended = self.open() => match ended {
                    Ok(()) => tracing::debug!(broker = %self.addr, "consumer session ended"),
                    Err(status) if status.code() == tonic::Code::Unimplemented => {
                        // An older broker: heartbeats alone keep the member
                        // there; stay idle rather than be reopened each round.
                        tracing::info!(broker = %self.addr, "broker has no consumer sessions; heartbeats only");
                        let _ = stop.changed().await;
                        return;
                    }
                    Err(status) => {
                        tracing::debug!(broker = %self.addr, error = %status.message(), "consumer session failed")
                    }
                },
                _ = stop.changed() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(REOPEN_AFTER) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One session, until the broker ends it or the connection breaks.
    async fn open(&self) -> Result<(), tonic::Status> {
        let mut client = self
            .engine
            .cluster
            .client(&self.addr)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let request = self.request.borrow().clone();
        let mut stream = client.consumer_session(request).await?.into_inner();
        while let Some(versions) = stream.message().await? {
            // Nobody listens once membership stopped (shutting down): the
            // session stays open regardless until the consumer has left.
            let _ = self
                .heard
                .send((self.broker.clone(), self.addr.clone(), versions));
        }
        Ok(())
    }
}
