//! Natural batching: one send lane per broker. A send that finds fewer
//! than `max_in_flight` requests on the wire and nobody waiting leaves at
//! once, alone, so a lone sender pays nothing. Sends that arrive while the
//! lane is full wait in its queue and leave together, in one `SendMany`,
//! the moment a request comes back. Each keeps its own deadline, result
//! and error; retries, fault accounting and idempotence stay the sender's.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use mq_auth::client::SignedChannel;
use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_proto::broker::v1::send_item::Send as Item;
use tokio::sync::oneshot;
use tonic::{Code, Status};

/// Most sends one `SendMany` carries (the broker takes up to 4096).
const MAX_SENDS: usize = 1024;

/// How many requests a lane keeps on the wire, and how large the request
/// made of waiting sends may grow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_in_flight: usize,
    pub batch_bytes: usize,
}

/// Every broker's lane, made on first use.
#[derive(Debug)]
pub(crate) struct Lanes {
    lanes: DashMap<String, Arc<Lane>>,
    limits: Limits,
}

impl Lanes {
    pub(crate) fn new(limits: Limits) -> Self {
        Lanes {
            lanes: DashMap::new(),
            limits,
        }
    }

    /// The lane to `addr`, reached through `client` when it is new.
    pub(crate) fn lane(
        &self,
        addr: &str,
        client: impl FnOnce() -> Result<BrokerClient<SignedChannel>, Status>,
    ) -> Result<Arc<Lane>, Status> {
        if let Some(lane) = self.lanes.get(addr) {
            return Ok(Arc::clone(&lane));
        }
        let lane = Arc::new(Lane {
            client: client()?,
            limits: self.limits,
            state: Mutex::new(State::default()),
        });
        Ok(Arc::clone(
            &self.lanes.entry(addr.to_owned()).or_insert(lane),
        ))
    }
}

/// The sends to one broker: those on the wire and those waiting.
#[derive(Debug)]
pub(crate) struct Lane {
    client: BrokerClient<SignedChannel>,
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    waiting: VecDeque<Waiting>,
    in_flight: usize,
}

#[derive(Debug)]
struct Waiting {
    send: Item,
    bytes: usize,
    deadline: Instant,
    reply: oneshot::Sender<Answer>,
}

type Answer = Result<Vec<pb::SendResult>, Status>;

impl Lane {
    /// Sends `send` (one message or a batch), waiting at most `timeout`
    /// for its answer.
    pub(crate) async fn send(self: &Arc<Self>, send: Item, timeout: Duration) -> Answer {
        let answer = match self.enter(send, timeout) {
            Ok(send) => {
                let _slot = Slot(self);
                return self.send_alone(send, timeout).await;
            }
            Err(answer) => answer,
        };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(Status::cancelled(
                "the producer's send lane closed before the send was answered",
            )),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no answer within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    /// Takes a request slot for `send` (`Ok`: it leaves now), or queues
    /// it (`Err`: its answer comes later).
    fn enter(&self, send: Item, timeout: Duration) -> Result<Item, oneshot::Receiver<Answer>> {
        let mut state = self.state();
        if state.waiting.is_empty() && state.in_flight < self.limits.max_in_flight {
            state.in_flight += 1;
            return Ok(send);
        }
        let (reply, answer) = oneshot::channel();
        state.waiting.push_back(Waiting {
            bytes: body_bytes(&send),
            send,
            deadline: Instant::now() + timeout,
            reply,
        });
        Err(answer)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request came back: the sends waiting meanwhile leave together,
    /// in that request's place.
    fn finished(self: &Arc<Self>) {
        let batch = {
            let mut state = self.state();
            let batch = self.take(&mut state);
            if batch.is_empty() {
                state.in_flight -= 1;
                return;
            }
            batch
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(Arc::clone(self).drain(batch));
            }
            // No runtime left to send them: dropping their replies tells
            // each waiting sender the lane closed.
            Err(_) => self.state().in_flight -= 1,
        }
    }

    /// Sends `batch`, then whatever waits when it comes back, until
    /// nothing does.
    async fn drain(self: Arc<Self>, mut batch: Vec<Waiting>) {
        loop {
            self.send_many(batch).await;
            let mut state = self.state();
            batch = self.take(&mut state);
            if batch.is_empty() {
                state.in_flight -= 1;
                return;
            }
        }
    }

    /// The waiting sends for the next request, oldest first; those whose
    /// sender gave up are dropped.
    fn take(&self, state: &mut State) -> Vec<Waiting> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let now = Instant::now();
        while let Some(next) = state.waiting.front() {
            if !batch.is_empty()
                && (batch.len() == MAX_SENDS || bytes + next.bytes > self.limits.batch_bytes)
            {
                break;
            }
            let next = state.waiting.pop_front().expect("front exists");
            if next.reply.is_closed() || next.deadline <= now {
                continue;
            }
            bytes += next.bytes;
            batch.push(next);
        }
        batch
    }

