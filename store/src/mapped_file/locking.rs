//! `mlock` of segment mappings and staging buffers. A refused lock
//! (RLIMIT_MEMLOCK too low, no CAP_IPC_LOCK) is not fatal: the store runs
//! on, its pages may be swapped out. But an operator who asked for locked
//! memory must see that it was not given: each refusal is a warning and is
//! counted (process-wide: one store per process), and the broker exports
//! the count as a metric.

use std::sync::atomic::{AtomicU64, Ordering};

static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Locks with `lock`; a refusal is warned about, naming `what`, and
/// counted.
pub fn lock_or_warn(what: &dyn std::fmt::Display, lock: impl FnOnce() -> std::io::Result<()>) {
    if let Err(err) = lock() {
        REFUSED.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            what = %what,
            error = %err,
            "mlock refused (raise RLIMIT_MEMLOCK, `ulimit -l`, or grant CAP_IPC_LOCK); going on without it"
        );
    }
}

/// Locks refused since the process started.
pub fn refusals() -> u64 {
    REFUSED.load(Ordering::Relaxed)
}
