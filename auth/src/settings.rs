//! A server's authentication settings, and the pieces every server's
//! layered configuration shares: the flags, the defaults and the keys
//! (`auth_enabled`, `auth_access_key`, `auth_secret_key`,
//! `auth_secret_file`, `auth_max_clock_skew`, `auth_sync_interval`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::credentials::{Credentials, check_user_name};
use crate::secret::Secret;

/// How a server checks requests.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Requests must be signed by a known user and allowed by its policies.
    pub enabled: bool,
    /// The cluster's administrator, a super user configured on every
    /// server rather than stored: servers sign their calls to each other
    /// with it, and it creates the first users.
    pub administrator: Option<Credentials>,
    /// Signatures older or newer than this are refused.
    pub max_clock_skew: Duration,
    /// How often a server compares its copy of the users and policies with
    /// the nameservers'.
    pub sync_interval: Duration,
}

impl AuthSettings {
    /// No authentication: every request is allowed.
    pub fn disabled() -> Self {
        AuthSettings {
            enabled: false,
            administrator: None,
            max_clock_skew: Duration::from_secs(60),
            sync_interval: Duration::from_secs(2),
        }
    }

    /// Settings from the configuration keys; the error names the key.
    pub fn from_config(
        enabled: bool,
        access_key: Option<&str>,
        secret_key: Option<&Secret>,
        secret_file: Option<&Path>,
        max_clock_skew: Duration,
        sync_interval: Duration,
    ) -> Result<AuthSettings, (&'static str, String)> {
        let secret = match (secret_key, secret_file) {
            (Some(_), Some(_)) => {
                return Err((
                    "auth_secret_file",
                    "and auth_secret_key are both set: give one".into(),
                ));
            }
            (Some(secret), None) => Some(secret.expose().to_owned()),
            (None, Some(path)) => Some(
                Credentials::read_secret_file(path)
                    .map_err(|e| ("auth_secret_file", e.to_string()))?,
            ),
            (None, None) => None,
        };
        let administrator = match (access_key.filter(|k| !k.is_empty()), secret) {
            (None, None) => None,
            (Some(key), Some(secret)) if !secret.is_empty() => {
                check_user_name(key).map_err(|reason| ("auth_access_key", reason))?;
                Some(Credentials::new(key, secret))
            }
            (Some(_), _) => {
                return Err((
                    "auth_secret_key",
                    "is required with auth_access_key (or auth_secret_file)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err((
                    "auth_access_key",
                    "is required with auth_secret_key (or auth_secret_file)".into(),
                ));
            }
        };
        if enabled && administrator.is_none() {
            return Err((
                "auth_access_key",
                "and auth_secret_key (or auth_secret_file) are required with auth_enabled: the administrator every server of the cluster shares".into(),
            ));
        }
        if max_clock_skew.is_zero() {
            return Err(("auth_max_clock_skew", "must be longer than 0s".into()));
        }
        if sync_interval.is_zero() {
            return Err(("auth_sync_interval", "must be longer than 0s".into()));
        }
        Ok(AuthSettings {
            enabled,
            administrator,
            max_clock_skew,
            sync_interval,
        })
    }
}

