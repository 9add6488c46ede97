//! [`TransactionProducer`]: RocketMQ's transactional messages. A message
//! is sent as a half message (stored, invisible), the application's
//! local transaction runs, and the outcome commits the message (consumers
//! get it, once) or rolls it back (they never do). When the outcome is
//! unknown, or the producer dies before telling it, the broker asks a
//! live producer of the same group later: every transactional producer
//! keeps a session open to the brokers of its topics, and its checker
//! answers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mq_producer::ProducerError> {
//! use mq_producer::{Message, TransactionProducer, TransactionState};
//! let producer = TransactionProducer::builder()
//!     .namesrv("127.0.0.1:9876")
//!     .group("order-service")
//!     .topics(["orders"])
//!     // Asked about transactions whose outcome the broker never heard.
//!     .checker(|orphan| async move {
//!         if orphan.message.key() == Some("order-1") { TransactionState::Commit } else { TransactionState::Rollback }
//!     })
//!     .start()
//!     .await?;
//! let sent = producer
//!     .send_in_transaction(Message::new("orders", "created").with_key("order-1"), |_half| async {
//!         // Write the order to the database here.
//!         TransactionState::Commit
//!     })
//!     .await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_common::validate;
use mq_proto::broker::v1 as pb;
use tokio::task::JoinHandle;

use crate::error::ProducerError;
use crate::message::{Message, SendResult};
use crate::producer::{Choice, Inner, Producer, ProducerBuilder};

/// What a local transaction (or a check) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    /// Deliver the message.
    Commit,
    /// Never deliver it.
    Rollback,
    /// Not known yet: the broker asks again later.
    Unknown,
}

/// A transaction the broker asks about.
#[derive(Debug, Clone)]
pub struct OrphanedTransaction {
    pub transaction_id: String,
    /// The message as sent (topic, tag, keys, properties, body), its id in
    /// `message_id`.
    pub message: CheckedMessage,
    /// Which check this is (1 for the first).
    pub check: u32,
}

/// The message of a transaction being checked.
#[derive(Debug, Clone)]
pub struct CheckedMessage {
    pub message_id: String,
    pub topic: String,
    pub tags: Option<String>,
    pub keys: Vec<String>,
    pub properties: HashMap<String, String>,
    pub body: bytes::Bytes,
}

impl CheckedMessage {
    /// The first business key, if any.
    pub fn key(&self) -> Option<&str> {
        self.keys.first().map(String::as_str)
    }
}

/// A sent transactional message and how its transaction ended.
#[derive(Debug, Clone)]
pub struct TransactionSent {
    /// Where the half message is stored.
    pub half: SendResult,
    pub transaction_id: String,
    /// What the local transaction said; `Unknown` leaves the outcome to a
    /// check. Commit or rollback the broker did not confirm is reported
    /// here too and will be checked.
    pub state: TransactionState,
    /// Where the committed message is, when the broker confirmed the
    /// commit.
    pub committed: Option<SendResult>,
}

type BoxedCheck = Pin<Box<dyn Future<Output = TransactionState> + Send>>;
type Checker = Arc<dyn Fn(OrphanedTransaction) -> BoxedCheck + Send + Sync>;

/// Builds a [`TransactionProducer`]; the producer settings are
/// [`ProducerBuilder`]'s.
pub struct TransactionProducerBuilder {
    producer: ProducerBuilder,
    checker: Option<Checker>,
    topics: Vec<String>,
}

impl TransactionProducer {
    pub fn builder() -> TransactionProducerBuilder {
        TransactionProducerBuilder {
            producer: Producer::builder(),
            checker: None,
            topics: Vec::new(),
        }
    }
}

impl TransactionProducerBuilder {
    /// Nameserver addresses, `;`-separated.
    pub fn namesrv(mut self, list: impl Into<String>) -> Self {
        self.producer = self.producer.namesrv(list);
        self
    }