    async fn send_alone(&self, send: Item, timeout: Duration) -> Answer {
        let mut client = self.client.clone();
        match send {
            Item::Message(send) => {
                let mut request = tonic::Request::new(send);
                request.set_timeout(timeout);
                let response = client.send_message(request).await?.into_inner();
                Ok(response.result.into_iter().collect())
            }
            Item::Batch(batch) => {
                let mut request = tonic::Request::new(batch);
                request.set_timeout(timeout);
                Ok(client.send_batch(request).await?.into_inner().results)
            }
        }
    }

    /// One `SendMany` for `batch`, answering each of its senders.
    async fn send_many(&self, batch: Vec<Waiting>) {
        if batch.len() == 1 {
            let waiting = batch.into_iter().next().expect("one send");
            let timeout = waiting.deadline.saturating_duration_since(Instant::now());
            let _ = waiting
                .reply
                .send(self.send_alone(waiting.send, timeout).await);
            return;
        }
        let deadline = batch.iter().map(|w| w.deadline).max().expect("a send");
        let (sends, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|w| (pb::SendItem { send: Some(w.send) }, w.reply))
            .unzip();
        let count = sends.len();
        let mut request = tonic::Request::new(pb::SendManyRequest { sends });
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        let mut client = self.client.clone();
        match client.send_many(request).await {
            Ok(response) => {
                let outcomes = response.into_inner().outcomes;
                if outcomes.len() != count {
                    let status = Status::internal(format!(
                        "the broker answered {} outcomes for {count} sends",
                        outcomes.len()
                    ));
                    for reply in replies {
                        let _ = reply.send(Err(status.clone()));
                    }
                    return;
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(answer(outcome));
                }
            }
            Err(status) => {
                for reply in replies {
                    let _ = reply.send(Err(status.clone()));
                }
            }
        }
    }
}

/// A request slot held by a send that left alone; given back (to the
/// waiting sends, if any) when it ends, or is cancelled.
struct Slot<'a>(&'a Arc<Lane>);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.finished();
    }
}

/// One send's outcome as the answer its own call would have given.
fn answer(outcome: pb::SendOutcome) -> Answer {
    let Some(refusal) = outcome.refusal else {
        return Ok(outcome.results);
    };
    let mut status = Status::new(Code::from_i32(refusal.code), refusal.message);
    if refusal.nothing_stored {
        status.metadata_mut().insert(
            mq_common::message::NOTHING_STORED,
            tonic::metadata::MetadataValue::from_static("true"),
        );
    }
    Err(status)
}

fn body_bytes(send: &Item) -> usize {
    match send {
        Item::Message(send) => send.message.as_ref().map_or(0, |m| m.body.len()),
        Item::Batch(batch) => batch.messages.iter().map(|m| m.body.len()).sum(),
    }
}
