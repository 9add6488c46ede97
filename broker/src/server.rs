//! A running broker: the store, the topic table, the gRPC listener with
//! health and reflection beside the broker service, registration with the
//! nameservers, and (standalone) an embedded nameserver. Stops gracefully:
//! stop accepting, finish requests, unregister, shut the store down cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use mq_auth::guard::Guard;
use mq_auth::store::AuthStore;
use mq_nameserver::{NameServer, NameServerConfig};
use mq_nameserver_client::NameServerClient;
use mq_proto::broker::v1::broker_server::BrokerServer;
use mq_proto::replication::v1::replication_server::ReplicationServer;
use mq_store::{MessageStore, StoreError};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backpressure::Backpressure;
use crate::config::BrokerConfig;
use crate::consumer_groups::ConsumerGroups;
use crate::consumer_offsets::ConsumerOffsets;
use crate::metrics::BrokerMetrics;
use crate::registry::{Identity, Registry};
use crate::replication::controlled::{self, ControllerLink, LinkStatus, Member};
use crate::replication::follower::FollowStatus;
use crate::replication::follower::Follower;
use crate::replication::master::ReplicationService;
use crate::replication::replicas::Replicas;
use crate::replication::state_sync::{BrokerState, StateSync};
use crate::replication::{ReadAdvice, ReplicationView, Restart, Role};
use crate::schedule::scheduler::Scheduler;
use crate::service::BrokerService;
use crate::service::admin::AdminPath;
use crate::service::consumer::ConsumerPath;
use crate::service::pull::PullPath;
use crate::service::pull_budget::{HoldUntilSent, PullBudget};
use crate::service::retry::RetryPath;
use crate::service::send::SendPath;
use crate::topic_table::{TopicTable, TopicTableError};

