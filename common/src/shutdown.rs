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

/// How long in-flight requests get to finish after a shutdown signal
/// before open connections are closed.
pub const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs a server until `shutdown` resolves, then lets in-flight requests
/// finish for at most the grace it resolved to. `serve` gets the future that tells it to stop
/// accepting; it is what tonic's `serve_with_incoming_shutdown` wants.
/// Idle client connections (producers keep theirs open) would otherwise
/// hold a graceful shutdown forever.
pub async fn serve_gracefully<F, E>(
    serve: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
    shutdown: impl Future<Output = std::time::Duration>,
) -> Result<(), E>
where
    F: Future<Output = Result<(), E>>,
{
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let server = serve(Box::pin(async move {
        let _ = drain_rx.await;
    }));
    tokio::pin!(server);
    let grace = tokio::select! {
        result = &mut server => return result,
        grace = shutdown => grace,
    };
    let _ = drain_tx.send(());
    match tokio::time::timeout(grace, &mut server).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(grace = ?grace, "connections still open after the grace period; closing them");
            Ok(())
        }
    }
}

/// A failure of a server binary, reported as one line.
pub type MainError = Box<dyn std::error::Error + Send + Sync>;

/// The life of every server binary: `setup` (configuration, logging), a
/// runtime, signal handlers installed before anything is announced, then
/// `serve` until SIGINT or SIGTERM. A failure anywhere is one line on
/// stderr, `NAME: error: ...`, and a non-zero exit.
pub fn run_main<C, Fut>(
    name: &str,
    setup: impl FnOnce() -> Result<C, MainError>,
    serve: impl FnOnce(C, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
) -> std::process::ExitCode
where
    Fut: Future<Output = Result<(), MainError>>,
{
    let result = setup().and_then(|config| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let shutdown = signal()?;
            serve(config, Box::pin(shutdown)).await
        })
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
