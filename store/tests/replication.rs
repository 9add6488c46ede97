//! The CommitLog as a replica sees it: bytes read from a master with
//! `read_raw` and appended with `append_raw` at the same offsets make a
//! byte-identical log that serves the same messages, and bytes that do not
//! fit are refused before anything is written.

#![allow(clippy::unwrap_used)]

mod store_support;

use mq_store::{FlushMode, MessageStore, StoreError};
use mq_test_support::commitlog_segments_below;
use store_support::*;

/// 300 messages of many sizes over two topics, several segments.
async fn fill(master: &MessageStore) {
    for i in 0..300usize {
        let body = vec![(i % 251) as u8; 100 + (i * 97) % 3000];
        let msg = if i % 3 == 0 {
            keyed_message("keyed", &format!("order-{i}"), &format!("ID{i:08}"), body)
        } else {
            message(
                "plain",
                (i % 2) as u32,
                Some(if i % 2 == 0 { "a" } else { "b" }),
                body,
            )
        };
        master.put(msg).await.unwrap();
    }
}

/// Feeds `replica` from `master` in chunks of at most `chunk` bytes until
/// it has everything; returns how many chunks it took.
async fn catch_up(master: &MessageStore, replica: &MessageStore, chunk: usize) -> usize {
    let mut chunks = 0;
    loop {
        let offset = replica.commitlog_max_offset();
        let Some(bytes) = master.read_raw(offset, chunk).unwrap() else {
            return chunks;
        };
        let (end, _) = replica.append_raw(offset, &bytes).await.unwrap();
        assert_eq!(end, offset + bytes.len() as u64);
        chunks += 1;
    }
}

#[tokio::test]
async fn a_replica_fed_raw_chunks_is_byte_identical_and_serves_the_same_messages() {
    let (master_dir, replica_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (master, _) = open(master_dir.path(), FlushMode::Async);
    let (replica, _) = open(replica_dir.path(), FlushMode::Async);
    fill(&master).await;
    let end = master.commitlog_max_offset();

    let chunks = catch_up(&master, &replica, 16 * 1024).await;
    assert_eq!(replica.commitlog_max_offset(), end);
    assert!(chunks > 20, "{chunks} chunks for {end} bytes");
    let master_files = commitlog_segments_below(master_dir.path(), end);
    assert!(master_files.len() >= 5, "{} segments", master_files.len());
    assert!(
        master_files == commitlog_segments_below(replica_dir.path(), end),
        "the replica's segments are byte for byte the master's"
    );

    for (topic, queue, count) in [("plain", 0, 100), ("plain", 1, 100), ("keyed", 0, 100)] {
        let on_master = read_all(&master, topic, queue, count);
        let on_replica = read_all(&replica, topic, queue, count);
        assert_eq!(on_replica.len(), count, "{topic}:{queue}");
        assert_eq!(on_replica, on_master, "{topic}:{queue}");
    }
    assert!(
        replica
            .indexed_up_to_now(std::time::Duration::from_secs(5))
            .await
    );
    assert_eq!(
        replica
            .query_by_key("keyed", "order-42", 0, u64::MAX, 10)
            .len(),
        1
    );
    assert!(replica.find_by_unique_id("ID00000297").is_some());

    // The replica's own appends go on from the replicated queue offsets.
    let own = replica.put(message("plain", 1, None, "own")).await.unwrap();
    assert_eq!(own.appended[0].queue_offset, 100);
    assert_eq!(own.appended[0].physical_offset, end);

    // And it reopens as a store of its own.
    replica.shutdown().unwrap();
    drop(replica);
    let (reopened, report) = open(replica_dir.path(), FlushMode::Async);
    assert!(!report.crashed);
    assert_eq!(
        reopened.commitlog_max_offset(),
        own.appended[0].end_offset()
    );
}

#[tokio::test]
async fn replicated_bytes_that_do_not_fit_are_refused_and_change_nothing() {
    let (master_dir, replica_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (master, _) = open(master_dir.path(), FlushMode::Async);
    let (replica, _) = open(replica_dir.path(), FlushMode::Async);
    fill(&master).await;
    let first = master.read_raw(0, 8 * 1024).unwrap().unwrap();
    let refused = |err: StoreError, needle: &str| {
        let text = err.to_string();
        assert!(matches!(err, StoreError::Replication { .. }), "{text}");
        assert!(text.contains(needle), "{needle:?} not in {text}");
    };

    refused(
        replica.append_raw(1, &first).await.unwrap_err(),
        "this log ends at 0",
    );
    let mut flipped = first.to_vec();
    flipped[first.len() / 2] ^= 0x01;
    refused(
        replica.append_raw(0, &flipped).await.unwrap_err(),
        "CRC mismatch",
    );
    refused(
        replica
            .append_raw(0, &first[..first.len() - 10])
            .await
            .unwrap_err(),
        "truncated",
    );
    refused(
        replica.append_raw(0, &[0; 64]).await.unwrap_err(),
        "zeros at 0",
    );
    refused(replica.append_raw(0, &[]).await.unwrap_err(), "no bytes");
    assert_eq!(replica.commitlog_max_offset(), 0, "nothing was written");

    // Bytes of the right shape for another place: their records say so.
    replica.append_raw(0, &first).await.unwrap();
    let again = first.clone();
    refused(
        replica
            .append_raw(first.len() as u64, &again)
            .await
            .unwrap_err(),
        "says it was written at 0",
    );
    // A chunk may not run past its segment.
    let segment = small_config(FlushMode::Async).commitlog_segment_size as usize;
    let mut long = master
        .read_raw(first.len() as u64, segment)
        .unwrap()
        .unwrap()
        .to_vec();
    long.extend_from_slice(&master.read_raw(segment as u64, 4096).unwrap().unwrap());
    refused(
        replica
            .append_raw(first.len() as u64, &long)
            .await
            .unwrap_err(),
        "run past the segment",
    );
    assert_eq!(replica.commitlog_max_offset(), first.len() as u64);
}

#[tokio::test]
async fn a_recorded_cut_is_applied_when_the_store_opens_and_leaves_nothing_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FlushMode::Async);
    let put = |n: usize, tag: &'static str| {
        let store = &store;
        async move {
            for i in 0..n {
                let body = vec![(i % 251) as u8; 500 + (i * 97) % 3000];
                store.put(message("t", 0, Some(tag), body)).await.unwrap();
            }
        }
    };
    store.begin_epoch(1).unwrap();
    put(150, "kept").await;
    let cut = store.commitlog_max_offset();
    store.begin_epoch(2).unwrap();
    put(150, "cut").await;
    let end = store.commitlog_max_offset();
    assert!(
        end > cut + (256 << 10),
        "the cut spans segments: {cut}..{end}"
    );

    store.request_truncation(cut).unwrap();
    // Recorded durably, applied only at the next open.
    assert_eq!(mq_store::truncate::pending(dir.path()).unwrap(), Some(cut));
    assert_eq!(store.commitlog_max_offset(), end);
    store.shutdown().unwrap();
    drop(store);

    let (store, report) = open(dir.path(), FlushMode::Async);
    assert_eq!(report.cut_back_to, Some(cut));
    assert_eq!(store.commitlog_max_offset(), cut);
    assert_eq!(mq_store::truncate::pending(dir.path()).unwrap(), None);
    assert_eq!(
        store.epochs(),
        [mq_store::epochs::Epoch { epoch: 1, start: 0 }]
    );
    assert_eq!(store.queue_offsets("t", 0), Some((0, 150)));
    let kept = read_all(&store, "t", 0, 150);
    assert!(kept.iter().all(|m| m.tags.as_deref() == Some("kept")));
    // On disk: nothing past the cut, not even in the segment it falls in.
    mq_test_support::assert_commitlog_holds_nothing_past(dir.path(), cut);
    // The log goes on from the cut.
    store
        .put(message("t", 0, Some("after"), b"next".to_vec()))
        .await
        .unwrap();
    let all = read_all(&store, "t", 0, 151);
    assert_eq!(all[150].physical_offset, cut);
    assert_eq!(all[150].tags.as_deref(), Some("after"));
}

