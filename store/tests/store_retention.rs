//! Retention and disk space, with a hand-moved clock and a hand-set disk.

#![allow(clippy::unwrap_used)]

mod store_support;

use std::sync::Arc;

use mq_store::env::{FixedDiskUsage, ManualClock, StoreEnv};
use mq_store::{DiskFullPolicy, FlushMode, GetStatus, MessageStore, StoreError, TagFilter};
use store_support::*;

const HOUR: u64 = 3_600_000;
const SEGMENT: u64 = 64 * 1024;
/// Day 100 after the epoch, 10:00 UTC: outside the 04:00 delete window.
const T0: u64 = 100 * 24 * HOUR + 10 * HOUR;

struct Fixture {
    _dir: tempfile::TempDir,
    store: MessageStore,
    clock: Arc<ManualClock>,
    disk: Arc<FixedDiskUsage>,
    /// (physical offset, written in the first batch) of every message.
    written: Vec<(u64, bool)>,
}

/// 130 messages at T0, then 130 more 48 hours later.
async fn fixture() -> Fixture {
    fixture_with(DiskFullPolicy::RefuseWrites).await
}

async fn fixture_with(on_full: DiskFullPolicy) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let disk = Arc::new(FixedDiskUsage::new(0.10));
    let env = StoreEnv {
        clock: clock.clone(),
        disk: disk.clone(),
    };
    let config = mq_store::StoreConfig {
        disk_soft_ratio: 0.75,
        disk_hard_ratio: 0.90,
        disk_full_policy: on_full,
        ..small_config(FlushMode::Async)
    };
    let (store, _) = MessageStore::open_with_env(dir.path(), config, store_host(), env).unwrap();
    let mut written = Vec::new();
    for (batch, at) in [(true, T0), (false, T0 + 48 * HOUR)] {
        clock.set(at);
        for i in 0..130u32 {
            let msg = keyed_message(
                "ret",
                &format!("k{}-{i}", u8::from(batch)),
                &format!("id-{}-{i}", u8::from(batch)),
                vec![7; 1000],
            );
            let put = store.put(msg).await.unwrap();
            written.push((put.appended[0].physical_offset, batch));
        }
    }
    read_all(&store, "ret", 0, 260);
    Fixture {
        _dir: dir,
        store,
        clock,
        disk,
        written,
    }
}

/// Segments whose last write was in the first batch: the first message of
/// the segment after them is from it. The newest segment never counts.
fn first_batch_segments(written: &[(u64, bool)]) -> Vec<u64> {
    let last_base = written.last().unwrap().0 / SEGMENT * SEGMENT;
    (0..last_base)
        .step_by(SEGMENT as usize)
        .filter(|base| {
            let next_first = written
                .iter()
                .find(|(offset, _)| *offset >= base + SEGMENT)
                .unwrap();
            next_first.1
        })
        .collect()
}

#[tokio::test]
async fn expired_segments_go_in_the_daily_window_only() {
    let f = fixture().await;
    let expected = first_batch_segments(&f.written);
    assert!(expected.len() >= 2, "{expected:?}");

    // 73 hours after the first batch, at 11:00: expired, but not the window.
    f.clock.set(T0 + 73 * HOUR);
    assert!(f.store.run_retention().unwrap().deleted_segments.is_empty());

    // Day 104, 04:30: the window. Only segments last written at T0 go.
    f.clock.set(104 * 24 * HOUR + 4 * HOUR + HOUR / 2);
    let report = f.store.run_retention().unwrap();
    assert_eq!(report.deleted_segments, expected);
    let new_min = expected.last().unwrap() + SEGMENT;
    assert_eq!(report.commitlog_min_offset, new_min);
    assert_eq!(f.store.commitlog_min_offset(), new_min);
    for base in &expected {
        assert!(
            !f.store
                .dir()
                .join("commitlog")
                .join(format!("{base:020}"))
                .exists()
        );
    }

    // Reads of deleted offsets answer with the new min offset.
    let (min, max) = f.store.queue_offsets("ret", 0).unwrap();
    let first_kept = f
        .written
        .iter()
        .position(|(offset, _)| *offset >= new_min)
        .unwrap() as u64;
    assert_eq!((min, max), (first_kept, 260));
    let old = f
        .store
        .get_messages("ret", 0, 0, 10, usize::MAX, &TagFilter::All);
    assert_eq!(
        (old.status, old.next_offset),
        (GetStatus::OffsetIllegal, first_kept)
    );
    let kept = f
        .store
        .get_messages("ret", 0, first_kept, 10, usize::MAX, &TagFilter::All);
    assert_eq!(
        kept.messages[0].physical_offset,
        f.written[first_kept as usize].0
    );

    // Keys of deleted messages are gone; later ones are still found.
    assert!(f.store.find_by_unique_id("id-1-0").is_none());
    assert!(f.store.find_by_unique_id("id-0-129").is_some());
}

