use super::*;

fn key(queue_id: u32) -> QueueKey {
    QueueKey {
        group: "g".into(),
        topic: "t".into(),
        queue_id,
    }
}

fn lease(attempt: u32, token: u64) -> Lease {
    Lease {
        visible_at_ms: 1_000,
        attempt,
        token,
    }
}

fn leased(queue_id: u32, cursor: u64, offsets: &[u64]) -> Record {
    Record::Leased {
        key: key(queue_id),
        cursor,
        leases: offsets.iter().map(|o| (*o, lease(1, *o + 100))).collect(),
    }
}

#[test]
fn leases_and_acks_move_the_committed_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (book, _) = PopBook::open(dir.path(), false).unwrap();
    book.update(|_| (vec![leased(0, 3, &[0, 1, 2])], ()))
        .unwrap();
    assert_eq!(book.queue(&key(0)).unwrap().committed(), 0);
    book.update(|_| {
        (
            vec![Record::Acked {
                key: key(0),
                offsets: vec![0, 2],
            }],
            (),
        )
    })
    .unwrap();
    let queue = book.queue(&key(0)).unwrap();
    assert_eq!(queue.committed(), 1);
    assert_eq!(queue.cursor, 3);
    // A redelivery leaves the cursor where it was.
    book.update(|_| {
        (
            vec![Record::Leased {
                key: key(0),
                cursor: 0,
                leases: vec![(1, lease(2, 7))],
            }],
            (),
        )
    })
    .unwrap();
    let queue = book.queue(&key(0)).unwrap();
    assert_eq!(queue.cursor, 3);
    assert_eq!(queue.leases[&1], lease(2, 7));
}

#[test]
fn the_book_survives_a_reopen_and_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (book, _) = PopBook::open(dir.path(), true).unwrap();
        book.update(|_| (vec![leased(0, 2, &[0, 1]), leased(1, 1, &[0])], ()))
            .unwrap();
        book.update(|_| {
            (
                vec![Record::Acked {
                    key: key(0),
                    offsets: vec![0],
                }],
                (),
            )
        })
        .unwrap();
    }
    let (book, cut) = PopBook::open(dir.path(), true).unwrap();
    assert_eq!(cut, 0);
    let queue = book.queue(&key(0)).unwrap();
    assert_eq!((queue.cursor, queue.leases.len()), (2, 1));
    assert!(queue.leases.contains_key(&1));

    // Fold into a snapshot by hand, then change more: both survive.
    {
        let mut inner = book.lock();
        let Inner { queues, journal } = &mut *inner;
        journal.compact(queues).unwrap();
    }
    book.update(|_| (vec![leased(0, 5, &[2, 3, 4])], ()))
        .unwrap();
    drop(book);
    let (book, _) = PopBook::open(dir.path(), true).unwrap();
    let queue = book.queue(&key(0)).unwrap();
    assert_eq!(queue.cursor, 5);
    assert_eq!(
        queue.leases.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(book.queue(&key(1)).unwrap().leases.len(), 1);
}

#[test]
fn a_torn_or_corrupted_tail_is_cut_and_what_came_before_stands() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (book, _) = PopBook::open(dir.path(), true).unwrap();
        book.update(|_| (vec![leased(0, 2, &[0, 1])], ())).unwrap();
        book.update(|_| (vec![leased(0, 4, &[2, 3])], ())).unwrap();
    }
    let path = dir.path().join("journal.log");
    let mut bytes = std::fs::read(&path).unwrap();
    let whole = bytes.len();
    // Flip a byte in the second line's JSON, then tear a third line.
    let second = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    bytes[second + 20] ^= 0x20;
    let torn = b"3 deadbeef {\"op\":\"ack";
    bytes.extend_from_slice(torn);
    std::fs::write(&path, &bytes).unwrap();

    let (book, cut) = PopBook::open(dir.path(), true).unwrap();
    assert_eq!(cut as usize, whole - second + torn.len());
    let queue = book.queue(&key(0)).unwrap();
    assert_eq!((queue.cursor, queue.leases.len()), (2, 2));
    assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, second);
    // And the journal goes on from there.
    book.update(|_| (vec![leased(0, 3, &[2])], ())).unwrap();
    drop(book);
    let (book, cut) = PopBook::open(dir.path(), true).unwrap();
    assert_eq!(cut, 0);
    assert_eq!(book.queue(&key(0)).unwrap().cursor, 3);
}
