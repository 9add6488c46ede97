//! The commit task of the transient store pool: copies appended bytes
//! from the staging buffers into the segment files as soon as it is woken
//! (or every `interval`), then wakes the dispatcher, since only committed
//! bytes are readable. Appends never wait for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crate::commitlog::CommitLog;

#[derive(Debug)]
pub struct Committer {
    stop: Arc<AtomicBool>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    wake: Thread,
}

impl Committer {
    /// Starts the task; `dispatcher` is woken after every commit.
    pub fn start(
        log: Arc<CommitLog>,
        interval: Duration,
        dispatcher: Thread,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("commitlog-committer".into())
            .spawn(move || {
                loop {
                    let last_round = stopping.load(Ordering::Acquire);
                    match log.commit() {
                        Ok(_) => dispatcher.unpark(),
                        Err(err) => tracing::error!(error = %err, "CommitLog commit failed"),
                    }
                    if last_round {
                        return;
                    }
                    std::thread::park_timeout(interval);
                }
            })?;
        let wake = thread.thread().clone();
        Ok(Committer {
            stop,
            thread: std::sync::Mutex::new(Some(thread)),
            wake,
        })
    }

    /// Tells the task that bytes were appended.
    pub fn wake(&self) {
        self.wake.unpark();
    }

    /// Commits what is left and stops the task.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.unpark();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.stop();
    }
}
