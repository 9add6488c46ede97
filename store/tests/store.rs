//! The storage engine through its public API: appends, reads, flush modes,
//! reopening, ConsumeQueue rebuilds, the directory lock.

#![allow(clippy::unwrap_used)]

mod store_support;

use std::sync::Arc;
use std::time::Duration;

use mq_store::{
    FlushMode, GetResult, GetStatus, MessageFilter, MessageStore, PutStatus, StoreError,
    StoredProperties, TagFilter,
};
use store_support::*;

#[tokio::test]
async fn appended_messages_are_read_back_by_queue_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (store, report) = open(dir.path(), FlushMode::Async);
    assert!(!report.crashed);
    for i in 0..100u32 {
        let result = store
            .put(message("orders", i % 2, None, format!("body-{i}")))
            .await
            .unwrap();
        assert_eq!(result.status, PutStatus::Ok);
        assert_eq!(result.appended[0].queue_offset, u64::from(i / 2));
    }
    let queue0 = read_all(&store, "orders", 0, 50);
    assert_eq!(queue0.len(), 50);
    for (n, msg) in queue0.iter().enumerate() {
        assert_eq!(msg.queue_offset, n as u64);
        assert_eq!(&msg.body[..], format!("body-{}", n * 2).as_bytes());
        assert_eq!(msg.store_host, store_host());
    }
    assert_eq!(store.queue_offsets("orders", 1), Some((0, 50)));
    store.shutdown().unwrap();
}

#[tokio::test]
async fn reads_answer_offsets_outside_the_queue_with_where_to_go() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FlushMode::Async);
    for i in 0..5 {
        store.put(message("t", 0, None, vec![i; 10])).await.unwrap();
    }
    read_all(&store, "t", 0, 5);
    let at_end = store.get_messages("t", 0, 5, 10, usize::MAX, &TagFilter::All);
    assert_eq!(
        (at_end.status, at_end.next_offset),
        (GetStatus::NoNewMessage, 5)
    );
    let beyond = store.get_messages("t", 0, 9, 10, usize::MAX, &TagFilter::All);
    assert_eq!(
        (beyond.status, beyond.next_offset, beyond.max_offset),
        (GetStatus::OffsetIllegal, 5, 5)
    );
    let unknown = store.get_messages("nope", 0, 0, 10, usize::MAX, &TagFilter::All);
    assert_eq!(unknown.status, GetStatus::QueueNotFound);

    let some = store.get_messages("t", 0, 1, 2, usize::MAX, &TagFilter::All);
    assert_eq!(some.status, GetStatus::Found);
    assert_eq!(
        some.messages
            .iter()
            .map(|m| m.queue_offset)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(some.next_offset, 3);
    // max_bytes limits the batch, but one message always comes.
    let one = store.get_messages("t", 0, 0, 10, 1, &TagFilter::All);
    assert_eq!(one.messages.len(), 1);
    assert_eq!(one.next_offset, 1);
}

#[tokio::test]
async fn tag_filters_skip_other_tags_and_say_where_to_continue() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FlushMode::Async);
    let tags = ["TagA", "TagB", "TagC", "TagB", "TagA"];
    for tag in tags {
        store.put(message("tags", 0, Some(tag), tag)).await.unwrap();
    }
    store
        .put(message("tags", 0, None, "untagged"))
        .await
        .unwrap();
    read_all(&store, "tags", 0, 6);
    let b = store.get_messages("tags", 0, 0, 10, usize::MAX, &TagFilter::parse("TagB"));
    assert_eq!(
        b.messages
            .iter()
            .map(|m| m.queue_offset)
            .collect::<Vec<_>>(),
        [1, 3]
    );
    let a_or_c = store.get_messages(
        "tags",
        0,
        0,
        10,
        usize::MAX,
        &TagFilter::parse("TagA || TagC"),
    );
    assert_eq!(
        a_or_c
            .messages
            .iter()
            .map(|m| m.tags.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["TagA", "TagC", "TagA"]
    );
    let none = store.get_messages("tags", 0, 0, 10, usize::MAX, &TagFilter::parse("TagZ"));
    assert_eq!(
        (none.status, none.next_offset),
        (GetStatus::NoMatchedMessage, 6)
    );
}

/// Passes messages whose `n` property is even, as an SQL filter would.
struct EvenN;

impl MessageFilter for EvenN {
    fn by_tag_hash(&self, _hash: u64) -> bool {
        true
    }

    fn reads_properties(&self) -> bool {
        true
    }

    fn by_properties(&self, properties: &StoredProperties<'_>) -> bool {
        properties
            .get("n")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n % 2 == 0)
    }
}

