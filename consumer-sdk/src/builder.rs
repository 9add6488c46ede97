//! Settings shared by push and pull consumers, with their defaults and
//! checks, and the engine they make.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mq_common::validate;
use mq_nameserver_client::NameServerClient;

use crate::allocate::{AllocateStrategy, Sticky};
use crate::cluster::Cluster;
use crate::engine::{ConsumeFrom, Engine, Settings, Sink, Subscription};
use crate::error::ConsumerError;
use crate::offset_store::OffsetStore;

/// Consumer settings; see each setter of the builders for its default.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    pub namesrv: String,
    pub group: String,
    pub client_id: String,
    pub broadcasting: bool,
    pub strategy: Arc<dyn AllocateStrategy>,
    pub consume_from: ConsumeFrom,
    /// (topic, tag expression, SQL92 expression: empty for none).
    pub subscriptions: Vec<(String, String, String)>,
    pub pull_batch: u32,
    pub suspend: Duration,
    pub max_cached_messages: usize,
    pub max_cached_bytes: usize,
    pub rebalance_interval: Duration,
    pub heartbeat_interval: Duration,
    pub commit_interval: Duration,
    pub retry_delay: Duration,
    /// Reconsumptions before a message becomes a dead letter.
    pub max_reconsume_times: u32,
    /// Where broadcasting consumers keep their offsets.
    pub offset_dir: PathBuf,
    /// How brokers and nameservers are reached: TLS, and credentials
    /// that sign every request (clusters with authentication refuse others).
    pub connector: mq_auth::Connector,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            namesrv: String::new(),
            group: String::new(),
            client_id: default_client_id(),
            broadcasting: false,
            strategy: Arc::new(Sticky),
            consume_from: ConsumeFrom::LastOffset,
            subscriptions: Vec::new(),
            pull_batch: 32,
            suspend: Duration::from_secs(15),
            max_cached_messages: 1000,
            max_cached_bytes: 100 << 20,
            rebalance_interval: Duration::from_secs(20),
            heartbeat_interval: Duration::from_secs(10),
            commit_interval: Duration::from_secs(5),
            retry_delay: Duration::from_secs(1),
            max_reconsume_times: 16,
            offset_dir: PathBuf::from("data/consumer-offsets"),
            connector: mq_auth::Connector::default(),
        }
    }
}

/// Host name and process id, unique per process on a machine.
fn default_client_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    static INSTANCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let instance = INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{host}@{}#{instance}", std::process::id())
}

impl ConsumerOptions {
    /// Checks the settings and makes the engine (not started).
    pub(crate) fn engine(self, sink: Sink) -> Result<Arc<Engine>, ConsumerError> {
        validate::topic("group", &self.group)?;
        if self.client_id.is_empty() || self.client_id.chars().any(char::is_whitespace) {
            return Err(ConsumerError::Config(
                "client_id must be non-empty without spaces".into(),
            ));
        }
        if self.pull_batch == 0 || self.pull_batch > 1024 {
            return Err(ConsumerError::Config(format!(
                "pull_batch {} is out of range 1..=1024",
                self.pull_batch
            )));
        }
        if self.max_reconsume_times == 0 {
            return Err(ConsumerError::Config(
                "max_reconsume_times must be at least 1".into(),
            ));
        }
        if self.suspend > Duration::from_secs(30) {
            return Err(ConsumerError::Config("suspend must be at most 30 s".into()));
        }
        let mut subscriptions = Vec::new();
        for (i, (topic, expression, sql)) in self.subscriptions.iter().enumerate() {
            validate::topic(&format!("subscriptions[{i}].topic"), topic)?;
            let tags =
                validate::tag_expression(&format!("subscriptions[{i}].expression"), expression)?;
            // Checked here as the broker will: a mistake fails the build,
            // with its position, rather than every pull.
            if !sql.is_empty() {
                mq_filter::SqlFilter::compile(sql).map_err(|e| {
                    validate::FieldError::new(format!("subscriptions[{i}].sql"), e.to_string())
                })?;
            }
            subscriptions.push(Subscription {
                sql: sql.clone(),
                topic: topic.clone(),
                expression: if tags.is_empty() {
                    "*".into()
                } else {
                    tags.join(" || ")
                },
                tags,
            });
        }
        let namesrv = NameServerClient::from_list_with(&self.namesrv, self.connector.clone())
            .map_err(|e| ConsumerError::Config(e.to_string()))?;
        let offsets = if self.broadcasting {
            std::fs::create_dir_all(&self.offset_dir).map_err(|e| {
                ConsumerError::Config(format!("{}: {e}", self.offset_dir.display()))
            })?;
            let file = format!(
                "{}-{}.json",
                self.group,
                self.client_id.replace(['/', '@', '#'], "_")
            );
            OffsetStore::local(self.offset_dir.join(file))?
        } else {
            OffsetStore::remote(&self.group)
        };
        let settings = Settings {
            group: self.group,
            client_id: self.client_id,
            broadcasting: self.broadcasting,
            strategy: self.strategy,
            consume_from: self.consume_from,
            pull_batch: self.pull_batch,
            suspend: self.suspend,
            max_cached_messages: self.max_cached_messages.max(1),
            max_cached_bytes: self.max_cached_bytes.max(1),
            rebalance_interval: self.rebalance_interval,
            heartbeat_interval: self.heartbeat_interval,
            commit_interval: self.commit_interval,
            retry_delay: self.retry_delay,
            max_reconsume_times: self.max_reconsume_times,
        };
        Ok(Engine::new(
            settings,
            subscriptions,
            Cluster::new(namesrv, self.connector),
            offsets,
            sink,
        ))
    }
}

