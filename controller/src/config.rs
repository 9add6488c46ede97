//! The controller's configuration, layered like every server's: built-in
//! defaults < TOML file (`--config`) < environment (`MQ_CONTROLLER_*`) <
//! flags.

use mq_auth::Secret;
use mq_auth::settings::{AuthArgs, AuthSettings};
use mq_common::tls::{TlsArgs, TlsSettings};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use config::{Config, Environment, File, FileFormat};
use mq_common::telemetry::LogFormat;
use serde::Deserialize;
use thiserror::Error;

pub const ENV_PREFIX: &str = "MQ_CONTROLLER";

/// Settings of one controller process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// This controller's id in the Raft group (1 and above).
    pub id: u64,
    /// Every controller of the group, this one included:
    /// `1=host:port;2=host:port;3=host:port`. The same on every controller.
    pub peers: String,
    /// Address of the gRPC services (Raft between controllers, the
    /// controller API for brokers and operators, health, reflection).
    pub listen: SocketAddr,
    /// Address of `/metrics` and `/healthz`.
    pub metrics_listen: SocketAddr,
    /// The Raft log, vote and snapshots.
    pub data_dir: PathBuf,
    /// A broker not heard from for this long is dead: its group elects a
    /// new master if it was the master.
    #[serde(with = "humantime_serde")]
    pub broker_timeout: Duration,
    /// Elect a master from outside the SyncStateSet when no member of it
    /// is alive (acknowledged messages may be lost), as Kafka's
    /// `unclean.leader.election.enable`.
    pub allow_unclean_election: bool,
    /// Raft's election timeout (its heartbeats go five times as often).
    #[serde(with = "humantime_serde")]
    pub raft_election_timeout: Duration,
    pub log_level: String,
    pub log_format: LogFormat,
    /// Nameservers to copy the cluster's users and policies from (with
    /// authentication on; without them only the administrator is known).
    #[serde(default)]
    pub namesrv: Option<String>,
    /// Listen beyond loopback with authentication off (anyone who reaches
    /// the port may send, read and administer); refused without it.
    #[serde(default)]
    pub insecure: bool,
    /// Authentication and authorization: see `mq_auth::settings`.
    #[serde(default)]
    pub auth_enabled: bool,
    #[serde(default)]
    pub auth_access_key: Option<String>,
    #[serde(default)]
    pub auth_secret_key: Option<Secret>,
    #[serde(default)]
    pub auth_secret_file: Option<PathBuf>,
    #[serde(default = "default_skew", with = "humantime_serde")]
    pub auth_max_clock_skew: Duration,
    #[serde(default = "default_sync", with = "humantime_serde")]
    pub auth_sync_interval: Duration,
    /// TLS: see `mq_common::tls::TlsArgs`.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    #[serde(default = "default_reload", with = "humantime_serde")]
    pub tls_reload_interval: Duration,
    #[serde(default)]
    pub tls_metrics: bool,
}

fn default_reload() -> Duration {
    Duration::from_secs(10)
}

fn default_skew() -> Duration {
    AuthSettings::disabled().max_clock_skew
}

