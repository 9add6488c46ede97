//! Helpers for integration tests that start the real server binaries.
//!
//! A [`ServerProcess`] is a child process that is killed when the test ends,
//! however it ends. Servers are started on port 0 and report the address
//! they bound in their `listening` log line, so parallel tests never race
//! for a port. Every stderr line is kept for assertions on the logs.

#![allow(clippy::unwrap_used)]

pub mod certs;
pub mod cluster;
pub mod controllers;
pub mod damage;
pub mod mqbench;
pub mod proxied;
pub mod proxy;
pub mod tmpfs;

pub use proxied::{ProxiedCluster, proxied_cluster};

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to report that it listens.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Lines a child wrote to stderr, shared with the thread that reads them.
#[derive(Debug, Default)]
struct Logs {
    lines: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

/// A running server binary, killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    logs: Arc<Logs>,
    /// The address from the server's `listening ... addr=` log line.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `binary` with `args` and waits until it logs the address it
    /// listens on. Panics with the server's output if it does not start.
    pub fn start(binary: impl AsRef<Path>, args: &[&str]) -> ServerProcess {
        Self::start_with_env(binary, args, &[])
    }

    /// As [`ServerProcess::start`], with extra environment variables.
    pub fn start_with_env(
        binary: impl AsRef<Path>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        Self::start_until(binary, args, env, "listening")
    }