#[tokio::test]
async fn message_filters_pass_over_what_they_refuse_and_count_only_what_they_return() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FlushMode::Async);
    for n in 0..10u32 {
        let mut msg = message("props", 0, None, vec![b'x'; 100]);
        msg.properties.insert("n".into(), n.to_string());
        store.put(msg).await.unwrap();
    }
    read_all(&store, "props", 0, 10);
    let even = store.get_messages("props", 0, 0, 3, usize::MAX, &EvenN);
    let ns = |r: &GetResult| {
        r.messages
            .iter()
            .map(|m| m.queue_offset)
            .collect::<Vec<_>>()
    };
    assert_eq!((ns(&even), even.next_offset), (vec![0, 2, 4], 5));
    // The byte budget counts returned messages only: the refused ones in
    // between do not use it up.
    let record = even.messages[0].record_size as usize;
    let two = store.get_messages("props", 0, 1, 10, 2 * record, &EvenN);
    assert_eq!(ns(&two), [2, 4]);
    let none = store.get_messages("props", 0, 9, 10, usize::MAX, &EvenN);
    assert_eq!(
        (none.status, none.next_offset),
        (GetStatus::NoMatchedMessage, 10)
    );
}

#[tokio::test]
async fn sync_flush_acknowledges_only_what_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FlushMode::Sync);
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for t in 0..16u8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let result = store
                    .put(message("sync", u32::from(t % 4), None, vec![t; 100]))
                    .await
                    .unwrap();
                assert_eq!(result.status, PutStatus::Ok);
                assert!(store.commitlog_flushed_offset() >= result.appended[0].end_offset());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total: usize = (0..4).map(|q| read_all(&store, "sync", q, 80).len()).sum();
    assert_eq!(total, 320);
}

#[tokio::test]
async fn oversized_messages_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = mq_store::StoreConfig {
        max_message_size: 1024,
        ..small_config(FlushMode::Async)
    };
    let (store, _) = MessageStore::open(dir.path(), config, store_host()).unwrap();
    let err = store
        .put(message("big", 0, None, vec![0; 2000]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::MessageTooLarge { max: 1024, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("exceeds the maximum message size of 1024 bytes"),
        "{err}"
    );
    assert_eq!(store.commitlog_max_offset(), 0);
}

#[tokio::test]
async fn reopening_continues_queue_offsets_where_they_were() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), FlushMode::Async);
        for i in 0..700u32 {
            store
                .put(message("re", i % 3, None, vec![1; 200]))
                .await
                .unwrap();
        }
        store.shutdown().unwrap();
    }
    let (store, report) = open(dir.path(), FlushMode::Async);
    assert!(!report.crashed);
    assert_eq!(report.truncation, None);
    let next = store.put(message("re", 1, None, "after")).await.unwrap();
    assert_eq!(next.appended[0].queue_offset, 233);
    let all = read_all(&store, "re", 1, 234);
    assert_eq!(all.len(), 234);
    assert_eq!(&all[233].body[..], b"after");
}

#[tokio::test]
async fn a_deleted_consumequeue_directory_is_rebuilt_from_the_commitlog() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), FlushMode::Async);
        for i in 0..300u32 {
            store
                .put(message("rebuild", i % 2, None, format!("{i}")))
                .await
                .unwrap();
        }
        store.shutdown().unwrap();
    }
    std::fs::remove_dir_all(dir.path().join("consumequeue")).unwrap();
    let (store, report) = open(dir.path(), FlushMode::Async);
    assert_eq!(report.replayed_from, 0);
    assert_eq!(store.queue_offsets("rebuild", 0), Some((0, 150)));
    let queue1 = read_all(&store, "rebuild", 1, 150);
    assert_eq!(queue1.len(), 150);
    assert_eq!(&queue1[149].body[..], b"299");
    let next = store.put(message("rebuild", 0, None, "x")).await.unwrap();
    assert_eq!(next.appended[0].queue_offset, 150);
}

#[tokio::test]
async fn a_consumequeue_cut_short_is_completed_from_the_commitlog() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), FlushMode::Async);
        for i in 0..200u32 {
            store
                .put(message("short", 0, None, format!("{i}")))
                .await
                .unwrap();
        }
        store.shutdown().unwrap();
    }
    // 64 entries per file: cut the last file (entries 192..200) mid-entry.
    let last = dir
        .path()
        .join("consumequeue/short/0")
        .join(format!("{:020}", 192 * 20));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(50)
        .unwrap();
    let (store, _) = open(dir.path(), FlushMode::Async);
    assert_eq!(store.queue_offsets("short", 0), Some((0, 200)));
    let all = read_all(&store, "short", 0, 200);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, m)| m.body == i.to_string().as_bytes())
    );
}

