//! A controller group of real `controller` processes on loopback, for
//! failover tests: each has its own data directory and a fixed port (the
//! peers must know each other's addresses before they start).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{ServerProcess, workspace_binary};

/// Controllers by id (1..=n); a stopped one is absent from `running`.
#[derive(Debug)]
pub struct Controllers {
    pub running: BTreeMap<u64, ServerProcess>,
    addrs: BTreeMap<u64, String>,
    dir: PathBuf,
    extra_args: Vec<String>,
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Controllers {
    /// Starts `count` controllers storing under `dir`, with `extra_args`
    /// (e.g. `--broker-timeout 2s`) for each.
    pub fn start(dir: &Path, count: u64, extra_args: &[&str]) -> Controllers {
        let addrs = (1..=count)
            .map(|id| (id, format!("127.0.0.1:{}", free_port())))
            .collect();
        let mut controllers = Controllers {
            running: BTreeMap::new(),
            addrs,
            dir: dir.to_owned(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        };
        for id in 1..=count {
            controllers.start_one(id);
        }
        controllers
    }

    /// `host:port;host:port;...`, for `--controller-addr`.
    pub fn list(&self) -> String {
        self.addrs.values().cloned().collect::<Vec<_>>().join(";")
    }

    /// (Re)starts controller `id` on its address and data directory.
    pub fn start_one(&mut self, id: u64) {
        let peers = self
            .addrs
            .iter()
            .map(|(id, addr)| format!("{id}={addr}"))
            .collect::<Vec<_>>()
            .join(";");
        let data = self.dir.join(format!("controller-{id}"));
        let mut args = vec![
            "--id".to_string(),
            id.to_string(),
            "--peers".into(),
            peers,
            "--listen".into(),
            self.addrs[&id].clone(),
            "--metrics-listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--raft-election-timeout".into(),
            "500ms".into(),
        ];
        args.extend(self.extra_args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = ServerProcess::start_until(
            workspace_binary("controller"),
            &args,
            &[],
            "controller listening",
        );
        self.running.insert(id, process);
    }

    /// Kills controller `id` (SIGKILL).
    pub fn kill(&mut self, id: u64) {
        if let Some(mut process) = self.running.remove(&id) {
            process.kill();
        }
    }
}