    /// The producer group: brokers ask its live members about its
    /// transactions, so every instance of a service uses the same one.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.producer = self.producer.group(group);
        self
    }

    /// Any other producer setting.
    pub fn producer(mut self, configure: impl FnOnce(ProducerBuilder) -> ProducerBuilder) -> Self {
        self.producer = configure(self.producer);
        self
    }

    /// The topics it sends to: it keeps sessions with their brokers from
    /// the start, so that it answers checks of transactions another
    /// instance of the group began.
    pub fn topics<I, S>(mut self, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Answers the brokers' checks (required).
    pub fn checker<F, Fut>(mut self, checker: F) -> Self
    where
        F: Fn(OrphanedTransaction) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = TransactionState> + Send + 'static,
    {
        self.checker = Some(Arc::new(move |orphan| Box::pin(checker(orphan))));
        self
    }

    /// Checks the settings, opens the sessions and starts answering checks.
    pub async fn start(self) -> Result<TransactionProducer, ProducerError> {
        let checker = self.checker.ok_or_else(|| {
            ProducerError::Config("a transactional producer needs a checker".into())
        })?;
        for (i, topic) in self.topics.iter().enumerate() {
            validate::topic(&format!("topics[{i}]"), topic)?;
        }
        let producer = self.producer.build()?;
        let client_id = format!(
            "{}@{}#{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
            std::process::id(),
            producer.inner.options.group
        );
        let sessions = Arc::new(Sessions {
            inner: Arc::clone(&producer.inner),
            checker,
            client_id,
            open: Mutex::default(),
        });
        let watcher = tokio::spawn(Arc::clone(&sessions).watch(self.topics));
        Ok(TransactionProducer {
            producer,
            sessions,
            watcher,
        })
    }
}

/// Sends messages in transactions; see the module docs.
pub struct TransactionProducer {
    producer: Producer,
    sessions: Arc<Sessions>,
    watcher: JoinHandle<()>,
}

impl TransactionProducer {
    /// The plain producer underneath, for messages outside transactions.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Sends `msg` as a half message, runs `local` (the local
    /// transaction), then commits or rolls back as it says.
    pub async fn send_in_transaction<F, Fut>(
        &self,
        msg: Message,
        local: F,
    ) -> Result<TransactionSent, ProducerError>
    where
        F: FnOnce(&SendResult) -> Fut,
        Fut: Future<Output = TransactionState>,
    {
        let inner = &self.producer.inner;
        inner.check(&msg)?;
        if msg.delivery.is_some() {
            return Err(mq_common::FieldError::new(
                "delivery",
                "a transactional message cannot be delayed",
            )
            .into());
        }
        let (half, transaction_id, addr) = self.send_half(&msg).await?;
        self.sessions.ensure(&addr);
        let state = local(&half).await;
        let outcome = match state {
            TransactionState::Commit => pb::TransactionOutcome::Commit,
            TransactionState::Rollback => pb::TransactionOutcome::Rollback,
            TransactionState::Unknown => {
                return Ok(TransactionSent {
                    half,
                    transaction_id,
                    state,
                    committed: None,
                });
            }
        };
        let request = pb::EndTransactionRequest {
            producer_group: inner.options.group.clone(),
            transaction_id: transaction_id.clone(),
            message_id: half.message_id.clone(),
            outcome: outcome as i32,
            from_check: false,
        };
        let committed = match end(inner, &addr, request).await {
            Ok(response) => response
                .result
                .map(|r| SendResult::from_wire(r, &half.broker_name)),
            Err(status) => {
                // The broker asks again later: the outcome is not lost.
                tracing::warn!(transaction = %transaction_id, code = ?status.code(), error = %status.message(), "could not end the transaction now; the broker will check it");
                None
            }
        };
        Ok(TransactionSent {
            half,
            transaction_id,
            state,
            committed,
        })
    }

    /// The half message, on one broker. Retried elsewhere only when the
    /// broker surely stored nothing (unreachable or busy): a half message
    /// sent twice would be two transactions.
    async fn send_half(
        &self,
        msg: &Message,
    ) -> Result<(SendResult, String, String), ProducerError> {
        let inner = &self.producer.inner;
        let wire = inner.to_wire(msg, None);
        let attempts = inner.options.retries + 1;
        let mut avoid: Option<String> = None;
        let mut last = None;
        for _ in 0..attempts {
            let route = inner.routes.get(&msg.topic).await?;
            let queue = inner
                .choose(&route, &Choice::Any, avoid.as_deref())?
                .clone();
            let addr = route
                .brokers
                .get(&queue.broker_name)
                .cloned()
                .ok_or_else(|| ProducerError::NoRoute {
                    topic: msg.topic.clone(),
                    reason: format!("broker {} has no master address", queue.broker_name),
                })?;
            let mut client = inner
                .client(&addr)
                .map_err(|s| refused(&queue.broker_name, s))?;
            let mut request = tonic::Request::new(pb::SendHalfMessageRequest {
                message: Some(wire.clone()),
                queue_id: queue.queue_id,
                producer_group: inner.options.group.clone(),
            });
            request.set_timeout(inner.options.send_timeout);
            match client.send_half_message(request).await {
                Ok(response) => {
                    let response = response.into_inner();
                    let r = response.result.unwrap_or_default();
                    let half = SendResult::from_wire(r, &queue.broker_name);
                    return Ok((half, response.transaction_id, addr));
                }
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::ResourceExhausted
                    ) =>
                {
                    avoid = Some(queue.broker_name.clone());
                    last = Some((queue.broker_name, status));
                }
                Err(status) => return Err(refused(&queue.broker_name, status)),
            }
        }
        let (broker, status) = last.expect("at least one attempt ran");
        Err(ProducerError::Failed {
            attempts,
            broker,
            code: status.code(),
            message: status.message().to_owned(),
        })
    }

    /// Stops answering checks (other members of the group go on).
    pub fn shutdown(self) {
        self.watcher.abort();
        self.sessions.close();
    }
}

