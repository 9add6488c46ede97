use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mq_store::{MessageStore, MessageToStore, StoreConfig, StoredMessage};

use super::*;
use crate::transaction::{end_record, half};

fn open(dir: &Path) -> Arc<MessageStore> {
    let (store, _) =
        MessageStore::open(dir, StoreConfig::default(), "127.0.0.1:1".parse().unwrap()).unwrap();
    Arc::new(store)
}

/// Stores a half message and returns it as read back from its queue.
async fn begin(store: &MessageStore, body: &'static str) -> StoredMessage {
    let put = store
        .put(half(MessageToStore::new("orders", 0, body), "g"))
        .await
        .unwrap();
    let offset = put.appended[0].queue_offset;
    assert!(store.indexed_up_to_now(Duration::from_secs(5)).await);
    crate::transaction::read_half(store, offset).unwrap()
}

#[tokio::test]
async fn an_end_appended_just_before_a_save_and_a_crash_is_found_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("store"));
    let path = dir.path().join("transactions.json");
    let open_half = begin(&store, "a").await;
    let book = TransactionBook::recover(Arc::clone(&store), path.clone()).unwrap();
    // An end is under way: begun, its record appended, the book not told
    // yet, when the book is saved and the process dies.
    let begun = store.log_end();
    book.state().ending.insert(open_half.queue_offset, begun);
    store
        .put(end_record(&open_half, Outcome::Committed).unwrap())
        .await
        .unwrap();
    book.save();
    let saved: Saved = atomic_file::read_json(&path).unwrap().unwrap();
    assert_eq!(
        saved.log_end, begun,
        "the save stays below the end under way"
    );
    drop(book);
    let book = TransactionBook::recover(Arc::clone(&store), path).unwrap();
    assert!(book.settled(open_half.queue_offset));
    let again = book.end(&open_half, Outcome::RolledBack).await.unwrap_err();
    assert!(
        matches!(
            again,
            EndError::NotOpen(NotOpen::Ended(Some(Outcome::Committed)))
        ),
        "{again:?}"
    );
}

#[tokio::test]
async fn without_a_saved_book_the_marks_are_read_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("store"));
    let path = dir.path().join("transactions.json");
    let first = begin(&store, "a").await;
    let second = begin(&store, "b").await;
    let third = begin(&store, "c").await;
    store
        .put(end_record(&second, Outcome::RolledBack).unwrap())
        .await
        .unwrap();
    store
        .put(end_record(&first, Outcome::Committed).unwrap())
        .await
        .unwrap();
    let book = TransactionBook::recover(Arc::clone(&store), path).unwrap();
    assert_eq!(book.open_from(), third.queue_offset, "the first two ended");
    assert!(book.settled(first.queue_offset) && book.settled(second.queue_offset));
    assert!(!book.settled(third.queue_offset));
    // Checks are counted per transaction and dropped with its end.
    assert_eq!(book.checked(third.queue_offset, 10).count, 1);
    assert_eq!(
        book.checked(third.queue_offset, 20),
        Checks {
            count: 2,
            last_ms: 20
        }
    );
    book.end(&third, Outcome::Committed).await.unwrap();
    assert_eq!(book.checks(third.queue_offset), Checks::default());
    assert_eq!(book.open_from(), third.queue_offset + 1);
}
