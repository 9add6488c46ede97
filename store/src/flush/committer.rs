//! The commit task of the transient store pool: copies appended bytes
//! from the staging buffers into the segment files as soon as it is woken
//! (or every `interval`), then wakes the dispatcher, since only committed
//! bytes are readable. Appends never wait for it.

use std::sync::Arc;
use std::thread::Thread;
use std::time::Duration;

use crate::commitlog::CommitLog;
use crate::worker::{Wake, Worker};

#[derive(Debug)]
pub struct Committer {
    worker: Worker,
}

impl Committer {
    /// Starts the task; `dispatcher` is woken after every commit.
    pub fn start(
        log: Arc<CommitLog>,
        interval: Duration,
        dispatcher: Thread,
    ) -> std::io::Result<Self> {
        let worker = Worker::start("commitlog-committer", Wake::Unpark, move |stopping| {
            loop {
                let last_round = stopping.requested();
                match log.commit() {
                    Ok(_) => dispatcher.unpark(),
                    Err(err) => tracing::error!(error = %err, "CommitLog commit failed"),
                }
                if last_round {
                    return;
                }
                // Woken by appends, or every `interval`.
                std::thread::park_timeout(interval);
            }
        })?;
        Ok(Committer { worker })
    }

    /// Tells the task that bytes were appended.
    pub fn wake(&self) {
        self.worker.thread().unpark();
    }

    /// Commits what is left and stops the task.
    pub fn stop(&self) {
        self.worker.stop();
    }
}
