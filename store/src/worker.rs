//! The store's background threads, started and stopped one way.
//!
//! A [`Worker`] runs a body on a named thread. Stopping it sets the flag
//! the body checks ([`Stopping::requested`]), wakes the thread out of
//! whatever it waits on ([`Wake`]), and joins it; dropping it does the
//! same. A body finishes its last round (indexes, commits or flushes what
//! is left) before it returns, so that once `stop` returns nothing of the
//! worker's is pending.
//!
//! `MessageStore::shutdown` stops them in this order, each after the
//! producers of its input: housekeeping (checkpoints, retention), the
//! committer (staging buffers into files), the dispatcher (files into
//! ConsumeQueues), the flusher (files onto disk), then the segment
//! allocator (a shut-down store never makes another file, even while
//! something still holds it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

/// How a worker's thread is woken when it should stop.
pub enum Wake {
    /// It waits in `park`/`park_timeout` (or [`Stopping::sleep`]).
    Unpark,
    /// It waits on something of its own: this wakes it.
    With(Box<dyn Fn() + Send + Sync>),
}

/// The stop flag, as the body sees it.
#[derive(Debug, Clone)]
pub struct Stopping(Arc<AtomicBool>);

impl Stopping {
    /// Whether the worker was told to stop.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Sleeps up to `timeout` (for workers woken by [`Wake::Unpark`]);
    /// returns early, with true, once a stop is requested.
    pub fn sleep(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.requested() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            std::thread::park_timeout(left);
        }
        true
    }
}

/// A named background thread with one way to stop.
pub struct Worker {
    stopping: Stopping,
    wake: Wake,
    thread: Thread,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.thread.name())
            .field("stopping", &self.stopping.requested())
            .finish()
    }
}

impl Worker {
    /// Starts `body` on a thread called `name`.
    pub fn start(
        name: &str,
        wake: Wake,
        body: impl FnOnce(Stopping) + Send + 'static,
    ) -> std::io::Result<Self> {
        let stopping = Stopping(Arc::new(AtomicBool::new(false)));
        let flag = stopping.clone();
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(flag))?;
        Ok(Worker {
            stopping,
            wake,
            thread: handle.thread().clone(),
            handle: Mutex::new(Some(handle)),
        })
    }

    /// The worker's thread, to unpark it when there is work.
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// Tells the worker to stop, wakes it, and waits until it finished its
    /// last round. Idempotent.
    pub fn stop(&self) {
        self.stopping.0.store(true, Ordering::Release);
        match &self.wake {
            Wake::Unpark => self.thread.unpark(),
            Wake::With(wake) => wake(),
        }
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!(worker = ?self.thread.name(), "a store worker panicked");
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_wakes_a_sleeping_worker_and_waits_for_its_last_round() {
        let rounds = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = Arc::clone(&rounds);
        let worker = Worker::start("test-worker", Wake::Unpark, move |stopping| {
            loop {
                let last = stopping.requested();
                counted.fetch_add(1, Ordering::SeqCst);
                if last {
                    return;
                }
                stopping.sleep(Duration::from_secs(3600));
            }
        })
        .unwrap();
        while rounds.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let started = Instant::now();
        worker.stop();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "woken, not timed out"
        );
        assert!(
            rounds.load(Ordering::SeqCst) >= 2,
            "a last round after the stop"
        );
        worker.stop();
    }

    #[test]
    fn a_worker_waiting_on_its_own_signal_is_woken_by_it() {
        let signal = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let waiting = Arc::clone(&signal);
        let waker = Arc::clone(&signal);
        let worker = Worker::start(
            "test-condvar",
            Wake::With(Box::new(move || {
                *waker.0.lock().unwrap() = true;
                waker.1.notify_all();
            })),
            move |_| {
                let guard = waiting.0.lock().unwrap();
                drop(waiting.1.wait_while(guard, |woken| !*woken).unwrap());
            },
        )
        .unwrap();
        drop(worker);
    }
}
