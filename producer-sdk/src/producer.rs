//! [`Producer`]: sends messages to the brokers that serve their topics,
//! choosing queues round-robin, avoiding faulty brokers and retrying.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use mq_auth::client::SignedChannel;
use mq_auth::{ClientTls, Connector, Credentials};
use mq_common::{FieldError, validate};
use mq_nameserver_client::NameServerClient;
use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use tokio::task::JoinHandle;

use crate::accumulator::Accumulator;
use crate::compress::maybe_compress;
use crate::error::{ProducerError, retryable};
use crate::fault::{FaultItem, FaultPolicy, FaultTable};
use crate::idempotence::{self, Numbered, Numbering};
use crate::lanes::{Lanes, Limits};
use crate::message::{Delivery, Message, SendResult};
use crate::route::{MessageQueue, PublishRoute};
use crate::route_cache::RouteCache;
use crate::selector;

/// Settings of a producer; see [`ProducerBuilder`] for the defaults.
#[derive(Debug, Clone)]
pub struct ProducerOptions {
    pub namesrv: String,
    pub group: String,
    /// Time budget of one `send`, retries included.
    pub send_timeout: Duration,
    /// Extra attempts after a failed send.
    pub retries: u32,
    pub max_message_size: usize,
    /// Bodies larger than this are compressed.
    pub compress_threshold: usize,
    pub route_refresh: Duration,
    /// Avoid slow and failed brokers.
    pub fault_tolerance: bool,
    pub fault_policy: FaultPolicy,
    /// How often isolated brokers are probed.
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    /// Pause before retrying a send the broker refused as busy (times the attempt).
    pub busy_backoff: Duration,
    /// With a linger time, `send` and `send_async` of one topic are batched
    /// for up to this long (0: every send goes alone).
    pub linger: Duration,
    /// A batch goes out early once its bodies reach this many bytes; the
    /// sends waiting for a broker leave together up to this many.
    pub batch_bytes: usize,
    /// Requests on the wire to one broker at a time; sends beyond wait and
    /// leave together in one request when one comes back.
    pub max_in_flight: usize,
    /// How brokers and nameservers are reached: TLS, and credentials
    /// that sign every request (clusters with authentication refuse others).
    pub connector: Connector,
    /// Number every send, so that a broker stores a retried one once;
    /// retries of a send that may have been stored stay on its queue.
    pub idempotent: bool,
}

/// Builds a [`Producer`]: `Producer::builder().namesrv("127.0.0.1:9876").build()`.
#[derive(Debug, Clone)]
pub struct ProducerBuilder {
    options: ProducerOptions,
}

impl Default for ProducerBuilder {
    fn default() -> Self {
        ProducerBuilder {
            options: ProducerOptions {
                namesrv: String::new(),
                group: "DEFAULT_PRODUCER".into(),
                send_timeout: Duration::from_secs(3),
                retries: 2,
                max_message_size: 4 << 20,
                compress_threshold: 4096,
                route_refresh: Duration::from_secs(30),
                fault_tolerance: true,
                fault_policy: FaultPolicy::default(),
                probe_interval: Duration::from_secs(2),
                probe_timeout: Duration::from_millis(500),
                busy_backoff: Duration::from_millis(100),
                linger: Duration::ZERO,
                batch_bytes: 256 << 10,
                max_in_flight: 4,
                connector: Connector::default(),
                idempotent: true,
            },
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.options.$name = value;
            self
        }
    };
}

