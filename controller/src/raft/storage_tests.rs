//! openraft's own storage test suite against the log store and state
//! machine on disk, then what a restart reads back.

use openraft::storage::{RaftLogReader, RaftLogStorage, RaftLogStorageExt};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::{StorageError, TypeConfig};
use crate::state::Command;

struct OnDisk;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for OnDisk {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::open(dir.path()).unwrap();
        let machine = StateMachine::open(dir.path()).unwrap();
        Ok((dir, log, machine))
    }
}

#[test]
fn the_stores_pass_openraft_s_storage_suite() {
    Suite::test_all(OnDisk).unwrap();
}

fn entry(term: u64, index: u64, id: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Normal(Command::Register {
            group: "g".into(),
            id,
            addr: format!("a{id}"),
            max_offset: 0,
            last_log_epoch: 0,
        }),
    }
}

#[tokio::test]
async fn the_log_and_vote_survive_a_restart_and_a_torn_last_record_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = LogStore::open(dir.path()).unwrap();
        log.save_vote(&Vote::new(3, 1)).await.unwrap();
        log.blocking_append(vec![entry(3, 1, 0), entry(3, 2, 1), entry(3, 3, 2)])
            .await
            .unwrap();
        log.truncate(LogId::new(CommittedLeaderId::new(3, 1), 3))
            .await
            .unwrap();
    }
    // A crash mid-append leaves half a record.
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("raft-log"))
        .unwrap();
    file.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{']).unwrap();
    drop(file);

    let mut log = LogStore::open(dir.path()).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
    let entries = log.try_get_log_entries(0..10).await.unwrap();
    let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, [1, 2], "truncated at 3, torn record cut");
    log.blocking_append(vec![entry(4, 3, 9)]).await.unwrap();
    let reopened = LogStore::open(dir.path())
        .unwrap()
        .try_get_log_entries(3..4)
        .await;
    assert_eq!(
        reopened.unwrap()[0].log_id.index,
        3,
        "appends go on after the cut"
    );
}

/// A controller's Raft directory as it writes it: a log of five entries,
/// a vote, a committed id, and a snapshot of the first three applied.
async fn real_raft_dir() -> (tempfile::TempDir, Vec<String>) {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<Entry<TypeConfig>> = (1..=5).map(|i| entry(2, i, i)).collect();
    let mut log = LogStore::open(dir.path()).unwrap();
    log.save_vote(&Vote::new(2, 1)).await.unwrap();
    log.blocking_append(entries.clone()).await.unwrap();
    log.save_committed(Some(entries[2].log_id)).await.unwrap();
    let mut machine = StateMachine::open(dir.path()).unwrap();
    machine.apply(entries[..3].to_vec()).await.unwrap();
    machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let json = entries
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    (dir, json)
}

const RAFT_FILES: [&str; 4] = [
    "raft-log",
    "raft-vote.json",
    "raft-committed.json",
    "raft-snapshot.json",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(128)
    ))]

    /// Fuzzing the controller's Raft files (failures are kept in
    /// `storage_tests.proptest-regressions`): whatever the damage, opening
    /// them answers an error or what was written, never a panic and never
    /// an entry nobody appended (the log keeps a prefix of its records).
    #[test]
    fn damaged_raft_files_open_to_a_prefix_or_an_error(
        file in proptest::sample::select(&RAFT_FILES[..]),
        damages in proptest::collection::vec(mq_test_support::damage::damage(), 1..4),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (dir, written) = runtime.block_on(real_raft_dir());
        let path = dir.path().join(file);
        for damage in &damages {
            damage.apply_to_file(&path).unwrap();
        }
        let _ = StateMachine::open(dir.path());
        if let Ok(mut log) = LogStore::open(dir.path()) {
            let read = runtime.block_on(log.try_get_log_entries(0..u64::MAX)).unwrap();
            let read: Vec<String> = read.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
            proptest::prop_assert!(
                written.starts_with(&read),
                "the damaged log holds entries nobody appended: {:?}", read
            );
        }
    }

    #[test]
    fn arbitrary_raft_log_bytes_decode_to_whole_records_only(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
    ) {
        let (entries, valid) = super::log_store::decode_all(&bytes);
        proptest::prop_assert!(valid <= bytes.len());
        proptest::prop_assert!(entries.is_empty() || valid > 0);
    }
}

/// A record whose JSON still parses after the damage (one address changed
/// in place) is caught by its checksum, and since whole records follow it
/// (entries Raft may have committed), the log is refused, naming file and
/// offset, instead of cut there. Damage to the last record is a torn
/// append: cut.
#[tokio::test]
async fn a_damaged_record_with_records_after_it_is_refused_a_damaged_last_one_cut() {
    let damage = |dir: &std::path::Path, needle: &[u8]| {
        let path = dir.join("raft-log");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        bytes[at + needle.len() - 2] = b'7';
        std::fs::write(&path, bytes).unwrap();
    };
    let (dir, _) = real_raft_dir().await;
    damage(dir.path(), br#""addr":"a4""#);
    let err = LogStore::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("raft-log: the record at offset")
            && err.contains("bytes of records follow it"),
        "{err}"
    );

    let (dir, written) = real_raft_dir().await;
    damage(dir.path(), br#""addr":"a5""#);
    let mut log = LogStore::open(dir.path()).unwrap();
    let read = log.try_get_log_entries(0..u64::MAX).await.unwrap();
    let read: Vec<String> = read
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert_eq!(read, written[..4], "the torn last record is cut");
}