    /// Starts `binary` and waits for a stderr line containing `ready`, whose
    /// `addr` field is the address the server listens on.
    pub fn start_until(
        binary: impl AsRef<Path>,
        args: &[&str],
        env: &[(&str, &str)],
        ready: &str,
    ) -> ServerProcess {
        let mut command = Command::new(binary.as_ref());
        command
            .args(args)
            // Metrics on free ports, so that servers run side by side.
            .env("MQ_BROKER_METRICS_LISTEN", "127.0.0.1:0")
            .env("MQ_NAMESRV_METRICS_LISTEN", "127.0.0.1:0")
            // The broker's RocketMQ 5 proxy on a free port too.
            .env("MQ_BROKER_PROXY_LISTEN", "127.0.0.1:0")
            // 16 MiB CommitLog segments: a test broker writes little, and
            // pre-warming two 1 GiB segments per broker cost the suite 20 s
            // of kernel time.
            .env("MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE", "16777216")
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.as_ref().display()));
        let logs = Arc::new(Logs::default());
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lines.lock().unwrap().0.push(line);
                sink.changed.notify_all();
            }
            sink.lines.lock().unwrap().1 = true;
            sink.changed.notify_all();
        });
        let mut server = ServerProcess {
            child,
            logs,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let line = server
            .wait_for_log(ready, START_TIMEOUT)
            .unwrap_or_else(|| {
                panic!(
                    "server did not start; its output:\n{}",
                    server.logs().join("\n")
                )
            });
        server.addr = parse_addr(&line).unwrap_or_else(|| panic!("no addr= in {line:?}"));
        server
    }

    /// `http://ADDR`, for tonic clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every stderr line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lines.lock().unwrap().0.clone()
    }

    /// Waits for a stderr line containing `needle`; None at the deadline or
    /// when the process closed its stderr first.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.logs.lines.lock().unwrap();
        loop {
            if let Some(line) = guard.0.iter().find(|l| l.contains(needle)) {
                return Some(line.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if guard.1 {
                return None;
            }
            guard = self.logs.changed.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// The `addr` field of the first stderr line containing `needle`
    /// (for example the embedded nameserver of a standalone broker).
    pub fn logged_addr(&self, needle: &str) -> Option<SocketAddr> {
        parse_addr(&self.wait_for_log(needle, Duration::from_secs(5))?)
    }

    /// The process id, for signals.
    /// The value of the server's metric line that starts with `series`
    /// (a name, with its labels if it has any), read from the metrics
    /// endpoint it logged.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let addr = self.logged_addr("metrics endpoint ready")?;
        let (_, body) = http_get(addr, "/metrics");
        body.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        self.wait_for_exit(timeout)
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The path of a binary of this workspace (`nameserver`, `broker`, ...),
/// next to the test executable, or in `MQ_BIN_DIR` when set (tests built
/// outside the workspace, as `compat/`). A workspace test run builds every
/// binary first; a narrower run builds the missing one here.
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("MQ_BIN_DIR") {
        let path = Path::new(&dir).join(name);
        assert!(
            path.exists(),
            "no {name} binary in MQ_BIN_DIR ({})",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).unwrap().to_owned();
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--workspace", "--bin", name])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build the {name} binary");
    }
    assert!(path.exists(), "no {name} binary at {}", path.display());
    path
}

/// A standalone broker (with its embedded nameserver) on free loopback
/// ports, storing in `dir`; returns it with the nameserver's address.
pub fn standalone_broker(dir: &Path) -> (ServerProcess, String) {
    standalone_broker_with_env(dir, &[])
}

/// [`standalone_broker`] with extra environment (`MQ_BROKER_*` settings).
pub fn standalone_broker_with_env(dir: &Path, env: &[(&str, &str)]) -> (ServerProcess, String) {
    let broker = ServerProcess::start_until(
        workspace_binary("broker"),
        &[
            "--standalone",
            "--store-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--namesrv-listen",
            "127.0.0.1:0",
        ],
        env,
        "broker listening",
    );
    let namesrv = broker
        .logged_addr("nameserver listening")
        .unwrap()
        .to_string();
    (broker, namesrv)
}

/// Ends a child with SIGTERM (a verifiable producer then completes its
/// log) and waits for it, at most 30 s.
pub fn terminate_and_wait(mut child: Child) -> ExitStatus {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    // SAFETY: kill(2) on our own child's pid; it is not reaped until below.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM to {pid}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "child {pid} still runs 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `binary` to completion with `args` and returns (status, stdout, stderr).
pub fn run_to_end(
    binary: impl AsRef<Path>,
    args: &[&str],
    env: &[(&str, &str)],
) -> (ExitStatus, String, String) {
    let output = Command::new(binary.as_ref())
        .args(args)
        // A broker's RocketMQ 5 proxy on a free port, unless told.
        .env("MQ_BROKER_PROXY_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.as_ref().display()));
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// GET `path` over plain HTTP/1.1 (a server's `/metrics` or `/healthz`):
/// (status line, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the `addr` field of a text (`addr=V`) or JSON (`"addr":"V"`) log line.
pub fn parse_addr(line: &str) -> Option<SocketAddr> {
    let value = if let Some(at) = line.find("\"addr\":\"") {
        line[at + "\"addr\":\"".len()..].split('"').next()?
    } else {
        let at = line.find("addr=")?;
        line[at + "addr=".len()..]
            .split_whitespace()
            .next()?
            .trim_matches('"')
    };
    value.parse().ok()
}

/// The CommitLog segment files of the store in `store_dir` that hold data
/// below `end`, by name, with their bytes: to compare a replica's log with
/// its master's.
pub fn commitlog_segments_below(store_dir: &Path, end: u64) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(store_dir.join("commitlog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|base| base < end)
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Panics unless the CommitLog of the store in `store_dir` holds nothing
/// at or past `cut`: no segment begins there, and the one it falls in is
/// zeros from there on (a replica's log cut back).
pub fn assert_commitlog_holds_nothing_past(store_dir: &Path, cut: u64) {
    for segment in std::fs::read_dir(store_dir.join("commitlog")).unwrap() {
        let path = segment.unwrap().path();
        let base: u64 = path.file_name().unwrap().to_str().unwrap().parse().unwrap();
        assert!(base < cut, "segment {base} begins past the cut {cut}");
        let bytes = std::fs::read(&path).unwrap();
        let from = cut.saturating_sub(base).min(bytes.len() as u64) as usize;
        assert!(
            bytes[from..].iter().all(|&b| b == 0),
            "segment {base} holds data past the cut {cut}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_is_read_from_text_log_lines() {
        let line = "2026-01-01T00:00:00Z  INFO mq_nameserver::server: nameserver listening addr=127.0.0.1:40001 broker_expire=2m";
        assert_eq!(parse_addr(line), Some("127.0.0.1:40001".parse().unwrap()));
        assert_eq!(parse_addr("no address here"), None);
        assert_eq!(parse_addr("addr=garbage"), None);
        let json = r#"{"fields":{"message":"nameserver listening","addr":"127.0.0.1:40002"}}"#;
        assert_eq!(parse_addr(json), Some("127.0.0.1:40002".parse().unwrap()));
    }
}
