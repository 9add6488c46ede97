//! Idempotent producers' windows outlive the process and follow the data:
//! reopening a store rebuilds them from the CommitLog's tail (within
//! `idempotence_rebuild_bytes`), and a replica that appends a master's
//! bytes knows the master's sequences.

#![allow(clippy::unwrap_used)]

mod store_support;

use std::time::{Duration, Instant};

use mq_store::sequences::{StoredAt, WindowKey, stamp};
use mq_store::{FlushMode, MessageStore, StoreConfig};
use store_support::*;

const PRODUCER: u64 = 0x5eed;

fn key() -> WindowKey {
    WindowKey {
        producer: PRODUCER,
        topic: "orders".into(),
        queue_id: 1,
    }
}

/// Appends `count` messages numbered 0.. by one producer; where each went.
async fn send_numbered(store: &MessageStore, count: u64) -> Vec<StoredAt> {
    let mut places = Vec::new();
    for seq in 0..count {
        let mut msg = message("orders", 1, None, vec![7u8; 300]);
        stamp(&mut msg.properties, PRODUCER, seq);
        let put = store.put(msg).await.unwrap();
        let at = &put.appended[0];
        places.push(StoredAt {
            physical_offset: at.physical_offset,
            size: at.size,
            queue_offset: at.queue_offset,
        });
    }
    places
}

/// Where the store says `seq` is stored (claiming it, and giving the
/// claim back, when it is not).
fn known(store: &MessageStore, seq: u64) -> Option<StoredAt> {
    let at = store
        .sequences()
        .claim(&key(), seq, 1, store.now_ms())
        .unwrap()[0];
    if at.is_none() {
        store.sequences().release(&key(), [seq]);
    }
    at
}

/// [`known`], once the dispatcher has observed it (or 10 s passed).
fn known_when_dispatched(store: &MessageStore, seq: u64) -> Option<StoredAt> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let at = known(store, seq);
        if at.is_some() || Instant::now() > deadline {
            return at;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn reopening_rebuilds_the_windows_from_the_commitlog_tail() {
    let dir = tempfile::tempdir().unwrap();
    let places = {
        let (store, _) = open(dir.path(), FlushMode::Sync);
        send_numbered(&store, 20).await
    };
    let (store, _) = open(dir.path(), FlushMode::Sync);
    assert!(store.sequences().window_count() >= 1);
    for (seq, at) in places.iter().enumerate() {
        assert_eq!(known(&store, seq as u64), Some(*at), "sequence {seq}");
    }
    assert_eq!(known(&store, 20), None);
}

#[tokio::test]
async fn the_rebuild_reads_only_the_configured_tail() {
    let dir = tempfile::tempdir().unwrap();
    let places = {
        let (store, _) = open(dir.path(), FlushMode::Sync);
        send_numbered(&store, 20).await
    };
    // The last five records and one byte of the one before: reading
    // begins at the first record that starts in those bytes.
    let config = StoreConfig {
        idempotence_rebuild_bytes: places[15..]
            .iter()
            .map(|at| u64::from(at.size))
            .sum::<u64>()
            + 1,
        ..small_config(FlushMode::Sync)
    };
    let (store, _) = MessageStore::open(dir.path(), config, store_host()).unwrap();
    let remembered: Vec<bool> = (0..20).map(|seq| known(&store, seq).is_some()).collect();
    assert_eq!(
        remembered.iter().filter(|k| **k).count(),
        5,
        "{remembered:?}"
    );
    assert!(remembered[15..].iter().all(|k| *k), "{remembered:?}");
}

#[tokio::test]
async fn a_replica_knows_the_sequences_its_master_stored() {
    let (master_dir, replica_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (master, _) = open(master_dir.path(), FlushMode::Async);
    let (replica, _) = open(replica_dir.path(), FlushMode::Async);
    let places = send_numbered(&master, 3).await;
    let bytes = master.read_raw(0, 1 << 20).unwrap().unwrap();
    replica.append_raw(0, &bytes).await.unwrap();
    for (seq, at) in places.iter().enumerate() {
        assert_eq!(known_when_dispatched(&replica, seq as u64), Some(*at));
    }
}
