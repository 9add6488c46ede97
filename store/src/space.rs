//! Disk space for mapped files.
//!
//! A store through a mapping into a page that the file system cannot back
//! (a hole of a sparse file, on a full disk) is answered with SIGBUS, which
//! kills the process mid-append; on tmpfs even a *read* fault on a hole
//! allocates a page, so recovery scanning a sparse segment dies the same
//! way. So no mapped file of the store has holes: each is allocated for
//! real (`fallocate`) before it is mapped, and running out of space is an
//! error returned at a moment where the store can refuse an append, not a
//! signal inside one.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use crate::env::DiskUsage;

/// Allocates `offset..offset + len` of `file` on disk, extending the file
/// if it is shorter. Ranges already allocated cost nothing and need no
/// free space, so calling this on a file that has no holes always succeeds.
pub fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "range too large to allocate",
        ));
    };
    fail::fail_point!("space::allocate", |_| Err(io::Error::from_raw_os_error(
        libc::ENOSPC
    )));
    loop {
        // SAFETY: a file descriptor we own; posix_fallocate touches nothing
        // else. It returns the error number instead of setting errno.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), offset, len) };
        match rc {
            0 => return Ok(()),
            libc::EINTR => continue,
            errno => return Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

/// The room a new CommitLog segment must leave on the disk: it is refused
/// when taking it would fill the disk past `max_used_ratio`, so that the
/// ConsumeQueues, IndexFiles and checkpoint (which keep growing while the
/// data already acknowledged is indexed) always find space.
#[derive(Debug, Clone)]
pub struct Headroom {
    pub disk: Arc<dyn DiskUsage>,
    pub max_used_ratio: f64,
}

impl Headroom {
    /// Fails with [`io::ErrorKind::StorageFull`], saying why, when `needed`
    /// more bytes in `dir` would pass the limit. A disk that cannot be
    /// measured is let through: `fallocate` still refuses what does not fit.
    pub fn check(&self, dir: &Path, needed: u64) -> io::Result<()> {
        let space = match self.disk.space(dir) {
            Ok(space) => space,
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "cannot measure disk space");
                return Ok(());
            }
        };
        let after = space.used_ratio_after(needed);
        if needed > space.free || after > self.max_used_ratio {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "{needed} more bytes would fill the disk to {:.0}%, above disk_hard_ratio {:.0}% ({} of {} bytes free)",
                    after * 100.0,
                    self.max_used_ratio * 100.0,
                    space.free,
                    space.total
                ),
            ));
        }
        Ok(())
    }
}

/// Whether `err` says the disk (or the user's quota) is full.
pub fn is_out_of_space(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::StorageFull
        || matches!(err.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// Allocated bytes of `file` (blocks on disk), to tell a sparse file from
/// an allocated one.
pub fn allocated_bytes(file: &File) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(file.metadata()?.blocks() * 512)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_turns_a_sparse_file_into_an_allocated_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        file.set_len(1 << 20).unwrap();
        assert!(allocated_bytes(&file).unwrap() < 1 << 20, "sparse at first");
        allocate(&file, 0, 1 << 20).unwrap();
        assert!(allocated_bytes(&file).unwrap() >= 1 << 20);
        allocate(&file, 1 << 20, 4096).unwrap();
        assert_eq!(file.metadata().unwrap().len(), (1 << 20) + 4096, "extended");
    }

    #[test]
    fn headroom_refuses_what_would_pass_the_limit() {
        use crate::env::FixedDiskUsage;
        let disk = Arc::new(FixedDiskUsage::new(0.80));
        let headroom = Headroom {
            disk: disk.clone(),
            max_used_ratio: 0.90,
        };
        let tenth = FixedDiskUsage::TOTAL / 10;
        headroom.check(Path::new("/"), tenth / 2).unwrap();
        let err = headroom.check(Path::new("/"), tenth * 2).unwrap_err();
        assert!(is_out_of_space(&err));
        assert!(
            err.to_string()
                .contains("to 100%, above disk_hard_ratio 90%"),
            "{err}"
        );
        disk.set(0.95);
        assert!(
            headroom.check(Path::new("/"), 1).is_err(),
            "already past the limit"
        );
    }

    #[test]
    fn out_of_space_errors_are_recognised() {
        assert!(is_out_of_space(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_out_of_space(&io::Error::from_raw_os_error(libc::EDQUOT)));
        assert!(!is_out_of_space(&io::Error::from_raw_os_error(libc::EIO)));
    }
}