/// The rule every server starts by: with authentication off, it listens on
/// loopback only, unless `insecure` says the operator accepts that anyone
/// who reaches the port may send, read and administer. `listens` are the
/// gRPC addresses, each with its configuration key. Returns the one
/// warning line to log when the server runs exposed on purpose.
pub fn exposure(
    auth_enabled: bool,
    insecure: bool,
    listens: &[(&'static str, std::net::SocketAddr)],
) -> Result<Option<String>, (&'static str, String)> {
    if auth_enabled {
        return Ok(None);
    }
    let Some((key, _)) = listens.iter().find(|(_, addr)| !addr.ip().is_loopback()) else {
        return Ok(None);
    };
    let exposed: Vec<String> = listens
        .iter()
        .filter(|(_, addr)| !addr.ip().is_loopback())
        .map(|(key, addr)| format!("{key}={addr}"))
        .collect();
    let exposed = exposed.join(", ");
    if !insecure {
        return Err((
            key,
            format!(
                "({exposed}) is beyond loopback and authentication is off: anyone who reaches the port could send, read and administer. Turn on --auth (with users), listen on 127.0.0.1, or pass --insecure to accept the risk"
            ),
        ));
    }
    Ok(Some(format!(
        "INSECURE: listening on {exposed} without authentication (--insecure): anyone who reaches these ports can send, read and administer"
    )))
}

/// Defaults of the keys, for `Config::builder().set_default`.
pub const DEFAULTS: [(&str, &str); 3] = [
    ("auth_enabled", "false"),
    ("auth_max_clock_skew", "60s"),
    ("auth_sync_interval", "2s"),
];

/// The authentication flags every server takes. The secret key has no
/// flag (a command line is visible to every user of the machine): use
/// `--auth-secret-file`, the config file or the environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuthArgs {
    /// Require signed requests from known users, allowed by their policies
    #[arg(long = "auth")]
    pub auth: bool,
    /// The cluster administrator's access key (a super user every server shares)
    #[arg(long, value_name = "NAME")]
    pub auth_access_key: Option<String>,
    /// File holding the administrator's secret key
    #[arg(long, value_name = "FILE")]
    pub auth_secret_file: Option<PathBuf>,
    /// Refuse signatures this far from the server's clock [default: 60s]
    #[arg(long, value_name = "DURATION")]
    pub auth_max_clock_skew: Option<humantime::Duration>,
    /// How often to sync the users and policies with the nameservers [default: 2s]
    #[arg(long, value_name = "DURATION")]
    pub auth_sync_interval: Option<humantime::Duration>,
}

impl AuthArgs {
    /// The flags given, as configuration overrides (key, value).
    pub fn overrides(&self) -> [(&'static str, Option<String>); 5] {
        [
            ("auth_enabled", self.auth.then(|| "true".to_owned())),
            ("auth_access_key", self.auth_access_key.clone()),
            (
                "auth_secret_file",
                self.auth_secret_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
            ),
            (
                "auth_max_clock_skew",
                self.auth_max_clock_skew.map(|d| d.to_string()),
            ),
            (
                "auth_sync_interval",
                self.auth_sync_interval.map(|d| d.to_string()),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(
        enabled: bool,
        key: Option<&str>,
        secret: Option<&str>,
    ) -> Result<AuthSettings, (&'static str, String)> {
        let secret = secret.map(Secret::new);
        AuthSettings::from_config(
            enabled,
            key,
            secret.as_ref(),
            None,
            Duration::from_secs(60),
            Duration::from_secs(2),
        )
    }

    #[test]
    fn enabling_needs_the_administrator() {
        assert_eq!(settings(true, None, None).unwrap_err().0, "auth_access_key");
        assert_eq!(
            settings(true, Some("admin"), None).unwrap_err().0,
            "auth_secret_key"
        );
        assert_eq!(
            settings(false, None, Some("pw")).unwrap_err().0,
            "auth_access_key"
        );
        let ok = settings(true, Some("admin"), Some("pw")).unwrap();
        assert_eq!(ok.administrator, Some(Credentials::new("admin", "pw")));
        assert!(settings(false, None, None).unwrap().administrator.is_none());
    }

    #[test]
    fn beyond_loopback_needs_authentication_or_insecure() {
        let loopback = [("listen", "127.0.0.1:1".parse().unwrap())];
        let any = [
            ("listen", "127.0.0.1:1".parse().unwrap()),
            ("namesrv_listen", "0.0.0.0:2".parse().unwrap()),
        ];
        assert_eq!(exposure(false, false, &loopback), Ok(None));
        assert_eq!(exposure(true, false, &any), Ok(None));
        let (key, reason) = exposure(false, false, &any).unwrap_err();
        assert_eq!(key, "namesrv_listen");
        assert!(
            reason.contains("namesrv_listen=0.0.0.0:2") && reason.contains("--insecure"),
            "{reason}"
        );
        let warning = exposure(false, true, &any).unwrap().unwrap();
        assert!(
            warning.starts_with("INSECURE") && !warning.contains('\n'),
            "{warning}"
        );
        let ipv6_loopback = [("listen", "[::1]:1".parse().unwrap())];
        assert_eq!(exposure(false, false, &ipv6_loopback), Ok(None));
    }

    #[test]
    fn the_secret_may_come_from_a_file_but_not_from_both() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin.secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let from_file = AuthSettings::from_config(
            true,
            Some("admin"),
            None,
            Some(&file),
            Duration::from_secs(60),
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(
            from_file.administrator.unwrap().secret_key.expose(),
            "from-file"
        );
        let both = AuthSettings::from_config(
            true,
            Some("admin"),
            Some(&Secret::new("x")),
            Some(&file),
            Duration::from_secs(60),
            Duration::from_secs(2),
        );
        assert_eq!(both.unwrap_err().0, "auth_secret_file");
    }
}
