//! Serving gRPC the way every server of the queue does: its own service
//! plus the standard health service (so that container health checks and
//! `grpcurl` can call it) and server reflection (so that tools need no
//! `.proto` file), stopped gracefully with a drain grace period.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_reflection::server::{v1, v1alpha};

use crate::incoming::{ConnectionLimits, incoming};
use crate::tls::{ServerTls, Transport};
use futures_util::{Stream, StreamExt};
use std::io;
use std::pin::Pin;

/// Aborts a task when dropped (the certificate watcher, with its server).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
use crate::shutdown::{DRAIN_GRACE, serve_gracefully};

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The gRPC reflection services (v1, and v1alpha for grpcurl before 1.9),
/// advertising what this server serves and nothing else: `service_name`,
/// health and reflection (the descriptors of the queue's other services are
/// there for resolving types, but a client listing services must not be
/// offered calls that would answer `Unimplemented`).
pub fn reflection_services(
    service_names: &[&str],
) -> Result<
    (
        v1::ServerReflectionServer<impl v1::ServerReflection>,
        v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>,
    ),
    tonic_reflection::server::Error,
> {
    let builder = |reflection: &str| {
        service_names.iter().fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(mq_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health")
                .with_service_name(reflection),
            |builder, name| builder.with_service_name(*name),
        )
    };
    Ok((
        builder("grpc.reflection.v1.ServerReflection").build_v1()?,
        builder("grpc.reflection.v1alpha.ServerReflection").build_v1alpha()?,
    ))
}

/// Serves `routes` on `listener` (connections within `limits`) with health (each of `service_names` and the empty
/// name report SERVING, then NOT_SERVING once shutdown begins) and
/// reflection, until `shutdown`; in-flight requests then get
/// [`DRAIN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    limits: ConnectionLimits,
    tls: Option<ServerTls>,
    service_names: &'static [&'static str],
    routes: Routes,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GrpcError> {
    serve_with_grace(listener, limits, tls, service_names, routes, async {
        shutdown.await;
        DRAIN_GRACE
    })
    .await
}

/// As [`serve`], with the drain grace chosen when the stop comes:
/// `shutdown` resolves to it (a broker restarting in its process for a new
/// role drains briefly: its peers and the controller wait on it).
pub async fn serve_with_grace(
    listener: TcpListener,
    limits: ConnectionLimits,
    tls: Option<ServerTls>,
    service_names: &'static [&'static str],
    routes: Routes,
    shutdown: impl Future<Output = std::time::Duration>,
) -> Result<(), GrpcError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in service_names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let (reflection_v1, reflection_v1alpha) = reflection_services(service_names)?;
    let routes = routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let connections = incoming(listener, limits);
    let (incoming, reloading): (Pin<Box<dyn Stream<Item = io::Result<Transport>> + Send>>, _) =
        match &tls {
            Some(tls) => (
                Box::pin(tls.secure(connections)),
                Some(tokio::spawn(tls.clone().watch())),
            ),
            None => (Box::pin(connections.map(|c| c.map(Transport::Plain))), None),
        };
    let _stop_reloading = reloading.map(AbortOnDrop);
    serve_gracefully(
        |drain| {
            tonic::transport::Server::builder()
                // A client that stops answering pings (dead, or stopped)
                // loses its connection, and the responses it left unread
                // are freed.
                .http2_keepalive_interval(Some(limits.keepalive_interval))
                .http2_keepalive_timeout(Some(limits.keepalive_timeout))
                .initial_stream_window_size(crate::http2::STREAM_WINDOW)
                .initial_connection_window_size(crate::http2::CONNECTION_WINDOW)
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, async move {
                    drain.await;
                    for name in service_names {
                        health
                            .set_service_status(*name, ServingStatus::NotServing)
                            .await;
                    }
                    health
                        .set_service_status("", ServingStatus::NotServing)
                        .await;
                })
        },
        shutdown,
    )
    .await?;
    Ok(())
}
