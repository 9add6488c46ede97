//! A segment's staging buffer (from the transient store pool): appends go
//! to it instead of the mapping, and a commit copies them into the file
//! with `pwrite`. The buffer goes back to the pool once the segment is
//! full and committed. This is the one position a staged segment tracks
//! beyond its write and flushed positions: how far the file caught up.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::commitlog::transient_pool::PooledBuffer;

#[derive(Debug)]
pub(super) struct Staging {
    /// Where appends go; null once the buffer went back.
    target: AtomicPtr<u8>,
    /// Owns the buffer until the segment is full and committed.
    buffer: Mutex<Option<PooledBuffer>>,
    /// End of the bytes copied into the file.
    committed: AtomicUsize,
    /// Serializes commits: a commit reads the buffer, which the last
    /// commit gives back.
    commit_lock: Mutex<()>,
}

impl Staging {
    pub fn new(mut buffer: PooledBuffer) -> Self {
        Staging {
            target: AtomicPtr::new(buffer.as_mut_ptr()),
            buffer: Mutex::new(Some(buffer)),
            committed: AtomicUsize::new(0),
            commit_lock: Mutex::new(()),
        }
    }

    /// Where appends write, while the buffer is held.
    pub fn target(&self) -> Option<*mut u8> {
        let target = self.target.load(Ordering::Acquire);
        (!target.is_null()).then_some(target)
    }

    /// End of the bytes the file holds.
    pub fn committed(&self) -> usize {
        self.committed.load(Ordering::Acquire)
    }

    /// Copies `committed..written` into `file`; gives the buffer back when
    /// `written` reached `size` (the segment is full).
    pub fn commit(&self, file: &File, written: usize, size: usize) -> io::Result<()> {
        let _commit = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        let committed = self.committed();
        if let Some(target) = self.target()
            && written > committed
        {
            // SAFETY: `committed..written` was written before the write
            // position was published (the caller read it with acquire),
            // the writer only writes beyond it, and the buffer is given
            // back only below, under the commit lock.
            let pending =
                unsafe { std::slice::from_raw_parts(target.add(committed), written - committed) };
            file.write_all_at(pending, committed as u64)?;
            self.committed.store(written, Ordering::Release);
        }
        if written == size {
            self.target.store(std::ptr::null_mut(), Ordering::Release);
            self.buffer.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        Ok(())
    }
}
