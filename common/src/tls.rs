//! TLS on our servers' ports (rustls on ring): the certificate and key
//! come from PEM files and are reloaded when the files change, so that a
//! renewed certificate takes effect without a restart; with a client CA
//! file, clients must present a certificate it signed (mutual TLS).
//!
//! Handshakes run beside the accept loop, one task each, so that a slow
//! or silent client delays nobody. A client that speaks plaintext to a TLS
//! port gets a gRPC answer it can read (`UNAVAILABLE`, "this port requires
//! TLS") instead of a reset connection.
//! Every session reads through a [`TLS_READ_BUFFER`] (why: see there).

use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::http2::TLS_READ_BUFFER;
use crate::incoming::Connection;

/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a plaintext client of a TLS port is told.
pub const PLAINTEXT_REFUSAL: &str = "this port requires TLS: connect with TLS (an https:// endpoint, --tls or --tls-ca-file; grpcurl -cacert FILE)";

/// Where a server's certificate and key are, and whether clients need one.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM: the certificate chain, the server's own first.
    pub cert_file: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM: CAs whose client certificates are accepted; set, a client
    /// without one is refused (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
    /// How often the files are checked for a change.
    pub reload_interval: Duration,
    /// Serve `/metrics` and `/healthz` over TLS too (same certificate).
    pub metrics: bool,
}

/// A certificate, key or CA that cannot be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// ring's suites, AES-128-GCM first: a 128-bit key is as far out of reach
/// as a 256-bit one for traffic between our servers and clients, and
/// costs fewer rounds per byte on a path that moves hundreds of MB/s.
fn provider() -> Arc<CryptoProvider> {
    use tokio_rustls::rustls::CipherSuite;
    let mut provider = tokio_rustls::rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            CipherSuite::TLS13_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    Arc::new(provider)
}

/// The certificates of a PEM file (at least one).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            path: path.to_owned(),
            reason: format!("not a PEM certificate file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Invalid {
            path: path.to_owned(),
            reason: "holds no certificate (want PEM: -----BEGIN CERTIFICATE-----)".into(),
        });
    }
    Ok(certs)
}

fn certified_key(settings: &TlsSettings) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = read_certificates(&settings.cert_file)?;
    let path = &settings.key_file;
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.clone(),
        source,
    })?;
    // Never the key's bytes in an error: only what kind of problem it is.
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::Invalid {
        path: path.clone(),
        reason: "holds no private key (want PEM: PKCS#8, PKCS#1 or SEC1)".into(),
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Invalid {
            path: path.clone(),
            reason: format!("unusable private key: {e}"),
        })?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| TlsError::Invalid {
        path: path.clone(),
        reason: format!(
            "the key does not belong to the certificate in {}: {e}",
            settings.cert_file.display()
        ),
    })?;
    Ok(Arc::new(certified))
}

/// A fingerprint of the files' content: a change means a reload. Content,
/// not modification times: those are coarse (a renewal written twice
/// within one clock tick, same sizes, would go unnoticed), and the files
/// are small.
fn stamp(settings: &TlsSettings) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(&settings.cert_file).ok()?.hash(&mut hasher);
    std::fs::read(&settings.key_file).ok()?.hash(&mut hasher);
    Some(hasher.finish())
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct ReloadingCert {
    /// Read at every handshake, replaced whole on a reload: a std lock
    /// held only to clone or swap the pointer.
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// A server's TLS: the acceptor and the certificate it reloads.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    cert: Arc<ReloadingCert>,
    settings: TlsSettings,
    /// The files' fingerprint when the certificate in use was read (taken
    /// before reading them: a change in between is seen at the next look).
    loaded: Option<u64>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the files; an error names the one that cannot be used.
    pub fn load(settings: TlsSettings) -> Result<ServerTls, TlsError> {
        let loaded = stamp(&settings);
        let cert = Arc::new(ReloadingCert {
            current: RwLock::new(certified_key(&settings)?),
        });
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &settings.client_ca_file {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(read_certificates(path)?);
                if added == 0 {
                    return Err(TlsError::Invalid {
                        path: path.clone(),
                        reason: "holds no usable CA certificate".into(),
                    });
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| TlsError::Invalid {
                            path: path.clone(),
                            reason: e.to_string(),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config =
            builder.with_cert_resolver(Arc::clone(&cert) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // The server's order (AES-128 first), not the client's.
        config.ignore_client_order = true;
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert,
            settings,
            loaded,
        })
    }

    /// The acceptor (current certificate, client verification).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.settings.client_ca_file.is_some()
    }

    /// Reads the files again if they changed since `last`; returns the new
    /// stamp. A certificate that cannot be used is logged and the old one
    /// kept.
    fn reload_if_changed(&self, last: Option<u64>) -> Option<u64> {
        let now = stamp(&self.settings);
        if now.is_none() || now == last {
            return last;
        }
        match certified_key(&self.settings) {
            Ok(key) => {
                *self.cert.current.write().unwrap_or_else(|e| e.into_inner()) = key;
                tracing::info!(cert = %self.settings.cert_file.display(), "TLS certificate reloaded");
                now
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot reload the TLS certificate; keeping the current one");
                last
            }
        }
    }

    /// Watches the files every `reload_interval`, for as long as it runs.
    pub async fn watch(self) {
        let mut last = self.loaded;
        let mut ticks = tokio::time::interval(self.settings.reload_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            last = self.reload_if_changed(last);
        }
    }

    /// The TLS connections made over `connections` (handshakes in tasks of
    /// their own); plaintext clients are answered and dropped.
    pub fn secure(
        &self,
        connections: impl Stream<Item = io::Result<Connection>> + Send + 'static,
    ) -> impl Stream<Item = io::Result<Transport>> + Send + 'static {
        let (tx, mut rx) = mpsc::channel::<Transport>(64);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            let mut connections = std::pin::pin!(connections);
            loop {
                // Ends with the server: its stream (the receiver) is gone.
                let next = tokio::select! {
                    next = connections.next() => next,
                    () = tx.closed() => return,
                };
                let Some(Ok(connection)) = next else {
                    if next.is_none() {
                        return;
                    }
                    continue;
                };
                let (tx, acceptor) = (tx.clone(), acceptor.clone());
                tokio::spawn(async move {
                    if let Some(secured) = handshake(&acceptor, connection).await {
                        let _ = tx.send(secured).await;
                    }
                });
            }
        });
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|next| next.map(Ok)))
    }
}

