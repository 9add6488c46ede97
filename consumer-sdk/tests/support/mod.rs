//! A cluster of real processes for the consumer's end-to-end tests.

#![allow(dead_code, clippy::unwrap_used)]

use mq_test_support::{ServerProcess, workspace_binary};
use std::path::Path;

pub fn start_nameserver() -> ServerProcess {
    ServerProcess::start(workspace_binary("nameserver"), &["--listen", "127.0.0.1:0"])
}

/// A broker with short consumer expiry, queue locks and delay levels
/// (100 ms to 600 ms; retries start at level 3), for fast tests.
pub fn start_broker(name: &str, namesrv: &str, root: &Path, listen: &str) -> ServerProcess {
    start_member(name, 0, None, namesrv, root, listen)
}

/// A broker whose consumers expire and queue locks lapse only after ten
/// minutes: within a test, a member leaves only by unregistering or when
/// its session ends.
/// More `MQ_BROKER_*` settings in `env`.
pub fn start_broker_without_expiry(
    name: &str,
    namesrv: &str,
    root: &Path,
    env: &[(&str, &str)],
) -> ServerProcess {
    let tuning = Tuning {
        consumer_expire: "600s",
        lock_expire: "600s",
        env,
    };
    start_tuned(name, 0, None, namesrv, root, "127.0.0.1:0", &tuning)
}

/// What differs between the test brokers.
#[derive(Clone, Copy)]
struct Tuning<'a> {
    consumer_expire: &'a str,
    lock_expire: &'a str,
    /// More `MQ_BROKER_*` settings.
    env: &'a [(&'a str, &'a str)],
}

/// Member `id` of broker group `name` (a replica of `master` when given),
/// stored under `root/<name>-<id>` (`root/<name>` for a lone master).
pub fn start_member(
    name: &str,
    id: u64,
    master: Option<&str>,
    namesrv: &str,
    root: &Path,
    listen: &str,
) -> ServerProcess {
    let tuning = Tuning {
        consumer_expire: "3s",
        lock_expire: "6s",
        env: &[],
    };
    start_tuned(name, id, master, namesrv, root, listen, &tuning)
}

/// As [`start_member`], tuned.
fn start_tuned(
    name: &str,
    id: u64,
    master: Option<&str>,
    namesrv: &str,
    root: &Path,
    listen: &str,
    tuning: &Tuning<'_>,
) -> ServerProcess {
    let Tuning {
        consumer_expire,
        lock_expire,
        env,
    } = *tuning;
    let store = match master {
        None if id == 0 => root.join(name),
        _ => root.join(format!("{name}-{id}")),
    };
    let store = store.to_str().unwrap();
    let id = id.to_string();
    let mut args = vec![
        "--broker-id",
        &id,
        "--namesrv",
        namesrv,
        "--broker-name",
        name,
        "--listen",
        listen,
        "--store-dir",
        store,
        "--register-interval",
        "500ms",
        "--consumer-expire",
        consumer_expire,
        "--store-set",
        "commitlog_segment_size=16777216",
    ];
    if let Some(master) = master {
        args.extend(["--master-addr", master]);
    }
    let config = root.join(format!("{name}-{id}.toml"));
    std::fs::write(
        &config,
        format!(
            "queue_lock_expire = \"{lock_expire}\"\noffset_persist_interval = \"200ms\"\n\
             delay_levels = \"100ms 200ms 300ms 400ms 500ms 600ms\"\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    args.extend(["--config", &config]);
    ServerProcess::start_until(workspace_binary("broker"), &args, env, "broker listening")
}

// Not every test binary uses both.
#[allow(unused_imports)]
pub use mq_test_support::cluster::{wait_for_route, wait_until};

pub async fn create_topic(broker: &ServerProcess, topic: &str, queues: u32) {
    mq_test_support::cluster::create_topic(&broker.url(), topic, queues).await;
}
