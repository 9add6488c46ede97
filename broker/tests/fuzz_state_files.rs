//! Fuzzing the broker's own state files, which it reads at start: the
//! topic table (`topics.json`), consumer offsets (`consumer_offsets.json`)
//! and the scheduler's progress (`schedule_progress.json`). Inputs are
//! arbitrary bytes and real files with bytes flipped, overwritten or cut
//! (proptest, bounded cases; `PROPTEST_CASES` runs more, failures are kept
//! in `fuzz_state_files.proptest-regressions` as the corpus). Nothing may
//! panic; a file that loads must hold only what the broker could have
//! written (a topic config that fails its checks is refused, by name).

#![allow(clippy::unwrap_used)]

use std::path::Path;

use mq_broker::consumer_offsets::ConsumerOffsets;
use mq_broker::schedule::scheduler::Progress;
use mq_broker::topic_table::{TopicConfig, TopicTable};
use mq_test_support::damage::damage;
use proptest::prelude::*;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Real files, as the broker writes them, under `dir`.
fn write_real_files(dir: &Path) {
    let topics = TopicTable::load(&dir.join("topics.json")).unwrap();
    for (i, queues) in [1, 4, 16].into_iter().enumerate() {
        topics
            .get_or_create(TopicConfig::new(&format!("topic-{i}"), queues))
            .unwrap();
    }
    let offsets = ConsumerOffsets::load(&dir.join("consumer_offsets.json")).unwrap();
    offsets.commit("group-a", "topic-1", 3, 1_234);
    offsets.commit("group-b", "topic-2", 15, u64::MAX / 3);
    offsets.reset("group-a", "topic-1", &[(0, 7)]);
    offsets.persist().unwrap();
    Progress {
        log_end: 987_654,
        offsets: [(1, 40), (3, 2)].into(),
    }
    .save(&dir.join("schedule_progress.json"))
    .unwrap();
}

/// Loads every state file in `dir` as the broker does at start.
fn load_all(dir: &Path) -> Result<(), String> {
    if let Ok(topics) = TopicTable::load(&dir.join("topics.json")) {
        for (i, config) in topics.snapshot().0.iter().enumerate() {
            config
                .check(&format!("topics[{i}]."))
                .map_err(|e| format!("a loaded topic fails its checks: {e}"))?;
        }
    }
    let _ = ConsumerOffsets::load(&dir.join("consumer_offsets.json"));
    let _ = Progress::load(&dir.join("schedule_progress.json"));
    Ok(())
}

const FILES: [&str; 3] = [
    "topics.json",
    "consumer_offsets.json",
    "schedule_progress.json",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn damaged_state_files_load_or_are_refused(
        file in prop::sample::select(&FILES[..]),
        damages in proptest::collection::vec(damage(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_real_files(dir.path());
        let path = dir.path().join(file);
        for damage in &damages {
            damage.apply_to_file(&path).unwrap();
        }
        prop_assert_eq!(load_all(dir.path()), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_load_or_are_refused(
        file in prop::sample::select(&FILES[..]),
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file), bytes).unwrap();
        prop_assert_eq!(load_all(dir.path()), Ok(()));
    }

    /// JSON that parses but says something impossible: a topic with no
    /// queues, too many, a bad name or permission.
    #[test]
    fn impossible_topic_configs_are_refused_by_name(
        topic in prop_oneof!["[A-Za-z0-9_%|-]{0,40}", "\\PC{0,300}"],
        read in prop_oneof![0u32..2000, any::<u32>()],
        write in prop_oneof![0u32..2000, any::<u32>()],
        perm in prop_oneof![0u32..8, any::<u32>()],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = TopicConfig { topic, read_queue_count: read, write_queue_count: write, perm, message_type: Default::default() };
        let valid = config.check("").is_ok();
        let json = serde_json::json!({"version": 1, "topics": [config]});
        std::fs::write(dir.path().join("topics.json"), json.to_string()).unwrap();
        match TopicTable::load(&dir.path().join("topics.json")) {
            Ok(_) => prop_assert!(valid, "an invalid topic config was loaded"),
            Err(err) => {
                prop_assert!(!valid, "a valid topic config was refused: {}", err);
                prop_assert!(err.to_string().contains("topics.json"), "{}", err);
                prop_assert!(err.to_string().contains("topics[0]."), "{}", err);
            }
        }
    }
}

/// A topic table cut in half (a torn write the atomic replace prevents)
/// is refused with the file named, not loaded as empty.
#[test]
fn a_cut_topic_table_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_real_files(dir.path());
    let path = dir.path().join("topics.json");
    let content = std::fs::read(&path).unwrap();
    std::fs::write(&path, &content[..content.len() / 2]).unwrap();
    let err = TopicTable::load(&path).err().unwrap().to_string();
    assert!(err.contains("topics.json"), "{err}");
}