#[test]
fn a_store_directory_is_opened_by_one_process_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_first, _) = open(dir.path(), FlushMode::Async);
    let err =
        MessageStore::open(dir.path(), small_config(FlushMode::Async), store_host()).unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
}

#[tokio::test]
async fn a_read_that_waits_for_the_index_sees_what_was_just_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FlushMode::Async);
    // The dispatcher now lags 100 ms behind every append.
    fail::cfg("dispatch::before_round", "sleep(100)").unwrap();
    store
        .put(message("fresh", 0, None, "just acknowledged"))
        .await
        .unwrap();
    let caught_up = store
        .indexed_up_to_now(std::time::Duration::from_secs(5))
        .await;
    let offsets = store.queue_offsets("fresh", 0);
    fail::remove("dispatch::before_round");
    assert!(caught_up);
    assert_eq!(offsets, Some((0, 1)));
}

#[tokio::test]
async fn dispatch_lag_drains_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FlushMode::Async);
    for i in 0..50 {
        store
            .put(message("lag", 0, None, vec![i; 500]))
            .await
            .unwrap();
    }
    read_all(&store, "lag", 0, 50);
    assert_eq!(store.dispatch_lag(), 0);
}

#[tokio::test]
async fn messages_are_found_by_key_and_by_unique_id_also_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), FlushMode::Async);
        for i in 0..300u32 {
            let keys = format!("order-{i} customer-{}", i % 7);
            store
                .put(keyed_message(
                    "shop",
                    &keys,
                    &format!("UID-{i}"),
                    format!("{i}"),
                ))
                .await
                .unwrap();
        }
        store
            .put(keyed_message("other", "order-5", "UID-X", "other topic"))
            .await
            .unwrap();
        read_all(&store, "shop", 0, 300);
        let found = store.query_by_key("shop", "order-5", 0, u64::MAX, 10);
        assert_eq!(found.len(), 1);
        assert_eq!(&found[0].body[..], b"5");
        store.shutdown().unwrap();
    }
    let (store, _) = open(dir.path(), FlushMode::Async);
    let customers = store.query_by_key("shop", "customer-3", 0, u64::MAX, 1000);
    let mut bodies: Vec<u32> = customers
        .iter()
        .map(|m| std::str::from_utf8(&m.body).unwrap().parse().unwrap())
        .collect();
    bodies.sort_unstable();
    let expected: Vec<u32> = (0..300).filter(|i| i % 7 == 3).collect();
    assert_eq!(bodies, expected);
    assert_eq!(
        store
            .query_by_key("shop", "customer-3", 0, u64::MAX, 5)
            .len(),
        5
    );
    assert!(
        store.query_by_key("shop", "order-5", 0, 1, 10).is_empty(),
        "outside the time range"
    );
    assert_eq!(
        &store.find_by_unique_id("UID-123").unwrap().body[..],
        b"123"
    );
    assert_eq!(
        &store.find_by_unique_id("UID-X").unwrap().body[..],
        b"other topic"
    );
    assert!(store.find_by_unique_id("UID-999").is_none());
}

#[tokio::test]
async fn the_transient_store_pool_serves_reads_rolls_over_and_reopens_without_it() {
    for flush in [FlushMode::Async, FlushMode::Sync] {
        let dir = tempfile::tempdir().unwrap();
        let config = mq_store::StoreConfig {
            transient_store_pool: true,
            transient_store_pool_buffers: 2,
            ..small_config(flush)
        };
        {
            let (store, _) = MessageStore::open(dir.path(), config.clone(), store_host()).unwrap();
            // About ten 64 KiB segments: more than the pool has buffers.
            for i in 0..600u32 {
                let put = store
                    .put(message("pool", i % 2, None, vec![(i % 251) as u8; 1000]))
                    .await
                    .unwrap();
                assert_eq!(put.status, PutStatus::Ok);
            }
            let queue0 = read_all(&store, "pool", 0, 300);
            assert_eq!(queue0.len(), 300);
            assert!(
                queue0
                    .iter()
                    .enumerate()
                    .all(|(n, m)| m.body[0] == ((n * 2) % 251) as u8)
            );
            store.shutdown().unwrap();
        }
        let (store, report) = open(dir.path(), flush);
        assert_eq!(report.truncation, None, "{flush:?}");
        let queue1 = read_all(&store, "pool", 1, 300);
        assert_eq!(queue1.len(), 300, "{flush:?}");
        assert!(
            queue1
                .iter()
                .enumerate()
                .all(|(n, m)| m.body[999] == ((n * 2 + 1) % 251) as u8)
        );
    }
}

