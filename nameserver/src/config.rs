//! The nameserver's configuration, layered as users of RocketMQ and Kafka
//! expect: built-in defaults < TOML file (`--config`) < environment variables
//! (`MQ_NAMESRV_*`) < command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use config::{Config, Environment, File, FileFormat};
use mq_auth::Secret;
use mq_auth::settings::{AuthArgs, AuthSettings};
use mq_common::telemetry::LogFormat;
use mq_common::tls::{TlsArgs, TlsSettings};
use mq_controller::config::ControllerConfig;
use serde::Deserialize;
use thiserror::Error;

/// Prefix of every environment variable the nameserver reads.
pub const ENV_PREFIX: &str = "MQ_NAMESRV";

/// Settings of one nameserver process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameServerConfig {
    /// Address the gRPC service listens on.
    pub listen: SocketAddr,
    /// Address of the HTTP endpoint with `/metrics` (Prometheus) and
    /// `/healthz`; none for a nameserver embedded in a broker.
    pub metrics_listen: Option<SocketAddr>,
    /// A broker not heard from for this long is dropped from every route.
    #[serde(with = "humantime_serde")]
    pub broker_expire: Duration,
    /// How often silent brokers are looked for.
    #[serde(with = "humantime_serde")]
    pub scan_interval: Duration,
    /// A `tracing` filter: `info`, `debug`, `info,mq_nameserver=debug`, ...
    pub log_level: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// An embedded controller (RocketMQ's `enableControllerInNamesrv`):
    /// `controller_peers` (with `controller_id`) runs one in this process,
    /// on its own port; the other `controller_*` keys as the `controller`
    /// binary's.
    pub controller_peers: Option<String>,
    pub controller_id: Option<u64>,
    pub controller_listen: Option<SocketAddr>,
    pub controller_metrics_listen: Option<SocketAddr>,
    pub controller_data_dir: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    pub controller_broker_timeout: Option<Duration>,
    /// Where the cluster's users and policies are kept (`auth.json`); none:
    /// in memory only, restored from the other servers' copies after a
    /// restart.
    pub data_dir: Option<PathBuf>,
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
}

impl Default for NameServerConfig {
    fn default() -> Self {
        NameServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 9876)),
            metrics_listen: None,
            broker_expire: Duration::from_secs(120),
            scan_interval: Duration::from_secs(5),
            log_level: "info".into(),
            log_format: LogFormat::Text,
            controller_peers: None,
            controller_id: None,
            controller_listen: None,
            controller_metrics_listen: None,
            controller_data_dir: None,
            controller_broker_timeout: None,
            data_dir: None,
            insecure: false,
            auth_enabled: false,
            auth_access_key: None,
            auth_secret_key: None,
            auth_secret_file: None,
            auth_max_clock_skew: AuthSettings::disabled().max_clock_skew,
            auth_sync_interval: AuthSettings::disabled().sync_interval,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
            tls_ca_file: None,
            tls_reload_interval: Duration::from_secs(10),
            tls_metrics: false,
        }
    }
}

