//! The standalone proxy (cluster mode): binds, keeps its copy of the
//! users and policies in step with the nameservers, serves RocketMQ 5's
//! protocol over a [`ClusterBackend`], and `/metrics` with `/healthz`,
//! until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use mq_auth::guard::Guard;
use mq_auth::store::AuthStore;
use mq_proto::apache::rocketmq::v2::messaging_service_server::MessagingServiceServer;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cluster::ClusterBackend;
use crate::config::{ConfigError, ProxyConfig};
use crate::service::MessagingProxy;
use crate::settings::ServerSettings;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Auth(#[from] mq_auth::store::StoreError),
    #[error("TLS: {0}")]
    Tls(String),
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
    #[error("namesrv: {0}")]
    NameServer(#[from] mq_nameserver_client::NameServerClientError),
    #[error(transparent)]
    Grpc(#[from] mq_common::grpc::GrpcError),
}

/// Runs the proxy until `shutdown`.
pub async fn run(
    config: ProxyConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    if let Some(warning) = config.exposure()? {
        tracing::warn!("{warning}");
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let bound = listener.local_addr().unwrap_or(config.listen);
    let advertised = config.advertised(bound);
    let metrics_listener = TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|source| ServeError::MetricsBind {
            addr: config.metrics_listen,
            source,
        })?;
    let auth = Arc::new(AuthStore::open(
        config.auth()?,
        Some(config.data_dir.join("auth.json")),
    )?);
    let (tls, connector) = mq_auth::connector::member_transport(
        auth.settings(),
        config.tls()?,
        config.tls_ca_file.as_deref(),
    )
    .map_err(ServeError::Tls)?;
    let nameservers =
        mq_nameserver_client::NameServerClient::from_list_with(&config.namesrv, connector.clone())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let auth_sync = tokio::spawn(mq_nameserver_client::auth_sync::keep_in_sync(
        nameservers.clone(),
        Arc::clone(&auth),
        stop_rx.clone(),
    ));
    let guard = Guard::new(auth);
    let proxy = MessagingProxy::new(
        ClusterBackend::new(
            nameservers,
            connector,
            advertised.clone(),
            config.max_message_size as usize,
        ),
        guard.clone(),
        ServerSettings {
            max_body_size: config.max_message_size as usize,
            min_invisible: config.min_invisible,
            max_delivery_attempts: config.max_delivery_attempts as i32,
            ..Default::default()
        },
    );
    tracing::info!(addr = %metrics_listener.local_addr().unwrap_or(config.metrics_listen), "metrics endpoint ready (/metrics, /healthz)");
    let metrics_server = {
        let mut stop = stop_rx.clone();
        tokio::spawn(mq_common::metrics_http::serve(
            metrics_listener,
            Arc::new(crate::metrics::exporter(Arc::clone(proxy.clients()))),
            tls.clone().filter(|_| config.tls_metrics),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ))
    };
    tracing::info!(
        addr = %bound,
        advertised = %advertised,
        namesrv = %config.namesrv,
        authentication = guard.enabled(),
        tls = tls.is_some(),
        "proxy listening (cluster mode)"
    );
    let service = MessagingServiceServer::new(proxy).max_decoding_message_size(
        (config.max_message_size as usize)
            .saturating_mul(4)
            .max(4 << 20),
    );
    let served = mq_common::grpc::serve(
        listener,
        mq_common::incoming::ConnectionLimits::default(),
        tls,
        &["apache.rocketmq.v2.MessagingService"],
        tonic::service::Routes::new(guard.wrap(service)),
        shutdown,
    )
    .await;
    let _ = stop_tx.send(true);
    let _ = metrics_server.await;
    let _ = auth_sync.await;
    tracing::info!("proxy stopped");
    Ok(served?)
}
