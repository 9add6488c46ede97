//! Helpers shared by the storage engine's integration tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use mq_store::{FlushMode, MessageStore, MessageToStore, OpenReport, StoreConfig, TagFilter};

pub fn store_host() -> SocketAddr {
    "127.0.0.1:10911".parse().unwrap()
}

/// Small segments, so that tests roll over often.
pub fn small_config(flush: FlushMode) -> StoreConfig {
    StoreConfig {
        commitlog_segment_size: 64 * 1024,
        max_message_size: 16 * 1024,
        consume_queue_entries_per_file: 64,
        index_slots_per_file: 64,
        index_entries_per_file: 256,
        flush,
        async_flush_interval: Duration::from_millis(20),
        checkpoint_interval: Duration::from_millis(50),
        // Tests that are not about disk space must not fail on a host whose
        // disk happens to be full; the retention tests set their own.
        disk_soft_ratio: 1.0,
        disk_hard_ratio: 1.0,
        ..StoreConfig::default()
    }
}

pub fn open(dir: &Path, flush: FlushMode) -> (MessageStore, OpenReport) {
    MessageStore::open(dir, small_config(flush), store_host()).unwrap()
}

pub fn message(
    topic: &str,
    queue_id: u32,
    tag: Option<&str>,
    body: impl Into<Bytes>,
) -> MessageToStore {
    MessageToStore {
        born_timestamp_ms: 1,
        born_host: "127.0.0.1:5555".parse().unwrap(),
        tags: tag.map(str::to_owned),
        ..MessageToStore::new(topic, queue_id, body)
    }
}

/// Every message of a queue, in queue order, waiting for the dispatcher.
pub fn read_all(
    store: &MessageStore,
    topic: &str,
    queue_id: u32,
    expected: usize,
) -> Vec<mq_store::StoredMessage> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (min, _) = store.queue_offsets(topic, queue_id).unwrap_or((0, 0));
        let mut found = Vec::new();
        let mut offset = min;
        loop {
            let result =
                store.get_messages(topic, queue_id, offset, 64, usize::MAX, &TagFilter::All);
            if result.messages.is_empty() {
                break;
            }
            offset = result.next_offset;
            found.extend(result.messages);
        }
        if found.len() >= expected || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A message with business keys and a unique id.
pub fn keyed_message(topic: &str, keys: &str, id: &str, body: impl Into<Bytes>) -> MessageToStore {
    let mut msg = message(topic, 0, None, body);
    msg.keys = keys.split(' ').map(str::to_owned).collect();
    msg.unique_id = Some(id.into());
    msg
}

/// The kilobytes `field` (e.g. `Locked`, `Private_Dirty`) of every mapping
/// of `file` in this process, as the kernel counts them in
/// /proc/self/smaps.
pub fn smaps_kb(file: &Path, field: &str) -> Vec<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = file.to_str().unwrap();
    let prefix = format!("{field}:");
    let mut found = Vec::new();
    let mut in_file = false;
    for line in smaps.lines() {
        let is_header = line
            .split_whitespace()
            .next()
            .is_some_and(|range| range.contains('-') && !range.ends_with(':'));
        if is_header {
            in_file = line.ends_with(name);
        } else if in_file && let Some(kb) = line.strip_prefix(&prefix) {
            found.push(kb.trim().trim_end_matches("kB").trim().parse().unwrap());
        }
    }
    found
}