#[tokio::test]
async fn a_full_disk_deletes_expired_segments_outside_the_window() {
    let f = fixture().await;
    f.clock.set(T0 + 73 * HOUR);
    f.disk.set(0.80);
    let report = f.store.run_retention().unwrap();
    assert_eq!(report.deleted_segments, first_batch_segments(&f.written));
    assert!(!report.disk_full);
}

#[tokio::test]
async fn above_the_hard_limit_appends_are_refused_and_nothing_unexpired_goes() {
    let f = fixture().await;
    let min_before = f.store.commitlog_min_offset();
    f.disk.set(0.95);
    let report = f.store.run_retention().unwrap();
    assert!(report.disk_full);
    assert!(report.deleted_segments.is_empty(), "{report:?}");
    assert_eq!(f.store.commitlog_min_offset(), min_before);
    assert!(f.store.disk_state().refusing_appends);
    let err = f
        .store
        .put(message("ret", 0, None, "more"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("95% full"), "{err}");
    // Every acknowledged message is still readable.
    read_all(&f.store, "ret", 0, 260);

    f.disk.set(0.50);
    assert!(!f.store.run_retention().unwrap().disk_full);
    let put = f.store.put(message("ret", 0, None, "more")).await.unwrap();
    assert_eq!(put.appended[0].queue_offset, 260);
}

#[tokio::test]
async fn delete_oldest_makes_room_with_unexpired_segments_and_counts_them() {
    let f = fixture_with(DiskFullPolicy::DeleteOldest).await;
    let segments_before = f.store.commitlog_max_offset() / SEGMENT + 1;
    f.disk.set(0.95);
    let report = f.store.run_retention().unwrap();
    assert!(report.disk_full);
    let deleted = (segments_before - 1).min(16);
    assert_eq!(report.deleted_segments.len() as u64, deleted);
    assert_eq!(report.unexpired_bytes_deleted, deleted * SEGMENT);
    assert_eq!(
        f.store.disk_state().unexpired_bytes_deleted,
        deleted * SEGMENT
    );
    assert!(
        f.store.commitlog_min_offset() < f.store.commitlog_max_offset(),
        "the active segment stays"
    );
    assert!(f.store.put(message("ret", 0, None, "more")).await.is_err());
}

#[test]
fn settings_the_store_cannot_use_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(FlushMode::Async);
    config.delete_hour = 24;
    let err = MessageStore::open(dir.path(), config, store_host()).unwrap_err();
    assert!(err.to_string().contains("delete_hour"), "{err}");
    let mut config = small_config(FlushMode::Async);
    config.max_message_size = 1 << 20;
    let err = MessageStore::open(dir.path(), config, store_host()).unwrap_err();
    assert!(err.to_string().contains("max_message_size"), "{err}");
    for preallocate in [0, 17] {
        let mut config = small_config(FlushMode::Async);
        config.preallocate_segments = preallocate;
        let err = MessageStore::open(dir.path(), config, store_host()).unwrap_err();
        assert!(err.to_string().contains("preallocate_segments"), "{err}");
    }
}
