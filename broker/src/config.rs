//! The broker's configuration, layered: built-in defaults < TOML file
//! (`--config`) < environment (`MQ_BROKER_*`, store settings as
//! `MQ_BROKER_STORE__<KEY>`) < flags. Store settings live in the `[store]`
//! table of the file; each is also a flag through `--store-set KEY=VALUE`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use config::{Config, Environment, File, FileFormat};
use mq_auth::Secret;
use mq_auth::settings::{AuthArgs, AuthSettings};
use mq_common::telemetry::LogFormat;
use mq_common::tls::{TlsArgs, TlsSettings};
use serde::Deserialize;
use thiserror::Error;

use mq_store::{FlushMode, StoreConfig};

/// RocketMQ 5's proxy port, the proxy's default.
pub const DEFAULT_PROXY_PORT: u16 = 8081;

/// Prefix of every environment variable the broker reads.
pub const ENV_PREFIX: &str = "MQ_BROKER";

/// Settings of one broker process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Address the gRPC service listens on.
    pub listen: SocketAddr,
    /// Address of the HTTP endpoint with `/metrics` (Prometheus) and
    /// `/healthz`.
    pub metrics_listen: SocketAddr,
    /// Where the proxy inside this broker serves RocketMQ 5's protocol
    /// (`apache.rocketmq.v2`, the official clients), local mode; by
    /// default the gRPC listen address's IP, port 8081.
    pub proxy_listen: Option<SocketAddr>,
    /// Address registered for RocketMQ 5 clients; defaults to the
    /// advertised host with the proxy's port.
    pub proxy_advertise_addr: Option<String>,
    /// Address registered with the nameservers for clients; defaults to
    /// the listen address (with 127.0.0.1 for an unspecified IP).
    pub advertise_addr: Option<String>,
    /// Nameserver addresses, `;`-separated. Required unless standalone.
    pub namesrv: Option<String>,
    pub store_dir: PathBuf,
    pub cluster: String,
    pub broker_name: String,
    /// 0 for a master, above 0 for a replica. In controller mode this
    /// broker's member id (1 and above), whatever its role.
    pub broker_id: u64,
    /// A replica's master (`host:port` of its broker port), whose
    /// CommitLog it follows. Required for a replica, refused for a master
    /// and in controller mode.
    pub master_addr: Option<String>,
    /// Controller mode: the controllers (`host:port;host:port;...`), which
    /// say who is master, elect a new one when it dies, and hold the
    /// SyncStateSet.
    pub controller_addr: Option<String>,
    /// Controller mode: `host:port` where the other members of the group
    /// reach this broker (to follow it when it is master); defaults to the
    /// advertised address, which is for clients and may not be reachable
    /// from the other members (containers publishing ports).
    pub replication_addr: Option<String>,
    /// Controller mode: how often the broker heartbeats the controller
    /// (and learns a new master or SyncStateSet).
    #[serde(with = "humantime_serde")]
    pub controller_heartbeat_interval: Duration,
    /// How often the broker registers (heartbeats) with the nameservers.
    #[serde(with = "humantime_serde")]
    pub register_interval: Duration,
    /// Create an unknown topic on its first send. Default: on when
    /// standalone, off otherwise.
    pub auto_create_topic: Option<bool>,
    /// Queue count of auto-created topics.
    pub default_topic_queues: u32,
    /// Bytes of sends accepted but not yet stored before new sends wait.
    pub max_queued_bytes: u64,
    /// Bytes of pull responses sent but not yet read, to all clients
    /// together, before further pulls wait (then are refused).
    pub pull_bytes_in_flight: u64,
    /// The same, to one client connection.
    pub pull_bytes_in_flight_per_client: u64,
    /// Most client connections at once (beyond it they are closed at
    /// once); 0 means half the file descriptor limit, leaving the rest to
    /// the store.
    pub max_connections: usize,
    /// A connection from which nothing arrived for this long is closed
    /// (live clients answer the keepalive pings; silent sockets do not).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A client connection silent for this long is pinged (HTTP/2)...
    #[serde(with = "humantime_serde")]
    pub client_keepalive_interval: Duration,
    /// ...and closed when the ping goes unanswered this long. A consumer
    /// on a machine that died (or froze) loses its session with its
    /// connection, and its queues move: within the two together.
    #[serde(with = "humantime_serde")]
    pub client_keepalive_timeout: Duration,
    /// When a master acknowledges a send: `async`, once in its own store,
    /// or `sync`, once `min_in_sync_replicas` replicas have it too.
    pub replication: ReplicationMode,
    /// Sync replication: replicas that must have a send before it is
    /// acknowledged.
    pub min_in_sync_replicas: usize,
    /// Sync replication: how long a send waits for its replicas before it
    /// is answered FLUSH_SLAVE_TIMEOUT or SLAVE_NOT_AVAILABLE.
    #[serde(with = "humantime_serde")]
    pub replication_timeout: Duration,
    /// A connected replica further behind than this many bytes is not in
    /// sync.
    pub in_sync_lag_bytes: u64,
    /// A connected replica that has not had the master's whole log for
    /// this long is not in sync either.
    #[serde(with = "humantime_serde")]
    pub in_sync_lag_time: Duration,
    /// A pull reading this many CommitLog bytes behind the head is sent to
    /// an in-sync replica (its cold reads would thrash the master's page
    /// cache; RocketMQ's `suggestWhichBrokerId`); 0 never sends it.
    pub replica_read_behind_bytes: u64,
    /// How long a send may wait for room before it is refused as busy.
    #[serde(with = "humantime_serde")]
    pub max_queue_wait: Duration,
    /// A consumer not heard from for this long leaves its group.
    #[serde(with = "humantime_serde")]
    pub consumer_expire: Duration,
    /// How long an ordered consumer's queue lock lasts unless renewed.
    #[serde(with = "humantime_serde")]
    pub queue_lock_expire: Duration,
    /// How often committed consumer offsets are saved.
    #[serde(with = "humantime_serde")]
    pub offset_persist_interval: Duration,
    /// Delay levels, space-separated: level 1 is the first.
    pub delay_levels: String,
    /// Latest delivery time a producer may ask for, from now.
    #[serde(with = "humantime_serde")]
    pub max_delivery_delay: Duration,
    /// Reconsumptions before a message becomes a dead letter, unless the
    /// consumer group says otherwise.
    pub max_reconsume_times: u32,
    /// The shortest invisible time a POP consumer may ask for (RocketMQ's
    /// proxy: 10 s).
    #[serde(with = "humantime_serde")]
    pub pop_min_invisible: Duration,
    /// A half message younger than this is not checked back (RocketMQ:
    /// 6 s).
    #[serde(with = "humantime_serde")]
    pub transaction_timeout: Duration,
    /// Between two checks of one open transaction (RocketMQ: 60 s).
    #[serde(with = "humantime_serde")]
    pub transaction_check_interval: Duration,
    /// Checks of an open transaction before it is discarded (RocketMQ: 15).
    pub transaction_check_max: u32,
    /// Delay level of a message's first retry; each further retry waits
    /// one level longer (RocketMQ: 3, 10 s).
    pub retry_first_level: u32,
    /// Also run a nameserver in this process (the one-command setup).
    pub standalone: bool,
    /// Where the embedded nameserver listens when standalone.
    pub namesrv_listen: SocketAddr,
    pub log_level: String,
    pub log_format: LogFormat,
    /// Listen beyond loopback with authentication off (anyone who reaches
    /// the port may send, read and administer); refused without it.
    pub insecure: bool,
    /// Authentication and authorization: see `mq_auth::settings`.
    pub auth_enabled: bool,
    pub auth_access_key: Option<String>,
    pub auth_secret_key: Option<Secret>,
    pub auth_secret_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub auth_max_clock_skew: Duration,
    #[serde(with = "humantime_serde")]
    pub auth_sync_interval: Duration,
    /// TLS: see `mq_common::tls::TlsArgs`.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub tls_client_ca_file: Option<PathBuf>,
    pub tls_ca_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub tls_reload_interval: Duration,
    pub tls_metrics: bool,
    pub store: StoreConfig,
}