#[tokio::test]
async fn a_flush_that_misses_its_deadline_answers_flush_disk_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = mq_store::StoreConfig {
        sync_flush_timeout: std::time::Duration::from_millis(50),
        ..small_config(FlushMode::Sync)
    };
    let (store, _) = MessageStore::open(dir.path(), config, store_host()).unwrap();
    assert_eq!(
        store
            .put(message("late", 0, None, "fast disk"))
            .await
            .unwrap()
            .status,
        PutStatus::Ok
    );

    // The disk now takes 300 ms per sync: longer than the 50 ms allowed.
    fail::cfg("flusher::before_sync", "sleep(300)").unwrap();
    let put = store
        .put(message("late", 0, None, "slow disk"))
        .await
        .unwrap();
    fail::remove("flusher::before_sync");
    assert_eq!(put.status, PutStatus::FlushDiskTimeout);
    // Stored all the same: the status only says the disk did not confirm in time.
    assert_eq!(read_all(&store, "late", 0, 2).len(), 2);
}

#[test]
fn prewarming_brings_a_segment_into_memory_without_writing_to_it() {
    use mq_store::mapped_file::{MapOptions, MappedFile};

    // On the target directory's file system (ext4 or xfs), not a tmpfs
    // /tmp, which has no unwritten extents.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let size = 12 << 20;
    let file = MappedFile::create(dir.path(), 0, size, MapOptions::default()).unwrap();
    assert_eq!(
        file.resident_pages().unwrap(),
        0,
        "a new segment starts cold"
    );

    let mut prewarm = file.prewarm();
    let mut steps = 0;
    while prewarm.step(usize::MAX) == mq_store::mapped_file::Warmed::Chunk {
        steps += 1;
    }
    assert_eq!(steps, 3, "4 MiB a step");
    assert_eq!(
        file.resident_pages().unwrap(),
        size / 4096,
        "every page is in"
    );
    // The segment is allocated (no holes to fault on a full disk), as
    // unwritten extents. Had pre-warming dirtied its pages, writing them
    // back would turn the extents into written ones.
    std::fs::File::open(file.path())
        .unwrap()
        .sync_all()
        .unwrap();
    let extents = std::process::Command::new("filefrag")
        .arg("-v")
        .arg(file.path())
        .output()
        .expect("filefrag (e2fsprogs) lists the extents");
    let extents = String::from_utf8_lossy(&extents.stdout);
    let rows: Vec<&str> = extents
        .lines()
        .filter(|line| line.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert!(!rows.is_empty(), "the file is allocated: {extents}");
    assert!(
        rows.iter().all(|row| row.contains("unwritten")),
        "read faults write nothing: every extent stays unwritten\n{extents}"
    );
}

#[tokio::test]
async fn a_segment_the_disk_cannot_hold_refuses_appends_until_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) =
        MessageStore::open(dir.path(), small_config(FlushMode::Async), store_host()).unwrap();
    // From now on no new segment fits on the disk (one may already be
    // prepared ahead): appends go on until a rollover needs a new one.
    store
        .put(message("nospace", 0, None, vec![b'x'; 1000]))
        .await
        .unwrap();
    fail::cfg("space::allocate", "return").unwrap();
    let mut refused = None;
    for i in 1..400u32 {
        match store
            .put(message("nospace", 0, None, vec![b'x'; 1000]))
            .await
        {
            Ok(_) => {}
            Err(err) => {
                refused = Some((i, err));
                break;
            }
        }
    }
    let (accepted, err) = refused.expect("the rollover is refused");
    assert!(accepted > 10, "the first segment took {accepted}");
    assert!(err.is_disk_full(), "{err}");
    assert!(err.to_string().starts_with("disk full: "), "{err}");
    // Nothing half-done: once the disk has room again (the ConsumeQueues
    // need it too), every acknowledged message reads back, and appends go
    // on where they left off.
    fail::remove("space::allocate");
    assert_eq!(
        read_all(&store, "nospace", 0, accepted as usize).len(),
        accepted as usize
    );
    let put = store
        .put(message("nospace", 0, None, "after"))
        .await
        .unwrap();
    assert_eq!(put.appended[0].queue_offset, u64::from(accepted));
}

