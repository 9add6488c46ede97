//! A file system for tests that loses what was never synced when the test
//! cuts the power (as Jepsen's LazyFS does): a process kill leaves the page
//! cache behind, so only a power cut tells a store that syncs from one
//! that does not.
//!
//! [`Disk`] holds the files (in this process's memory: a machine's disk
//! that outlives its mounts); [`Disk::mount`] serves it over FUSE at a
//! directory, where a real broker runs; [`Mounted::power_cut`] drops every
//! write not made durable (see [`model`] for what durable means) and
//! unmounts, after which the disk can be mounted again and the broker
//! started on what survived. Needs `/dev/fuse` and `fusermount3` (root, or
//! a user allowed to mount).

pub mod fuse;
pub mod model;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use model::Counts;

/// The files, across mounts.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    model: Arc<Mutex<model::Model>>,
}

impl Disk {
    pub fn new() -> Disk {
        Disk::default()
    }

    /// Serves the disk at `at` (an existing, empty directory) until the
    /// returned mount is cut or dropped.
    pub fn mount(&self, at: &Path) -> std::io::Result<Mounted> {
        self.lock().power_on();
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("powercut".into()),
            fuser::MountOption::RW,
            fuser::MountOption::NoAtime,
        ];
        let fs = fuse::PowerCutFs {
            model: Arc::clone(&self.model),
        };
        let session = fuser::spawn_mount(fs, at, &config)?;
        Ok(Mounted {
            disk: self.clone(),
            at: at.to_owned(),
            session: Some(session),
        })
    }

    pub fn counts(&self) -> Counts {
        self.lock().counts()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, model::Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A mounted [`Disk`]; unmounted (without a cut) when dropped.
#[derive(Debug)]
pub struct Mounted {
    disk: Disk,
    at: PathBuf,
    session: Option<fuser::BackgroundSession>,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.at
    }

    /// The power goes: what was not durable is lost, whatever the kernel
    /// still writes back is dropped, and the mount goes away. Kill the
    /// processes using it first (they could not outlive a power cut).
    pub fn power_cut(mut self) -> std::io::Result<()> {
        self.disk.lock().power_cut();
        // Pages the dead processes left dirty are written back now (and
        // dropped), while the file system still answers: left for the
        // unmount, their writeback could wait on a session already gone.
        let root = std::fs::File::open(&self.at)?;
        // SAFETY: syncfs on a descriptor we own.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&root)) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        drop(root);
        self.unmount()
    }

    fn unmount(&mut self) -> std::io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        session.umount_and_join().inspect_err(|_| {
            // Busy (a process still holds a file): detach it lazily rather
            // than leave a dead mount behind when this process exits.
            let _ = std::process::Command::new("fusermount3")
                .arg("-uz")
                .arg(&self.at)
                .status();
        })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(err) = self.unmount() {
            eprintln!("powercut: unmounting {}: {err}", self.at.display());
        }
    }
}