/// The TLS session over `connection`, or `None` (logged) when the client
/// spoke plaintext, failed or stalled its handshake.
async fn handshake(acceptor: &TlsAcceptor, connection: Connection) -> Option<Transport> {
    let peer = connection.connect_info().remote_addr();
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connection.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return None,
    }
    // Every TLS connection opens with a handshake record (content type 22).
    if first[0] != 0x16 {
        tracing::warn!(peer = ?peer, "a client spoke plaintext to a TLS port; told it to use TLS");
        refuse_plaintext(connection).await;
        return None;
    }
    let buffered = BufReader::with_capacity(TLS_READ_BUFFER, connection);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(buffered)).await {
        Ok(Ok(stream)) => Some(Transport::Tls(Box::new(stream))),
        Ok(Err(err)) => {
            tracing::warn!(peer = ?peer, error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::warn!(peer = ?peer, "TLS handshake timed out");
            None
        }
    }
}

/// Answers every call of a plaintext HTTP/2 (gRPC) client with
/// `UNAVAILABLE` and the reason, for a few seconds.
async fn refuse_plaintext(connection: Connection) {
    let service = hyper::service::service_fn(|_request| async {
        Ok::<_, Infallible>(
            tonic::Status::unavailable(PLAINTEXT_REFUSAL).into_http::<tonic::body::Body>(),
        )
    });
    let serving = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(hyper_util::rt::TokioIo::new(connection), service);
    let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
}

/// A served connection: plaintext, or TLS over it.
pub enum Transport {
    Plain(Connection),
    Tls(Box<tokio_rustls::server::TlsStream<BufReader<Connection>>>),
}

impl Connected for Transport {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match self {
            Transport::Plain(c) => c.connect_info(),
            Transport::Tls(s) => s.get_ref().0.get_ref().connect_info(),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $inner:ident => $call:expr) => {
        match $self.get_mut() {
            Transport::Plain($inner) => {
                let $inner = Pin::new($inner);
                $call
            }
            Transport::Tls($inner) => {
                let $inner = Pin::new($inner.as_mut());
                $call
            }
        }
    };
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, inner => inner.poll_read(cx, buf))
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, inner => inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, inner => inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(c) => c.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, inner => inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, inner => inner.poll_shutdown(cx))
    }
}

/// Defaults of the configuration keys every server shares.
pub const DEFAULTS: [(&str, &str); 2] = [("tls_reload_interval", "10s"), ("tls_metrics", "false")];

/// The TLS flags every server takes (keys `tls_cert_file`, `tls_key_file`,
/// `tls_client_ca_file`, `tls_ca_file`, `tls_reload_interval`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate chain: serve TLS (reloaded when the file changes)
    #[arg(long, value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the certificate
    #[arg(long, value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates: require clients to present a certificate they signed (mutual TLS)
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca_file: Option<PathBuf>,
    /// PEM CA certificates this server trusts when it calls other servers [default: the client CA file, else the system roots]
    #[arg(long, value_name = "FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// How often to look for a renewed certificate [default: 10s]
    #[arg(long, value_name = "DURATION")]
    pub tls_reload_interval: Option<humantime::Duration>,
    /// Serve the metrics endpoint over TLS too (same certificate)
    #[arg(long)]
    pub tls_metrics: bool,
}

