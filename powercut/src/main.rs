//! `powercut DIR`: serves an empty power-cut disk at DIR for shell
//! scenarios (`scripts/chaos.sh`). SIGUSR1 cuts the power (kill the
//! processes using the mount first) and mounts what survived again;
//! SIGTERM or SIGINT unmounts and exits. Each event is one line on
//! stdout: `mounted DIR`, `power cut N, mounted again`, `unmounted`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use mq_powercut::Disk;

const USAGE: &str = "usage: powercut DIR

Serves an in-memory disk over FUSE at DIR (an existing, empty directory)
that keeps only what was synced when the power is cut.

  kill -USR1 PID   cut the power, then mount what survived again
  kill -TERM PID   unmount and exit

Needs /dev/fuse and fusermount3 (package fuse3).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.as_slice() {
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [dir] if !dir.starts_with('-') => PathBuf::from(dir),
        _ => {
            eprintln!("powercut: expected one argument, the mount directory\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("powercut: {}: {err}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn serve(dir: &std::path::Path) -> std::io::Result<()> {
    // Blocked in this thread before any other starts, so that every thread
    // inherits the mask and the signals wait for `sigwait` below.
    let signals = blocked(&[libc::SIGUSR1, libc::SIGTERM, libc::SIGINT])?;
    let disk = Disk::new();
    let mut mounted = disk.mount(dir)?;
    say(&format!("mounted {}", dir.display()));
    let mut cuts = 0;
    loop {
        match wait_for(&signals)? {
            libc::SIGUSR1 => {
                mounted.power_cut()?;
                cuts += 1;
                mounted = disk.mount(dir)?;
                say(&format!("power cut {cuts}, mounted again"));
            }
            _ => {
                drop(mounted);
                say("unmounted");
                return Ok(());
            }
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Blocks `signals` in this thread; returns the set.
fn blocked(signals: &[libc::c_int]) -> std::io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
        match libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) {
            0 => Ok(set),
            err => Err(std::io::Error::from_raw_os_error(err)),
        }
    }
}

fn wait_for(set: &libc::sigset_t) -> std::io::Result<libc::c_int> {
    let mut signal = 0;
    // SAFETY: `set` is initialised; `signal` is a valid out pointer.
    match unsafe { libc::sigwait(set, &mut signal) } {
        0 => Ok(signal),
        err => Err(std::io::Error::from_raw_os_error(err)),
    }
}