impl Drop for TransactionProducer {
    fn drop(&mut self) {
        self.watcher.abort();
        self.sessions.close();
    }
}

fn refused(broker: &str, status: tonic::Status) -> ProducerError {
    ProducerError::Refused {
        broker: broker.to_owned(),
        code: status.code(),
        message: status.message().to_owned(),
    }
}

async fn end(
    inner: &Inner,
    addr: &str,
    request: pb::EndTransactionRequest,
) -> Result<pb::EndTransactionResponse, tonic::Status> {
    let mut client = inner.client(addr)?;
    let mut request = tonic::Request::new(request);
    request.set_timeout(inner.options.send_timeout);
    Ok(client.end_transaction(request).await?.into_inner())
}

/// How often the brokers of the declared topics are looked up again.
const WATCH_INTERVAL: Duration = Duration::from_secs(5);
/// Pause before a broken session is opened again.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The producer's sessions, one per broker.
struct Sessions {
    inner: Arc<Inner>,
    checker: Checker,
    client_id: String,
    /// A std mutex: held to look up or add a session task.
    open: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Sessions {
    /// Keeps sessions with every broker of `topics`.
    async fn watch(self: Arc<Self>, topics: Vec<String>) {
        loop {
            for topic in &topics {
                match self.inner.routes.get(topic).await {
                    Ok(route) => {
                        for addr in route.brokers.values() {
                            self.ensure(addr);
                        }
                    }
                    Err(err) => {
                        tracing::debug!(topic, error = %err, "no route yet for a transactional topic")
                    }
                }
            }
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
    }

    /// A session with `addr`, opened if there is none.
    fn ensure(self: &Arc<Self>, addr: &str) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.get(addr).is_some_and(|task| !task.is_finished()) {
            return;
        }
        let task = tokio::spawn(Arc::clone(self).serve(addr.to_owned()));
        open.insert(addr.to_owned(), task);
    }

    fn close(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for (_, task) in open.drain() {
            task.abort();
        }
    }

    /// Answers the checks `addr` sends, reopening the session when it
    /// breaks.
    async fn serve(self: Arc<Self>, addr: String) {
        loop {
            if let Err(status) = self.session(&addr).await {
                tracing::debug!(broker = %addr, code = ?status.code(), error = %status.message(), "transaction session ended; reopening");
            }
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    }

    async fn session(&self, addr: &str) -> Result<(), tonic::Status> {
        let mut client = self.inner.client(addr)?;
        let mut checks = client
            .producer_session(pb::ProducerSessionRequest {
                producer_group: self.inner.options.group.clone(),
                client_id: self.client_id.clone(),
            })
            .await?
            .into_inner();
        tracing::debug!(broker = %addr, "transaction session open");
        while let Some(check) = checks.message().await? {
            let Some(message) = check.message else {
                continue;
            };
            let orphan = OrphanedTransaction {
                transaction_id: check.transaction_id.clone(),
                check: check.check,
                message: CheckedMessage {
                    message_id: message.unique_id.clone(),
                    topic: message.topic,
                    tags: (!message.tags.is_empty()).then_some(message.tags),
                    keys: message.keys,
                    properties: message.properties,
                    body: message.body,
                },
            };
            let message_id = orphan.message.message_id.clone();
            let outcome = match (self.checker)(orphan).await {
                TransactionState::Commit => pb::TransactionOutcome::Commit,
                TransactionState::Rollback => pb::TransactionOutcome::Rollback,
                TransactionState::Unknown => continue,
            };
            let request = pb::EndTransactionRequest {
                producer_group: self.inner.options.group.clone(),
                transaction_id: check.transaction_id.clone(),
                message_id,
                outcome: outcome as i32,
                from_check: true,
            };
            if let Err(status) = end(&self.inner, addr, request).await {
                tracing::warn!(transaction = %check.transaction_id, code = ?status.code(), error = %status.message(), "could not answer a transaction check");
            }
        }
        Ok(())
    }
}
