//! What the store asks of its surroundings: the time, and how full the
//! disk is. Injected, so that retention and disk-full tests are exact.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// How full a file system is.
pub trait DiskUsage: Send + Sync + std::fmt::Debug {
    /// Used fraction (0.0 to 1.0) of the file system holding `path`.
    fn used_ratio(&self, path: &Path) -> std::io::Result<f64>;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// `statvfs` of the real file system.
#[derive(Debug, Default)]
pub struct Statvfs;

impl DiskUsage for Statvfs {
    fn used_ratio(&self, path: &Path) -> std::io::Result<f64> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
        // SAFETY: statvfs fills the zeroed struct; the path is NUL-terminated.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let total = stat.f_blocks as f64;
        if total == 0.0 {
            return Ok(0.0);
        }
        // Blocks free to unprivileged users, as `df` counts them.
        Ok(1.0 - stat.f_bavail as f64 / total)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(now_ms: u64) -> Self {
        ManualClock(AtomicU64::new(now_ms))
    }
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// A disk whose fullness is set by hand.
#[derive(Debug, Default)]
pub struct FixedDiskUsage(AtomicU64);

impl FixedDiskUsage {
    pub fn new(ratio: f64) -> Self {
        FixedDiskUsage(AtomicU64::new(ratio.to_bits()))
    }
    pub fn set(&self, ratio: f64) {
        self.0.store(ratio.to_bits(), Ordering::Release);
    }
}

impl DiskUsage for FixedDiskUsage {
    fn used_ratio(&self, _path: &Path) -> std::io::Result<f64> {
        Ok(f64::from_bits(self.0.load(Ordering::Acquire)))
    }
}

/// The store's surroundings.
#[derive(Debug, Clone)]
pub struct StoreEnv {
    pub clock: Arc<dyn Clock>,
    pub disk: Arc<dyn DiskUsage>,
}

impl Default for StoreEnv {
    fn default() -> Self {
        StoreEnv {
            clock: Arc::new(SystemClock),
            disk: Arc::new(Statvfs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statvfs_reports_a_ratio_of_the_real_disk() {
        let ratio = Statvfs.used_ratio(Path::new("/")).unwrap();
        assert!((0.0..=1.0).contains(&ratio), "{ratio}");
        assert!(Statvfs.used_ratio(Path::new("/nonexistent/dir")).is_err());
    }
}