/// Setters shared by both builders.
macro_rules! option_setters {
    () => {
        /// Nameserver addresses, `;`-separated (required).
        pub fn namesrv(mut self, list: impl Into<String>) -> Self {
            self.options.namesrv = list.into();
            self
        }
        /// The consumer group (required).
        pub fn group(mut self, group: impl Into<String>) -> Self {
            self.options.group = group.into();
            self
        }
        /// Unique per member [default: host@pid#n].
        pub fn client_id(mut self, id: impl Into<String>) -> Self {
            self.options.client_id = id.into();
            self
        }
        /// Subscribes to `topic` with a tag expression (`*`, `TagA || TagB`).
        pub fn subscribe(
            mut self,
            topic: impl Into<String>,
            expression: impl Into<String>,
        ) -> Self {
            self.options
                .subscriptions
                .push((topic.into(), expression.into(), String::new()));
            self
        }
        /// Subscribes to `topic` with a SQL92 expression over the messages'
        /// properties (`a > 5 AND region IN ('eu', 'us')`; the tag is
        /// `TAGS`), evaluated on the broker: messages it does not make
        /// TRUE never cross the wire. An invalid expression fails `build`
        /// with the position of the mistake.
        pub fn subscribe_sql(mut self, topic: impl Into<String>, sql: impl Into<String>) -> Self {
            self.options
                .subscriptions
                .push((topic.into(), "*".into(), sql.into()));
            self
        }
        /// Every member gets every message [default: off: clustering].
        pub fn broadcasting(mut self, on: bool) -> Self {
            self.options.broadcasting = on;
            self
        }
        /// How queues are shared in the group [default: sticky].
        pub fn strategy(
            mut self,
            strategy: impl crate::allocate::AllocateStrategy + 'static,
        ) -> Self {
            self.options.strategy = std::sync::Arc::new(strategy);
            self
        }
        /// Where a new group starts [default: the end of each queue].
        pub fn consume_from(mut self, from: crate::engine::ConsumeFrom) -> Self {
            self.options.consume_from = from;
            self
        }
        /// Messages per pull, 1 to 1024 [default: 32].
        pub fn pull_batch(mut self, n: u32) -> Self {
            self.options.pull_batch = n;
            self
        }
        /// How long a pull waits on the broker for new messages [default: 15 s].
        pub fn suspend(mut self, d: std::time::Duration) -> Self {
            self.options.suspend = d;
            self
        }
        /// Cached messages per queue before pulling pauses [default: 1000].
        pub fn max_cached_messages(mut self, n: usize) -> Self {
            self.options.max_cached_messages = n;
            self
        }
        /// Cached bytes per queue before pulling pauses [default: 100 MiB].
        pub fn max_cached_bytes(mut self, n: usize) -> Self {
            self.options.max_cached_bytes = n;
            self
        }
        /// Rebalance at least this often [default: 20 s].
        pub fn rebalance_interval(mut self, d: std::time::Duration) -> Self {
            self.options.rebalance_interval = d;
            self
        }
        /// Heartbeat this often [default: 10 s].
        pub fn heartbeat_interval(mut self, d: std::time::Duration) -> Self {
            self.options.heartbeat_interval = d;
            self
        }
        /// Commit offsets this often [default: 5 s].
        pub fn commit_interval(mut self, d: std::time::Duration) -> Self {
            self.options.commit_interval = d;
            self
        }
        /// Where broadcasting members keep their offsets [default: data/consumer-offsets].
        pub fn offset_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
            self.options.offset_dir = dir.into();
            self
        }
        /// Signs requests as the user `access_key` with `secret_key`.
        pub fn credentials(
            mut self,
            access_key: impl Into<String>,
            secret_key: impl Into<String>,
        ) -> Self {
            self.options.connector.credentials =
                Some(mq_auth::Credentials::new(access_key, secret_key));
            self
        }
        /// How brokers and nameservers are reached (TLS and credentials at once).
        pub fn connector(mut self, connector: mq_auth::Connector) -> Self {
            self.options.connector = connector;
            self
        }
        /// Connects over TLS (see [`mq_auth::ClientTls::from_files`]).
        pub fn tls(mut self, tls: mq_auth::ClientTls) -> Self {
            self.options.connector.tls = Some(tls);
            self
        }
        /// Signs requests with the credentials in `MQ_ACCESS_KEY` and
        /// `MQ_SECRET_KEY`, when both are set; an error when only one is.
        pub fn credentials_from_env(mut self) -> Result<Self, crate::ConsumerError> {
            let var = |name| std::env::var(name).ok();
            self.options.connector.credentials = mq_auth::Credentials::from_parts(
                var("MQ_ACCESS_KEY").as_deref(),
                var("MQ_SECRET_KEY").as_deref(),
            )
            .map_err(|e| crate::ConsumerError::Config(e.to_string()))?;
            Ok(self)
        }
    };
}

pub(crate) use option_setters;
