//! The transient store pool: a few pre-allocated, locked, anonymous
//! buffers the size of a CommitLog segment. With it, appends write into a
//! buffer (memory that is never written back, so no page-cache lock
//! contention or write-back stalls on the append path); a commit task
//! copies new bytes into the file with `pwrite`, and the flusher syncs the
//! file. A buffer goes back to the pool once its segment is full and
//! committed. When the pool is empty, a segment is written through its
//! mapping as usual.

use std::sync::{Arc, Mutex};

use memmap2::MmapMut;

#[derive(Debug)]
pub struct TransientPool {
    buffers: Mutex<Vec<MmapMut>>,
}

impl TransientPool {
    /// `count` buffers of `size` bytes, locked in memory if the OS allows.
    pub fn new(count: usize, size: usize, mlock: bool) -> std::io::Result<Arc<Self>> {
        let mut buffers = Vec::with_capacity(count);
        for _ in 0..count {
            let buffer = MmapMut::map_anon(size)?;
            if mlock {
                let what = format!("a transient store buffer of {size} bytes");
                crate::mapped_file::locking::lock_or_warn(&what, || buffer.lock());
            }
            buffers.push(buffer);
        }
        Ok(Arc::new(TransientPool {
            buffers: Mutex::new(buffers),
        }))
    }

    /// A buffer, if one is free; it returns to the pool when dropped.
    pub fn take(self: &Arc<Self>) -> Option<PooledBuffer> {
        let buffer = self.lock().pop()?;
        Some(PooledBuffer {
            buffer: Some(buffer),
            pool: Arc::clone(self),
        })
    }

    /// Free buffers.
    pub fn available(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<MmapMut>> {
        self.buffers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A buffer on loan from the pool.
#[derive(Debug)]
pub struct PooledBuffer {
    buffer: Option<MmapMut>,
    pool: Arc<TransientPool>,
}

impl PooledBuffer {
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.buffer
            .as_mut()
            .map_or(std::ptr::null_mut(), |b| b.as_mut_ptr())
    }

    pub fn len(&self) -> usize {
        self.buffer.as_ref().map_or(0, |b| b.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool.lock().push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_lent_and_come_back() {
        let pool = TransientPool::new(2, 4096, true).unwrap();
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(pool.take().is_none());
        assert_eq!(a.len(), 4096);
        drop(a);
        assert_eq!(pool.available(), 1);
        drop(b);
        assert_eq!(pool.available(), 2);
    }
}
