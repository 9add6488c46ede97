//! Pre-allocation of CommitLog segments. Creating, sizing and mapping a
//! segment takes long enough to stall appends, so a background thread
//! prepares the next segments (`preallocate_segments`, two by default, as
//! RocketMQ's AllocateMappedFileService) while the current one fills: a
//! rollover then only takes a file that is already waiting, even when the
//! writer fills a segment faster than one is made. With `prewarm` the same thread
//! then faults the segment's pages in, a chunk at a time, after handing it
//! out: a segment taken at once (the first one) is warmed ahead of the writer
//! instead of making it wait. Warming keeps [`WARM_AHEAD`] past each
//! segment's write position and no further (a prepared segment's first
//! bytes, the rest as the writer comes): every page warmed costs the kernel
//! a fresh page to zero, and pages far ahead of the writer only spend CPU
//! and memory that the appends and the clients need now.
//!
//! Every segment is allocated on disk when it is made, and only if the disk
//! keeps its [`Headroom`] with it: running out of space is an error of the
//! rollover that needed the segment, which the store turns into a refused
//! append, never a write into a page the disk cannot hold.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::mapped_file::{MapOptions, MappedFile, Prewarm, Warmed};
use crate::space::{self, Headroom};
use crate::worker::{Wake, Worker};

/// How far past a segment's write position pre-warming keeps: 100 ms of
/// appends at 640 MB/s, checked every [`WARM_POLL`].
pub const WARM_AHEAD: usize = 64 << 20;

/// How often warming looks at a writer it caught up with.
const WARM_POLL: Duration = Duration::from_millis(10);
/// ... and at one that has not moved since the last look.
const WARM_IDLE_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct State {
    /// The segments the thread should prepare, lowest first.
    wanted: BTreeSet<u64>,
    /// The segment the thread is preparing now.
    in_progress: Option<u64>,
    /// Prepared segments (or why one could not be), by base offset.
    ready: BTreeMap<u64, io::Result<MappedFile>>,
    /// An appender is blocked in `take`: warming must make way.
    waiting: bool,
    shutdown: bool,
}

impl State {
    /// Asks for `base` unless it is ready, being made or asked for.
    fn want(&mut self, base: u64) -> bool {
        let queued = self.ready.contains_key(&base) || self.in_progress == Some(base);
        !queued && self.wanted.insert(base)
    }
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    segment_size: usize,
    /// Segments prepared ahead of the one in use.
    ahead: usize,
    /// Bytes warmed past a segment's write position.
    warm_ahead: usize,
    options: MapOptions,
    headroom: Headroom,
    state: Mutex<State>,
    changed: Condvar,
}

/// Hands out new CommitLog segments, preparing each next one ahead of time.
#[derive(Debug)]
pub struct Allocator {
    shared: Arc<Shared>,
    worker: Worker,
}

impl Allocator {
    pub fn start(
        dir: PathBuf,
        segment_size: usize,
        options: MapOptions,
        headroom: Headroom,
        ahead: usize,
    ) -> io::Result<Self> {
        Self::start_warming(dir, segment_size, options, headroom, ahead, WARM_AHEAD)
    }