/// Why the broker could not start or stopped on its own.
#[derive(Debug, Error)]
pub enum ServeError {
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
    #[error(
        "cannot listen for RocketMQ 5 clients on {addr}: {source}; each broker on a host needs its own --proxy-listen (127.0.0.1:0 picks a free port)"
    )]
    ProxyBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("advertise_addr {0:?} is not an ip:port address (needed to stamp records)")]
    Advertise(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("topics: {0}")]
    Topics(#[from] TopicTableError),
    #[error("POP book: {0}")]
    PopBook(std::io::Error),
    #[error("consumer offsets: {0}")]
    Offsets(std::io::Error),
    #[error("nameserver: {0}")]
    NameServer(#[from] mq_nameserver::server::ServeError),
    #[error("nameserver list: {0}")]
    NameServerList(#[from] mq_nameserver_client::NameServerClientError),
    #[error(transparent)]
    Grpc(#[from] mq_common::grpc::GrpcError),
    #[error("{0}")]
    Task(String),
    #[error("cannot join the cluster: {0}")]
    Registration(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// How often a replica syncs its master's topics, consumer offsets and
/// schedule progress (and hands over the offsets committed on it).
const STATE_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// How long requests in flight get when the broker restarts in its
/// process (a new role, a cut of its log).
const RESTART_DRAIN_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Why [`run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Asked to stop.
    Shutdown,
    /// Wants to be run again (a replica's recorded cut applies at open),
    /// on the addresses it had.
    Restart {
        listen: SocketAddr,
        metrics_listen: SocketAddr,
    },
}

/// Runs the broker until `shutdown` resolves or it asks to be restarted.
pub async fn run(
    config: BrokerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Stopped, ServeError> {
    tokio::pin!(shutdown);
    if let Some(warning) = config.exposure()? {
        tracing::warn!("{warning}");
    }
    // Stopped in order: registration (which unregisters from the embedded
    // nameserver, if any) first, then the embedded nameserver.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (nameserver_stop_tx, nameserver_stop_rx) = watch::channel(false);
    // Set when draining begins: long-lived streams end so that the drain
    // does not wait on them.
    let (draining_tx, draining_rx) = watch::channel(false);

    // Bind first, so that a taken port fails before anything else happens.
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;

    let advertised = if config.advertise_addr.is_none() && config.listen.port() == 0 {
        // Port 0 (tests): advertise the port actually bound.
        let mut addr = local;
        if addr.ip().is_unspecified() {
            addr.set_ip([127, 0, 0, 1].into());
        }
        addr.to_string()
    } else {
        config.advertised()
    };
    let store_host: SocketAddr = advertised
        .parse()
        .or_else(|_| resolve(&advertised))
        .map_err(|_| ServeError::Advertise(advertised.clone()))?;

    let store_dir = config.store_dir.clone();
    let mut store_config = config.store.clone();
    if Role::of(&config) != Role::Master {
        // A replica writes whole chunks with positioned writes
        // (`append_raw`), which need no zero-filled pages: pre-warming
        // would only add the zero-filling.
        store_config.prewarm = false;
    }
    let (store, report) = tokio::task::spawn_blocking(move || {
        MessageStore::open(&store_dir, store_config, store_host)
    })
    .await
    .map_err(|e| ServeError::Task(e.to_string()))??;
    if report.crashed {
        tracing::warn!(truncation = ?report.truncation, "store recovered from a crash");
    }
    let store = Arc::new(store);
    // The users and policies: this broker's copy, kept beside the store.
    let auth = Arc::new(AuthStore::open(
        config.auth()?,
        Some(config.store_dir.join("auth.json")),
    )?);
    // How this broker calls other servers: as the administrator, over TLS
    // when it serves TLS.
    let (tls, connector) = mq_auth::connector::member_transport(
        auth.settings(),
        config.tls()?,
        config.tls_ca_file.as_deref(),
    )
    .map_err(ServeError::Tls)?;

    // Controller mode: the controller names the role.
    let controller = config
        .controller_addr
        .as_deref()
        .map(|list| mq_controller::client::ControllerClient::from_list_with(list, &connector))
        .transpose()
        .map_err(|e| ServeError::Registration(e.to_string()))?;
    let member = Member {
        group: config.broker_name.clone(),
        id: config.broker_id,
        addr: config
            .replication_addr
            .clone()
            .unwrap_or_else(|| advertised.clone()),
    };
    let joined = match &controller {
        Some(client) => {
            let interval = config.controller_heartbeat_interval;
            tokio::select! {
                view = controlled::join(client, &member, &store, interval) => Some(view),
                () = &mut shutdown => {
                    tokio::task::spawn_blocking(move || store.shutdown())
                        .await
                        .map_err(|e| ServeError::Task(e.to_string()))??;
                    return Ok(Stopped::Shutdown);
                }
            }
        }
        None => None,
    };
    let role = match &joined {
        Some(view) => member.role_in(view),
        None => Role::of(&config),
    };
    match (&role, &joined) {
        (Role::Master, Some(view)) => begin_elected_epoch(&store, view.epoch).await?,
        (Role::Master, None) => begin_epoch(&store).await?,
        _ => {}
    }
    let topics = Arc::new(TopicTable::load(&config.store_dir.join("topics.json"))?);
    if role == Role::Master && joined.is_some() {
        let adopted = controlled::adopt_logged_topics(&store, &topics)?;
        if !adopted.is_empty() {
            tracing::warn!(
                ?adopted,
                "serving topics found in the log but not yet in the topic table (created just before the failover)"
            );
        }
    }

    let mut embedded = None;
    let namesrv = match (&config.namesrv, config.standalone) {
        (Some(list), _) => list.clone(),
        (None, _) => {
            // It shares this broker's users and policies.
            let nameserver = NameServer::bind_with_auth(
                NameServerConfig {
                    listen: config.namesrv_listen,
                    tls_cert_file: config.tls_cert_file.clone(),
                    tls_key_file: config.tls_key_file.clone(),
                    tls_client_ca_file: config.tls_client_ca_file.clone(),
                    tls_reload_interval: config.tls_reload_interval,
                    ..NameServerConfig::default()
                },
                Arc::clone(&auth),
            )
            .await?;
            let mut addr = nameserver.local_addr()?;
            if addr.ip().is_unspecified() {
                addr.set_ip([127, 0, 0, 1].into());
            }
            let mut stop = nameserver_stop_rx.clone();
            embedded = Some(tokio::spawn(nameserver.serve(async move {
                let _ = stop.wait_for(|s| *s).await;
            })));
            addr.to_string()
        }
    };

    let offsets = ConsumerOffsets::load(&config.store_dir.join("consumer_offsets.json"))
        .map_err(ServeError::Offsets)?;
    let offsets = Arc::new(match role {
        Role::Master => offsets,
        Role::Replica { .. } => offsets.track_commits(),
    });
    let groups = Arc::new(ConsumerGroups::new(
        millis(config.consumer_expire),
        millis(config.queue_lock_expire),
    ));
    let bookkeeping = tokio::spawn(keep_consumer_books(
        Arc::clone(&offsets),
        Arc::clone(&groups),
        config.offset_persist_interval,
        stop_rx.clone(),
    ));
    let delays = Arc::new(config.delay_table()?);
    let state = BrokerState {
        topics: Arc::clone(&topics),
        offsets: Arc::clone(&offsets),
        schedule_path: config.store_dir.join("schedule_progress.json"),
    };
    let replicas = Arc::new(Replicas::new(config.in_sync_rule()));
    let restart = Arc::new(Restart::default());
    let follow_status = Arc::new(FollowStatus::default());
    // A master fires scheduled messages; a replica follows the master's
    // log, where the fired messages arrive.
    let background = match &role {
        Role::Master => {
            let scheduler = {
                let (store, delays) = (Arc::clone(&store), (*delays).clone());
                let path = state.schedule_path.clone();
                tokio::task::spawn_blocking(move || Scheduler::recover(store, delays, path))
                    .await
                    .map_err(|e| ServeError::Task(e.to_string()))??
            };
            tokio::spawn(scheduler.run(stop_rx.clone()))
        }
        Role::Replica { id, master_addr } => {
            let follower = Follower {
                store: Arc::clone(&store),
                master_addr: master_addr.clone(),
                broker_name: config.broker_name.clone(),
                broker_id: *id,
                status: Arc::clone(&follow_status),
                restart: Arc::clone(&restart),
                connector: connector.clone(),
            };
            let sync = StateSync {
                master_addr: master_addr.clone(),
                broker_name: config.broker_name.clone(),
                broker_id: *id,
                state: state.clone(),
                interval: STATE_SYNC_INTERVAL,
                connector: connector.clone(),
            };
            let stop = stop_rx.clone();
            tokio::spawn(async move {
                tokio::join!(follower.run(stop.clone()), sync.run(stop));
            })
        }
    };
    let started_ms = mq_common::clock::unix_millis();
    let link_status = Arc::new(LinkStatus::default());
    let metrics = BrokerMetrics::default();
    let pull_budget = Arc::new(PullBudget::new(
        config.pull_bytes_in_flight,
        config.pull_bytes_in_flight_per_client,
    ));
    let replication_view = match role {
        Role::Master => ReplicationView::Master {
            replicas: Arc::clone(&replicas),
        },
        Role::Replica { .. } => ReplicationView::Replica {
            status: Arc::clone(&follow_status),
        },
    };
    let exporter = Arc::new(crate::metrics::exporter(
        &metrics,
        Arc::clone(&store),
        Arc::clone(&offsets),
        Arc::clone(&pull_budget),
        replication_view.clone(),
        joined.as_ref().map(|_| Arc::clone(&link_status)),
    ));
    let metrics_listener = TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|source| ServeError::MetricsBind {
            addr: config.metrics_listen,
            source,
        })?;
    let metrics_local = metrics_listener
        .local_addr()
        .unwrap_or(config.metrics_listen);
    let proxy_listener = TcpListener::bind(config.proxy_listen())
        .await
        .map_err(|source| ServeError::ProxyBind {
            addr: config.proxy_listen(),
            source,
        })?;
    let proxy_local = proxy_listener.local_addr().unwrap_or(config.proxy_listen());
    let proxy_advertised = config.proxy_advertise_addr.clone().unwrap_or_else(|| {
        let host = advertised
            .rsplit_once(':')
            .map_or(advertised.as_str(), |(h, _)| h);
        format!("{host}:{}", proxy_local.port())
    });
    tracing::info!(addr = %metrics_local, "metrics endpoint ready (/metrics, /healthz)");
    let metrics_server = {
        let mut stop = stop_rx.clone();
        tokio::spawn(mq_common::metrics_http::serve(
            metrics_listener,
            exporter,
            tls.clone().filter(|_| config.tls_metrics),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ))
    };
    let guard = Guard::new(Arc::clone(&auth));
    let retry = RetryPath {
        store: Arc::clone(&store),
        topics: Arc::clone(&topics),
        delays: Arc::clone(&delays),
        max_reconsume_times: config.max_reconsume_times,
        retry_first_level: config.retry_first_level,
        role: role.clone(),
        broker_name: config.broker_name.clone(),
    };
    let (pop_book, cut) = crate::pop::book::PopBook::open(
        &config.store_dir.join("pop"),
        config.flush() == mq_store::FlushMode::Sync,
    )
    .map_err(ServeError::PopBook)?;
    if cut > 0 {
        tracing::warn!(
            bytes = cut,
            "cut a torn or damaged tail off the POP journal; messages it named will be delivered again"
        );
    }
    let pop_book = Arc::new(pop_book);
    let pop_flusher = tokio::spawn(crate::pop::keep_flushed(
        Arc::clone(&pop_book),
        stop_rx.clone(),
    ));
    let sql_filters = Arc::new(crate::service::filter::SqlFilters::default());
    let transaction_book = {
        let store = Arc::clone(&store);
        let path = config.store_dir.join("transactions.json");
        Arc::new(
            tokio::task::spawn_blocking(move || {
                crate::transaction::book::TransactionBook::recover(store, path)
            })
            .await
            .map_err(|e| ServeError::Task(e.to_string()))??,
        )
    };
    let producer_sessions = Arc::new(crate::transaction::sessions::ProducerSessions::default());
    let send_path = SendPath {
        store: Arc::clone(&store),
        topics: Arc::clone(&topics),
        pressure: Backpressure::new(config.max_queued_bytes, config.max_queue_wait),
        auto_create_topic: config.auto_create_topic(),
        default_topic_queues: config.default_topic_queues,
        store_host,
        max_message_size: config.store.max_message_size,
        delays: Arc::clone(&delays),
        max_delivery_delay: config.max_delivery_delay,
        metrics: metrics.clone(),
        role: role.clone(),
        broker_name: config.broker_name.clone(),
        sync_replication: config.sync_replication(&role),
        replicas: Arc::clone(&replicas),
    };
    let service = BrokerService {
        pull: PullPath {
            store: Arc::clone(&store),
            budget: Arc::clone(&pull_budget),
            topics: Arc::clone(&topics),
            store_host,
            metrics: metrics.clone(),
            advice: match &role {
                Role::Master => ReadAdvice::Master {
                    replicas: Arc::clone(&replicas),
                    far_behind: config.replica_read_behind_bytes,
                },
                Role::Replica { id, .. } => ReadAdvice::Replica {
                    id: *id,
                    far_behind: config.replica_read_behind_bytes,
                },
            },
            following: match &role {
                Role::Master => None,
                Role::Replica { .. } => Some(Arc::clone(&follow_status)),
            },
            broker_name: config.broker_name.clone(),
            filters: Arc::clone(&sql_filters),
        },
        admin: AdminPath {
            store: Arc::clone(&store),
            topics: Arc::clone(&topics),
            offsets: Arc::clone(&offsets),
            groups: Arc::clone(&groups),
            metrics: metrics.clone(),
            started_ms,
            store_host,
            replication: replication_view,
            replication_mode: config.replication.name(),
        },
        consumers: ConsumerPath {
            store: Arc::clone(&store),
            topics: Arc::clone(&topics),
            offsets: Arc::clone(&offsets),
            groups,
            draining: draining_rx,
            filters: Arc::clone(&sql_filters),
        },
        send: send_path.clone(),
        retry: retry.clone(),
        transactions: crate::service::transaction::TransactionPath {
            send: send_path,
            book: Arc::clone(&transaction_book),
            sessions: Arc::clone(&producer_sessions),
            draining: draining_tx.subscribe(),
        },
        pop: crate::pop::PopPath {
            store: Arc::clone(&store),
            topics: Arc::clone(&topics),
            offsets: Arc::clone(&offsets),
            retry,
            book: Arc::clone(&pop_book),
            role: role.clone(),
            broker_name: config.broker_name.clone(),
            min_invisible: config.pop_min_invisible,
            rotation: Default::default(),
            filters: Arc::clone(&sql_filters),
        },
        topics: Arc::clone(&topics),
        metrics,
        guard: guard.clone(),
    };

    // A master checks its open transactions back; a replica's half
    // messages and ends arrive with its master's log.
    let transaction_checker = matches!(role, Role::Master).then(|| {
        let checker = crate::transaction::checker::Checker {
            store: Arc::clone(&store),
            book: Arc::clone(&transaction_book),
            sessions: Arc::clone(&producer_sessions),
            settings: crate::transaction::checker::CheckSettings {
                timeout: config.transaction_timeout,
                interval: config.transaction_check_interval,
                max: config.transaction_check_max,
            },
            metrics: service.metrics.clone(),
        };
        tokio::spawn(checker.run(stop_rx.clone()))
    });

    let nameservers = NameServerClient::from_list_with(&namesrv, connector.clone())?;
    // An embedded nameserver shares the broker's copy: nothing to sync.
    let auth_sync = embedded.is_none().then(|| {
        tokio::spawn(mq_nameserver_client::auth_sync::keep_in_sync(
            nameservers.clone(),
            Arc::clone(&auth),
            stop_rx.clone(),
        ))
    });
    let registry_nameservers = nameservers.clone();
    let registry = Registry {
        client: nameservers,
        identity: Identity {
            cluster: config.cluster.clone(),
            broker_name: config.broker_name.clone(),
            // In controller mode the master, whoever it is, takes slot 0.
            broker_id: match (&role, &joined) {
                (Role::Master, Some(_)) => 0,
                _ => config.broker_id,
            },
            addr: advertised.clone(),
            proxy_addr: Some(proxy_advertised.clone()),
            master_epoch: match (&role, &joined) {
                (Role::Master, Some(view)) => view.epoch,
                _ => 0,
            },
        },
        topics: Arc::clone(&topics),
        started_ms,
        interval: config.register_interval,
        auto_create_queues: config
            .auto_create_topic()
            .then_some(config.default_topic_queues),
    };
    let (registered_tx, registered) = tokio::sync::oneshot::channel();
    let registration = tokio::spawn(registry.run(stop_rx.clone(), registered_tx));
    let link = match (controller, joined) {
        (Some(client), Some(joined)) => {
            if role == Role::Master {
                // Before the first send is served.
                replicas.confine_reads(Arc::clone(&store));
                controlled::require_sync_state_set(&replicas, &joined, member.id);
            }
            let link = ControllerLink {
                client,
                member: member.clone(),
                store: Arc::clone(&store),
                role: role.clone(),
                joined,
                replicas: Arc::clone(&replicas),
                restart: Arc::clone(&restart),
                interval: config.controller_heartbeat_interval,
                status: Arc::clone(&link_status),
                following: Arc::clone(&follow_status),
            };
            Some(tokio::spawn(link.run(stop_rx.clone())))
        }
        _ => None,
    };
    // Ready means routable: wait for the first registration round (a
    // nameserver that is down only delays this by its connect timeout).
    if let Ok(Ok(Err(why))) =
        tokio::time::timeout(std::time::Duration::from_secs(10), registered).await
    {
        let _ = stop_tx.send(true);
        return Err(ServeError::Registration(why));
    }

    tracing::info!(
        addr = %local,
        advertised = %advertised,
        namesrv = %namesrv,
        flush = ?config.flush(),
        transient_store_pool = config.store.transient_store_pool,
        auto_create_topic = config.auto_create_topic(),
        authentication = guard.enabled(),
        tls = tls.is_some(),
        "broker listening"
    );
    let proxy_server = serve_proxy(
        proxy_listener,
        &config,
        mq_proxy::MessagingProxy::new(
            Arc::new(crate::proxy_local::LocalBackend {
                service: service.clone(),
                nameservers: registry_nameservers,
                broker_name: config.broker_name.clone(),
            }),
            guard.clone(),
            mq_proxy::settings::ServerSettings {
                max_body_size: config.store.max_message_size as usize,
                min_invisible: config.pop_min_invisible,
                max_delivery_attempts: config.max_reconsume_times as i32 + 1,
                ..Default::default()
            },
        ),
        tls.clone(),
        draining_tx.subscribe(),
    );
    tracing::info!(addr = %proxy_local, advertised = %proxy_advertised, "RocketMQ 5 proxy listening (local mode)");
    let broker = BrokerServer::new(service).max_decoding_message_size(decode_limit(&config));
    let replication = guard.wrap(ReplicationServer::new(ReplicationService {
        store: Arc::clone(&store),
        broker_name: config.broker_name.clone(),
        broker_id: config.broker_id,
        role: role.clone(),
        replicas: Arc::clone(&replicas),
        state,
        linger: match config.replication {
            crate::config::ReplicationMode::Async => crate::replication::master::ASYNC_LINGER,
            crate::config::ReplicationMode::Sync => std::time::Duration::ZERO,
        },
        guard: guard.clone(),
    }));
    let served = mq_common::grpc::serve_with_grace(
        listener,
        mq_common::incoming::ConnectionLimits {
            max_connections: config.max_connections,
            idle_timeout: config.idle_timeout,
            keepalive_interval: config.client_keepalive_interval,
            keepalive_timeout: config.client_keepalive_timeout,
        },
        tls,
        &["mq.broker.v1.Broker", "mq.replication.v1.Replication"],
        tonic::service::Routes::new(guard.wrap(HoldUntilSent(broker))).add_service(replication),
        async {
            let grace = tokio::select! {
                () = &mut shutdown => mq_common::shutdown::DRAIN_GRACE,
                // Clients keep connections open and would hold the full
                // grace; requests in flight finish within this one, and
                // the controller and the group's peers wait on the restart.
                () = restart.requested() => RESTART_DRAIN_GRACE,
            };
            let _ = draining_tx.send(true);
            grace
        },
    )
    .await;

    let _ = stop_tx.send(true);
    let _ = proxy_server.await;
    let _ = pop_flusher.await;
    if let Some(link) = link {
        let _ = link.await;
    }
    let _ = background.await;
    if let Some(checker) = transaction_checker {
        let _ = checker.await;
    }
    let _ = metrics_server.await;
    let _ = registration.await;
    if let Some(sync) = auth_sync {
        let _ = sync.await;
    }
    let _ = bookkeeping.await;
    if let Err(err) = offsets.persist() {
        tracing::error!(error = %err, "cannot save consumer offsets");
    }
    let _ = nameserver_stop_tx.send(true);
    if let Some(nameserver) = embedded {
        let _ = nameserver.await;
    }
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .map_err(|e| ServeError::Task(e.to_string()))??;
    tracing::info!("broker stopped");
    served?;
    Ok(if restart.is_requested() {
        Stopped::Restart {
            listen: local,
            metrics_listen: metrics_local,
        }
    } else {
        Stopped::Shutdown
    })
}

/// A master begins a new epoch of its log at every start, numbered above
/// any it had and by the clock (so that a master started on an empty disk
/// still takes a number no earlier master of the group took).
async fn begin_epoch(store: &Arc<MessageStore>) -> Result<(), ServeError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let last = store.epochs().last().map_or(0, |e| e.epoch);
        let epoch = (last + 1).max(mq_common::clock::unix_millis());
        store.begin_epoch(epoch)?;
        tracing::info!(
            epoch,
            start = store.commitlog_max_offset(),
            "began a new epoch of the CommitLog"
        );
        Ok(())
    })
    .await
    .map_err(|e| ServeError::Task(e.to_string()))?
}

/// In controller mode a master's epoch is the one it was elected in: begun
/// at its log's end, or continued after a restart within the same epoch.
async fn begin_elected_epoch(store: &Arc<MessageStore>, epoch: u64) -> Result<(), ServeError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let last = store.epochs().last().map_or(0, |e| e.epoch);
        if last > epoch {
            return Err(ServeError::Registration(format!(
                "the CommitLog holds epoch {last}, above the epoch {epoch} the controller elected this broker in: this store was written outside this controller's group"
            )));
        }
        if last < epoch {
            store.begin_epoch(epoch)?;
            tracing::info!(
                epoch,
                start = store.commitlog_max_offset(),
                "master: began the epoch the controller elected it in"
            );
        } else {
            tracing::info!(epoch, "master: continues its epoch");
        }
        Ok(())
    })
    .await
    .map_err(|e| ServeError::Task(e.to_string()))?
}

/// Every `persist_every`: saves committed offsets and drops consumers
/// that stopped heartbeating, until `stop`.
async fn keep_consumer_books(
    offsets: Arc<ConsumerOffsets>,
    groups: Arc<ConsumerGroups>,
    persist_every: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(persist_every.min(std::time::Duration::from_secs(1)));
    let mut last_persist = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        for (group, client_id) in groups.expire(mq_common::clock::unix_millis()) {
            tracing::warn!(
                group,
                client_id,
                "consumer stopped heartbeating; dropped from its group"
            );
        }
        if last_persist.elapsed() >= persist_every {
            last_persist = std::time::Instant::now();
            if let Err(err) = offsets.persist() {
                tracing::error!(error = %err, "cannot save consumer offsets");
            }
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Room for the largest message plus its envelope, and batches of them.
/// Serves RocketMQ 5's protocol on the proxy's port until the broker
/// drains.
fn serve_proxy(
    listener: TcpListener,
    config: &BrokerConfig,
    proxy: mq_proxy::MessagingProxy,
    tls: Option<mq_common::tls::ServerTls>,
    mut draining: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<(), mq_common::grpc::GrpcError>> {
    use mq_proto::apache::rocketmq::v2::messaging_service_server::MessagingServiceServer;
    let guard = proxy.guard().clone();
    let service =
        MessagingServiceServer::new(proxy).max_decoding_message_size(decode_limit(config));
    let limits = mq_common::incoming::ConnectionLimits {
        max_connections: config.max_connections,
        idle_timeout: config.idle_timeout,
        keepalive_interval: config.client_keepalive_interval,
        keepalive_timeout: config.client_keepalive_timeout,
    };
    tokio::spawn(mq_common::grpc::serve_with_grace(
        listener,
        limits,
        tls,
        &["apache.rocketmq.v2.MessagingService"],
        tonic::service::Routes::new(guard.wrap(service)),
        async move {
            let _ = draining.wait_for(|d| *d).await;
            mq_common::shutdown::DRAIN_GRACE
        },
    ))
}

fn decode_limit(config: &BrokerConfig) -> usize {
    (config.store.max_message_size as usize)
        .saturating_mul(4)
        .max(4 << 20)
}

/// Resolves a `host:port` advertise address to the IP stamped on records.
fn resolve(addr: &str) -> std::io::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))
}
