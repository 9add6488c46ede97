//! What the store asks of its surroundings: the time, and how full the
//! disk is. Injected, so that retention and disk-full tests are exact.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The size of a file system and the bytes free on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    pub free: u64,
}

impl Space {
    /// Used fraction (0.0 to 1.0).
    pub fn used_ratio(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        1.0 - self.free as f64 / self.total as f64
    }

    /// The used fraction once `more` bytes are taken.
    pub fn used_ratio_after(&self, more: u64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        (self.total.saturating_sub(self.free) + more) as f64 / self.total as f64
    }
}

/// How full a file system is.
pub trait DiskUsage: Send + Sync + std::fmt::Debug {
    /// Size and free bytes of the file system holding `path`.
    fn space(&self, path: &Path) -> std::io::Result<Space>;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        mq_common::clock::unix_millis()
    }
}

/// `statvfs` of the real file system.
#[derive(Debug, Default)]
pub struct Statvfs;

impl DiskUsage for Statvfs {
    fn space(&self, path: &Path) -> std::io::Result<Space> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
        // SAFETY: statvfs fills the zeroed struct; the path is NUL-terminated.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Blocks free to unprivileged users, as `df` counts them.
        let block = stat.f_frsize as u64;
        Ok(Space {
            total: stat.f_blocks as u64 * block,
            free: stat.f_bavail as u64 * block,
        })
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

/// A disk of [`FixedDiskUsage::TOTAL`] bytes whose fullness is set by hand.
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

impl FixedDiskUsage {
    /// The size of the pretended disk: 1 TiB.
    pub const TOTAL: u64 = 1 << 40;
}

impl DiskUsage for FixedDiskUsage {
    fn space(&self, _path: &Path) -> std::io::Result<Space> {
        let ratio = f64::from_bits(self.0.load(Ordering::Acquire)).clamp(0.0, 1.0);
        Ok(Space {
            total: Self::TOTAL,
            free: ((1.0 - ratio) * Self::TOTAL as f64) as u64,
        })
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
        let space = Statvfs.space(Path::new("/")).unwrap();
        let ratio = space.used_ratio();
        assert!((0.0..=1.0).contains(&ratio), "{ratio}");
        assert!(space.total > 0 && space.free <= space.total, "{space:?}");
        assert!(Statvfs.space(Path::new("/nonexistent/dir")).is_err());
    }

    #[test]
    fn ratios_count_the_bytes_about_to_be_taken() {
        let space = Space {
            total: 100,
            free: 30,
        };
        assert!((space.used_ratio() - 0.7).abs() < 1e-9);
        assert!((space.used_ratio_after(20) - 0.9).abs() < 1e-9);
        let fixed = FixedDiskUsage::new(0.25);
        let ratio = fixed.space(Path::new("/")).unwrap().used_ratio();
        assert!((ratio - 0.25).abs() < 1e-6, "{ratio}");
    }
}
