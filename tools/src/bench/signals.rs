//! SIGINT and SIGTERM end a run early and cleanly: the run sees a flag,
//! stops starting work, lets what is in flight finish, and prints its
//! summary; verify logs hold whole lines only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once SIGINT or SIGTERM arrived.
#[derive(Debug, Clone)]
pub struct Stopping(Arc<AtomicBool>);

impl Stopping {
    /// Starts listening for the signals (on the current Tokio runtime).
    pub fn on_signals() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let flag = Arc::new(AtomicBool::new(false));
        let (mut interrupt, mut terminate) = (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        );
        let set = Arc::clone(&flag);
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            set.store(true, Ordering::Release);
        });
        Ok(Stopping(flag))
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