/// A configuration that cannot be used; the message names the culprit.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {key} {reason}")]
    Invalid { key: String, reason: String },
}

/// The broker of the mq message queue: stores messages and serves them.
///
/// Every option can also be set in the TOML file given by --config (key as
/// the option without dashes, '-' as '_') or in the environment as
/// MQ_BROKER_<KEY> (e.g. MQ_BROKER_BROKER_NAME=broker-b). Store settings go
/// in the file's [store] table, in the environment as
/// MQ_BROKER_STORE__<KEY>, or as flags with --store-set KEY=VALUE; they are:
/// commitlog_segment_size, max_message_size, flush, sync_flush_timeout,
/// async_flush_interval, async_flush_least_pages,
/// consume_queue_entries_per_file, index_slots_per_file,
/// index_entries_per_file, prewarm, mlock, preallocate_segments,
/// transient_store_pool, transient_store_pool_buffers, commit_interval,
/// file_reserved_time,
/// delete_hour, disk_soft_ratio, disk_hard_ratio, housekeeping_interval,
/// checkpoint_interval. Precedence: defaults < file < environment < flags.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "broker", version, about, long_about)]
pub struct Args {
    /// TOML configuration file.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also run a nameserver in this process, store under ./data, auto-create topics on.
    #[arg(long)]
    pub standalone: bool,
    /// gRPC listen address [default: 0.0.0.0:10911]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// HTTP address of /metrics (Prometheus) and /healthz [default: 0.0.0.0:5557]
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Where RocketMQ 5 clients connect (the proxy in this broker) [default: the --listen IP, port 8081]
    #[arg(long, value_name = "ADDR")]
    pub proxy_listen: Option<SocketAddr>,
    /// Address RocketMQ 5 clients should use [default: the advertised host, the proxy's port]
    #[arg(long, value_name = "HOST:PORT")]
    pub proxy_advertise_addr: Option<String>,
    /// Address clients should use, registered with the nameservers [default: the listen address]
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_addr: Option<String>,
    /// Nameserver addresses, ';'-separated [default with --standalone: the embedded one]
    #[arg(long, value_name = "ADDR[;ADDR]")]
    pub namesrv: Option<String>,
    /// Where the embedded nameserver listens with --standalone [default: 0.0.0.0:9876]
    #[arg(long, value_name = "ADDR")]
    pub namesrv_listen: Option<SocketAddr>,
    /// Store directory [default: data/broker]
    #[arg(long, value_name = "DIR")]
    pub store_dir: Option<PathBuf>,
    /// Cluster name [default: DefaultCluster]
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Broker name, shared by a master and its replicas [default: broker-a]
    #[arg(long, value_name = "NAME")]
    pub broker_name: Option<String>,
    /// 0 for the master, above 0 for replicas [default: 0]
    #[arg(long, value_name = "ID")]
    pub broker_id: Option<u64>,
    /// A replica's master, host:port of its broker port (replicas only)
    #[arg(long, value_name = "ADDR")]
    pub master_addr: Option<String>,
    /// Controller mode: the controllers, host:port;host:port;... (they pick the master)
    #[arg(long, value_name = "LIST")]
    pub controller_addr: Option<String>,
    /// When a send is acknowledged: sync (on disk) or async (in memory) [default: async]
    #[arg(long, value_name = "sync|async")]
    pub flush: Option<String>,
    /// A master's acknowledgement: async (own store) or sync (replicas too) [default: async]
    #[arg(long, value_name = "sync|async")]
    pub replication: Option<String>,
    /// Create unknown topics on first send: true or false [default: true with --standalone, else false]
    #[arg(long, value_name = "BOOL")]
    pub auto_create_topic: Option<bool>,
    /// How often to register with the nameservers [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub register_interval: Option<humantime::Duration>,
    /// Drop a consumer not heard from for this long [default: 120s]
    #[arg(long, value_name = "DURATION")]
    pub consumer_expire: Option<humantime::Duration>,
    /// A store setting, e.g. --store-set commitlog_segment_size=268435456 (repeatable)
    #[arg(long = "store-set", value_name = "KEY=VALUE")]
    pub store_set: Vec<String>,
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives [default: info]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log line format: text or json [default: text]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Listen beyond loopback without authentication (anyone who reaches the port may send, read and administer)
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl BrokerConfig {
    /// Builds the configuration from every layer, with `env` standing in
    /// for the process environment.
    pub fn load(
        args: &Args,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: config::Map<String, String> = env.into_iter().collect();
        let config = Self::load_with(args, env.clone(), "0.0.0.0")?;
        // The one-command setup listens on loopback unless told otherwise:
        // a laptop's broker is not the network's.
        let config = match config.standalone {
            true => Self::load_with(args, env, "127.0.0.1")?,
            false => config,
        };
        config.exposure()?;
        Ok(config)
    }

    /// [`BrokerConfig::load`] with listen addresses defaulting to `host`.
    fn load_with(
        args: &Args,
        env: config::Map<String, String>,
        host: &str,
    ) -> Result<Self, ConfigError> {
        let mut builder = Config::builder()
            .set_default("listen", format!("{host}:10911"))?
            .set_default("metrics_listen", format!("{host}:5557"))?
            .set_default("store_dir", "data/broker")?
            .set_default("cluster", "DefaultCluster")?
            .set_default("broker_name", "broker-a")?
            .set_default("broker_id", 0)?
            .set_default("register_interval", "30s")?
            .set_default("controller_heartbeat_interval", "500ms")?
            .set_default("default_topic_queues", 4)?
            .set_default("max_queued_bytes", 64 * 1024 * 1024)?
            .set_default("max_queue_wait", "1s")?
            .set_default("pull_bytes_in_flight", 512 * 1024 * 1024)?
            .set_default("max_connections", 0)?
            .set_default("idle_timeout", "60s")?
            .set_default("client_keepalive_interval", "10s")?
            .set_default("client_keepalive_timeout", "5s")?
            .set_default("replication", "async")?
            .set_default("min_in_sync_replicas", 1)?
            .set_default("replication_timeout", "3s")?
            .set_default("in_sync_lag_bytes", 64 * 1024 * 1024)?
            .set_default("in_sync_lag_time", "10s")?
            .set_default("replica_read_behind_bytes", 4u64 << 30)?
            .set_default("pull_bytes_in_flight_per_client", 64 * 1024 * 1024)?
            .set_default("consumer_expire", "120s")?
            .set_default("queue_lock_expire", "60s")?
            .set_default("offset_persist_interval", "5s")?
            .set_default("delay_levels", crate::schedule::delays::DEFAULT_LEVELS)?
            .set_default("max_delivery_delay", "7d")?
            .set_default("max_reconsume_times", 16)?
            .set_default("pop_min_invisible", "10s")?
            .set_default("transaction_timeout", "6s")?
            .set_default("transaction_check_interval", "60s")?
            .set_default("transaction_check_max", 15)?
            .set_default("retry_first_level", 3)?
            .set_default("standalone", false)?
            .set_default("namesrv_listen", format!("{host}:9876"))?
            .set_default("insecure", false)?
            .set_default("log_level", "info")?
            .set_default("log_format", "text")?
            .set_default("store.flush", "async")?;
        for (key, value) in mq_auth::settings::DEFAULTS
            .into_iter()
            .chain(mq_common::tls::DEFAULTS)
        {
            builder = builder.set_default(key, value)?;
        }
        if let Some(path) = &args.config {
            builder = builder.add_source(
                File::from(path.as_path())
                    .format(FileFormat::Toml)
                    .required(true),
            );
        }
        builder = builder.add_source(
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .source(Some(env)),
        );
        for setting in &args.store_set {
            let (key, value) = setting
                .split_once('=')
                .ok_or_else(|| ConfigError::Invalid {
                    key: "--store-set".into(),
                    reason: format!("{setting:?} is not KEY=VALUE"),
                })?;
            builder = builder.set_override(format!("store.{}", key.trim()), value.trim())?;
        }
        builder = builder
            .set_override_option("listen", args.listen.map(|a| a.to_string()))?
            .set_override_option("metrics_listen", args.metrics_listen.map(|a| a.to_string()))?
            .set_override_option("proxy_listen", args.proxy_listen.map(|a| a.to_string()))?
            .set_override_option("proxy_advertise_addr", args.proxy_advertise_addr.clone())?
            .set_override_option("advertise_addr", args.advertise_addr.clone())?
            .set_override_option("namesrv", args.namesrv.clone())?
            .set_override_option("namesrv_listen", args.namesrv_listen.map(|a| a.to_string()))?
            .set_override_option(
                "store_dir",
                args.store_dir.as_ref().map(|d| d.display().to_string()),
            )?
            .set_override_option("cluster", args.cluster.clone())?
            .set_override_option("broker_name", args.broker_name.clone())?
            .set_override_option("broker_id", args.broker_id)?
            .set_override_option("master_addr", args.master_addr.clone())?
            .set_override_option("controller_addr", args.controller_addr.clone())?
            .set_override_option("store.flush", args.flush.clone())?
            .set_override_option("replication", args.replication.clone())?
            .set_override_option("auto_create_topic", args.auto_create_topic)?
            .set_override_option(
                "register_interval",
                args.register_interval.map(|d| d.to_string()),
            )?
            .set_override_option(
                "consumer_expire",
                args.consumer_expire.map(|d| d.to_string()),
            )?
            .set_override_option("log_level", args.log_level.clone())?
            .set_override_option("log_format", args.log_format.map(|f| f.to_string()))?;
        if args.standalone {
            builder = builder.set_override("standalone", true)?;
        }
        if args.insecure {
            builder = builder.set_override("insecure", true)?;
        }
        for (key, value) in args
            .auth
            .overrides()
            .into_iter()
            .chain(args.tls.overrides())
        {
            builder = builder.set_override_option(key, value)?;
        }
        let config: BrokerConfig = builder.build()?.try_deserialize()?;
        config.check()?;
        config.auth()?;
        config.tls()?;
        Ok(config)
    }

    /// Refuses gRPC ports beyond loopback with authentication off unless
    /// `insecure`; the warning to log when allowed.
    pub fn exposure(&self) -> Result<Option<String>, ConfigError> {
        let mut listens = vec![
            ("listen", self.listen),
            ("proxy_listen", self.proxy_listen()),
        ];
        if self.standalone && self.namesrv.is_none() {
            listens.push(("namesrv_listen", self.namesrv_listen));
        }
        mq_auth::settings::exposure(self.auth_enabled, self.insecure, &listens).map_err(
            |(key, reason)| ConfigError::Invalid {
                key: key.to_owned(),
                reason,
            },
        )
    }

    /// The TLS this server serves, if any.
    pub fn tls(&self) -> Result<Option<TlsSettings>, ConfigError> {
        TlsSettings::from_config(
            self.tls_cert_file.as_deref(),
            self.tls_key_file.as_deref(),
            self.tls_client_ca_file.as_deref(),
            self.tls_reload_interval,
            self.tls_metrics,
        )
        .map_err(|(key, reason)| ConfigError::Invalid {
            key: key.to_owned(),
            reason,
        })
    }

    /// The authentication settings.
    pub fn auth(&self) -> Result<AuthSettings, ConfigError> {
        AuthSettings::from_config(
            self.auth_enabled,
            self.auth_access_key.as_deref(),
            self.auth_secret_key.as_ref(),
            self.auth_secret_file.as_deref(),
            self.auth_max_clock_skew,
            self.auth_sync_interval,
        )
        .map_err(|(key, reason)| ConfigError::Invalid {
            key: key.to_owned(),
            reason,
        })
    }

    /// The parsed `delay_levels`.
    pub fn delay_table(&self) -> Result<crate::schedule::DelayTable, ConfigError> {
        crate::schedule::DelayTable::parse(&self.delay_levels, self.store.file_reserved_time)
            .map_err(|reason| ConfigError::Invalid {
                key: "delay_levels".into(),
                reason,
            })
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self.namesrv.is_none() && !self.standalone {
            return invalid("namesrv", "is required (or run with --standalone)");
        }
        if self.transaction_check_interval.is_zero() {
            return invalid("transaction_check_interval", "must be above 0");
        }
        if let Some(list) = &self.namesrv {
            mq_nameserver_client::parse_addresses(list).map_err(|e| ConfigError::Invalid {
                key: "namesrv".into(),
                reason: e.to_string(),
            })?;
        }
        if let Some(addr) = &self.advertise_addr {
            mq_common::validate::host_port("advertise_addr", addr).map_err(|e| {
                ConfigError::Invalid {
                    key: "advertise_addr".into(),
                    reason: e.reason,
                }
            })?;
        }
        if let Some(addr) = &self.replication_addr {
            mq_common::validate::host_port("replication_addr", addr).map_err(|e| {
                ConfigError::Invalid {
                    key: "replication_addr".into(),
                    reason: e.reason,
                }
            })?;
        }
        if let Some(list) = &self.controller_addr {
            mq_controller::client::ControllerClient::parse_list(list).map_err(|e| {
                ConfigError::Invalid {
                    key: "controller_addr".into(),
                    reason: e.to_string(),
                }
            })?;
            if self.master_addr.is_some() {
                return invalid(
                    "master_addr",
                    "is not set in controller mode: the controller names the master",
                );
            }
            if self.broker_id == 0 {
                return invalid(
                    "broker_id",
                    "must be 1 or above in controller mode (each member's own id; the master takes slot 0 in routes whoever it is)",
                );
            }
        }
        match (&self.master_addr, self.broker_id) {
            _ if self.controller_addr.is_some() => {}
            (None, 0) => {}
            (Some(_), 0) => {
                return invalid(
                    "master_addr",
                    "is for replicas only (broker_id above 0); this broker is a master",
                );
            }
            (None, _) => {
                return invalid(
                    "master_addr",
                    "is required for a replica (broker_id above 0): the master whose CommitLog it follows",
                );
            }
            (Some(master), _) => {
                mq_common::validate::host_port("master_addr", master).map_err(|e| {
                    ConfigError::Invalid {
                        key: "master_addr".into(),
                        reason: e.reason,
                    }
                })?;
                let own = [Some(self.listen.to_string()), self.advertise_addr.clone()];
                if own.iter().flatten().any(|addr| addr == master) {
                    return invalid(
                        "master_addr",
                        "is this broker itself; a replica follows another broker",
                    );
                }
            }
        }
        for (key, name) in [
            ("cluster", &self.cluster),
            ("broker_name", &self.broker_name),
        ] {
            mq_common::validate::node_name(key, name).map_err(|e| ConfigError::Invalid {
                key: key.into(),
                reason: e.reason,
            })?;
        }
        let delays = self.delay_table()?;
        if self.retry_first_level == 0 || self.retry_first_level > delays.level_count() {
            return invalid(
                "retry_first_level",
                &format!("must be a delay level, 1 to {}", delays.level_count()),
            );
        }
        mq_common::validate::queue_count("default_topic_queues", self.default_topic_queues)
            .map_err(|e| ConfigError::Invalid {
                key: "default_topic_queues".into(),
                reason: e.reason,
            })?;
        if self.replication == ReplicationMode::Sync
            && self.min_in_sync_replicas == 0
            && self.controller_addr.is_none()
        {
            return invalid(
                "min_in_sync_replicas",
                "must be at least 1 with sync replication (0 only in controller mode, where every member of the SyncStateSet must have a send)",
            );
        }
        for (key, value) in [
            ("replication_timeout", self.replication_timeout),
            ("in_sync_lag_time", self.in_sync_lag_time),
            ("register_interval", self.register_interval),
            (
                "controller_heartbeat_interval",
                self.controller_heartbeat_interval,
            ),
            ("consumer_expire", self.consumer_expire),
            ("queue_lock_expire", self.queue_lock_expire),
            ("offset_persist_interval", self.offset_persist_interval),
            ("idle_timeout", self.idle_timeout),
            ("client_keepalive_interval", self.client_keepalive_interval),
            ("client_keepalive_timeout", self.client_keepalive_timeout),
        ] {
            if value.is_zero() {
                return invalid(key, "must be longer than 0s");
            }
        }
        if self.pull_bytes_in_flight_per_client == 0
            || self.pull_bytes_in_flight < self.pull_bytes_in_flight_per_client
        {
            return invalid(
                "pull_bytes_in_flight_per_client",
                "must be at least 1 and at most pull_bytes_in_flight",
            );
        }
        if self.max_queued_bytes < u64::from(self.store.max_message_size) {
            return invalid(
                "max_queued_bytes",
                "must hold at least one message of store.max_message_size",
            );
        }
        Ok(())
    }

    /// Where the proxy listens: as configured, else the gRPC listen IP
    /// with RocketMQ 5's port 8081.
    pub fn proxy_listen(&self) -> SocketAddr {
        self.proxy_listen
            .unwrap_or_else(|| SocketAddr::new(self.listen.ip(), DEFAULT_PROXY_PORT))
    }

    /// Whether unknown topics are created on first send.
    pub fn auto_create_topic(&self) -> bool {
        self.auto_create_topic.unwrap_or(self.standalone)
    }

    /// The address registered with the nameservers and stamped on records.
    pub fn advertised(&self) -> String {
        self.advertise_addr.clone().unwrap_or_else(|| {
            let mut addr = self.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip([127, 0, 0, 1].into());
            }
            addr.to_string()
        })
    }

    /// The flush mode, for logs.
    /// When a connected replica counts as in sync.
    pub fn in_sync_rule(&self) -> crate::replication::replicas::InSyncRule {
        crate::replication::replicas::InSyncRule {
            max_bytes: self.in_sync_lag_bytes,
            max_time: self.in_sync_lag_time,
        }
    }

    /// Sync replication's settings, when this broker, as `role`, is a
    /// master that waits for its replicas.
    pub fn sync_replication(
        &self,
        role: &crate::replication::Role,
    ) -> Option<crate::replication::SyncReplication> {
        (self.replication == ReplicationMode::Sync && *role == crate::replication::Role::Master)
            .then_some(crate::replication::SyncReplication {
                min_in_sync: self.min_in_sync_replicas,
                timeout: self.replication_timeout,
            })
    }

    pub fn flush(&self) -> FlushMode {
        self.store.flush
    }
}

/// When a master acknowledges a send (RocketMQ's ASYNC_MASTER and
/// SYNC_MASTER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationMode {
    Async,
    Sync,
}

impl ReplicationMode {
    /// As configured: `async` or `sync`.
    pub fn name(self) -> &'static str {
        match self {
            ReplicationMode::Async => "async",
            ReplicationMode::Sync => "sync",
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
