//! Storage engine benchmarks: append throughput and latency in async and
//! sync flush, with 1 to 64 concurrent appenders, read throughput, and how
//! fast crash recovery scans the CommitLog.
//!
//! `cargo bench -p mq-store --bench store [-- FILTER] [--runs N]`
//!
//! Each scenario runs `--runs` times (default 5) on a fresh store in a
//! temporary directory (`MQ_BENCH_DIR` chooses the parent, default the
//! system temp dir) and prints the median run, with the spread of the
//! throughput. Figures go into BENCHMARKS.md.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_store::checkpoint::Checkpoint;
use mq_store::layout::{ABORT_FILE, CHECKPOINT_FILE, CONSUME_QUEUE_DIR, INDEX_DIR};
use mq_store::{FlushMode, MessageStore, MessageToStore, StoreConfig, TagFilter};

const BODY: usize = 1024;

struct Scenario {
    name: String,
    flush: FlushMode,
    appenders: usize,
    messages: usize,
    transient_pool: bool,
    prewarm: bool,
}

struct Run {
    seconds: f64,
    messages: usize,
    bytes: u64,
    latencies: Vec<Duration>,
}

fn message(queue: u32) -> MessageToStore {
    MessageToStore::new("bench", queue, vec![0x5A; BODY])
}

