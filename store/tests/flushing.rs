//! The async flusher is shown flushing: what it acknowledged without
//! waiting for the disk is written back by the flusher at its next round
//! once enough is dirty (`async_flush_least_pages`), and not before. The kernel's own account says so: the segment mapping's dirty
//! pages in /proc/self/smaps drop to zero (the kernel on its own would
//! leave them dirty for its `dirty_expire` time, 30 s by default).

#![allow(clippy::unwrap_used)]

mod store_support;

use std::path::Path;
use std::time::{Duration, Instant};

use mq_store::{FlushMode, MessageStore, StoreConfig};
use store_support::*;

fn dirty_kb(segment: &Path) -> u64 {
    smaps_kb(segment, "Private_Dirty").iter().sum::<u64>()
        + smaps_kb(segment, "Shared_Dirty").iter().sum::<u64>()
}

#[tokio::test]
async fn async_flush_writes_acknowledged_messages_back_once_enough_is_dirty() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        commitlog_segment_size: 1 << 20,
        async_flush_interval: Duration::from_millis(50),
        async_flush_least_pages: 4,
        ..small_config(FlushMode::Async)
    };
    let (store, _) = MessageStore::open(dir.path(), config, store_host()).unwrap();
    let segment = dir.path().join("commitlog").join(format!("{:020}", 0));

    // Less than four pages: acknowledged, dirty, and left so (the flusher
    // waits for four pages, or 10 s).
    for i in 0..4u8 {
        store
            .put(message("flushed", 0, None, vec![i; 1500]))
            .await
            .unwrap();
    }
    let small_end = store.commitlog_max_offset();
    assert!(small_end < 4 * 4096);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        dirty_kb(&segment) > 0,
        "the acknowledged bytes are dirty in memory"
    );
    assert_eq!(store.commitlog_flushed_offset(), 0, "nothing flushed yet");

    // Past four pages: the flusher writes them back at its next round
    // (well within the 5 s allowed here: its whole-log flush comes only
    // every 10 s, the kernel's own write-back after 30 s).
    for i in 0..20u8 {
        store
            .put(message("flushed", 0, None, vec![i; 1500]))
            .await
            .unwrap();
    }
    let end = store.commitlog_max_offset();
    let deadline = Instant::now() + Duration::from_secs(5);
    while (dirty_kb(&segment) > 0 || store.commitlog_flushed_offset() < end)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dirty_kb(&segment), 0, "every page written back");
    assert!(store.commitlog_flushed_offset() >= end);
    let (flushes, _) = store.flush_totals();
    assert!(flushes >= 1, "{flushes} flushes");
}
