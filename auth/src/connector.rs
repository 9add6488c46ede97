//! How our clients reach a server: TLS when configured (verifying the
//! server against a CA file or the system roots, presenting a client
//! certificate for mutual TLS), and a signature on every call when they
//! have credentials. Every gRPC client of the SDKs, tools and servers
//! makes its endpoints and channels here.

use std::path::{Path, PathBuf};

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::buffered_tcp::BufferedTcp;
use crate::client::{SignedChannel, signed};
use crate::credentials::Credentials;

/// Why an endpoint could not be made; names the address or file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid address {addr:?}: {reason}")]
    Address { addr: String, reason: String },
    #[error("{path}: {reason}")]
    TlsFile { path: PathBuf, reason: String },
}

/// A client's TLS: whom it trusts and, for mutual TLS, who it is.
#[derive(Clone, Default)]
pub struct ClientTls {
    /// PEM CA certificates; none: the system's roots.
    ca: Option<Vec<u8>>,
    /// PEM certificate and key presented to servers that ask.
    identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the server's certificate must carry; none: the host of
    /// the address dialled.
    server_name: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.ca.as_ref().map(|_| "<file>"))
            .field("identity", &self.identity.as_ref().map(|_| "<redacted>"))
            .field("server_name", &self.server_name)
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|e| ConnectError::TlsFile {
        path: path.to_owned(),
        reason: format!("cannot read: {e}"),
    })
}

fn check_certificates(path: &Path, pem: &[u8]) -> Result<(), ConnectError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(()),
        _ => Err(ConnectError::TlsFile {
            path: path.to_owned(),
            reason: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        }),
    }
}

impl ClientTls {
    /// TLS trusting the CAs in `ca_file` (none: the system roots), with
    /// the client certificate of `cert_file` and `key_file` when given.
    pub fn from_files(
        ca_file: Option<&Path>,
        cert_file: Option<&Path>,
        key_file: Option<&Path>,
        server_name: Option<String>,
    ) -> Result<ClientTls, ConnectError> {
        let ca = match ca_file {
            Some(path) => {
                let pem = read(path)?;
                check_certificates(path, &pem)?;
                Some(pem)
            }
            None => None,
        };
        let identity = match (cert_file, key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let cert_pem = read(cert)?;
                check_certificates(cert, &cert_pem)?;
                let key_pem = read(key)?;
                if PrivateKeyDer::from_pem_slice(&key_pem).is_err() {
                    return Err(ConnectError::TlsFile {
                        path: key.to_owned(),
                        reason: "holds no PEM private key".into(),
                    });
                }
                Some((cert_pem, key_pem))
            }
            (Some(cert), None) | (None, Some(cert)) => {
                return Err(ConnectError::TlsFile {
                    path: cert.to_owned(),
                    reason: "a client certificate needs both its certificate and its key file"
                        .into(),
                });
            }
        };
        Ok(ClientTls {
            ca,
            identity,
            server_name,
        })
    }

    fn config(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new();
        config = match &self.ca {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        config
    }
}

/// Why the environment does not describe a connector.
#[derive(Debug, thiserror::Error)]
pub enum FromEnvError {
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),
    #[error(transparent)]
    Tls(#[from] ConnectError),
}

/// TLS (optional) and credentials (optional): how to reach servers.
#[derive(Debug, Clone, Default)]
pub struct Connector {
    pub credentials: Option<Credentials>,
    pub tls: Option<ClientTls>,
}

impl Connector {
    /// Plaintext, signing with `credentials`.
    pub fn signing(credentials: Option<Credentials>) -> Self {
        Connector {
            credentials,
            tls: None,
        }
    }

