//! A small tmpfs mounted for one test: a disk that really fills up.
//!
//! Mounting needs root (CI and the development machines run as root). A
//! test that cannot mount is skipped with a line saying why, unless it runs
//! as root, where a failed mount is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A mounted tmpfs, unmounted (and its mount point removed) on drop.
#[derive(Debug)]
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` bytes under the system's temp directory;
    /// `None` (after saying so on stderr) when not running as root.
    pub fn mount(bytes: u64) -> Option<Tmpfs> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "mq-tmpfs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .status();
        if matches!(status, Ok(s) if s.success()) {
            return Some(Tmpfs { path });
        }
        let _ = std::fs::remove_dir(&path);
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(
            !root,
            "running as root, yet `mount -t tmpfs` failed: {status:?}"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        None
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills every byte left with a file named `name`; returns its size.
    pub fn fill(&self, name: &str) -> u64 {
        use std::io::Write;
        let mut file = std::fs::File::create(self.path.join(name)).unwrap();
        let block = vec![0xA5u8; 64 << 10];
        let mut written = 0;
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(err) if err.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(err) => panic!("filling {}: {err}", self.path.display()),
            }
        }
        // The last partial pages: byte by byte until nothing fits.
        while let Ok(1) = file.write(&[0xA5]) {
            written += 1;
        }
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}
