//! The signal that tells a server to stop: SIGINT (Ctrl-C) or SIGTERM
//! (what `docker stop` and Kubernetes send).

use std::future::Future;

/// Installs the SIGINT and SIGTERM handlers now, and returns a future that
/// resolves when either arrives. Call it before announcing readiness: a
/// signal that comes before the handlers exist kills the process outright.
/// Must be called within a Tokio runtime.
pub fn signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received SIGINT, shutting down"),
            _ = terminate.recv() => tracing::info!("received SIGTERM, shutting down"),
        }
    })
}