impl ProducerBuilder {
    /// Nameserver addresses, `;`-separated (required).
    pub fn namesrv(mut self, list: impl Into<String>) -> Self {
        self.options.namesrv = list.into();
        self
    }
    /// Producer group name [default: DEFAULT_PRODUCER].
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.options.group = group.into();
        self
    }
    setter!(/// Time budget of one send, retries included [default: 3 s].
        send_timeout: Duration);
    setter!(/// Extra attempts after a failed send [default: 2].
        retries: u32);
    setter!(/// Largest body accepted [default: 4 MiB].
        max_message_size: usize);
    setter!(/// Bodies above this many bytes are compressed [default: 4 KiB].
        compress_threshold: usize);
    setter!(/// How often cached routes are refreshed [default: 30 s].
        route_refresh: Duration);
    setter!(/// Avoid slow and failed brokers [default: on].
        fault_tolerance: bool);
    setter!(/// Latency thresholds, unavailable times and isolation time.
        fault_policy: FaultPolicy);
    setter!(/// How often isolated brokers are probed [default: 2 s].
        probe_interval: Duration);
    setter!(/// How long a probe waits for an answer [default: 500 ms].
        probe_timeout: Duration);
    setter!(/// Pause before retrying a busy broker, times the attempt [default: 100 ms].
        busy_backoff: Duration);

    setter!(/// Batch sends of one topic for up to this long [default: 0, off].
        linger: Duration);
    setter!(/// Send a batch early at this many body bytes [default: 256 KiB].
        batch_bytes: usize);
    setter!(/// Requests on the wire to one broker at a time [default: 4]. A
        /// send that finds fewer leaves at once; the others wait and leave
        /// together in the next request (natural batching, no linger).
        max_in_flight: usize);
    setter!(/// Number sends so that retries are never stored twice [default: on].
        /// A send that may have been stored (no answer, the broker died) is
        /// retried on its queue until `send_timeout`, following a failover
        /// to the group's new master; off, retries go to any broker.
        idempotent: bool);

    /// Signs requests as the user `access_key` with `secret_key`.
    pub fn credentials(
        mut self,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        self.options.connector.credentials = Some(Credentials::new(access_key, secret_key));
        self
    }

    /// How brokers and nameservers are reached (TLS and credentials at once).
    pub fn connector(mut self, connector: Connector) -> Self {
        self.options.connector = connector;
        self
    }

    /// Connects over TLS (see [`ClientTls::from_files`]).
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.options.connector.tls = Some(tls);
        self
    }

    /// Signs requests with the credentials in `MQ_ACCESS_KEY` and
    /// `MQ_SECRET_KEY`, when both are set; an error when only one is.
    pub fn credentials_from_env(mut self) -> Result<Self, ProducerError> {
        let var = |name| std::env::var(name).ok();
        self.options.connector.credentials = Credentials::from_parts(
            var("MQ_ACCESS_KEY").as_deref(),
            var("MQ_SECRET_KEY").as_deref(),
        )
        .map_err(|e| ProducerError::Config(e.to_string()))?;
        Ok(self)
    }

    /// Starts the producer (its route refresher and broker probe run on
    /// the current Tokio runtime).
    pub fn build(self) -> Result<Producer, ProducerError> {
        let options = self.options;
        validate::node_name("group", &options.group).map_err(ProducerError::InvalidMessage)?;
        if options.send_timeout.is_zero() {
            return Err(ProducerError::Config(
                "send_timeout must be longer than 0".into(),
            ));
        }
        if options.max_in_flight == 0 {
            return Err(ProducerError::Config(
                "max_in_flight must be at least 1".into(),
            ));
        }
        let namesrv = NameServerClient::from_list_with(&options.namesrv, options.connector.clone())
            .map_err(|e| ProducerError::Config(e.to_string()))?;
        let accumulator = (!options.linger.is_zero())
            .then(|| Accumulator::new(options.linger, options.batch_bytes));
        let inner = Arc::new(Inner {
            accumulator,
            lanes: Lanes::new(Limits {
                max_in_flight: options.max_in_flight,
                batch_bytes: options.batch_bytes,
            }),
            routes: RouteCache::new(namesrv),
            clients: DashMap::new(),
            faults: FaultTable::new(options.fault_policy.clone()),
            started: Instant::now(),
            ids: mq_common::message_id::MessageIdGenerator::new(),
            numbering: options.idempotent.then(Numbering::new),
            options,
        });
        let mut tasks = vec![
            tokio::spawn(refresh_routes(Arc::clone(&inner))),
            tokio::spawn(probe_isolated(Arc::clone(&inner))),
            tokio::spawn(follow_failovers(Arc::clone(&inner))),
        ];
        if inner.accumulator.is_some() {
            tasks.push(tokio::spawn(send_batches(Arc::clone(&inner))));
        }
        Ok(Producer { inner, tasks })
    }
}

/// Sends messages. Cheap to share behind an `Arc`; background tasks stop
/// when it is dropped.
#[derive(Debug)]
pub struct Producer {
    pub(crate) inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) options: ProducerOptions,
    /// Present when sends linger to be batched.
    accumulator: Option<Accumulator>,
    pub(crate) routes: RouteCache,
    /// One channel per broker address, shared by every send.
    clients: DashMap<String, BrokerClient<SignedChannel>>,
    /// Sends to each broker, batched while requests are in flight.
    lanes: Lanes,
    faults: FaultTable,
    started: Instant,
    ids: mq_common::message_id::MessageIdGenerator,
    /// With `idempotent`: this producer's id and numbers.
    numbering: Option<Numbering>,
}