    /// [`Allocator::start`], warming `warm_ahead` bytes past the writer.
    fn start_warming(
        dir: PathBuf,
        segment_size: usize,
        options: MapOptions,
        headroom: Headroom,
        ahead: usize,
        warm_ahead: usize,
    ) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            dir,
            segment_size,
            ahead: ahead.max(1),
            warm_ahead,
            options,
            headroom,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let preparing = Arc::clone(&shared);
        let waker = Arc::clone(&shared);
        // It waits on its own condition variable: the stop wakes it there.
        let wake = Wake::With(Box::new(move || {
            waker
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .shutdown = true;
            waker.changed.notify_all();
        }));
        let worker = Worker::start("commitlog-allocator", wake, move |_| {
            prepare_segments(&preparing);
        })?;
        Ok(Allocator { shared, worker })
    }

    /// The segment starting at `base`: the prepared one if it is waiting,
    /// else made now. Once it is taken, the ones after it are prepared
    /// next. A preparation that failed before this call is tried again
    /// (space may have been freed since); one that fails during it is the
    /// answer.
    pub fn take(&self, base: u64) -> io::Result<MappedFile> {
        let mut state = self.lock();
        state.ready.retain(|_, file| file.is_ok());
        loop {
            if state.shutdown {
                return Err(io::Error::other(
                    "the CommitLog is shut down: no new segment is made",
                ));
            }
            // Prepared for positions the log did not reach; unused.
            let stale: Vec<u64> = state.ready.range(..base).map(|(b, _)| *b).collect();
            for stale in stale {
                if let Some(Ok(file)) = state.ready.remove(&stale) {
                    tracing::debug!(base = stale, "discarding a pre-allocated segment");
                    let _ = file.delete();
                }
            }
            if let Some(file) = state.ready.remove(&base) {
                if file.is_ok() {
                    self.want_after(&mut state, base);
                }
                return file;
            }
            if state.want(base) {
                self.shared.changed.notify_all();
            }
            state.waiting = true;
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
            state.waiting = false;
        }
    }

    /// Stops preparing segments, for good: a store that was shut down
    /// must not touch its directory again, even while something still
    /// holds it (the next run in the same process recovers that
    /// directory, and deletes the blank segments it finds).
    pub fn stop(&self) {
        self.worker.stop();
    }

    /// Asks for the segments after the one at `base`.
    fn want_after(&self, state: &mut State, base: u64) {
        let size = self.shared.segment_size as u64;
        let mut asked = false;
        for n in 1..=self.shared.ahead as u64 {
            asked |= state.want(base + n * size);
        }
        if asked {
            self.shared.changed.notify_all();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Allocator {
    fn drop(&mut self) {
        self.worker.stop();
        // Prepared but unused segments are left in place: recovery treats
        // blank segments after the data as empty.
        self.lock().ready.clear();
    }
}

fn prepare_segments(shared: &Shared) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    // Refusals are logged when they start and end, not once per attempt.
    let mut refusing = false;
    // Segments handed out or waiting, still being warmed.
    let mut warming = Warming::default();
    loop {
        if state.shutdown {
            return;
        }
        let Some(base) = state.wanted.pop_first() else {
            // Nothing to make: warm, unless an appender waits for a
            // segment (it is served first).
            if warming.is_empty() {
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let mut pause = WARM_POLL;
            if !state.waiting {
                drop(state);
                pause = warming.round(shared.warm_ahead);
                state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                // Asked for a segment (or to stop) meanwhile: no pause.
                if pause.is_zero() || !state.wanted.is_empty() || state.shutdown {
                    continue;
                }
            }
            state = shared
                .changed
                .wait_timeout(state, pause)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        };
        if matches!(state.ready.get(&base), Some(Ok(_))) {
            continue;
        }
        state.in_progress = Some(base);
        drop(state);
        let file = create_segment(shared, base);
        let mut prewarm = None;
        match &file {
            Ok(file) => {
                if std::mem::take(&mut refusing) {
                    tracing::info!(base, "disk space for CommitLog segments is back");
                }
                if shared.options.prewarm {
                    prewarm = Some(file.prewarm());
                }
            }
            Err(err) if space::is_out_of_space(err) => {
                if !std::mem::replace(&mut refusing, true) {
                    tracing::error!(base, error = %err, "no disk space for the next CommitLog segment: appends that need it are refused");
                }
            }
            Err(err) => {
                tracing::error!(base, error = %err, "cannot pre-allocate a CommitLog segment");
            }
        }
        state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.in_progress = None;
        if let Some(Ok(stale)) = state.ready.insert(base, file) {
            let _ = stale.delete();
        }
        // A waiting appender is served (or waits again, and says so).
        state.waiting = false;
        shared.changed.notify_all();
        warming.segments.extend(prewarm);
    }
}

/// Makes the segment at `base` if the disk keeps its headroom with it.
fn create_segment(shared: &Shared, base: u64) -> io::Result<MappedFile> {
    shared
        .headroom
        .check(&shared.dir, shared.segment_size as u64)?;
    MappedFile::create(&shared.dir, base, shared.segment_size, shared.options)
}

/// The segments being warmed, each kept `ahead` bytes past its writer.
#[derive(Default)]
struct Warming {
    segments: Vec<Prewarm>,
    /// The writers' positions at the last round that found nothing to do.
    seen: usize,
}

impl Warming {
    fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Warms one chunk of every segment that needs one; returns how long
    /// to pause before the next round (zero: go on at once).
    fn round(&mut self, ahead: usize) -> Duration {
        let mut warmed = false;
        self.segments.retain_mut(|segment| {
            if segment.orphaned() {
                return false;
            }
            match segment.step(ahead) {
                Warmed::Chunk => {
                    warmed = true;
                    true
                }
                Warmed::Ahead => true,
                Warmed::Done => false,
            }
        });
        if warmed {
            return Duration::ZERO;
        }
        let written = self.segments.iter().map(Prewarm::written).sum();
        match std::mem::replace(&mut self.seen, written) == written {
            true => WARM_IDLE_POLL,
            false => WARM_POLL,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::env::FixedDiskUsage;

    const SEGMENT: usize = 16 << 20;

    fn start(prewarm: bool) -> (tempfile::TempDir, Allocator) {
        let (dir, allocator, _) = start_on(prewarm, 0.10);
        (dir, allocator)
    }

    fn start_on(prewarm: bool, used: f64) -> (tempfile::TempDir, Allocator, Arc<FixedDiskUsage>) {
        start_ahead(prewarm, used, 2)
    }

    fn start_ahead(
        prewarm: bool,
        used: f64,
        ahead: usize,
    ) -> (tempfile::TempDir, Allocator, Arc<FixedDiskUsage>) {
        let dir = tempfile::tempdir().unwrap();
        let options = MapOptions {
            prewarm,
            mlock: false,
        };
        let disk = Arc::new(FixedDiskUsage::new(used));
        let headroom = Headroom {
            disk: disk.clone(),
            max_used_ratio: 0.90,
        };
        let allocator =
            Allocator::start(dir.path().to_owned(), SEGMENT, options, headroom, ahead).unwrap();
        (dir, allocator, disk)
    }

    /// Waits (bounded) until the segment files in `dir` are `expected`
    /// (the thread prepares in the background), then checks that no more
    /// follow.
    fn assert_files(dir: &std::path::Path, expected: &[u64]) {
        let list = || {
            let mut bases: Vec<u64> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
                .collect();
            bases.sort_unstable();
            bases
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while list() != expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(list(), expected);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(list(), expected, "more than asked for");
    }

    #[test]
    fn as_many_segments_as_asked_are_prepared_ahead_of_the_one_in_use() {
        let seg = SEGMENT as u64;
        for ahead in [1usize, 2, 3] {
            let (dir, allocator, _) = start_ahead(false, 0.10, ahead);
            let _first = allocator.take(0).unwrap();
            let expected: Vec<u64> = (0..=ahead as u64).map(|n| n * seg).collect();
            assert_files(dir.path(), &expected);
            // Taking the next one asks for one more at the far end.
            let _second = allocator.take(seg).unwrap();
            let expected: Vec<u64> = (0..=ahead as u64 + 1).map(|n| n * seg).collect();
            assert_files(dir.path(), &expected);
        }
    }

    #[test]
    fn segments_are_allocated_on_disk_not_sparse() {
        let (_dir, allocator) = start(false);
        let first = allocator.take(0).unwrap();
        let file = std::fs::File::open(first.path()).unwrap();
        assert!(space::allocated_bytes(&file).unwrap() >= SEGMENT as u64);
    }

    #[test]
    fn without_headroom_no_segment_is_made_until_space_frees() {
        let (dir, allocator, disk) = start_on(false, 0.95);
        let err = allocator.take(0).unwrap_err();
        assert!(space::is_out_of_space(&err), "{err}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "no file was left behind"
        );
        // Asked again, it tries again: the refusal is not remembered.
        assert!(allocator.take(0).is_err());
        disk.set(0.50);
        assert_eq!(allocator.take(0).unwrap().base_offset(), 0);
    }

    fn fully_resident_within(file: &MappedFile, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if file.resident_pages().unwrap() == SEGMENT / 4096 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn a_segment_taken_at_once_is_warmed_while_in_use() {
        let (_dir, allocator) = start(true);
        let first = allocator.take(0).unwrap();
        assert!(fully_resident_within(&first, Duration::from_secs(10)));
    }

    #[test]
    fn the_next_segment_is_prepared_and_warmed_ahead() {
        let (_dir, allocator) = start(true);
        let _first = allocator.take(0).unwrap();
        let second = allocator.take(SEGMENT as u64).unwrap();
        assert_eq!(second.base_offset(), SEGMENT as u64);
        assert!(fully_resident_within(&second, Duration::from_secs(10)));
    }

    /// The pages of `file` resident once warming settled (bounded wait).
    /// Readahead may fault in a little more than warming asked for.
    fn settled_residency(file: &MappedFile) -> usize {
        let mut last = file.resident_pages().unwrap();
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(100));
            let now = file.resident_pages().unwrap();
            if now == last && now > 0 {
                return now;
            }
            last = now;
        }
        last
    }

    #[test]
    fn warming_keeps_only_so_far_ahead_of_the_writer() {
        const MIB: usize = (1 << 20) / 4096;
        let dir = tempfile::tempdir().unwrap();
        let options = MapOptions {
            prewarm: true,
            mlock: false,
        };
        let headroom = Headroom {
            disk: Arc::new(FixedDiskUsage::new(0.10)),
            max_used_ratio: 0.90,
        };
        // Chunks are 4 MiB: 2 MiB ahead of the writer is one chunk.
        let segment = 64 << 20;
        let allocator = Allocator::start_warming(
            dir.path().to_owned(),
            segment,
            options,
            headroom,
            1,
            2 << 20,
        )
        .unwrap();
        let first = allocator.take(0).unwrap();
        let before = settled_residency(&first);
        assert!((4 * MIB..=16 * MIB).contains(&before), "{before} pages");
        let appended = first.append_with(20 << 20, |bytes| {
            bytes.fill(7);
            Ok::<(), ()>(())
        });
        assert_eq!(appended, Some(Ok(0)));
        // Written to 20 MiB: warmed to 24.
        let after = settled_residency(&first);
        assert!((24 * MIB..=40 * MIB).contains(&after), "{after} pages");
    }

    #[test]
    fn without_prewarm_segments_stay_cold() {
        let (_dir, allocator) = start(false);
        let first = allocator.take(0).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(first.resident_pages().unwrap(), 0);
    }
}