fn config(flush: FlushMode, transient_pool: bool, prewarm: bool) -> StoreConfig {
    StoreConfig {
        flush,
        commitlog_segment_size: 256 << 20,
        transient_store_pool: transient_pool,
        prewarm,
        ..StoreConfig::default()
    }
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("MQ_BENCH_DIR") {
        Some(parent) => tempfile::tempdir_in(parent).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn host() -> SocketAddr {
    "127.0.0.1:10911".parse().unwrap()
}

async fn append_run(s: &Scenario) -> Run {
    let dir = bench_dir();
    let (store, _) = MessageStore::open(
        dir.path(),
        config(s.flush, s.transient_pool, s.prewarm),
        host(),
    )
    .unwrap();
    let store = Arc::new(store);
    let per_task = s.messages / s.appenders;
    let started = Instant::now();
    let tasks: Vec<_> = (0..s.appenders)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                let mut bytes = 0u64;
                for _ in 0..per_task {
                    let begun = Instant::now();
                    let put = store.put(message(task as u32 % 8)).await.unwrap();
                    latencies.push(begun.elapsed());
                    bytes += u64::from(put.appended[0].size);
                }
                (latencies, bytes)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(s.messages);
    let mut bytes = 0;
    for task in tasks {
        let (l, b) = task.await.unwrap();
        latencies.extend(l);
        bytes += b;
    }
    let seconds = started.elapsed().as_secs_f64();
    Arc::into_inner(store).unwrap().shutdown().unwrap();
    Run {
        seconds,
        messages: per_task * s.appenders,
        bytes,
        latencies,
    }
}

async fn read_run(messages: usize) -> Run {
    let dir = bench_dir();
    let (store, _) =
        MessageStore::open(dir.path(), config(FlushMode::Async, false, false), host()).unwrap();
    for _ in 0..messages {
        store.put(message(0)).await.unwrap();
    }
    while store.dispatch_lag() > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    let (mut offset, mut read, mut bytes) = (0, 0, 0u64);
    while read < messages {
        let result = store.get_messages("bench", 0, offset, 32, usize::MAX, &TagFilter::All);
        for msg in &result.messages {
            bytes += u64::from(msg.record_size);
            std::hint::black_box(&msg.body[..]);
        }
        read += result.messages.len();
        offset = result.next_offset;
    }
    let seconds = started.elapsed().as_secs_f64();
    Run {
        seconds,
        messages: read,
        bytes,
        latencies: Vec::new(),
    }
}

/// How much of the store a recovery redoes.
#[derive(Clone, Copy, PartialEq)]
enum Recovery {
    /// Verify every CommitLog record (magic, size, CRC32C, offset); the
    /// ConsumeQueues are trusted.
    Scan,
    /// Also rebuild every ConsumeQueue and IndexFile from the CommitLog.
    Rebuild,
}

/// Writes `messages` records, shuts down, then makes the next open a crash
/// recovery from offset 0 and times it. The CommitLog is in the page cache,
/// as after a process crash.
async fn recover_run(messages: usize, recovery: Recovery) -> Run {
    let dir = bench_dir();
    let cfg = || config(FlushMode::Async, false, false);
    let (store, _) = MessageStore::open(dir.path(), cfg(), host()).unwrap();
    let batch: Vec<MessageToStore> = (0..64).map(|_| message(0)).collect();
    for _ in 0..messages / batch.len() {
        store.put_batch(&batch).await.unwrap();
    }
    store.shutdown().unwrap();
    drop(store);
    // A checkpoint that trusts nothing of the CommitLog (and, for Scan,
    // everything of the ConsumeQueues), and the marker of an unclean stop.
    let checkpoint = Checkpoint {
        commitlog_flushed: 0,
        dispatched: u64::MAX,
        timestamp_ms: 0,
    };
    std::fs::write(dir.path().join(CHECKPOINT_FILE), checkpoint.encode()).unwrap();
    std::fs::write(dir.path().join(ABORT_FILE), b"").unwrap();
    if recovery == Recovery::Rebuild {
        std::fs::remove_dir_all(dir.path().join(CONSUME_QUEUE_DIR)).unwrap();
        std::fs::remove_dir_all(dir.path().join(INDEX_DIR)).unwrap();
    }
    let started = Instant::now();
    let (store, report) = MessageStore::open(dir.path(), cfg(), host()).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(report.crashed && report.truncation.is_none());
    store.shutdown().unwrap();
    Run {
        seconds,
        messages: messages / batch.len() * batch.len(),
        bytes: report.commitlog_end,
        latencies: Vec::new(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, mut runs: Vec<Run>) {
    runs.sort_by(|a, b| {
        (a.messages as f64 / a.seconds).total_cmp(&(b.messages as f64 / b.seconds))
    });
    let rate = |r: &Run| r.messages as f64 / r.seconds;
    let median = &runs[runs.len() / 2];
    let mut latencies = median.latencies.clone();
    latencies.sort_unstable();
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
    println!(
        "{name:<34} {:>10.0} msg/s {:>8.1} MB/s   p50 {:>9.1?}  p99 {:>9.1?}   (runs: {} .. {} msg/s)",
        rate(median),
        median.bytes as f64 / median.seconds / 1e6,
        p50,
        p99,
        rate(&runs[0]) as u64,
        rate(&runs[runs.len() - 1]) as u64,
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .map_or(5, |n| n.parse().expect("--runs N"));
    let filter = args
        .iter()
        .find(|a| !a.starts_with("--") && a.parse::<usize>().is_err())
        .cloned();

    let mut scenarios = Vec::new();
    for appenders in [1, 8] {
        scenarios.push(Scenario {
            name: format!("append async, {appenders} appender(s)"),
            flush: FlushMode::Async,
            appenders,
            messages: 200_000,
            transient_pool: false,
            prewarm: false,
        });
    }
    scenarios.push(Scenario {
        name: "append async, 1 appender, prewarm".into(),
        flush: FlushMode::Async,
        appenders: 1,
        messages: 200_000,
        transient_pool: false,
        prewarm: true,
    });
    scenarios.push(Scenario {
        name: "append async, 1 appender, pool".into(),
        flush: FlushMode::Async,
        appenders: 1,
        messages: 200_000,
        transient_pool: true,
        prewarm: false,
    });
    scenarios.push(Scenario {
        name: "append async, 8 appenders, pool".into(),
        flush: FlushMode::Async,
        appenders: 8,
        messages: 200_000,
        transient_pool: true,
        prewarm: false,
    });
    for (appenders, messages) in [(1, 2_000), (8, 16_000), (64, 64_000)] {
        scenarios.push(Scenario {
            name: format!("append sync, {appenders} appender(s)"),
            flush: FlushMode::Sync,
            appenders,
            messages,
            transient_pool: false,
            prewarm: false,
        });
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!("{runs} runs each, median shown; {BODY}-byte bodies");
    for s in &scenarios {
        if filter
            .as_ref()
            .is_some_and(|f| !s.name.contains(f.as_str()))
        {
            continue;
        }
        let results = (0..runs).map(|_| runtime.block_on(append_run(s))).collect();
        report(&s.name, results);
    }
    let name = "read (get_messages, 32 per call)";
    if filter.as_ref().is_none_or(|f| name.contains(f.as_str())) {
        let results = (0..runs)
            .map(|_| runtime.block_on(read_run(200_000)))
            .collect();
        report(name, results);
    }
    for (name, recovery) in [
        ("recover: scan + verify CommitLog", Recovery::Scan),
        ("recover: scan + rebuild queues", Recovery::Rebuild),
    ] {
        if filter.as_ref().is_none_or(|f| name.contains(f.as_str())) {
            let results = (0..runs)
                .map(|_| runtime.block_on(recover_run(1_000_000, recovery)))
                .collect();
            report(name, results);
        }
    }
}
