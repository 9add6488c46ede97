//! Power cuts under the real broker: its store lives on a `mq-powercut`
//! FUSE mount, a verifiable producer sends, and at a random moment the
//! broker is SIGKILLed and the power cut: everything the store did not
//! sync is gone, as after a power loss (a process kill alone leaves the
//! page cache, which is why kill tests cannot tell sync flush from async).
//! Mounted again, the broker recovers from what survived.
//!
//! Sync flush: twenty cuts, not one acknowledged message lost, every
//! recovery clean (a broker that does not start, or serves a damaged
//! record, fails the test); every other run writes through the transient
//! store pool. Async flush: the loss is measured and printed (bounded by
//! the flush interval), not asserted away.
//!
//! `POWER_CUT_SEED` replays a run's cut points (the seed is printed).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mq_powercut::{Disk, Mounted};
use mq_test_support::{
    ServerProcess, run_to_end, standalone_broker_with_env, terminate_and_wait, workspace_binary,
};

const TOPIC: &str = "powercut";

/// Small segments, so that runs cross segment boundaries (new files, whose
/// creation must be made durable too).
const STORE: &[(&str, &str)] = &[
    ("MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE", "262144"),
    ("MQ_BROKER_STORE__MAX_MESSAGE_SIZE", "65536"),
    ("MQ_BROKER_STORE__CONSUME_QUEUE_ENTRIES_PER_FILE", "1000"),
];

/// A deterministic random source for the cut points.
struct Lcg(u64);

impl Lcg {
    fn from_env() -> Lcg {
        let seed = std::env::var("POWER_CUT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("power cuts: POWER_CUT_SEED={seed}");
        Lcg(seed)
    }

    /// In `low..high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        low + (self.0 >> 33) % (high - low)
    }
}

/// One disk and where it is mounted; the store is a directory inside.
struct Machine {
    disk: Disk,
    mount_at: tempfile::TempDir,
    work: tempfile::TempDir,
    flush: &'static str,
}

impl Machine {
    fn new(flush: &'static str) -> Machine {
        assert!(
            Path::new("/dev/fuse").exists(),
            "the power-cut tests need /dev/fuse (and fusermount3 from fuse3)"
        );
        Machine {
            disk: Disk::new(),
            mount_at: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
            flush,
        }
    }

    fn store(&self) -> PathBuf {
        self.mount_at.path().join("store")
    }

    /// Powers on: mounts the disk and starts the broker on it. The topic
    /// is created at the first boot and must be there at every later one
    /// (topics are not created on first use here, so a lost topic config
    /// fails the test).
    fn boot(&self) -> (Mounted, ServerProcess, String) {
        self.boot_with(false)
    }

    /// As [`boot`](Self::boot), writing through the transient store pool
    /// when `pool` is set (checked: the broker says how it writes).
    fn boot_with(&self, pool: bool) -> (Mounted, ServerProcess, String) {
        let first = !self.store().exists();
        let mounted = self.disk.mount(self.mount_at.path()).unwrap();
        let mut env = STORE.to_vec();
        env.push(("MQ_BROKER_STORE__FLUSH", self.flush));
        env.push(("MQ_BROKER_AUTO_CREATE_TOPIC", "false"));
        env.push(("MQ_BROKER_OFFSET_PERSIST_INTERVAL", "100ms"));
        env.push(("MQ_BROKER_METRICS_LISTEN", "127.0.0.1:0"));
        env.push((
            "MQ_BROKER_STORE__TRANSIENT_STORE_POOL",
            if pool { "true" } else { "false" },
        ));
        let (broker, namesrv) = standalone_broker_with_env(&self.store(), &env);
        let says = format!("transient_store_pool={pool}");
        assert!(
            broker.logs().iter().any(|l| l.contains(&says)),
            "the broker does not say {says}: {:?}",
            broker.logs()
        );
        let admin = |args: &[&str]| {
            let mut all = vec!["--namesrv", &namesrv];
            all.extend_from_slice(args);
            run_to_end(workspace_binary("mqadmin"), &all, &[])
        };
        let (status, out, err) = if first {
            let addr = broker.addr.to_string();
            admin(&[
                "topic", "create", "--topic", TOPIC, "--queues", "4", "--broker", &addr,
            ])
        } else {
            admin(&["topic", "route", "--topic", TOPIC])
        };
        assert!(
            status.success(),
            "the topic (first boot: {first}):\n{out}\n{err}"
        );
        (mounted, broker, namesrv)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }
}

