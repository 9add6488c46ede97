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
