//! How the tools reach a cluster: credentials and TLS from flags or the
//! environment, the same for `mqadmin`, `mqbench` and `mqhealth`.

use std::path::PathBuf;

use mq_auth::{ClientTls, Connector, Credentials};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectArgs {
    /// Sign requests as this user (clusters with authentication on).
    #[arg(long, global = true, env = "MQ_ACCESS_KEY", value_name = "NAME")]
    pub access_key: Option<String>,
    /// The user's secret key (better in the environment than on a command line).
    #[arg(
        long,
        global = true,
        env = "MQ_SECRET_KEY",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub secret_key: Option<String>,
    /// Connect with TLS, trusting the system's roots (or --tls-ca-file).
    #[arg(long, global = true, env = "MQ_TLS")]
    pub tls: bool,
    /// PEM CA certificates to verify servers with (implies --tls).
    #[arg(long, global = true, env = "MQ_TLS_CA_FILE", value_name = "FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate, for servers that require one (mutual TLS).
    #[arg(long, global = true, env = "MQ_TLS_CERT_FILE", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long, global = true, env = "MQ_TLS_KEY_FILE", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// The name servers' certificates must carry [default: the host dialled].
    #[arg(long, global = true, env = "MQ_TLS_SERVER_NAME", value_name = "NAME")]
    pub tls_server_name: Option<String>,
}

impl ConnectArgs {
    /// The connector these flags describe; an error names the bad one.
    pub fn connector(&self) -> anyhow::Result<Connector> {
        let credentials =
            Credentials::from_parts(self.access_key.as_deref(), self.secret_key.as_deref())?;
        let tls = self.tls || self.tls_ca_file.is_some() || self.tls_cert_file.is_some();
        let tls = if tls {
            Some(ClientTls::from_files(
                self.tls_ca_file.as_deref(),
                self.tls_cert_file.as_deref(),
                self.tls_key_file.as_deref(),
                self.tls_server_name.clone(),
            )?)
        } else {
            None
        };
        Ok(Connector { credentials, tls })
    }
}
