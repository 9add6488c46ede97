use super::*;

const PER_FILE: u64 = 4;

fn entry(n: u64) -> Entry {
    Entry {
        physical_offset: n * 100,
        size: 100,
        tag_hash: n,
    }
}

fn open(dir: &Path, commitlog_end: u64) -> (ConsumeQueue, QueueRecovery) {
    ConsumeQueue::open(dir, "t", 0, PER_FILE, commitlog_end).unwrap()
}

#[test]
fn entries_span_files_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _) = open(dir.path(), u64::MAX);
    for n in 0..10 {
        assert!(queue.put(n, entry(n)).unwrap());
    }
    assert_eq!((queue.min_offset(), queue.max_offset()), (0, 10));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        3,
        "4 entries per file"
    );
    let all = queue.entries(0, 100);
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(|(offset, e)| *e == entry(*offset)));
    assert_eq!(
        queue
            .entries(3, 4)
            .iter()
            .map(|(o, _)| *o)
            .collect::<Vec<_>>(),
        [3, 4, 5, 6]
    );
    assert!(queue.entries(10, 5).is_empty());
    assert_eq!(queue.last_end(), 1000);
}

#[test]
fn putting_an_indexed_offset_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _) = open(dir.path(), u64::MAX);
    queue.put(0, entry(0)).unwrap();
    assert!(!queue.put(0, entry(7)).unwrap());
    assert_eq!(queue.entries(0, 5), [(0, entry(0))]);
}

#[test]
fn a_queue_rebuilt_from_the_middle_starts_there_and_gaps_become_holes() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _) = open(dir.path(), u64::MAX);
    queue.put(6, entry(6)).unwrap();
    assert_eq!((queue.min_offset(), queue.max_offset()), (6, 7));
    queue.put(9, entry(9)).unwrap();
    assert_eq!(queue.max_offset(), 10);
    let offsets: Vec<u64> = queue.entries(0, 10).iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, [6, 9]);

    drop(queue);
    let (queue, recovery) = open(dir.path(), u64::MAX);
    assert!(!recovery.damaged);
    assert_eq!((queue.min_offset(), queue.max_offset()), (6, 10));
}

#[test]
fn reopening_drops_entries_past_the_commitlog_end() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (queue, _) = open(dir.path(), u64::MAX);
        for n in 0..6 {
            queue.put(n, entry(n)).unwrap();
        }
        queue.flush().unwrap();
    }
    // The CommitLog lost everything from offset 350 on.
    let (queue, recovery) = open(dir.path(), 350);
    assert!(recovery.damaged);
    assert_eq!(recovery.last_end, 300);
    assert_eq!(queue.max_offset(), 3);
    queue.put(3, entry(3)).unwrap();
    assert_eq!(queue.entries(0, 10).len(), 4);
}

#[test]
fn a_file_cut_short_is_reported_damaged_and_keeps_its_whole_entries() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (queue, _) = open(dir.path(), u64::MAX);
        for n in 0..3 {
            queue.put(n, entry(n)).unwrap();
        }
        queue.flush().unwrap();
    }
    let file = dir.path().join("00000000000000000000");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(45)
        .unwrap();
    let (queue, recovery) = open(dir.path(), u64::MAX);
    assert!(recovery.damaged);
    assert_eq!(queue.max_offset(), 2, "the third entry was torn");
    assert_eq!(recovery.last_end, 200);
}
