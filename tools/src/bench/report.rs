//! Counting, progress and the final summary of a run.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

/// What a run counted, shared by its tasks.
#[derive(Debug)]
pub struct Stats {
    pub ok: AtomicU64,
    pub bytes: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    /// Latencies in microseconds.
    latencies: Mutex<Histogram<u64>>,
    started: Mutex<Instant>,
    finished: Mutex<Option<Instant>>,
}

impl Stats {
    pub fn new() -> Arc<Stats> {
        Arc::new(Stats {
            ok: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            latencies: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
            ),
            started: Mutex::new(Instant::now()),
            finished: Mutex::new(None),
        })
    }

    /// Starts the clock again (after setup that should not count).
    pub fn restart_clock(&self) {
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    pub fn finish(&self) {
        self.finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now);
    }

    pub fn record_ok(&self, messages: u64, bytes: u64, latency: Option<Duration>) {
        self.ok.fetch_add(messages, Ordering::AcqRel);
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
        if let Some(latency) = latency {
            let micros = u64::try_from(latency.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let mut histogram = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
            let high = histogram.high();
            let _ = histogram.record_n(micros.min(high), messages.max(1));
        }
    }

    pub fn record_failure(&self, kind: impl Into<String>, messages: u64) {
        *self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind.into())
            .or_default() += messages;
    }

    pub fn failed(&self) -> u64 {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }

    fn elapsed(&self) -> Duration {
        let started = *self.started.lock().unwrap_or_else(|e| e.into_inner());
        let finished = *self.finished.lock().unwrap_or_else(|e| e.into_inner());
        finished
            .unwrap_or_else(Instant::now)
            .duration_since(started)
    }

    /// Prints the human summary, and with `json` one JSON object as the
    /// last line. `what` names the count (`sent`, `received`).
    pub fn print_summary(&self, what: &str, json_line: bool) {
        let seconds = self.elapsed().as_secs_f64().max(1e-9);
        let ok = self.ok.load(Ordering::Acquire);
        let mb = self.bytes.load(Ordering::Acquire) as f64 / 1e6;
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let histogram = self
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let at = |q: f64| {
            if histogram.is_empty() {
                0
            } else {
                histogram.value_at_quantile(q)
            }
        };
        let (p50, p99, p999, max) = (at(0.5), at(0.99), at(0.999), histogram.max());
        println!(
            "{what} {ok} in {seconds:.2} s: {:.0} msgs/s, {:.1} MB/s; latency p50 {p50} us, p99 {p99} us, p99.9 {p999} us, max {max} us",
            ok as f64 / seconds,
            mb / seconds
        );
        let failed: u64 = failures.values().sum();
        if failed > 0 {
            let kinds: Vec<String> = failures.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            println!("failed {failed} ({})", kinds.join(", "));
        }
        if json_line {
            let summary = json!({
                what: ok,
                "failed": failed,
                "failures": failures,
                "seconds": seconds,
                "msgs_per_sec": ok as f64 / seconds,
                "mb_per_sec": mb / seconds,
                "p50_us": p50,
                "p99_us": p99,
                "p999_us": p999,
                "max_us": max,
            });
            println!("{summary}");
        }
    }
}

/// Shows progress until `done`: a bar on a terminal, a line a second otherwise.
pub fn progress(
    stats: Arc<Stats>,
    total: Option<u64>,
    label: &'static str,
    done: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = match total {
                Some(total) => indicatif::ProgressBar::new(total),
                None => indicatif::ProgressBar::new_spinner(),
            };
            let style = indicatif::ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:40}] {pos}/{len} {per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label);
            bar
        });
        let mut last = 0;
        let mut ticks = tokio::time::interval(if terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        });
        ticks.tick().await;
        while !done.load(Ordering::Acquire) {
            ticks.tick().await;
            let ok = stats.ok.load(Ordering::Acquire);
            match &bar {
                Some(bar) => bar.set_position(ok),
                None => {
                    eprintln!(
                        "{label}: {ok} ({} /s), failed {}",
                        ok - last,
                        stats.failed()
                    );
                    last = ok;
                }
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    })
}

/// One JSON line per message, for `mqbench verify`.
#[derive(Debug)]
pub struct VerifyLog {
    out: Mutex<BufWriter<File>>,
}

impl VerifyLog {
    pub fn create(path: &Path) -> anyhow::Result<VerifyLog> {
        let file = File::create(path)
            .map_err(|e| anyhow::anyhow!("cannot create verify log {}: {e}", path.display()))?;
        Ok(VerifyLog {
            out: Mutex::new(BufWriter::new(file)),
        })
    }

    pub fn write(&self, entry: &serde_json::Value) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{entry}");
    }

    pub fn flush(&self) -> anyhow::Result<()> {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).flush()?;
        Ok(())
    }
}
