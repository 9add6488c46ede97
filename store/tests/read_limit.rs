//! Reads by queue stop at the read limit (the group's confirmed end): the
//! records past it are stored and indexed, but no read, offset lookup or
//! time search hands them out until the limit rises past them.

#![allow(clippy::unwrap_used)]

mod store_support;

use std::time::Duration;

use mq_store::{FlushMode, GetStatus, TagFilter};
use store_support::{message, open, read_all};

#[tokio::test]
async fn reads_stop_at_the_limit_and_go_on_once_it_rises() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FlushMode::Async);
    let mut ends = Vec::new();
    for i in 0..10 {
        let put = store
            .put(message("t", 0, Some("a"), format!("m{i}")))
            .await
            .unwrap();
        ends.push(put.appended[0].end_offset());
    }
    assert_eq!(read_all(&store, "t", 0, 10).len(), 10);
    assert_eq!(store.read_limit().get(), None, "unlimited until set");

    // The group confirmed the first four records only.
    store.read_limit().raise_to(ends[3]);
    assert_eq!(store.queue_offsets("t", 0), Some((0, 4)));
    let read = store.get_messages("t", 0, 0, 64, usize::MAX, &TagFilter::All);
    assert_eq!(read.status, GetStatus::Found);
    let bodies: Vec<_> = read.messages.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies, ["m0", "m1", "m2", "m3"].map(bytes::Bytes::from));
    assert_eq!((read.next_offset, read.max_offset), (4, 4));
    assert!(read.held_back);

    // At the readable end, and past it up to the indexed end (a reader
    // that read before the limit was set): nothing new, wait there.
    for offset in [4, 7, 10] {
        let read = store.get_messages("t", 0, offset, 64, usize::MAX, &TagFilter::All);
        assert_eq!(read.status, GetStatus::NoNewMessage, "at {offset}");
        assert_eq!(read.next_offset, offset);
        assert!(read.messages.is_empty() && read.held_back);
    }
    // Past the indexed end: illegal, go to the readable end.
    let read = store.get_messages("t", 0, 11, 64, usize::MAX, &TagFilter::All);
    assert_eq!(
        (read.status, read.next_offset),
        (GetStatus::OffsetIllegal, 4)
    );
    // A search by time never lands past the readable end.
    assert_eq!(store.offset_for_time("t", 0, u64::MAX), Some(4));

    // A limit never falls.
    store.read_limit().raise_to(ends[1]);
    assert_eq!(store.queue_offsets("t", 0), Some((0, 4)));

    // A rise wakes whoever waits for it.
    let raised = store.read_limit().raised().notified();
    tokio::pin!(raised);
    raised.as_mut().enable();
    store.read_limit().raise_to(ends[8]);
    tokio::time::timeout(Duration::from_secs(1), raised)
        .await
        .expect("a rise notifies");
    let read = store.get_messages("t", 0, 4, 64, usize::MAX, &TagFilter::All);
    assert_eq!(read.messages.len(), 5);
    assert_eq!((read.next_offset, read.max_offset), (9, 9));

    // Lifted: to the end again.
    store.read_limit().lift();
    let read = store.get_messages("t", 0, 9, 64, usize::MAX, &TagFilter::All);
    assert_eq!(read.messages.len(), 1);
    assert!(!read.held_back);
    assert_eq!(store.queue_offsets("t", 0), Some((0, 10)));
}

#[tokio::test]
async fn a_limit_between_queues_records_holds_back_each_queue_at_its_own_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FlushMode::Async);
    let mut ends = Vec::new();
    // Interleaved: queue 0 gets even records, queue 1 odd ones.
    for i in 0..20u32 {
        let put = store
            .put(message("t", i % 2, None, format!("m{i}")))
            .await
            .unwrap();
        ends.push(put.appended[0].end_offset());
    }
    read_all(&store, "t", 1, 10);
    // Records 0..=12 confirmed: queue 0 has 0,2,..,12 (7), queue 1 has
    // 1,3,..,11 (6).
    store.read_limit().raise_to(ends[12]);
    assert_eq!(store.queue_offsets("t", 0), Some((0, 7)));
    assert_eq!(store.queue_offsets("t", 1), Some((0, 6)));
    // A limit inside a record holds that record back.
    store.read_limit().raise_to(ends[13] - 1);
    assert_eq!(store.queue_offsets("t", 1), Some((0, 6)));
    // Filters do not read past it either.
    let read = store.get_messages("t", 1, 0, 64, usize::MAX, &TagFilter::parse("x"));
    assert_eq!(
        (read.status, read.next_offset),
        (GetStatus::NoMatchedMessage, 6)
    );
}
