//! The standalone proxy's configuration, layered like every server's:
//! built-in defaults < TOML file (`--config`) < environment (`MQ_PROXY_*`)
//! < flags.

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

pub const ENV_PREFIX: &str = "MQ_PROXY";

/// Settings of one standalone proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where RocketMQ 5 clients connect.
    pub listen: SocketAddr,
    /// Address handed to clients in routes; defaults to the listen
    /// address (127.0.0.1 for an unspecified IP).
    pub advertise_addr: Option<String>,
    /// The cluster's nameservers, `;`-separated.
    pub namesrv: String,
    /// Address of `/metrics` and `/healthz`.
    pub metrics_listen: SocketAddr,
    /// The proxy's copy of the users and policies.
    pub data_dir: PathBuf,
    /// Bodies above this are refused (the brokers' own limit).
    pub max_message_size: u32,
    /// The shortest invisible time a receive may ask for.
    #[serde(with = "humantime_serde")]
    pub min_invisible: Duration,
    /// Deliveries of a message before it becomes a dead letter.
    pub max_delivery_attempts: u32,
    pub log_level: String,
    pub log_format: LogFormat,
    /// Listen beyond loopback with authentication off; refused without it.
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
    #[serde(with = "humantime_serde")]
    pub auth_max_clock_skew: Duration,
    #[serde(with = "humantime_serde")]
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
    #[serde(with = "humantime_serde")]
    pub tls_reload_interval: Duration,
    #[serde(default)]
    pub tls_metrics: bool,
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {key} {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The proxy of the mq message queue in front of a whole cluster (RocketMQ
/// 5's cluster mode): serves Apache RocketMQ 5's gRPC protocol to the
/// official clients of every language and calls the brokers it finds
/// through the nameservers. (Every broker also serves the protocol itself:
/// its --proxy-listen port, local mode.)
///
/// Every option can also be set in the TOML file given by --config (key as
/// the option without dashes, '-' as '_') or in the environment as
/// MQ_PROXY_<KEY> (e.g. MQ_PROXY_NAMESRV=ns1:9876).
/// Precedence: defaults < file < environment < flags.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "proxy", version, about, long_about)]
pub struct Args {
    /// TOML configuration file.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where RocketMQ 5 clients connect [default: 0.0.0.0:8081]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address clients should use [default: the listen address]
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_addr: Option<String>,
    /// Nameserver addresses, ';'-separated [required]
    #[arg(long, value_name = "ADDR[;ADDR]")]
    pub namesrv: Option<String>,
    /// HTTP address of /metrics and /healthz [default: 0.0.0.0:5560]
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// The copy of the users and policies [default: ./proxy-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Largest message body in bytes [default: 4194304]
    #[arg(long, value_name = "BYTES")]
    pub max_message_size: Option<u32>,
    /// Shortest invisible time of a receive [default: 10s]
    #[arg(long, value_name = "DURATION")]
    pub min_invisible: Option<humantime::Duration>,
    /// Deliveries before a message becomes a dead letter [default: 17]
    #[arg(long, value_name = "N")]
    pub max_delivery_attempts: Option<u32>,
    /// Log filter [default: info]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log line format: text or json [default: text]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Listen beyond loopback without authentication (anyone who reaches the port may send and read)
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl ProxyConfig {
    pub fn load(
        args: &Args,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = Config::builder()
            .set_default("listen", "0.0.0.0:8081")?
            .set_default("metrics_listen", "0.0.0.0:5560")?
            .set_default("data_dir", "./proxy-data")?
            .set_default("max_message_size", 4 << 20)?
            .set_default("min_invisible", "10s")?
            .set_default("max_delivery_attempts", 17)?
            .set_default("log_level", "info")?
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
            .set_override_option("listen", args.listen.map(|a| a.to_string()))?
            .set_override_option("advertise_addr", args.advertise_addr.clone())?
            .set_override_option("namesrv", args.namesrv.clone())?
            .set_override_option("metrics_listen", args.metrics_listen.map(|a| a.to_string()))?
            .set_override_option(
                "data_dir",
                args.data_dir.as_ref().map(|d| d.display().to_string()),
            )?
            .set_override_option("max_message_size", args.max_message_size)?
            .set_override_option("min_invisible", args.min_invisible.map(|d| d.to_string()))?
            .set_override_option("max_delivery_attempts", args.max_delivery_attempts)?
            .set_override_option("log_level", args.log_level.clone())?
            .set_override_option("log_format", args.log_format.map(|f| f.to_string()))?
            .set_override_option("insecure", args.insecure.then_some(true))?;
        for (key, value) in args
            .auth
            .overrides()
            .into_iter()
            .chain(args.tls.overrides())
        {
            builder = builder.set_override_option(key, value)?;
        }
        let built = builder.build()?;
        if built.get_string("namesrv").is_err() {
            return Err(ConfigError::Invalid {
                key: "namesrv",
                reason: "is required: the cluster's nameservers, ';'-separated (--namesrv)".into(),
            });
        }
        let config: ProxyConfig = built.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// Refuses settings that cannot work, naming them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        mq_nameserver_client::parse_addresses(&self.namesrv).map_err(|e| ConfigError::Invalid {
            key: "namesrv",
            reason: e.to_string(),
        })?;
        if let Some(addr) = &self.advertise_addr {
            mq_common::validate::host_port("advertise_addr", addr).map_err(|e| {
                ConfigError::Invalid {
                    key: "advertise_addr",
                    reason: e.to_string(),
                }
            })?;
        }
        if self.max_delivery_attempts == 0 {
            return Err(ConfigError::Invalid {
                key: "max_delivery_attempts",
                reason: "must be 1 or above".into(),
            });
        }
        self.auth()?;
        self.tls()?;
        self.exposure().map(|_| ())
    }

    /// Refuses a port beyond loopback with authentication off unless
    /// `insecure`; the warning to log when allowed.
    pub fn exposure(&self) -> Result<Option<String>, ConfigError> {
        mq_auth::settings::exposure(self.auth_enabled, self.insecure, &[("listen", self.listen)])
            .map_err(|(key, reason)| ConfigError::Invalid { key, reason })
    }

    /// The address handed to clients in routes.
    pub fn advertised(&self, bound: SocketAddr) -> String {
        self.advertise_addr.clone().unwrap_or_else(|| {
            let mut addr = bound;
            if addr.ip().is_unspecified() {
                addr.set_ip([127, 0, 0, 1].into());
            }
            addr.to_string()
        })
    }

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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order_and_the_namesrv_is_required() {
        let args = Args::parse_from([
            "proxy",
            "--namesrv",
            "ns:9876",
            "--listen",
            "127.0.0.1:9000",
        ]);
        let config = ProxyConfig::load(&args, env(&[("MQ_PROXY_LISTEN", "127.0.0.1:1")])).unwrap();
        assert_eq!(
            config.listen.to_string(),
            "127.0.0.1:9000",
            "flags beat env"
        );
        assert_eq!(config.min_invisible, Duration::from_secs(10));
        let config = ProxyConfig::load(
            &Args::parse_from(["proxy", "--insecure"]),
            env(&[
                ("MQ_PROXY_NAMESRV", "ns:9876"),
                ("MQ_PROXY_MIN_INVISIBLE", "2s"),
            ]),
        )
        .unwrap();
        assert_eq!(config.min_invisible, Duration::from_secs(2));
        assert_eq!(
            config.advertised("0.0.0.0:8081".parse().unwrap()),
            "127.0.0.1:8081"
        );
        let err = ProxyConfig::load(&Args::parse_from(["proxy"]), env(&[])).unwrap_err();
        assert!(err.to_string().contains("namesrv is required"), "{err}");
    }

    #[test]
    fn bad_settings_are_named() {
        let load = |extra: &[&str]| {
            let mut argv = vec!["proxy", "--namesrv", "ns:9876"];
            if !extra.contains(&"--listen") {
                argv.extend(["--listen", "127.0.0.1:8081"]);
            }
            argv.extend_from_slice(extra);
            ProxyConfig::load(&Args::parse_from(argv), env(&[]))
                .unwrap_err()
                .to_string()
        };
        assert!(load(&["--max-delivery-attempts", "0"]).contains("max_delivery_attempts"));
        assert!(load(&["--advertise-addr", "no-port"]).contains("advertise_addr"));
        // Beyond loopback without authentication: a decision is needed.
        assert!(load(&["--listen", "0.0.0.0:8081"]).contains("--insecure"));
        let err = ProxyConfig::load(
            &Args::parse_from(["proxy", "--namesrv", "not an address", "--insecure"]),
            env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("namesrv"), "{err}");
    }
}