impl TlsArgs {
    /// The flags given, as configuration overrides (key, value).
    pub fn overrides(&self) -> [(&'static str, Option<String>); 6] {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        [
            ("tls_cert_file", path(&self.tls_cert_file)),
            ("tls_key_file", path(&self.tls_key_file)),
            ("tls_client_ca_file", path(&self.tls_client_ca_file)),
            ("tls_ca_file", path(&self.tls_ca_file)),
            (
                "tls_reload_interval",
                self.tls_reload_interval.map(|d| d.to_string()),
            ),
            ("tls_metrics", self.tls_metrics.then(|| "true".to_owned())),
        ]
    }
}

impl TlsSettings {
    /// The server's TLS from the configuration keys (none without a
    /// certificate); the error names the key.
    pub fn from_config(
        cert_file: Option<&Path>,
        key_file: Option<&Path>,
        client_ca_file: Option<&Path>,
        reload_interval: Duration,
        metrics: bool,
    ) -> Result<Option<TlsSettings>, (&'static str, String)> {
        match (cert_file, key_file) {
            (None, None) => {
                if metrics {
                    return Err(("tls_metrics", "needs tls_cert_file and tls_key_file".into()));
                }
                if client_ca_file.is_some() {
                    return Err((
                        "tls_client_ca_file",
                        "needs tls_cert_file and tls_key_file: mutual TLS is TLS first".into(),
                    ));
                }
                Ok(None)
            }
            (Some(_), None) => Err(("tls_key_file", "is required with tls_cert_file".into())),
            (None, Some(_)) => Err(("tls_cert_file", "is required with tls_key_file".into())),
            (Some(cert), Some(key)) => {
                if reload_interval.is_zero() {
                    return Err(("tls_reload_interval", "must be longer than 0s".into()));
                }
                Ok(Some(TlsSettings {
                    cert_file: cert.to_owned(),
                    key_file: key.to_owned(),
                    client_ca_file: client_ca_file.map(Path::to_owned),
                    reload_interval,
                    metrics,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate for localhost signed by a new CA named `ca`: (cert, key) PEM.
    fn issue(ca: &str) -> (String, String) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, ca);
        let ca_cert = params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca_cert, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn served(tls: &ServerTls) -> Vec<u8> {
        let current = tls.cert.current.read().unwrap();
        current.cert[0].as_ref().to_vec()
    }

    #[test]
    fn a_renewal_written_right_after_loading_is_picked_up_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let settings = TlsSettings {
            cert_file: dir.path().join("server.pem"),
            key_file: dir.path().join("server.key"),
            client_ca_file: None,
            reload_interval: Duration::from_secs(1),
            metrics: false,
        };
        let write = |(cert, key): (String, String)| {
            std::fs::write(&settings.key_file, key).unwrap();
            std::fs::write(&settings.cert_file, cert).unwrap();
        };
        write(issue("first CA"));
        let tls = ServerTls::load(settings.clone()).unwrap();
        let first = served(&tls);
        // Renewed before the watcher ever looked (same sizes, same tick).
        write(issue("renewal CA"));
        let seen = tls.reload_if_changed(tls.loaded);
        assert_ne!(seen, tls.loaded);
        let renewed = served(&tls);
        assert_ne!(renewed, first, "the renewed certificate is served");
        assert_eq!(tls.reload_if_changed(seen), seen, "nothing changed since");

        std::fs::write(&settings.cert_file, "garbage").unwrap();
        assert_eq!(tls.reload_if_changed(seen), seen);
        assert_eq!(served(&tls), renewed, "a broken file keeps the current one");
    }

    #[test]
    fn unusable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = issue("ca");
        let (_, other_key) = issue("other");
        let cert_file = dir.path().join("server.pem");
        let key_file = dir.path().join("server.key");
        std::fs::write(&cert_file, cert).unwrap();
        std::fs::write(&key_file, other_key).unwrap();
        let settings = TlsSettings {
            cert_file,
            key_file: key_file.clone(),
            client_ca_file: None,
            reload_interval: Duration::from_secs(1),
            metrics: false,
        };
        let err = ServerTls::load(settings.clone()).unwrap_err().to_string();
        assert!(
            err.contains("server.key") && err.contains("does not belong"),
            "{err}"
        );
        std::fs::write(&key_file, "nothing").unwrap();
        let err = ServerTls::load(settings).unwrap_err().to_string();
        assert!(err.contains("holds no private key"), "{err}");
    }
}