fn default_sync() -> Duration {
    AuthSettings::disabled().sync_interval
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {key} {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The controller of the mq message queue: a Raft group (three is the
/// usual size) that holds each broker group's master, epoch and in-sync
/// replicas, and elects a new master when one dies.
///
/// Every option can also be set in the TOML file given by --config (key as
/// the option without dashes, '-' as '_') or in the environment as
/// MQ_CONTROLLER_<KEY> (e.g. MQ_CONTROLLER_BROKER_TIMEOUT=3s).
/// Precedence: defaults < file < environment < flags.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "controller", version, about, long_about)]
pub struct Args {
    /// TOML configuration file.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This controller's id (1 and above) [required]
    #[arg(long, value_name = "ID")]
    pub id: Option<u64>,
    /// Every controller, this one included: 1=host:port;2=host:port;3=host:port [required]
    #[arg(long, value_name = "LIST")]
    pub peers: Option<String>,
    /// gRPC listen address [default: 0.0.0.0:9878]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// HTTP address of /metrics and /healthz [default: 0.0.0.0:5559]
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Raft log and snapshots [default: ./controller-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A broker silent this long is dead [default: 3s]
    #[arg(long, value_name = "DURATION")]
    pub broker_timeout: Option<humantime::Duration>,
    /// Allow electing a master from outside the SyncStateSet (may lose acknowledged messages)
    #[arg(long)]
    pub allow_unclean_election: bool,
    /// Raft election timeout [default: 1s]
    #[arg(long, value_name = "DURATION")]
    pub raft_election_timeout: Option<humantime::Duration>,
    /// Log filter [default: info,openraft=warn]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log line format: text or json [default: text]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Nameservers to copy the users and policies from, ';'-separated (with --auth)
    #[arg(long, value_name = "ADDR[;ADDR]")]
    pub namesrv: Option<String>,
    /// Listen beyond loopback without authentication (anyone who reaches the port may send, read and administer)
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl ControllerConfig {
    pub fn load(
        args: &Args,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = Config::builder()
            .set_default("listen", "0.0.0.0:9878")?
            .set_default("metrics_listen", "0.0.0.0:5559")?
            .set_default("data_dir", "./controller-data")?
            .set_default("broker_timeout", "3s")?
            .set_default("allow_unclean_election", false)?
            .set_default("raft_election_timeout", "1s")?
            .set_default("log_level", "info,openraft=warn")?
            .set_default("log_format", "text")?;
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
        let env: config::Map<String, String> = env.into_iter().collect();
        builder = builder
            .add_source(
                Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("_")
                    .source(Some(env)),
            )
            .set_override_option("id", args.id)?
            .set_override_option("peers", args.peers.clone())?
            .set_override_option("listen", args.listen.map(|a| a.to_string()))?
            .set_override_option("metrics_listen", args.metrics_listen.map(|a| a.to_string()))?
            .set_override_option(
                "data_dir",
                args.data_dir.as_ref().map(|d| d.display().to_string()),
            )?
            .set_override_option("broker_timeout", args.broker_timeout.map(|d| d.to_string()))?
            .set_override_option(
                "allow_unclean_election",
                args.allow_unclean_election.then_some(true),
            )?
            .set_override_option(
                "raft_election_timeout",
                args.raft_election_timeout.map(|d| d.to_string()),
            )?
            .set_override_option("log_level", args.log_level.clone())?
            .set_override_option("log_format", args.log_format.map(|f| f.to_string()))?
            .set_override_option("namesrv", args.namesrv.clone())?
            .set_override_option("insecure", args.insecure.then_some(true))?;
        for (key, value) in args
            .auth
            .overrides()
            .into_iter()
            .chain(args.tls.overrides())
        {
            builder = builder.set_override_option(key, value)?;
        }
        let config: ControllerConfig = builder.build()?.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// Refuses settings that cannot work, naming them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.peer_map()?;
        self.auth()?;
        self.tls()?;
        self.check()?;
        // Last: a more specific complaint comes first.
        self.exposure().map(|_| ())
    }

    /// Refuses a gRPC port beyond loopback with authentication off unless
    /// `insecure`; the warning to log when allowed.
    pub fn exposure(&self) -> Result<Option<String>, ConfigError> {
        mq_auth::settings::exposure(self.auth_enabled, self.insecure, &[("listen", self.listen)])
            .map_err(|(key, reason)| ConfigError::Invalid { key, reason })
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
        .map_err(|(key, reason)| ConfigError::Invalid { key, reason })
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
        .map_err(|(key, reason)| ConfigError::Invalid { key, reason })
    }

    /// The peers by id.
    pub fn peer_map(&self) -> Result<BTreeMap<u64, String>, ConfigError> {
        let bad = |reason: String| ConfigError::Invalid {
            key: "peers",
            reason,
        };
        let mut peers = BTreeMap::new();
        for entry in self
            .peers
            .split([';', ','])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (id, addr) = entry
                .split_once('=')
                .ok_or_else(|| bad(format!("entry {entry:?} is not id=host:port")))?;
            let id: u64 = id
                .trim()
                .parse()
                .map_err(|_| bad(format!("entry {entry:?}: {id:?} is not an id")))?;
            mq_common::validate::host_port("peers", addr.trim()).map_err(|e| bad(e.to_string()))?;
            if peers.insert(id, addr.trim().to_owned()).is_some() {
                return Err(bad(format!("id {id} appears twice")));
            }
        }
        if peers.is_empty() {
            return Err(bad(
                "is required: every controller as id=host:port, separated by ';'".into(),
            ));
        }
        if !peers.contains_key(&self.id) {
            return Err(bad(format!(
                "does not list this controller's id {}",
                self.id
            )));
        }
        Ok(peers)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::Invalid {
                key: "id",
                reason: "must be 1 or above".into(),
            });
        }
        for (key, d) in [
            ("broker_timeout", self.broker_timeout),
            ("raft_election_timeout", self.raft_election_timeout),
        ] {
            if d < Duration::from_millis(100) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: format!(
                        "{} is too short; at least 100ms",
                        humantime::format_duration(d)
                    ),
                });
            }
        }
        Ok(())
    }

    /// openraft's timing from the one knob.
    pub fn raft_config(&self) -> openraft::Config {
        let ms = u64::try_from(self.raft_election_timeout.as_millis()).unwrap_or(u64::MAX);
        openraft::Config {
            cluster_name: "mq-controller".into(),
            heartbeat_interval: (ms / 5).max(20),
            election_timeout_min: ms,
            election_timeout_max: ms.saturating_mul(2),
            ..Default::default()
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
