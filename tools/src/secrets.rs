//! `mqsecrets init DIR`: what a fresh secured cluster needs, made once on
//! its first start (docker-compose's `secrets` service, the k8s Job): a
//! CA, a server certificate it signed for every name the servers are
//! reached by, a client certificate for mutual TLS, and the
//! administrator's secret key. Files are the owner's alone; a directory
//! that already holds them is left as it is, so restarts keep the
//! cluster's identity.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use ring::rand::{SecureRandom, SystemRandom};

/// Makes the secrets of a secured cluster (certificates, the administrator's key).
#[derive(Debug, Parser)]
#[command(name = "mqsecrets", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Makes ca.pem, server.pem/.key, client.pem/.key and admin.secret in DIR, unless there already.
    Init {
        /// Where the files go (created if missing).
        dir: PathBuf,
        /// Names (and addresses) clients reach the servers by, comma-separated (`*.` wildcards allowed); localhost and 127.0.0.1 are always included.
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        names: Vec<String>,
    },
}

/// The file whose presence says the directory is complete (written last).
pub const READY: &str = "ready";

/// Runs `init`: whether it made the files (false: they were there).
pub fn init(dir: &Path, names: &[String]) -> anyhow::Result<bool> {
    if dir.join(READY).exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut all: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let host_name = name
            .strip_prefix("*.")
            .unwrap_or(name)
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if name.parse::<std::net::IpAddr>().is_err() && !host_name {
            anyhow::bail!("--names: {name:?} is not a host name or an IP address");
        }
        if !all.iter().any(|n| n == name) {
            all.push(name.to_owned());
        }
    }
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mq cluster CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let issue = |common_name: &str, names: Vec<String>| -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(names).map_err(|e| anyhow::anyhow!("--names: {e}"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let (server_cert, server_key) = issue("mq server", all)?;
    let (client_cert, client_key) = issue("mq client", vec!["mq-client".into()])?;
    let mut secret = [0u8; 24];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
    let write = |name: &str, content: &str| -> anyhow::Result<()> {
        mq_common::atomic_file::write_private(&dir.join(name), content.as_bytes())
            .with_context(|| format!("cannot write {}", dir.join(name).display()))
    };
    write("ca.pem", &ca.pem())?;
    write("ca.key", &ca_key.serialize_pem())?;
    write("server.pem", &server_cert)?;
    write("server.key", &server_key)?;
    write("client.pem", &client_cert)?;
    write("client.key", &client_key)?;
    write("admin.secret", &format!("{}\n", hex(&secret)))?;
    write(READY, "")?;
    Ok(true)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses, runs and maps the outcome to an exit code and one line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Init { dir, names } = cli.command;
    match init(&dir, &names) {
        Ok(true) => {
            println!(
                "made the cluster's CA, certificates and administrator secret in {}",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!(
                "{} already holds the cluster's secrets; left as they are",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!(
                "mqsecrets: error: {}",
                format!("{err:#}").replace('\n', " ")
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_makes_private_files_once_and_keeps_them() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("secrets");
        assert!(
            init(
                &at,
                &["broker-a".into(), "10.0.0.5".into(), "*.svc.local".into()]
            )
            .unwrap()
        );
        let secret = std::fs::read_to_string(at.join("admin.secret")).unwrap();
        assert_eq!(secret.trim().len(), 48);
        for name in [
            "ca.pem",
            "ca.key",
            "server.pem",
            "server.key",
            "client.pem",
            "client.key",
            "admin.secret",
        ] {
            let mode = std::fs::metadata(at.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        // The server certificate loads with its key and names the servers.
        let settings = mq_common::tls::TlsSettings {
            cert_file: at.join("server.pem"),
            key_file: at.join("server.key"),
            client_ca_file: Some(at.join("ca.pem")),
            reload_interval: std::time::Duration::from_secs(10),
            metrics: false,
        };
        mq_common::tls::ServerTls::load(settings).unwrap();
        assert!(!init(&at, &[]).unwrap(), "a second run leaves them");
        assert_eq!(
            std::fs::read_to_string(at.join("admin.secret")).unwrap(),
            secret
        );
    }

    #[test]
    fn a_bad_name_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = init(dir.path(), &["bad name!".into()]).unwrap_err();
        assert!(format!("{err:#}").contains("--names"), "{err:#}");
    }
}