    /// The connector the environment describes, as the tools read it:
    /// `MQ_ACCESS_KEY` and `MQ_SECRET_KEY` (credentials), `MQ_TLS=true` or
    /// `MQ_TLS_CA_FILE` (TLS, against the system roots or that CA),
    /// `MQ_TLS_CERT_FILE` and `MQ_TLS_KEY_FILE` (a client certificate),
    /// `MQ_TLS_SERVER_NAME`. Nothing set: plaintext and unsigned.
    pub fn from_env() -> Result<Connector, FromEnvError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let credentials = Credentials::from_parts(
            var("MQ_ACCESS_KEY").as_deref(),
            var("MQ_SECRET_KEY").as_deref(),
        )?;
        let ca = var("MQ_TLS_CA_FILE").map(PathBuf::from);
        let cert = var("MQ_TLS_CERT_FILE").map(PathBuf::from);
        let key = var("MQ_TLS_KEY_FILE").map(PathBuf::from);
        let wanted = var("MQ_TLS").is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        let tls = if wanted || ca.is_some() || cert.is_some() {
            Some(ClientTls::from_files(
                ca.as_deref(),
                cert.as_deref(),
                key.as_deref(),
                var("MQ_TLS_SERVER_NAME"),
            )?)
        } else {
            None
        };
        Ok(Connector { credentials, tls })
    }

    /// The endpoint of `addr` (`host:port`): `https` with this TLS, or
    /// plain `http`.
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, ConnectError> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let bad = |reason: String| ConnectError::Address {
            addr: addr.to_owned(),
            reason,
        };
        let endpoint =
            Endpoint::from_shared(format!("{scheme}://{addr}")).map_err(|e| bad(e.to_string()))?;
        match &self.tls {
            Some(tls) => endpoint
                .tls_config(tls.config())
                .map_err(|e| bad(e.to_string())),
            None => Ok(endpoint),
        }
    }

    /// A channel that connects on first use, its calls signed.
    pub fn lazy(&self, endpoint: Endpoint) -> SignedChannel {
        let channel = match self.tls {
            Some(_) => endpoint.connect_with_connector_lazy(BufferedTcp::new()),
            None => endpoint.connect_lazy(),
        };
        self.signed(channel)
    }

    /// Connects `endpoint` now (made by [`Connector::endpoint`]); its
    /// calls are not signed yet ([`Connector::signed`]).
    pub async fn connect(&self, endpoint: &Endpoint) -> Result<Channel, tonic::transport::Error> {
        match self.tls {
            Some(_) => endpoint.connect_with_connector(BufferedTcp::new()).await,
            None => endpoint.connect().await,
        }
    }

    /// Signs `channel`'s calls with this connector's credentials.
    pub fn signed(&self, channel: Channel) -> SignedChannel {
        signed(channel, self.credentials.as_ref())
    }
}

/// A server's transport: the TLS it serves (if any) and how it calls the
/// cluster's other servers ([`Connector::for_member`]); the error names
/// the file that cannot be used.
#[cfg(feature = "server")]
pub fn member_transport(
    auth: &crate::settings::AuthSettings,
    tls: Option<mq_common::tls::TlsSettings>,
    ca_file: Option<&Path>,
) -> Result<(Option<mq_common::tls::ServerTls>, Connector), String> {
    let connector =
        Connector::for_member(auth, tls.as_ref(), ca_file).map_err(|e| e.to_string())?;
    let served = tls
        .map(mq_common::tls::ServerTls::load)
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok((served, connector))
}

#[cfg(feature = "server")]
impl Connector {
    /// How a server calls the cluster's other servers: signed as the
    /// administrator; over TLS when it serves TLS itself or is given a CA
    /// file (trusting `ca_file`, else its client CA, else the system
    /// roots), presenting its own certificate to peers that require one.
    pub fn for_member(
        auth: &crate::settings::AuthSettings,
        tls: Option<&mq_common::tls::TlsSettings>,
        ca_file: Option<&Path>,
    ) -> Result<Connector, ConnectError> {
        let client_tls = match (tls, ca_file) {
            (None, None) => None,
            (tls, ca_file) => {
                let trust = ca_file.or_else(|| tls.and_then(|t| t.client_ca_file.as_deref()));
                Some(ClientTls::from_files(
                    trust,
                    tls.map(|t| t.cert_file.as_path()),
                    tls.map(|t| t.key_file.as_path()),
                    None,
                )?)
            }
        };
        Ok(Connector {
            credentials: auth.administrator.clone(),
            tls: client_tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_https_only_with_tls() {
        let plain = Connector::default().endpoint("127.0.0.1:9876").unwrap();
        assert_eq!(plain.uri().scheme_str(), Some("http"));
        let tls = Connector {
            credentials: None,
            tls: Some(ClientTls::default()),
        };
        assert_eq!(
            tls.endpoint("127.0.0.1:9876").unwrap().uri().scheme_str(),
            Some("https")
        );
        assert!(matches!(
            Connector::default().endpoint("not an address"),
            Err(ConnectError::Address { .. })
        ));
    }

    #[test]
    fn unusable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("ca.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = ClientTls::from_files(Some(&junk), None, None, None).unwrap_err();
        assert!(
            err.to_string().contains("ca.pem") && err.to_string().contains("no PEM certificate"),
            "{err}"
        );
        let missing = dir.path().join("missing.pem");
        let err = ClientTls::from_files(Some(&missing), None, None, None).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = ClientTls::from_files(None, Some(&junk), None, None).unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
    }
}
