//! `mlock = true`: the segments' pages are locked in memory (the kernel's
//! own account, /proc/self/smaps, says so), and a lock the OS refuses is
//! counted (the broker's `mq_broker_store_mlock_refused` metric) while the
//! store goes on working. The refusal runs in a child process (this test
//! binary again) that gave up CAP_IPC_LOCK and its RLIMIT_MEMLOCK, so that
//! no other test loses them.

#![allow(clippy::unwrap_used)]

mod store_support;

use std::path::Path;
use std::process::Command;

use mq_store::{FlushMode, MessageStore, PutStatus, StoreConfig};
use store_support::*;

const CHILD_ENV: &str = "MQ_MLOCK_CHILD_DIR";
const SEGMENT: u64 = 64 * 1024;

fn locked_config() -> StoreConfig {
    StoreConfig {
        mlock: true,
        ..small_config(FlushMode::Sync)
    }
}

/// The `Locked:` kilobytes of every mapping of `file` in this process.
fn locked_kb(file: &Path) -> Vec<u64> {
    smaps_kb(file, "Locked")
}

#[tokio::test]
async fn an_mlocked_segment_has_every_page_locked() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = MessageStore::open(dir.path(), locked_config(), store_host()).unwrap();
    let put = store
        .put(message("locked", 0, None, vec![1; 100]))
        .await
        .unwrap();
    assert_eq!(put.status, PutStatus::Ok);
    let segment = dir.path().join("commitlog").join(format!("{:020}", 0));
    assert!(segment.exists(), "{}", segment.display());
    assert_eq!(
        locked_kb(&segment),
        [SEGMENT / 1024],
        "the segment's mapping is wholly locked"
    );
    assert_eq!(store.mlock_refusals(), 0);

    // Without mlock nothing is locked.
    let plain = tempfile::tempdir().unwrap();
    let (unlocked, _) =
        MessageStore::open(plain.path(), small_config(FlushMode::Sync), store_host()).unwrap();
    unlocked
        .put(message("plain", 0, None, vec![1; 100]))
        .await
        .unwrap();
    let segment = plain.path().join("commitlog").join(format!("{:020}", 0));
    assert_eq!(locked_kb(&segment), [0]);
}

/// Gives up CAP_IPC_LOCK (this thread, and the threads it starts after)
/// and the right to lock any memory (this process).
fn lose_the_right_to_lock() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_IPC_LOCK: u32 = 14;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a version-3 header and two data structs,
    // as the kernel's ABI asks; setrlimit with a struct we own.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective &= !(1 << CAP_IPC_LOCK);
        data[0].permitted &= !(1 << CAP_IPC_LOCK);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0
        );
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_MEMLOCK, &none), 0);
    }
}

#[test]
#[ignore = "the child of the refused-mlock test; run by it, not on its own"]
fn refused_mlock_child() {
    let dir = std::env::var(CHILD_ENV).expect("run by the refused-mlock test");
    lose_the_right_to_lock();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = StoreConfig {
            transient_store_pool: true,
            transient_store_pool_buffers: 1,
            ..locked_config()
        };
        let (store, _) = MessageStore::open(dir.as_ref(), config, store_host()).unwrap();
        let put = store
            .put(message("unlocked", 0, None, vec![2; 100]))
            .await
            .unwrap();
        let segment = Path::new(&dir).join("commitlog").join(format!("{:020}", 0));
        println!(
            "RESULT status={:?} refused={} locked_kb={:?}",
            put.status,
            store.mlock_refusals(),
            locked_kb(&segment)
        );
    });
}

#[test]
fn a_refused_mlock_is_counted_and_the_store_works_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "refused_mlock_child", "--ignored", "--nocapture"])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r.to_owned()))
        .unwrap_or_else(|| panic!("no result: {stdout}"));
    // The transient buffer and the first segment at least; the next
    // segment is prepared in the background and may not be yet.
    let refused: u64 = result
        .split_whitespace()
        .find_map(|w| w.strip_prefix("refused="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(refused >= 2, "{result}");
    assert!(result.contains("status=Ok"), "{result}");
    assert!(result.contains("locked_kb=[0]"), "{result}");
}
