//! A running controller: its Raft (log and snapshots on disk), one gRPC
//! listener for Raft between controllers and the controller API (with
//! health and reflection), the leader's election loop, metrics, and a
//! graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mq_auth::guard::Guard;
use mq_auth::store::AuthStore;
use mq_proto::controller::v1::controller_server::ControllerServer;
use mq_proto::controller::v1::raft_server::RaftServer;
use openraft::BasicNode;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{ConfigError, ControllerConfig};
use crate::leader::{LeaderView, Shared, run_elections};
use crate::metrics::ControllerMetrics;
use crate::raft::log_store::LogStore;
use crate::raft::network::{Network, Raft, RaftService};
use crate::raft::state_machine::StateMachine;
use crate::service::ControllerService;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "cannot listen for metrics on {addr}: {source}; each server on a host needs its own --metrics-listen"
    )]
    MetricsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data directory {dir}: {source}")]
    Storage {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("raft: {0}")]
    Raft(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Grpc(#[from] mq_common::grpc::GrpcError),
    #[error(transparent)]
    Auth(#[from] mq_auth::store::StoreError),
    #[error("TLS: {0}")]
    Tls(String),
}

/// How often the leader looks for silent masters: a look is a walk over
/// an in-memory map, and every interval between the timeout's end and the
/// look adds to the group's unavailability.
const ELECTION_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs a controller until `shutdown`.
pub async fn run(
    config: ControllerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    run_with_auth(config, None, shutdown).await
}

/// As [`run`]; with `auth`, enforcing those users and policies (a
/// controller embedded in a nameserver shares the nameserver's), else its
/// own copy in the data directory, synced from `namesrv` when given.
pub async fn run_with_auth(
    config: ControllerConfig,
    auth: Option<Arc<AuthStore>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let peers = config.peer_map()?;
    if auth.is_none()
        && let Some(warning) = config.exposure()?
    {
        // (One embedded in a nameserver: the nameserver warns.)
        tracing::warn!("{warning}");
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let storage = |source| ServeError::Storage {
        dir: config.data_dir.clone(),
        source,
    };
    let log = LogStore::open(&config.data_dir).map_err(storage)?;
    let (auth, sync_from) = match auth {
        Some(shared) => (shared, None),
        None => (
            Arc::new(AuthStore::open(
                config.auth()?,
                Some(config.data_dir.join("auth.json")),
            )?),
            config.namesrv.clone(),
        ),
    };
    let (tls, connector) = mq_auth::connector::member_transport(
        auth.settings(),
        config.tls()?,
        config.tls_ca_file.as_deref(),
    )
    .map_err(ServeError::Tls)?;
    let machine = StateMachine::open(&config.data_dir).map_err(storage)?;
    let raft_config = Arc::new(
        config
            .raft_config()
            .validate()
            .map_err(|e| ServeError::Raft(e.to_string()))?,
    );
    let network = Network {
        connector: connector.clone(),
    };
    let raft = Raft::new(config.id, raft_config, network, log, machine.clone())
        .await
        .map_err(|e| ServeError::Raft(e.to_string()))?;
    let members: std::collections::BTreeMap<u64, BasicNode> = peers
        .iter()
        .map(|(id, addr)| (*id, BasicNode::new(addr.clone())))
        .collect();
    // A new group forms around the lowest id; the others initialize it
    // themselves (with the same members: safe, Raft's vote picks one
    // leader) only if nobody reached them within a few election timeouts,
    // so a missing first controller does not stop a group from forming,
    // and a normal start does not elect twice.
    let lowest = peers.keys().next().copied() == Some(config.id);
    let wait = if lowest {
        std::time::Duration::ZERO
    } else {
        config.raft_election_timeout * 4
    };
    let forming = {
        let raft = raft.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if !lowest && raft.metrics().borrow().current_leader.is_some() {
                return;
            }
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(peers = ?peers, "initialized a new controller group"),
                Err(err) => tracing::debug!(error = %err, "controller group already initialized"),
            }
        })
    };

    let metrics = ControllerMetrics::default();
    let shared = Shared {
        id: config.id,
        raft: raft.clone(),
        machine,
        view: Arc::new(Mutex::new(LeaderView::new(config.broker_timeout))),
        allow_unclean: config.allow_unclean_election,
        metrics: metrics.clone(),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let elections = tokio::spawn(run_elections(
        shared.clone(),
        ELECTION_CHECK,
        stop_rx.clone(),
    ));

    let metrics_listener = TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|source| ServeError::MetricsBind {
            addr: config.metrics_listen,
            source,
        })?;
    tracing::info!(addr = %metrics_listener.local_addr().map_or(config.metrics_listen, |a| a), "metrics endpoint ready (/metrics, /healthz)");
    let metrics_server = {
        let mut stop = stop_rx.clone();
        tokio::spawn(mq_common::metrics_http::serve(
            metrics_listener,
            Arc::new(metrics.exporter(shared.clone())),
            tls.clone().filter(|_| config.tls_metrics),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ))
    };

    let auth_sync = match sync_from {
        Some(list) => {
            let client = mq_nameserver_client::NameServerClient::from_list_with(&list, connector)
                .map_err(|e| ServeError::Raft(format!("namesrv: {e}")))?;
            Some(tokio::spawn(mq_nameserver_client::auth_sync::keep_in_sync(
                client,
                Arc::clone(&auth),
                stop_rx.clone(),
            )))
        }
        None => None,
    };
    let guard = Guard::new(auth);
    tracing::info!(
        id = config.id,
        addr = %config.listen,
        authentication = guard.enabled(),
        broker_timeout = %humantime::format_duration(config.broker_timeout),
        allow_unclean_election = config.allow_unclean_election,
        "controller listening"
    );
    let routes = tonic::service::Routes::new(guard.wrap(RaftServer::new(RaftService {
        raft: raft.clone(),
        guard: guard.clone(),
    })))
    .add_service(guard.wrap(ControllerServer::new(ControllerService {
        shared,
        guard: guard.clone(),
    })));
    let served = mq_common::grpc::serve(
        listener,
        mq_common::incoming::ConnectionLimits::default(),
        tls,
        &["mq.controller.v1.Controller", "mq.controller.v1.Raft"],
        routes,
        shutdown,
    )
    .await;
    let _ = stop_tx.send(true);
    forming.abort();
    let _ = elections.await;
    let _ = metrics_server.await;
    if let Some(sync) = auth_sync {
        let _ = sync.await;
    }
    if let Err(err) = raft.shutdown().await {
        tracing::warn!(error = %err, "raft did not stop cleanly");
    }
    tracing::info!("controller stopped");
    Ok(served?)
}