#[tokio::test]
async fn a_topic_deletion_waits_for_the_dispatcher_and_says_when_it_is_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FlushMode::Async);
    store.put(message("gone", 0, None, "first")).await.unwrap();
    read_all(&store, "gone", 0, 1);
    // The dispatcher stops before its next round: what is appended now is
    // not indexed, and the deletion cannot pass it.
    fail::cfg("dispatch::before_round", "pause").unwrap();
    store.put(message("gone", 0, None, "second")).await.unwrap();
    let err = store
        .delete_topic("gone", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Behind { .. }), "{err}");
    assert!(err.to_string().contains("try again"), "{err}");
    fail::remove("dispatch::before_round");
    store
        .delete_topic("gone", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(store.queue_offsets("gone", 0), None, "its queue is gone");
}

/// Time-to-offset search (`--from-time`, reset by time) over real
/// timestamps: 400 messages on one queue, two queues interleaved, over
/// many CommitLog segments, several stored in the same millisecond. A
/// time finds the first message stored at or after it, before and after
/// the ConsumeQueue is rebuilt at open.
#[tokio::test]
async fn a_time_finds_the_first_message_stored_at_or_after_it_across_segments() {
    use mq_store::env::{ManualClock, StoreEnv};
    const T0: u64 = 1_700_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let open = || {
        let env = StoreEnv {
            clock: clock.clone(),
            ..StoreEnv::default()
        };
        let config = small_config(FlushMode::Async);
        MessageStore::open_with_env(dir.path(), config, store_host(), env)
            .unwrap()
            .0
    };
    let store = open();
    // Queue 0's message i is stored at T0 + 10 * (i / 3): three per
    // millisecond step, 10 ms apart; queue 1 gets one between steps.
    let stored_at = |i: u64| T0 + 10 * (i / 3);
    for i in 0..400u64 {
        clock.set(stored_at(i));
        store
            .put(message("timed", 0, None, vec![i as u8; 600]))
            .await
            .unwrap();
        if i % 3 == 2 {
            clock.set(stored_at(i) + 5);
            store
                .put(message("timed", 1, None, vec![1; 600]))
                .await
                .unwrap();
        }
    }
    let segments =
        store.commitlog_max_offset() / small_config(FlushMode::Async).commitlog_segment_size;
    assert!(segments >= 5, "{segments} segments");

    let expect = |store: &MessageStore| {
        let at = |t: u64| store.offset_for_time("timed", 0, t).unwrap();
        assert_eq!(at(0), 0, "before everything: the first message");
        assert_eq!(at(T0), 0);
        for step in [1u64, 7, 50, 99, 132] {
            let t = T0 + 10 * step;
            assert_eq!(
                at(t),
                3 * step,
                "exactly at step {step}: the first of its three"
            );
            assert_eq!(at(t - 4), 3 * step, "between steps: the next step's first");
            assert_eq!(at(t + 1), 3 * step + 3, "just after step {step}");
        }
        assert_eq!(
            at(stored_at(399)),
            399,
            "the last step holds only the last message"
        );
        assert_eq!(
            at(stored_at(399) + 1),
            400,
            "after everything: the queue's end"
        );
        assert_eq!(at(u64::MAX), 400);
        // Queue 1: message j at T0 + 10 * j + 5.
        let at1 = |t: u64| store.offset_for_time("timed", 1, t).unwrap();
        assert_eq!(at1(T0 + 10 * 40 + 5), 40);
        assert_eq!(at1(T0 + 10 * 40 + 6), 41);
        assert_eq!(store.offset_for_time("timed", 7, T0), None, "no such queue");
    };
    assert!(store.indexed_up_to_now(Duration::from_secs(10)).await);
    expect(&store);

    store.shutdown().unwrap();
    drop(store);
    std::fs::remove_dir_all(dir.path().join("consumequeue")).unwrap();
    let store = open();
    assert!(store.indexed_up_to_now(Duration::from_secs(10)).await);
    expect(&store);
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// A broker restarting in its process opens its store again while the
/// last run's store may still be held (by requests in flight). Once shut
/// down, that store must never touch the directory again: its segment
/// allocator, preparing segments ahead, once made a segment after the new
/// run's recovery had deleted the blank ones, leaving a gap that stopped
/// the broker at its next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shut_down_store_makes_no_more_files_while_still_held() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FlushMode::Async);
    let store = Arc::new(store);
    let held = Arc::clone(&store);
    for i in 0..100u32 {
        store
            .put(message("held", 0, None, vec![i as u8; 900]))
            .await
            .unwrap();
    }
    assert!(threads_named("commitlog-alloc") >= 1);
    store.shutdown().unwrap();
    assert_eq!(
        threads_named("commitlog-alloc"),
        0,
        "the allocator outlived the shutdown"
    );
    let files = || {
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("commitlog"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = files();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(files(), before);
    assert!(matches!(
        held.put(message("held", 0, None, "late")).await,
        Err(StoreError::Closed)
    ));
    drop(held);
}