#[test]
fn an_epoch_begun_on_a_full_disk_is_saved_before_anything_else_is_written() {
    use mq_store::epochs::{Epoch, Epochs};
    let Some(disk) = mq_test_support::tmpfs::Tmpfs::mount(1 << 20) else {
        return;
    };
    let epochs = Epochs::load(disk.path(), 0).unwrap();
    epochs.begin(1, 0).unwrap();
    disk.fill("filler");
    // The master starts all the same; the epoch waits in memory.
    epochs.begin_or_defer(2, 500).unwrap();
    assert_eq!(epochs.last(), Some(1));
    let refused = epochs.settle_deferred().unwrap_err();
    assert!(refused.is_disk_full(), "{refused}");
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    epochs.settle_deferred().unwrap();
    let saved = Epochs::load(disk.path(), 500).unwrap().list();
    assert_eq!(
        saved,
        [
            Epoch { epoch: 1, start: 0 },
            Epoch {
                epoch: 2,
                start: 500
            }
        ]
    );
}

/// A master handing over seals its log: appends racing the seal either
/// land before the end it returns or are refused, nothing lands after it,
/// and a replica fed up to that end holds every acknowledged message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_log_ends_where_the_seal_says_until_it_is_unsealed() {
    let (master_dir, replica_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (master, _) = open(master_dir.path(), FlushMode::Async);
    let master = std::sync::Arc::new(master);
    let (replica, _) = open(replica_dir.path(), FlushMode::Async);

    let writers: Vec<_> = (0..4u32)
        .map(|w| {
            let master = std::sync::Arc::clone(&master);
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..2_000u32 {
                    match master.put(message("sealed", w, None, vec![7; 64])).await {
                        Ok(put) => acked.push(put.appended[0].end_offset()),
                        Err(StoreError::Sealed) => return (acked, i),
                        Err(other) => panic!("{other}"),
                    }
                    tokio::task::yield_now().await;
                }
                (acked, 2_000)
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let end = master.seal();
    assert!(master.is_sealed());
    let mut refused = 0;
    for writer in writers {
        let (acked, stopped_at) = writer.await.unwrap();
        assert!(
            acked.iter().all(|a| *a <= end),
            "an append acknowledged past the sealed end {end}"
        );
        refused += usize::from(stopped_at < 2_000);
    }
    assert!(refused > 0, "no writer was still running at the seal");
    assert_eq!(
        master.commitlog_max_offset(),
        end,
        "the end moved after the seal"
    );

    // Replicated appends still work on a sealed store.
    replica.seal();
    catch_up(&master, &replica, 64 * 1024).await;
    assert_eq!(replica.commitlog_max_offset(), end);
    assert!(matches!(
        master.put(message("sealed", 0, None, vec![1])).await,
        Err(StoreError::Sealed)
    ));

    master.unseal();
    let put = master
        .put(message("sealed", 0, None, vec![1]))
        .await
        .unwrap();
    assert_eq!(put.appended[0].physical_offset, end);
}
