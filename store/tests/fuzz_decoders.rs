//! Fuzzing every decoder that reads the store's files, on stable Rust:
//! proptest generates the inputs (arbitrary bytes, and valid encodings
//! and whole stores with bytes flipped, overwritten or cut), a bounded
//! number of cases per run (`PROPTEST_CASES` runs more: 3,000 damaged
//! stores took a minute and found nothing). A failure it finds is kept in
//! `fuzz_decoders.proptest-regressions` beside this file, the corpus that
//! is replayed first (commit it with the fix). Nothing may panic, on the
//! test's thread or the store's own (a panic hook counts them), or hang
//! (every read loop is bounded). The CommitLog record codec has its own
//! in `commitlog/record_tests.rs`.

#![allow(clippy::unwrap_used)]

mod store_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use mq_store::checkpoint::Checkpoint;
use mq_store::consume_queue::entry::{ENTRY_LEN, Entry};
use mq_store::{FlushMode, MessageStore, RecoveryMode, StoreConfig, TagFilter};
use mq_test_support::damage::{Damage, damage};
use proptest::prelude::*;
use store_support::*;

/// Panics anywhere in the process since the hook was installed.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// `default` cases, or as many as `PROPTEST_CASES` says (longer runs).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn consume_queue_entries_decode_any_bytes_and_round_trip(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        entry in any::<(u64, u32, u64)>(),
    ) {
        let _ = Entry::decode(&bytes);
        let entry = Entry { physical_offset: entry.0, size: entry.1, tag_hash: entry.2 };
        let mut buf = [0u8; ENTRY_LEN];
        entry.encode(&mut buf);
        if let Some(back) = Entry::decode(&buf) {
            prop_assert_eq!(back, entry);
        }
    }

    #[test]
    fn checkpoints_decode_any_bytes_and_catch_any_flipped_byte(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        fields in any::<(u64, u64, u64)>(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let _ = Checkpoint::decode(&bytes);
        let checkpoint = Checkpoint {
            commitlog_flushed: fields.0,
            dispatched: fields.1,
            timestamp_ms: fields.2,
        };
        let mut encoded = checkpoint.encode();
        prop_assert_eq!(Checkpoint::decode(&encoded).unwrap(), checkpoint);
        let at = at.index(encoded.len());
        encoded[at] ^= xor;
        prop_assert!(Checkpoint::decode(&encoded).is_err(), "flip at {} accepted", at);
    }

    #[test]
    fn tag_filters_parse_any_expression(expression in "\\PC{0,64}") {
        let _ = TagFilter::parse(&expression);
    }
}

fn config(recovery_mode: RecoveryMode) -> StoreConfig {
    StoreConfig {
        recovery_mode,
        ..small_config(FlushMode::Async)
    }
}

/// Every file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n != "lock") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn copy_dir(from: &Path, to: &Path) {
    for file in files(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

fn apply(path: &Path, damage: &Damage) {
    damage.apply_to_file(path).unwrap();
}

/// A store of 300 messages on two topics, several segments of every
/// kind, shut down cleanly: the original every case damages a copy of.
fn pristine() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let (store, _) =
                MessageStore::open(dir.path(), config(RecoveryMode::Fail), store_host()).unwrap();
            for i in 0..300u32 {
                let msg = keyed_message(
                    "fuzz",
                    &format!("k{i}"),
                    &format!("ID{i:08}"),
                    vec![i as u8; 200 + (i as usize * 37) % 900],
                );
                store.put(msg).await.unwrap();
                store
                    .put(message("other", i % 2, Some("t"), vec![1; 50]))
                    .await
                    .unwrap();
            }
            assert!(
                store
                    .indexed_up_to_now(std::time::Duration::from_secs(10))
                    .await
            );
            store.shutdown().unwrap();
        });
        dir
    })
    .path()
}

/// Reads every queue the store knows to its end, and looks up keys.
fn read_everything(store: &MessageStore) {
    for (topic, queue_id) in store.queues() {
        let Some((mut offset, end)) = store.queue_offsets(&topic, queue_id) else {
            continue;
        };
        let mut rounds = 0;
        while offset < end && rounds < 1_000 {
            let got = store.get_messages(&topic, queue_id, offset, 64, usize::MAX, &TagFilter::All);
            if got.next_offset <= offset {
                break;
            }
            offset = got.next_offset;
            rounds += 1;
        }
    }
    let _ = store.query_by_key("fuzz", "k7", 0, u64::MAX, 16);
    let _ = store.find_by_unique_id("ID00000007");
}

proptest! {
    // Each case opens a store: fewer cases, more per run with PROPTEST_CASES.
    #![proptest_config(ProptestConfig::with_cases(cases(48)))]

    #[test]
    fn a_store_opens_on_damaged_files_without_panicking(
        which in proptest::collection::vec((any::<prop::sample::Index>(), damage()), 1..4),
        lenient in any::<bool>(),
    ) {
        count_panics();
        let before = PANICS.load(Ordering::SeqCst);
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine(), dir.path());
        let all = files(dir.path());
        for (file, damage) in &which {
            apply(&all[file.index(all.len())], damage);
        }
        let mode = if lenient { RecoveryMode::SkipCorrupted } else { RecoveryMode::Fail };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            // An error naming the damage is a fine answer; a panic is not.
            if let Ok((store, _)) = MessageStore::open(dir.path(), config(mode), store_host()) {
                let store = Arc::new(store);
                let _ = store.indexed_up_to_now(std::time::Duration::from_secs(5)).await;
                read_everything(&store);
                store.shutdown().unwrap();
            }
        });
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), before, "a panic with {:?}", which);
    }
}
