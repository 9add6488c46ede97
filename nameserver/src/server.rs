//! A running nameserver: the gRPC listener with the health and reflection
//! services beside ours, the task that expires silent brokers, and a
//! graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mq_auth::guard::Guard;
use mq_auth::store::AuthStore;
use mq_common::tls::ServerTls;
use mq_proto::auth::v1::auth_server::AuthServer;

use mq_proto::nameserver::v1::name_server_server::NameServerServer;
use thiserror::Error;
use tokio::net::TcpListener;

use crate::auth_service::AuthService;
use crate::config::NameServerConfig;
use crate::metrics::NameServerMetrics;
use crate::route_table::RouteTable;
use crate::service::NameServerService;
use mq_common::clock::unix_millis;

/// Why the nameserver could not start or stopped on its own.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "cannot listen for metrics on {addr}: {source}; each server on a host needs its own --metrics-listen (127.0.0.1:0 picks a free port)"
    )]
    MetricsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Grpc(#[from] mq_common::grpc::GrpcError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Auth(#[from] mq_auth::store::StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] mq_common::tls::TlsError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A nameserver bound to its port, ready to serve.
#[derive(Debug)]
pub struct NameServer {
    config: NameServerConfig,
    listener: TcpListener,
    table: Arc<RouteTable>,
    auth: Arc<AuthStore>,
    tls: Option<ServerTls>,
}

impl NameServer {
    /// Binds the listen address, so that a taken port fails here, early;
    /// opens the users and policies kept in `data_dir`.
    pub async fn bind(config: NameServerConfig) -> Result<Self, ServeError> {
        let path = match &config.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| ServeError::DataDir {
                    path: dir.clone(),
                    source,
                })?;
                Some(dir.join("auth.json"))
            }
            None => None,
        };
        let auth = Arc::new(AuthStore::open(config.auth()?, path)?);
        Self::bind_with_auth(config, auth).await
    }

    /// As [`NameServer::bind`], enforcing and serving the users and
    /// policies of `auth` (a broker's embedded nameserver shares the
    /// broker's).
    pub async fn bind_with_auth(
        config: NameServerConfig,
        auth: Arc<AuthStore>,
    ) -> Result<Self, ServeError> {
        let tls = config.tls()?.map(ServerTls::load).transpose()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Ok(NameServer {
            config,
            listener,
            table: Arc::new(RouteTable::new()),
            auth,
            tls,
        })
    }

    /// The users and policies it serves and enforces.
    pub fn auth(&self) -> Arc<AuthStore> {
        Arc::clone(&self.auth)
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener
            .local_addr()
            .map_err(|source| ServeError::Bind {
                addr: self.config.listen,
                source,
            })
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let addr = self.local_addr()?;
        let metrics = NameServerMetrics::default();
        let metrics_server = match self.config.metrics_listen {
            Some(at) => {
                let listener = TcpListener::bind(at)
                    .await
                    .map_err(|source| ServeError::MetricsBind { addr: at, source })?;
                tracing::info!(addr = %listener.local_addr().map_or(at, |a| a), "metrics endpoint ready (/metrics, /healthz)");
                let exporter = Arc::new(metrics.exporter(Arc::clone(&self.table)));
                Some(tokio::spawn(mq_common::metrics_http::serve(
                    listener,
                    exporter,
                    self.tls.clone().filter(|_| self.config.tls_metrics),
                    std::future::pending(),
                )))
            }
            None => None,
        };
        let expiry = tokio::spawn(expire_silent_brokers(
            Arc::clone(&self.table),
            self.config.clone(),
            metrics.clone(),
        ));
        // (A broker's embedded nameserver is the broker's to warn about.)
        if let Ok(Some(warning)) = self.config.exposure() {
            tracing::warn!("{warning}");
        }
        let guard = Guard::new(self.auth);
        tracing::info!(
            %addr,
            broker_expire = %humantime::format_duration(self.config.broker_expire),
            authentication = guard.enabled(),
            tls = self.tls.is_some(),
            "nameserver listening"
        );

        let service = guard.wrap(NameServerServer::new(NameServerService::new(
            self.table,
            metrics,
            guard.clone(),
        )));
        let auth_service = guard.wrap(AuthServer::new(AuthService::new(guard.clone())));
        let result = mq_common::grpc::serve(
            self.listener,
            mq_common::incoming::ConnectionLimits::default(),
            self.tls,
            &["mq.nameserver.v1.NameServer", "mq.auth.v1.Auth"],
            tonic::service::Routes::new(service).add_service(auth_service),
            shutdown,
        )
        .await;
        expiry.abort();
        if let Some(server) = metrics_server {
            server.abort();
        }
        tracing::info!("nameserver stopped");
        Ok(result?)
    }
}

/// Every `scan_interval`, drops brokers silent for longer than `broker_expire`.
async fn expire_silent_brokers(
    table: Arc<RouteTable>,
    config: NameServerConfig,
    metrics: NameServerMetrics,
) {
    let expire_after_ms = u64::try_from(config.broker_expire.as_millis()).unwrap_or(u64::MAX);
    let mut ticks = tokio::time::interval(config.scan_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let expired_now = table.expire(unix_millis(), expire_after_ms);
        metrics.expired(expired_now.len());
        for expired in expired_now {
            let i = &expired.instance;
            tracing::warn!(
                cluster = %i.cluster,
                broker = %i.broker_name,
                broker_id = i.broker_id,
                addr = %i.addr,
                silent_ms = expired.silent_for_ms,
                "broker expired and dropped from routes"
            );
        }
    }
}