/// A configuration that cannot be used; the message names the culprit.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {key} {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The route registry of the mq message queue.
///
/// Every option can also be set in the TOML file given by --config (key as
/// the option without dashes, '-' as '_', e.g. `broker_expire = "30s"`) or
/// in the environment as MQ_NAMESRV_<KEY> (e.g. MQ_NAMESRV_BROKER_EXPIRE=30s).
/// Precedence: defaults < file < environment < flags.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "nameserver", version, about, long_about)]
pub struct Args {
    /// TOML configuration file.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 0.0.0.0:9876]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// HTTP address of /metrics (Prometheus) and /healthz [default: 0.0.0.0:5558]
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Drop a broker not heard from for this long, e.g. 120s, 2m [default: 120s]
    #[arg(long, value_name = "DURATION")]
    pub broker_expire: Option<humantime::Duration>,
    /// How often to look for silent brokers [default: 5s]
    #[arg(long, value_name = "DURATION")]
    pub scan_interval: Option<humantime::Duration>,
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives [default: info]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log line format: text or json [default: text]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Embedded controller: every controller, id=host:port;... (runs one in this process)
    #[arg(long, value_name = "LIST")]
    pub controller_peers: Option<String>,
    /// Embedded controller: this one's id among --controller-peers
    #[arg(long, value_name = "ID")]
    pub controller_id: Option<u64>,
    /// Embedded controller: gRPC listen address [default: 0.0.0.0:9878]
    #[arg(long, value_name = "ADDR")]
    pub controller_listen: Option<SocketAddr>,
    /// Embedded controller: /metrics address [default: 0.0.0.0:5559]
    #[arg(long, value_name = "ADDR")]
    pub controller_metrics_listen: Option<SocketAddr>,
    /// Embedded controller: Raft log and snapshots [default: ./controller-data]
    #[arg(long, value_name = "DIR")]
    pub controller_data_dir: Option<PathBuf>,
    /// Embedded controller: a broker silent this long is dead [default: 3s]
    #[arg(long, value_name = "DURATION")]
    pub controller_broker_timeout: Option<humantime::Duration>,
    /// Directory of the cluster's users and policies (auth.json) [default: none, memory only]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Listen beyond loopback without authentication (anyone who reaches the port may send, read and administer)
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl NameServerConfig {
    /// Builds the configuration from every layer, with `env` standing in for
    /// the process environment (tests pass their own).
    pub fn load(
        args: &Args,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let defaults = NameServerConfig::default();
        let mut builder = Config::builder()
            .set_default("listen", defaults.listen.to_string())?
            .set_default("metrics_listen", "0.0.0.0:5558")?
            .set_default(
                "broker_expire",
                humantime::format_duration(defaults.broker_expire).to_string(),
            )?
            .set_default(
                "scan_interval",
                humantime::format_duration(defaults.scan_interval).to_string(),
            )?
            .set_default("log_level", defaults.log_level)?
            .set_default("log_format", "text")?
            .set_default("insecure", false)?;
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
            .set_override_option("listen", args.listen.map(|a| a.to_string()))?
            .set_override_option("metrics_listen", args.metrics_listen.map(|a| a.to_string()))?
            .set_override_option("broker_expire", args.broker_expire.map(|d| d.to_string()))?
            .set_override_option("scan_interval", args.scan_interval.map(|d| d.to_string()))?
            .set_override_option("log_level", args.log_level.clone())?
            .set_override_option("log_format", args.log_format.map(|f| f.to_string()))?
            .set_override_option("controller_peers", args.controller_peers.clone())?
            .set_override_option("controller_id", args.controller_id)?
            .set_override_option(
                "controller_listen",
                args.controller_listen.map(|a| a.to_string()),
            )?
            .set_override_option(
                "controller_metrics_listen",
                args.controller_metrics_listen.map(|a| a.to_string()),
            )?
            .set_override_option(
                "controller_data_dir",
                args.controller_data_dir
                    .as_ref()
                    .map(|d| d.display().to_string()),
            )?
            .set_override_option(
                "controller_broker_timeout",
                args.controller_broker_timeout.map(|d| d.to_string()),
            )?
            .set_override_option(
                "data_dir",
                args.data_dir.as_ref().map(|d| d.display().to_string()),
            )?;
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
        let config: NameServerConfig = builder.build()?.try_deserialize()?;
        config.check()?;
        config.controller()?;
        config.auth()?;
        config.tls()?;
        config.exposure()?;
        Ok(config)
    }

    /// Refuses gRPC ports beyond loopback with authentication off unless
    /// `insecure`; the warning to log when allowed.
    pub fn exposure(&self) -> Result<Option<String>, ConfigError> {
        let mut listens = vec![("listen", self.listen)];
        if let Some(controller) = self.controller()? {
            listens.push(("controller_listen", controller.listen));
        }
        mq_auth::settings::exposure(self.auth_enabled, self.insecure, &listens)
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

    /// The embedded controller's configuration, if one is configured.
    pub fn controller(&self) -> Result<Option<ControllerConfig>, ConfigError> {
        let Some(peers) = &self.controller_peers else {
            return match self.controller_id {
                Some(_) => Err(ConfigError::Invalid {
                    key: "controller_peers",
                    reason: "is required with controller_id: every controller, id=host:port;..."
                        .into(),
                }),
                None => Ok(None),
            };
        };
        let id = self.controller_id.ok_or_else(|| ConfigError::Invalid {
            key: "controller_id",
            reason: "is required with controller_peers: this controller's id among them".into(),
        })?;
        let config = ControllerConfig {
            id,
            peers: peers.clone(),
            listen: self
                .controller_listen
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 9878))),
            metrics_listen: self
                .controller_metrics_listen
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 5559))),
            data_dir: self
                .controller_data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("./controller-data")),
            broker_timeout: self
                .controller_broker_timeout
                .unwrap_or(Duration::from_secs(3)),
            allow_unclean_election: false,
            raft_election_timeout: Duration::from_secs(1),
            log_level: self.log_level.clone(),
            log_format: self.log_format,
            // It shares the nameserver's users and policies (in process).
            namesrv: None,
            auth_enabled: self.auth_enabled,
            auth_access_key: self.auth_access_key.clone(),
            auth_secret_key: self.auth_secret_key.clone(),
            auth_secret_file: self.auth_secret_file.clone(),
            auth_max_clock_skew: self.auth_max_clock_skew,
            auth_sync_interval: self.auth_sync_interval,
            insecure: self.insecure,
            tls_cert_file: self.tls_cert_file.clone(),
            tls_key_file: self.tls_key_file.clone(),
            tls_client_ca_file: self.tls_client_ca_file.clone(),
            tls_ca_file: self.tls_ca_file.clone(),
            tls_reload_interval: self.tls_reload_interval,
            tls_metrics: self.tls_metrics,
        };
        config.validate().map_err(|e| ConfigError::Invalid {
            key: "controller",
            reason: e.to_string(),
        })?;
        Ok(Some(config))
    }

    fn check(&self) -> Result<(), ConfigError> {
        let positive = |key, d: Duration| {
            if d.is_zero() {
                Err(ConfigError::Invalid {
                    key,
                    reason: "must be longer than 0s".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("broker_expire", self.broker_expire)?;
        positive("scan_interval", self.scan_interval)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