/// `mqbench produce` in the background, logging what was acknowledged.
fn start_producing(namesrv: &str, log: &Path) -> Child {
    Command::new(workspace_binary("mqbench"))
        .args([
            "produce",
            "--namesrv",
            namesrv,
            "--topic",
            TOPIC,
            "--size",
            "700",
            "--count",
            "1000000",
            "--producers",
            "4",
            // A FLUSH_DISK_TIMEOUT answer is not an acknowledgement.
            "--flush-wait",
            "--verify-log",
            log.to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// How a run's brokers write.
#[derive(Clone, Copy, PartialEq)]
enum Writes {
    Direct,
    /// Odd runs through the transient store pool.
    PoolEveryOtherRun,
}

/// Runs `cuts` rounds of produce, kill, cut; then consumes everything and
/// returns (acknowledged, acknowledged but not consumed).
fn cut_again_and_again(
    machine: &Machine,
    cuts: usize,
    writes: Writes,
    rng: &mut Lcg,
) -> (usize, usize) {
    let mut produced = Vec::new();
    for cut in 0..cuts {
        let pool = writes == Writes::PoolEveryOtherRun && cut % 2 == 1;
        let (mounted, mut broker, namesrv) = machine.boot_with(pool);
        let log = machine.log(&format!("produced-{cut}.log"));
        let producer = start_producing(&namesrv, &log);
        std::thread::sleep(Duration::from_millis(rng.between(300, 1500)));
        // The power goes: the broker dies mid-write, then everything not
        // synced is lost.
        broker.kill();
        terminate_and_wait(producer);
        mounted.power_cut().unwrap();
        eprintln!(
            "cut {cut} (pool: {pool}): {} acknowledged before it",
            lines(&log)
        );
        produced.push(log);
    }
    let (_mounted, broker, namesrv) = machine.boot();
    let all = machine.log("produced-all.log");
    let joined: String = produced
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    std::fs::write(&all, joined).unwrap();
    let acknowledged = lines(&all);
    assert!(acknowledged > 0, "nothing was acknowledged");
    consume_as(machine, &namesrv, "all", "consumed.log", "120");
    let consumed = machine.log("consumed.log");
    let (_, out, _) = run_to_end(
        workspace_binary("mqbench"),
        &["verify", all.to_str().unwrap(), consumed.to_str().unwrap()],
        &[],
    );
    let line = out
        .lines()
        .find(|l| l.ends_with(" failed"))
        .unwrap_or_else(|| panic!("{out}"));
    let (passed, failed) = line.split_once(" passed, ").unwrap();
    let failed: usize = failed.trim_end_matches(" failed").parse().unwrap();
    assert_eq!(
        passed.parse::<usize>().unwrap() + failed,
        acknowledged,
        "{out}"
    );
    if failed > 0 {
        eprintln!("{out}");
    }
    found_by_key(&namesrv, &all, &consumed, rng);
    no_damaged_record_served(&broker);
    (acknowledged, failed)
}

/// Recovery cut every torn record: consuming everything met no record
/// whose checksum fails (pulls pass over those and count them, as
/// `broker/tests/metrics.rs` shows with a flipped byte).
fn no_damaged_record_served(broker: &ServerProcess) {
    let addr = broker
        .logged_addr("metrics endpoint ready")
        .expect("the broker logs its metrics address");
    let (_, page) = mq_test_support::http_get(addr, "/metrics");
    let unreadable = page
        .lines()
        .find(|l| l.starts_with("mq_broker_unreadable_messages_total"))
        .unwrap_or_else(|| panic!("no unreadable-message count in:\n{page}"));
    assert_eq!(
        unreadable, "mq_broker_unreadable_messages_total 0",
        "damaged records met after recovery"
    );
}

/// Ten messages that were consumed, picked at random, are found by their
/// key too: the IndexFile lost what was not synced with the CommitLog and
/// recovery indexed it again.
fn found_by_key(namesrv: &str, acknowledged: &Path, consumed: &Path, rng: &mut Lcg) {
    let ids = |path: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let consumed: std::collections::HashSet<String> = ids(consumed)
        .into_iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    let candidates: Vec<serde_json::Value> = ids(acknowledged)
        .into_iter()
        .filter(|m| consumed.contains(m["id"].as_str().unwrap()))
        .collect();
    for _ in 0..10 {
        let m = &candidates[rng.between(0, candidates.len() as u64) as usize];
        let (id, key) = (m["id"].as_str().unwrap(), m["key"].as_str().unwrap());
        let (status, out, err) = run_to_end(
            workspace_binary("mqadmin"),
            &[
                "--namesrv",
                namesrv,
                "--json",
                "message",
                "query",
                "--topic",
                TOPIC,
                "--key",
                key,
                "--max",
                "256",
            ],
            &[],
        );
        assert!(status.success(), "{out}\n{err}");
        assert!(
            out.contains(id),
            "message {id} (key {key}) was consumed but is not found by its key:\n{out}"
        );
    }
}

#[test]
fn sync_flush_loses_no_acknowledged_message_to_twenty_power_cuts() {
    let machine = Machine::new("sync");
    let mut rng = Lcg::from_env();
    let (acknowledged, lost) =
        cut_again_and_again(&machine, 20, Writes::PoolEveryOtherRun, &mut rng);
    let counts = machine.disk.counts();
    eprintln!(
        "sync flush: {acknowledged} acknowledged, {lost} lost over 20 power cuts; {counts:?}"
    );
    assert_eq!(lost, 0, "acknowledged messages lost to power cuts");
    assert_eq!(counts.power_cuts, 20);
}

/// Async flush acknowledges before the disk has the bytes: a power cut
/// loses what the last flush interval held. Measured and printed, not
/// asserted away; that some loss shows is asserted, since a test that
/// cannot tell async from sync proves nothing about sync.
#[test]
fn async_flush_loses_what_was_not_yet_flushed_and_recovers_cleanly() {
    let machine = Machine::new("async");
    let mut rng = Lcg::from_env();
    let (acknowledged, lost) = cut_again_and_again(&machine, 5, Writes::Direct, &mut rng);
    eprintln!(
        "async flush: {lost} of {acknowledged} acknowledged lost over 5 power cuts ({:.2} %)",
        lost as f64 * 100.0 / acknowledged as f64
    );
    assert!(
        lost > 0,
        "the power cuts lost nothing unflushed: they cut nothing"
    );
}

/// `mqbench consume` of the test topic as `group` until idle (3 s) after
/// the first message, or `timeout_s` if none comes; returns how many it got
/// (logged to `log` in the work directory).
fn consume_as(machine: &Machine, namesrv: &str, group: &str, log: &str, timeout_s: &str) -> usize {
    let log = machine.log(log);
    let (status, out, err) = run_to_end(
        workspace_binary("mqbench"),
        &[
            "consume",
            "--namesrv",
            namesrv,
            "--topic",
            TOPIC,
            "--group",
            group,
            "--from-first",
            "--idle",
            "3",
            "--timeout",
            timeout_s,
            "--verify-log",
            log.to_str().unwrap(),
        ],
        &[],
    );
    assert!(status.success(), "{out}\n{err}");
    lines(&log)
}

/// Consumer offsets (like topic configs) are a rewritten file, durable
/// only by write-temporary, fsync, rename and fsync of the directory: a
/// group that consumed everything resumes after a power cut where it had
/// got to, not from the first message again.
#[test]
fn persisted_consumer_offsets_survive_a_power_cut() {
    let machine = Machine::new("sync");
    let (mounted, mut broker, namesrv) = machine.boot();
    let produced = machine.log("produced.log");
    let (status, out, err) = run_to_end(
        workspace_binary("mqbench"),
        &[
            "produce",
            "--namesrv",
            &namesrv,
            "--topic",
            TOPIC,
            "--count",
            "300",
            "--size",
            "200",
            "--flush-wait",
            "--verify-log",
            produced.to_str().unwrap(),
        ],
        &[],
    );
    assert!(status.success(), "{out}\n{err}");
    assert_eq!(
        consume_as(&machine, &namesrv, "keeps", "first.log", "60"),
        300
    );
    // Committed by the consumer, then persisted every 100 ms. Lost, the
    // group would start from the first message again, well within the
    // 6 s the next run waits for one.
    std::thread::sleep(Duration::from_secs(1));
    broker.kill();
    mounted.power_cut().unwrap();

    let (_mounted, _broker, namesrv) = machine.boot();
    assert_eq!(
        consume_as(&machine, &namesrv, "keeps", "again.log", "6"),
        0,
        "the group's offsets were lost: it read everything again"
    );
    assert_eq!(
        consume_as(&machine, &namesrv, "fresh", "fresh.log", "60"),
        300,
        "every message survived"
    );
}

/// Scheduled messages wait in the schedule topic, and the scheduler
/// records how far it delivered each delay level in a file of its own: a
/// delivery must be on disk before that progress is, or a cut loses the
/// message (the progress says it went, the CommitLog lost it). Sync flush,
/// five cuts while messages due a second later keep arriving: every
/// acknowledged one is delivered.
#[test]
fn scheduled_messages_survive_power_cuts() {
    let machine = Machine::new("sync");
    let mut rng = Lcg::from_env();
    let mut produced = String::new();
    for cut in 0..5 {
        let (mounted, mut broker, namesrv) = machine.boot();
        let log = machine.log(&format!("scheduled-{cut}.log"));
        let producer = Command::new(workspace_binary("mqbench"))
            .args([
                "produce",
                "--namesrv",
                &namesrv,
                "--topic",
                TOPIC,
                "--size",
                "300",
                "--count",
                "1000000",
                "--producers",
                "4",
                "--rate",
                "1000",
                "--delay-ms",
                "1000",
                "--flush-wait",
                "--verify-log",
                log.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.between(800, 2500)));
        broker.kill();
        terminate_and_wait(producer);
        mounted.power_cut().unwrap();
        eprintln!("cut {cut}: {} scheduled before it", lines(&log));
        produced.push_str(&std::fs::read_to_string(&log).unwrap_or_default());
    }
    let all = machine.log("scheduled-all.log");
    std::fs::write(&all, &produced).unwrap();
    let acknowledged = lines(&all);
    assert!(acknowledged > 0, "nothing was acknowledged");
    let (_mounted, _broker, namesrv) = machine.boot();
    let delivered = consume_as(&machine, &namesrv, "scheduled", "delivered.log", "60");
    let (_, out, _) = run_to_end(
        workspace_binary("mqbench"),
        &[
            "verify",
            all.to_str().unwrap(),
            machine.log("delivered.log").to_str().unwrap(),
        ],
        &[],
    );
    eprintln!("scheduled: {acknowledged} acknowledged, {delivered} delivered; {out}");
    assert!(
        out.lines()
            .any(|l| l == format!("{acknowledged} passed, 0 failed")),
        "scheduled messages lost to power cuts:\n{out}"
    );
}