/// How a send picks its queue.
pub(crate) enum Choice<'a> {
    /// Round-robin, skipping faulty brokers; retries go elsewhere.
    Any,
    /// The queue of a sharding key; retries stay on it.
    Key(&'a str),
    /// The caller's choice among the topic's queues; retries stay on it.
    Select(&'a (dyn Fn(&[MessageQueue]) -> usize + Send + Sync)),
}

impl Producer {
    pub fn builder() -> ProducerBuilder {
        ProducerBuilder::default()
    }

    /// Sends one message and waits for the broker's answer, retrying
    /// (on another broker when there is one) up to `retries` times.
    pub async fn send(&self, msg: Message) -> Result<SendResult, ProducerError> {
        self.inner.send_one(msg).await
    }

    /// [`Producer::send`] within `timeout` (retries included) instead of
    /// the producer's `send_timeout`. Never lingers to be batched.
    pub async fn send_with_timeout(
        &self,
        msg: Message,
        timeout: Duration,
    ) -> Result<SendResult, ProducerError> {
        if timeout.is_zero() {
            return Err(ProducerError::Config(
                "timeout must be longer than 0".into(),
            ));
        }
        self.inner
            .send_within(vec![msg], Choice::Any, timeout)
            .await
            .map(first)
    }

    /// Sends in the background; the handle yields the result.
    pub fn send_async(&self, msg: Message) -> JoinHandle<Result<SendResult, ProducerError>> {
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.send_one(msg).await })
    }

    /// Sends without waiting for or retrying on the answer. Only a message
    /// that breaks a rule is reported.
    pub fn send_oneway(&self, msg: Message) -> Result<(), ProducerError> {
        self.inner.check(&msg)?;
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            if let Err(err) = inner.send(vec![msg], Choice::Any).await {
                tracing::debug!(error = %err, "one-way send failed");
            }
        });
        Ok(())
    }

    /// Sends messages of one topic to one queue, stored consecutively and
    /// acknowledged together.
    pub async fn send_batch(
        &self,
        messages: Vec<Message>,
    ) -> Result<Vec<SendResult>, ProducerError> {
        let Some(topic) = messages.first().map(|m| m.topic.clone()) else {
            return Err(FieldError::new("messages", "must not be empty").into());
        };
        let max = mq_common::validate::MAX_BATCH_MESSAGES;
        if messages.len() > max {
            return Err(FieldError::new(
                "messages",
                format!("{} messages in one batch; at most {max}", messages.len()),
            )
            .into());
        }
        if let Some(i) = messages.iter().position(|m| m.topic != topic) {
            return Err(FieldError::new(
                format!("messages[{i}].topic"),
                "differs from the first message's topic",
            )
            .into());
        }
        self.inner.send(messages, Choice::Any).await
    }

    /// Sends to the queue of `sharding_key`: messages with one key stay in
    /// order. Retries stay on that queue.
    pub async fn send_ordered(
        &self,
        msg: Message,
        sharding_key: &str,
    ) -> Result<SendResult, ProducerError> {
        if sharding_key.is_empty() {
            return Err(FieldError::new("sharding_key", "must not be empty").into());
        }
        self.inner
            .send(vec![msg], Choice::Key(sharding_key))
            .await
            .map(first)
    }

    /// Sends to the queue `selector` picks (an index into the queues it is
    /// given, taken modulo their count).
    pub async fn send_with_selector(
        &self,
        msg: Message,
        selector: &(dyn Fn(&[MessageQueue]) -> usize + Send + Sync),
    ) -> Result<SendResult, ProducerError> {
        self.inner
            .send(vec![msg], Choice::Select(selector))
            .await
            .map(first)
    }

    /// This producer's id when it numbers its sends (`idempotent`).
    pub fn producer_id(&self) -> Option<u64> {
        self.inner.numbering.as_ref().map(Numbering::producer_id)
    }

    /// What the latency-fault table knows of each broker.
    pub fn fault_table(&self) -> Vec<FaultItem> {
        self.inner.faults.items()
    }

    /// Whether new sends may go to `broker` now.
    pub fn is_broker_available(&self, broker: &str) -> bool {
        self.inner.faults.is_available(broker, self.inner.now_ms())
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn first(mut results: Vec<SendResult>) -> SendResult {
    results.remove(0)
}

impl Inner {
    /// One message: alone, or through the accumulator when lingering.
    async fn send_one(&self, msg: Message) -> Result<SendResult, ProducerError> {
        let Some(accumulator) = &self.accumulator else {
            return self.send(vec![msg], Choice::Any).await.map(first);
        };
        self.check(&msg)?;
        accumulator
            .push(msg)
            .await
            .map_err(|_| ProducerError::Closed)?
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The rules a broker would enforce, checked before anything is sent.
    pub(crate) fn check(&self, msg: &Message) -> Result<(), ProducerError> {
        validate::topic("topic", &msg.topic)?;
        mq_common::system_topics::check_not_reserved("topic", &msg.topic)?;
        if msg.body.is_empty() {
            return Err(FieldError::new("body", "must not be empty").into());
        }
        if msg.body.len() > self.options.max_message_size {
            return Err(FieldError::new(
                "body",
                format!(
                    "is {} bytes; the maximum message size is {} bytes",
                    msg.body.len(),
                    self.options.max_message_size
                ),
            )
            .into());
        }
        if msg.delivery == Some(Delivery::Level(0)) {
            return Err(FieldError::new("delay_level", "must be 1 or more").into());
        }
        if let Some(tags) = &msg.tags
            && (tags.is_empty() || tags.contains("||"))
        {
            return Err(FieldError::new("tags", format!("{tags:?} is not a single tag")).into());
        }
        if let Some(i) = msg
            .keys
            .iter()
            .position(|k| k.is_empty() || k.contains(' '))
        {
            return Err(FieldError::new(
                format!("keys[{i}]"),
                "must be non-empty and without spaces",
            )
            .into());
        }
        Ok(())
    }

    pub(crate) fn to_wire(&self, msg: &Message, sharding_key: Option<&str>) -> pb::Message {
        let (body, flags) = maybe_compress(&msg.body, self.options.compress_threshold);
        let born = unix_millis(std::time::SystemTime::now());
        pb::Message {
            topic: msg.topic.clone(),
            tags: msg.tags.clone().unwrap_or_default(),
            keys: msg.keys.clone(),
            properties: msg.properties.clone().into_iter().collect(),
            body,
            sharding_key: sharding_key.unwrap_or_default().to_owned(),
            unique_id: self.ids.next_id(),
            born_timestamp_ms: born,
            born_host: String::new(),
            flags,
            delay_level: match msg.delivery {
                Some(Delivery::Level(level)) => level,
                _ => 0,
            },
            deliver_at_ms: match msg.delivery {
                Some(Delivery::At(time)) => unix_millis(time),
                Some(Delivery::After(delay)) => unix_millis(std::time::SystemTime::now() + delay),
                _ => 0,
            },
        }
    }

    async fn send(
        &self,
        messages: Vec<Message>,
        choice: Choice<'_>,
    ) -> Result<Vec<SendResult>, ProducerError> {
        self.send_within(messages, choice, self.options.send_timeout)
            .await
    }

    /// Sends within `timeout`, retries included.
    async fn send_within(
        &self,
        messages: Vec<Message>,
        choice: Choice<'_>,
        timeout: Duration,
    ) -> Result<Vec<SendResult>, ProducerError> {
        for msg in &messages {
            self.check(msg)?;
        }
        let topic = messages[0].topic.clone();
        let key = match choice {
            Choice::Key(key) => Some(key),
            _ => None,
        };
        let wire: Vec<pb::Message> = messages.iter().map(|m| self.to_wire(m, key)).collect();
        let deadline = Instant::now() + timeout;
        let attempts = self.options.retries + 1;
        let mut avoid: Option<String> = None;
        // A send that may have been stored: retried on its queue with its
        // number, until the deadline.
        let mut pinned: Option<(MessageQueue, Numbered)> = None;
        let mut last = None;
        let mut attempt = 0;
        while attempt < attempts || pinned.is_some() {
            attempt += 1;
            let route = self.routes.get(&topic).await?;
            let (queue, numbered) = match &pinned {
                Some((queue, numbered)) => (queue.clone(), Some(*numbered)),
                None => {
                    let queue = self.choose(&route, &choice, avoid.as_deref())?.clone();
                    let numbered = self
                        .numbering
                        .as_ref()
                        .map(|n| n.number(&queue, wire.len()));
                    (queue, numbered)
                }
            };
            let addr = route
                .brokers
                .get(&queue.broker_name)
                .cloned()
                .ok_or_else(|| ProducerError::NoRoute {
                    topic: topic.clone(),
                    reason: format!("broker {} has no master address", queue.broker_name),
                })?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                if let Some((broker, status)) = last.filter(|_| pinned.is_some()) {
                    return Err(self.failed(attempt - 1, broker, &status));
                }
                return Err(ProducerError::Timeout {
                    millis: timeout.as_millis() as u64,
                    attempts: attempt - 1,
                });
            }
            let began = Instant::now();
            match self
                .call(&addr, &queue, wire.clone(), remaining, numbered)
                .await
            {
                Ok(results) => {
                    let latency = began.elapsed().as_millis() as u64;
                    if self.options.fault_tolerance {
                        self.faults.record_latency(
                            &queue.broker_name,
                            &addr,
                            latency,
                            self.now_ms(),
                        );
                    }
                    return Ok(results
                        .into_iter()
                        .map(|r| SendResult::from_wire(r, &queue.broker_name))
                        .collect());
                }
                Err(status)
                    if retryable(status.code())
                        || status.code() == tonic::Code::FailedPrecondition =>
                {
                    let busy = status.code() == tonic::Code::ResourceExhausted;
                    // Gone, or no longer the master (a failover): the
                    // route may name a new master by now, which is not
                    // the machine that failed.
                    let moved = matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::FailedPrecondition
                    ) && self
                        .routes
                        .suspect(&topic)
                        .await
                        .and_then(|r| r.brokers.get(&queue.broker_name).cloned())
                        .is_some_and(|now| now != addr);
                    if moved {
                        tracing::info!(broker = %queue.broker_name, old = %addr, "the broker's master moved; sending to the new one");
                        self.faults.recovered(&queue.broker_name);
                    } else if self.options.fault_tolerance && !busy {
                        self.faults
                            .record_failure(&queue.broker_name, &addr, self.now_ms());
                    }
                    tracing::debug!(broker = %queue.broker_name, attempt, code = ?status.code(), error = %status.message(), "send failed; retrying");
                    if pinned.is_none()
                        && let Some(numbered) = numbered
                        && idempotence::maybe_stored(&status)
                    {
                        pinned = Some((queue.clone(), numbered));
                    }
                    if pinned.is_some() {
                        let pause = idempotence::pinned_backoff(attempt)
                            .min(deadline.saturating_duration_since(Instant::now()));
                        if !moved {
                            tokio::time::sleep(pause).await;
                        }
                    } else if busy && attempt < attempts {
                        tokio::time::sleep(self.options.busy_backoff * attempt).await;
                    }
                    avoid = (!moved).then(|| queue.broker_name.clone());
                    last = Some((queue.broker_name, status));
                }
                Err(status) => {
                    if status.code() == tonic::Code::NotFound {
                        // The broker no longer has the topic: refetch next time.
                        self.routes.invalidate(&topic);
                    }
                    return Err(ProducerError::Refused {
                        broker: queue.broker_name,
                        code: status.code(),
                        message: status.message().to_owned(),
                    });
                }
            }
        }
        let (broker, status) = last.expect("at least one attempt ran");
        Err(self.failed(attempts, broker, &status))
    }

    fn failed(&self, attempts: u32, broker: String, status: &tonic::Status) -> ProducerError {
        ProducerError::Failed {
            attempts,
            broker,
            code: status.code(),
            message: status.message().to_owned(),
        }
    }

    pub(crate) fn choose<'r>(
        &self,
        route: &'r PublishRoute,
        choice: &Choice<'_>,
        avoid: Option<&str>,
    ) -> Result<&'r MessageQueue, ProducerError> {
        let faults = self.options.fault_tolerance.then_some(&self.faults);
        let queue = match choice {
            Choice::Any => selector::select(route, faults, avoid, self.now_ms()),
            Choice::Key(key) => selector::select_by_key(route, key),
            Choice::Select(pick) => (!route.queues.is_empty())
                .then(|| &route.queues[pick(&route.queues) % route.queues.len()]),
        };
        queue.ok_or_else(|| ProducerError::NoRoute {
            topic: route.topic.clone(),
            reason: "it has no writable queue".into(),
        })
    }

    /// One attempt: through the broker's lane, alone or with the sends
    /// that wait for it.
    async fn call(
        &self,
        addr: &str,
        queue: &MessageQueue,
        mut messages: Vec<pb::Message>,
        timeout: Duration,
        numbered: Option<Numbered>,
    ) -> Result<Vec<pb::SendResult>, tonic::Status> {
        use pb::send_item::Send as Item;
        let lane = self.lanes.lane(addr, || self.client(addr))?;
        let (producer_id, sequence) = numbered.map_or((0, 0), |n| (n.producer_id, n.sequence));
        let send = if messages.len() == 1 {
            Item::Message(pb::SendMessageRequest {
                message: messages.pop(),
                queue_id: queue.queue_id,
                producer_id,
                sequence,
            })
        } else {
            Item::Batch(pb::SendBatchRequest {
                topic: queue.topic.clone(),
                queue_id: queue.queue_id,
                messages,
                producer_id,
                sequence,
            })
        };
        lane.send(send, timeout).await
    }

    pub(crate) fn client(&self, addr: &str) -> Result<BrokerClient<SignedChannel>, tonic::Status> {
        if let Some(client) = self.clients.get(addr) {
            return Ok(client.clone());
        }
        let endpoint = self
            .options
            .connector
            .endpoint(addr)
            .map_err(|e| tonic::Status::invalid_argument(format!("broker {e}")))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .initial_stream_window_size(mq_common::http2::STREAM_WINDOW)
            .initial_connection_window_size(mq_common::http2::CONNECTION_WINDOW)
            .http2_keep_alive_interval(mq_common::http2::KEEPALIVE_INTERVAL)
            .keep_alive_timeout(mq_common::http2::KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let channel = self.options.connector.lazy(endpoint);
        let client = BrokerClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        Ok(self
            .clients
            .entry(addr.to_owned())
            .or_insert(client)
            .clone())
    }
}

