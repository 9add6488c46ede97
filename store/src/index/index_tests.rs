use std::net::SocketAddr;

use bytes::Bytes;

use super::*;
use crate::message::Properties;

fn stored(topic: &str, keys: &str, id: Option<&str>, offset: u64, ts: u64) -> StoredMessage {
    let host: SocketAddr = "127.0.0.1:1".parse().unwrap();
    StoredMessage {
        topic: topic.into(),
        queue_id: 0,
        flags: 0,
        queue_offset: 0,
        physical_offset: offset,
        record_size: 100,
        born_timestamp_ms: ts,
        store_timestamp_ms: ts,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        tags: None,
        keys: keys
            .split(' ')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        unique_id: id.map(str::to_owned),
        delay_level: None,
        schedule: None,
        fired_from: None,
        properties: Properties::new(),
        body: Bytes::new(),
    }
}

fn offsets(hits: &[Hit]) -> Vec<u64> {
    hits.iter().map(|h| h.physical_offset).collect()
}

#[test]
fn keys_and_unique_ids_find_their_records_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let index = IndexFiles::open(dir.path(), 7, 10).unwrap();
    for n in 0..40u64 {
        let keys = format!("order-{} customer-{}", n, n % 3);
        index
            .add(&stored(
                "orders",
                &keys,
                Some(&format!("ID{n}")),
                n * 100,
                1_000 + n,
            ))
            .unwrap();
    }
    // 3 hashes per record, 10 entries per file: many files.
    assert!(std::fs::read_dir(dir.path()).unwrap().count() >= 10);

    let hits = index.lookup(key_hash("orders", "order-17"), 0, u64::MAX, 10);
    assert_eq!(offsets(&hits), [1700]);
    assert_eq!(hits[0].store_timestamp_ms, 1_017);
    let customers = index.lookup(key_hash("orders", "customer-1"), 0, u64::MAX, 100);
    let expected: Vec<u64> = (0..40u64)
        .rev()
        .filter(|n| n % 3 == 1)
        .map(|n| n * 100)
        .collect();
    assert_eq!(offsets(&customers), expected);
    assert_eq!(
        offsets(&index.lookup(unique_id_hash("ID33"), 0, u64::MAX, 10)),
        [3300]
    );
    assert!(
        index
            .lookup(key_hash("other_topic", "order-17"), 0, u64::MAX, 10)
            .is_empty()
    );
}

#[test]
fn time_ranges_and_limits_narrow_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let index = IndexFiles::open(dir.path(), 16, 64).unwrap();
    for n in 0..10u64 {
        index
            .add(&stored("t", "same", None, n * 100, 1_000 * n))
            .unwrap();
    }
    let hash = key_hash("t", "same");
    assert_eq!(
        offsets(&index.lookup(hash, 2_000, 4_000, 100)),
        [400, 300, 200]
    );
    assert_eq!(index.lookup(hash, 0, u64::MAX, 4).len(), 4);
}

#[test]
fn reopened_files_answer_the_same_and_damaged_ones_are_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = IndexFiles::open(dir.path(), 8, 4).unwrap();
        for n in 0..6u64 {
            index
                .add(&stored("t", &format!("k{n}"), None, n * 100, n))
                .unwrap();
        }
        index.flush().unwrap();
    }
    let first = dir.path().join(segment_name(0));
    let index = IndexFiles::open(dir.path(), 8, 4).unwrap();
    assert_eq!(
        offsets(&index.lookup(key_hash("t", "k5"), 0, u64::MAX, 5)),
        [500]
    );
    assert_eq!(index.end_phys(), 600);
    drop(index);

    std::fs::write(&first, b"not an index").unwrap();
    let index = IndexFiles::open(dir.path(), 8, 4).unwrap();
    assert!(index.lookup(key_hash("t", "k1"), 0, u64::MAX, 5).is_empty());
    assert_eq!(
        offsets(&index.lookup(key_hash("t", "k5"), 0, u64::MAX, 5)),
        [500]
    );
    assert!(first.with_extension("damaged").exists());
}

#[test]
fn garbage_in_an_index_file_never_loops_or_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(segment_name(0));
    let file = IndexFile::create(&path, 4, 8, 0).unwrap();
    assert!(file.add(&[42], 0, 10, 5).unwrap());
    drop(file);
    // Point every slot and every prev link at entry 1: a cycle.
    let mut bytes = std::fs::read(&path).unwrap();
    for slot in 0..4 {
        bytes[index_file::HEADER_LEN + 4 * slot..][..4].copy_from_slice(&1u32.to_le_bytes());
    }
    let entry = index_file::HEADER_LEN + 16;
    bytes[entry + 24..entry + 28].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let file = IndexFile::open(&path, 8).unwrap();
    let mut out = Vec::new();
    file.lookup(42, 0, u64::MAX, 100, &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn files_below_an_offset_are_removed_but_never_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let index = IndexFiles::open(dir.path(), 8, 2).unwrap();
    for n in 0..6u64 {
        index
            .add(&stored("t", &format!("k{n}"), None, n * 100, n))
            .unwrap();
    }
    assert_eq!(
        index.remove_below(250).unwrap(),
        1,
        "only the file ending at 200"
    );
    assert!(index.lookup(key_hash("t", "k0"), 0, u64::MAX, 5).is_empty());
    assert_eq!(index.lookup(key_hash("t", "k2"), 0, u64::MAX, 5).len(), 1);
    assert_eq!(index.remove_below(u64::MAX).unwrap(), 1);
    assert_eq!(index.lookup(key_hash("t", "k5"), 0, u64::MAX, 5).len(), 1);
}