/// Sends the accumulator's batches as they come due, each as one
/// `SendBatch` (with retries), and hands every send its result.
async fn send_batches(inner: Arc<Inner>) {
    let Some(accumulator) = &inner.accumulator else {
        return;
    };
    loop {
        for batch in accumulator.due().await {
            let inner = Arc::clone(&inner);
            tokio::spawn(async move {
                let (messages, waiters): (Vec<Message>, Vec<_>) = batch.into_iter().unzip();
                match inner.send(messages, Choice::Any).await {
                    Ok(results) => {
                        for (waiter, result) in waiters.into_iter().zip(results) {
                            let _ = waiter.send(Ok(result));
                        }
                    }
                    Err(err) => {
                        for waiter in waiters {
                            let _ = waiter.send(Err(err.clone()));
                        }
                    }
                }
            });
        }
    }
}

/// Refreshes cached routes every `route_refresh`.
async fn refresh_routes(inner: Arc<Inner>) {
    let mut ticks = tokio::time::interval(inner.options.route_refresh);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        inner.routes.refresh_all().await;
    }
}

/// How often routes are refetched while a broker is isolated.
const FAILOVER_RECHECK: Duration = Duration::from_millis(200);

/// While a broker is isolated, refetches routes every [`FAILOVER_RECHECK`]:
/// a group whose master died may have a new one elsewhere (controller
/// mode), and a route naming it moves sends there at once (see
/// `FaultTable::is_available_at`).
async fn follow_failovers(inner: Arc<Inner>) {
    let mut ticks = tokio::time::interval(FAILOVER_RECHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !inner.faults.isolated(inner.now_ms()).is_empty() {
            inner.routes.refresh_all().await;
        }
    }
}

/// Probes isolated brokers every `probe_interval` with a gRPC health check
/// and lets each back as soon as it answers.
async fn probe_isolated(inner: Arc<Inner>) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let mut ticks = tokio::time::interval(inner.options.probe_interval);
    loop {
        ticks.tick().await;
        for item in inner.faults.isolated(inner.now_ms()) {
            let Ok(endpoint) = inner.options.connector.endpoint(&item.addr) else {
                continue;
            };
            let endpoint = endpoint
                .connect_timeout(inner.options.probe_timeout)
                .timeout(inner.options.probe_timeout);
            let answered = match inner.options.connector.connect(&endpoint).await {
                Ok(channel) => HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_ok(),
                Err(_) => false,
            };
            if answered {
                tracing::info!(broker = %item.broker_name, addr = %item.addr, "isolated broker answers again");
                inner.faults.recovered(&item.broker_name);
            }
        }
    }
}

use mq_common::clock::to_unix_millis as unix_millis;
