use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::commitlog::recover::{Cut, Damage, Flushed};
use crate::config::RecoveryMode;
use crate::env::FixedDiskUsage;
use crate::mapped_file::TailScan;

const SEGMENT: u64 = 4096;

fn options() -> CommitLogOptions {
    CommitLogOptions {
        segment_size: SEGMENT,
        max_message_size: 2048,
        map: MapOptions::default(),
        preallocate: 2,
        store_host: "10.0.0.1:10911".parse().unwrap(),
        transient_pool_buffers: None,
        on_damage: RecoveryMode::Fail,
    }
}

fn message(topic: &str, queue_id: u32, body_len: usize, seed: u8) -> MessageToStore {
    MessageToStore {
        born_timestamp_ms: 1,
        born_host: "127.0.0.1:5000".parse().unwrap(),
        ..MessageToStore::new(topic, queue_id, vec![seed; body_len])
    }
}

fn open(dir: &Path) -> (CommitLog, Recovered) {
    CommitLog::open(dir, options(), headroom(), &plan(RecoveryMode::Fail)).unwrap()
}

/// A recovery after a crash without a checkpoint: every record is checked.
fn plan(mode: RecoveryMode) -> Plan {
    Plan {
        scan_from: 0,
        tail: TailScan::Whole,
        flushed: Flushed::BeforeLastSegment,
        mode,
        clean_end: None,
    }
}

/// A disk that always has room.
fn headroom() -> Headroom {
    Headroom {
        disk: Arc::new(FixedDiskUsage::new(0.0)),
        max_used_ratio: 1.0,
    }
}

/// Every record from the start, following segment ends, as the dispatcher does.
fn walk(log: &CommitLog) -> Vec<StoredMessage> {
    let mut offset = log.min_offset();
    let mut found = Vec::new();
    loop {
        match log.next(offset).unwrap() {
            Next::Record(bytes) => {
                let msg = record::decode(&bytes).unwrap();
                assert_eq!(msg.physical_offset, offset);
                offset += bytes.len() as u64;
                found.push(msg);
            }
            Next::SegmentEnd(next) | Next::Skipped(next) => offset = next,
            Next::Nothing => return found,
        }
    }
}

#[test]
fn records_of_many_sizes_roll_over_without_spanning_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path());
    let mut written = Vec::new();
    for i in 0..200usize {
        let body = (i * 37) % 1500;
        let appended = log
            .append(&[message("sizes", 0, body, i as u8)], 100)
            .unwrap()[0];
        // A record never crosses a segment boundary.
        let segment_of = |offset: u64| offset / SEGMENT;
        assert_eq!(
            segment_of(appended.physical_offset),
            segment_of(appended.end_offset() - 1)
        );
        assert_eq!(appended.queue_offset, i as u64);
        written.push((appended, body, i as u8));
    }
    let segments = log.segments().all();
    assert!(segments.len() > 20, "only {} segments", segments.len());
    // Every full segment ends with a marker covering its rest.
    for segment in &segments[..segments.len() - 1] {
        assert_eq!(segment.write_pos(), segment.size());
    }
    for (appended, body, seed) in &written {
        let msg = log
            .read_message(appended.physical_offset, appended.size)
            .unwrap()
            .unwrap();
        assert_eq!(msg.body.len(), *body);
        assert!(msg.body.iter().all(|b| b == seed));
    }
    let walked = walk(&log);
    assert_eq!(walked.len(), 200);
    assert!(
        walked
            .windows(2)
            .all(|w| w[0].queue_offset + 1 == w[1].queue_offset)
    );
}

#[test]
fn oversized_messages_and_batches_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path());
    let err = log.append(&[message("big", 0, 4000, 0)], 0).unwrap_err();
    assert!(
        matches!(err, StoreError::MessageTooLarge { max: 2048, .. }),
        "{err}"
    );
    let batch: Vec<_> = (0..3).map(|i| message("big", 0, 1500, i)).collect();
    let err = log.append(&batch, 0).unwrap_err();
    assert!(matches!(err, StoreError::BatchTooLarge { .. }), "{err}");
    assert!(matches!(log.append(&[], 0), Err(StoreError::EmptyBatch)));
    assert_eq!(log.max_offset(), 0, "nothing was written");
    assert_eq!(
        log.append(&[message("big", 0, 10, 0)], 0).unwrap()[0].queue_offset,
        0
    );
}

#[test]
fn a_batch_is_consecutive_with_dense_queue_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path());
    log.append(&[message("t", 1, 10, 0)], 0).unwrap();
    let batch: Vec<_> = (0..5).map(|i| message("t", 1, 100, i)).collect();
    let appended = log.append(&batch, 0).unwrap();
    let offsets: Vec<u64> = appended.iter().map(|a| a.queue_offset).collect();
    assert_eq!(offsets, [1, 2, 3, 4, 5]);
    assert!(
        appended
            .windows(2)
            .all(|w| w[0].end_offset() == w[1].physical_offset)
    );
}

#[test]
fn concurrent_appenders_never_interleave_and_queue_offsets_stay_dense() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        CommitLog::open(
            dir.path(),
            CommitLogOptions {
                segment_size: 64 * 1024,
                ..options()
            },
            headroom(),
            &plan(RecoveryMode::Fail),
        )
        .unwrap()
        .0,
    );
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..300u32 {
                    let queue = i % 4;
                    let body = 10 + ((t * 31 + i * 7) % 500) as usize;
                    log.append(&[message("conc", queue, body, t as u8)], 0)
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let walked = walk(&log);
    assert_eq!(walked.len(), 8 * 300);
    let mut per_queue: HashMap<u32, Vec<u64>> = HashMap::new();
    for msg in &walked {
        assert!(msg.body.iter().all(|&b| b == msg.body[0]), "torn body");
        per_queue
            .entry(msg.queue_id)
            .or_default()
            .push(msg.queue_offset);
    }
    for (queue, offsets) in per_queue {
        let expected: Vec<u64> = (0..offsets.len() as u64).collect();
        assert_eq!(
            offsets, expected,
            "queue {queue}: offsets must be dense and in log order"
        );
    }
}

#[test]
fn reopening_finds_the_end_and_keeps_appending_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let end = {
        let (log, _) = open(dir.path());
        // 10 records of 400 bytes fill a segment: 25 leave room in the third.
        for i in 0..25 {
            log.append(&[message("r", 0, 300, i)], 0).unwrap();
        }
        log.flush().unwrap();
        log.max_offset()
    };
    let (log, recovered) = open(dir.path());
    assert_eq!(recovered.end_offset, end);
    assert_eq!(recovered.truncation, None);
    assert_eq!(walk(&log).len(), 25);
    let next = log.append(&[message("r", 0, 10, 0)], 0).unwrap()[0];
    assert_eq!(next.physical_offset, end);
}

/// The segment file holding `offset`.
fn segment_path(dir: &Path, offset: u64) -> std::path::PathBuf {
    dir.join(crate::mapped_file::segment_name(offset - offset % SEGMENT))
}

#[test]
fn a_torn_tail_is_cut_at_the_last_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    let (appended, total) = {
        let (log, _) = open(dir.path());
        let appended: Vec<_> = (0..5)
            .map(|i| log.append(&[message("torn", 0, 200, i)], 0).unwrap()[0])
            .collect();
        log.flush().unwrap();
        (appended, log.max_offset())
    };
    // Tear the last record: keep its first half, zero the rest.
    let last = appended[4];
    let file = segment_path(dir.path(), last.physical_offset);
    let mut bytes = std::fs::read(&file).unwrap();
    let cut = (last.physical_offset % SEGMENT) as usize + last.size as usize / 2;
    bytes[cut..total as usize % SEGMENT as usize].fill(0);
    std::fs::write(&file, &bytes).unwrap();

    let (log, recovered) = open(dir.path());
    assert_eq!(recovered.end_offset, last.physical_offset);
    let truncation = recovered.truncation.expect("the cut is reported");
    assert_eq!(truncation.offset, last.physical_offset);
    assert!(
        matches!(truncation.cut, Cut::Damaged(Damage::Invalid(_))),
        "{truncation:?}"
    );
    assert!(
        truncation
            .to_string()
            .contains(&format!("at offset {}", last.physical_offset)),
        "{truncation}"
    );
    assert_eq!(walk(&log).len(), 4);
    // The torn bytes are gone from disk, not just skipped.
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        bytes[last.physical_offset as usize % SEGMENT as usize..]
            .iter()
            .all(|&b| b == 0)
    );
}

#[test]
fn a_segment_file_cut_short_mid_record_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let appended = {
        let (log, _) = open(dir.path());
        let appended: Vec<_> = (0..5)
            .map(|i| log.append(&[message("short", 0, 200, i)], 0).unwrap()[0])
            .collect();
        log.flush().unwrap();
        appended
    };
    let last = appended[4];
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(segment_path(dir.path(), 0))
        .unwrap();
    file.set_len(last.physical_offset + 50).unwrap();
    drop(file);

    let (log, recovered) = open(dir.path());
    assert_eq!(recovered.end_offset, last.physical_offset);
    assert_eq!(recovered.truncation.unwrap().offset, last.physical_offset);
    assert_eq!(walk(&log).len(), 4);
    // Queue offsets are restored by the store from its ConsumeQueues.
    let appended = log.append(&[message("short", 0, 10, 9)], 0).unwrap()[0];
    assert_eq!(appended.physical_offset, last.physical_offset);
}

#[test]
fn a_corrupted_byte_cuts_the_log_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let appended = {
        let (log, _) = open(dir.path());
        let appended: Vec<_> = (0..6)
            .map(|i| log.append(&[message("crc", 0, 100, i)], 0).unwrap()[0])
            .collect();
        log.flush().unwrap();
        appended
    };
    let victim = appended[3];
    let file = segment_path(dir.path(), victim.physical_offset);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[(victim.physical_offset % SEGMENT) as usize + 120] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();

    let (log, recovered) = open(dir.path());
    assert_eq!(recovered.end_offset, victim.physical_offset);
    // After a crash without a checkpoint the last segment may hold torn
    // writes in any order: the records after the damage go with it.
    let truncation = recovered.truncation.unwrap();
    assert!(
        matches!(
            truncation.cut,
            Cut::Unflushed {
                damage: Damage::Invalid(RecordError::CrcMismatch { .. }),
                discarded_from,
            } if discarded_from == appended[4].physical_offset
        ),
        "{truncation:?}"
    );
    assert!(
        truncation.to_string().contains("CRC mismatch"),
        "{truncation}"
    );
    let survivors: Vec<u64> = walk(&log).iter().map(|m| m.queue_offset).collect();
    assert_eq!(survivors, [0, 1, 2]);
}

/// 20 records of about 1 KiB over four segments, flushed; returns them.
fn four_segments(dir: &Path) -> Vec<Appended> {
    let (log, _) = open(dir);
    let appended: Vec<_> = (0..20)
        .map(|i| log.append(&[message("span", 0, 1000, i)], 0).unwrap()[0])
        .collect();
    log.flush().unwrap();
    assert!(appended.last().unwrap().physical_offset >= 3 * SEGMENT);
    appended
}

/// Flips a byte inside the record (past its header) at `offset`.
fn damage(dir: &Path, offset: u64) {
    let file = segment_path(dir, offset);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[(offset % SEGMENT) as usize + 120] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
}

fn open_with(dir: &Path, plan: &Plan) -> Result<(CommitLog, Recovered), StoreError> {
    CommitLog::open(dir, options(), headroom(), plan)
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn corruption_followed_by_valid_records_fails_recovery_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let appended = four_segments(dir.path());
    let victim = appended[6];
    assert!(
        victim.physical_offset / SEGMENT < 3,
        "not in the last segment"
    );
    damage(dir.path(), victim.physical_offset);
    let before: Vec<Vec<u8>> = segment_files(dir.path())
        .iter()
        .map(|name| std::fs::read(dir.path().join(name)).unwrap())
        .collect();

    let err = open_with(dir.path(), &plan(RecoveryMode::Fail)).unwrap_err();
    let text = err.to_string();
    let file = segment_path(dir.path(), victim.physical_offset);
    assert!(
        matches!(&err, StoreError::Corrupted { offset, .. } if *offset == victim.physical_offset),
        "{text}"
    );
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(text.contains("CRC mismatch"), "{text}");
    assert!(
        text.contains(&format!(
            "valid records follow at offset {}",
            appended[7].physical_offset
        )),
        "{text}"
    );
    assert!(
        text.contains("recovery_mode = \"skip_corrupted\""),
        "{text}"
    );
    let after: Vec<Vec<u8>> = segment_files(dir.path())
        .iter()
        .map(|name| std::fs::read(dir.path().join(name)).unwrap())
        .collect();
    assert!(before == after, "nothing was changed or deleted");
}

#[test]
fn skip_corrupted_keeps_every_record_after_the_damage_and_saves_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let appended = four_segments(dir.path());
    let victim = appended[6];
    damage(dir.path(), victim.physical_offset);

    let (log, recovered) = open_with(dir.path(), &plan(RecoveryMode::SkipCorrupted)).unwrap();
    assert_eq!(recovered.truncation, None);
    assert_eq!(recovered.end_offset, appended[19].end_offset());
    let [skipped] = &recovered.skipped[..] else {
        panic!("one range skipped: {:?}", recovered.skipped)
    };
    assert_eq!(
        (skipped.from, skipped.to),
        (victim.physical_offset, victim.end_offset())
    );
    assert!(
        matches!(
            skipped.damage,
            Damage::Invalid(RecordError::CrcMismatch { .. })
        ),
        "{skipped:?}"
    );
    let saved = std::fs::read(&skipped.saved_to).unwrap();
    assert_eq!(saved.len(), victim.size as usize);
    let survivors: Vec<u64> = walk(&log).iter().map(|m| m.queue_offset).collect();
    let expected: Vec<u64> = (0..20).filter(|&q| q != 6).collect();
    assert_eq!(survivors, expected, "every record but the damaged one");
    drop(log);

    // The marker is part of the log now: a strict reopen finds nothing wrong.
    let (log, recovered) = open_with(dir.path(), &plan(RecoveryMode::Fail)).unwrap();
    assert!(recovered.skipped.is_empty() && recovered.truncation.is_none());
    assert_eq!(walk(&log).len(), 19);
}

#[test]
fn a_damaged_segment_end_is_skipped_up_to_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    let appended = four_segments(dir.path());
    // The last record of segment 0: the data resumes in segment 1.
    let victim = *appended
        .iter()
        .rfind(|a| a.physical_offset < SEGMENT)
        .unwrap();
    let file = segment_path(dir.path(), 0);
    let mut bytes = std::fs::read(&file).unwrap();
    // Its header and the end marker after it.
    bytes[victim.physical_offset as usize..].fill(0x77);
    std::fs::write(&file, &bytes).unwrap();

    let (log, recovered) = open_with(dir.path(), &plan(RecoveryMode::SkipCorrupted)).unwrap();
    assert_eq!(
        (recovered.skipped[0].from, recovered.skipped[0].to),
        (victim.physical_offset, SEGMENT)
    );
    assert_eq!(walk(&log).len(), 19);
}

#[test]
fn after_a_clean_shutdown_damage_in_the_last_segment_is_corruption_too() {
    let dir = tempfile::tempdir().unwrap();
    let appended = four_segments(dir.path());
    damage(dir.path(), appended[17].physical_offset);
    let clean = Plan {
        tail: TailScan::UntilZeroPage,
        flushed: Flushed::Everything,
        ..plan(RecoveryMode::Fail)
    };
    let err = open_with(dir.path(), &clean).unwrap_err();
    assert!(matches!(err, StoreError::Corrupted { .. }), "{err}");
}

#[test]
fn a_clean_end_from_the_checkpoint_still_finds_a_hole_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let appended = four_segments(dir.path());
    let end = appended.last().unwrap().end_offset();
    let clean = Plan {
        tail: TailScan::UntilZeroPage,
        flushed: Flushed::Everything,
        clean_end: Some(end),
        ..plan(RecoveryMode::Fail)
    };
    let (log, recovered) = open_with(dir.path(), &clean).unwrap();
    assert_eq!((recovered.end_offset, recovered.truncation), (end, None));
    drop(log);
    // A hole (zeroed record) before the recorded end: the data stops
    // short of it, so the rest is searched and the records after the hole
    // are found: corruption, not a silent cut.
    let hole = appended[17].physical_offset;
    let file = segment_path(dir.path(), hole);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = (hole % SEGMENT) as usize;
    bytes[at..at + 64].fill(0);
    std::fs::write(&file, &bytes).unwrap();
    let err = open_with(dir.path(), &clean).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupted { offset, .. } if offset == hole),
        "{err}"
    );
}

#[test]
fn after_a_crash_damage_past_the_flushed_mark_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let appended = four_segments(dir.path());
    let victim = appended[10];
    damage(dir.path(), victim.physical_offset);
    let crashed = Plan {
        flushed: Flushed::Below(victim.physical_offset),
        ..plan(RecoveryMode::Fail)
    };
    let (log, recovered) = open_with(dir.path(), &crashed).unwrap();
    assert_eq!(recovered.end_offset, victim.physical_offset);
    let truncation = recovered.truncation.unwrap();
    assert!(
        matches!(
            truncation.cut,
            Cut::Unflushed { discarded_from, .. } if discarded_from == appended[11].physical_offset
        ),
        "{truncation:?}"
    );
    assert!(
        truncation.to_string().contains("were not flushed"),
        "{truncation}"
    );
    assert_eq!(walk(&log).len(), 10);
}

#[test]
fn recovery_never_panics_on_garbage_segments() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 64,
        ..Default::default()
    });
    runner
        .run(
            &(
                proptest::collection::vec(any::<u8>(), 0..(SEGMENT as usize)),
                0..SEGMENT as usize,
            ),
            |(garbage, at)| {
                let dir = tempfile::tempdir().unwrap();
                {
                    let (log, _) = open(dir.path());
                    for i in 0..8 {
                        log.append(&[message("fuzz", 0, 300, i)], 0).unwrap();
                    }
                    log.flush().unwrap();
                }
                let file = segment_path(dir.path(), 0);
                let mut bytes = std::fs::read(&file).unwrap();
                let end = (at + garbage.len()).min(bytes.len());
                bytes[at..end].copy_from_slice(&garbage[..end - at]);
                std::fs::write(&file, &bytes).unwrap();
                let (log, recovered) = open(dir.path());
                // Whatever remains is readable, and appends go on after it.
                let walked = walk(&log);
                prop_assert!(walked.len() <= 8);
                // 8 records of 403 bytes were written.
                prop_assert!(recovered.end_offset <= 8 * 403);
                let next = log.append(&[message("fuzz", 0, 1, 0)], 0).unwrap()[0];
                prop_assert!(next.physical_offset >= recovered.end_offset);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn the_next_segment_is_prepared_before_it_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path());
    log.append(&[message("pre", 0, 10, 0)], 0).unwrap();
    // The allocator creates segment 1 in the background while 0 fills.
    let next = dir.path().join(crate::mapped_file::segment_name(SEGMENT));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !next.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(next.exists(), "segment 1 was not pre-allocated");
    // The rollover takes that file: the log then holds exactly two.
    while log.segments().all().len() < 2 {
        log.append(&[message("pre", 0, 1000, 0)], 0).unwrap();
    }
    assert_eq!(log.segments().all()[1].base_offset(), SEGMENT);
}

/// The bytes of every segment file in `dir`.
fn segment_bytes(dir: &Path) -> Vec<Vec<u8>> {
    segment_files(dir)
        .iter()
        .map(|name| std::fs::read(dir.join(name)).unwrap())
        .collect()
}

#[test]
fn strict_recovery_refuses_a_torn_tail_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let appended = {
        let (log, _) = open(dir.path());
        let appended: Vec<_> = (0..5)
            .map(|i| log.append(&[message("strict", 0, 200, i)], 0).unwrap()[0])
            .collect();
        log.flush().unwrap();
        appended
    };
    // Half of the last record's body is zeroed: a torn write.
    let last = appended[4];
    let file = segment_path(dir.path(), last.physical_offset);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = (last.physical_offset % SEGMENT) as usize;
    bytes[at + 150..at + last.size as usize].fill(0);
    std::fs::write(&file, &bytes).unwrap();
    let before = segment_bytes(dir.path());

    let err = open_with(dir.path(), &plan(RecoveryMode::Strict)).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, StoreError::WouldCut { truncation, .. } if truncation.offset == last.physical_offset),
        "{text}"
    );
    assert!(text.contains("recovery_mode = \"fail\""), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(before == segment_bytes(dir.path()), "nothing was changed");

    // The default mode cuts it.
    let (log, recovered) = open_with(dir.path(), &plan(RecoveryMode::Fail)).unwrap();
    assert_eq!(recovered.end_offset, last.physical_offset);
    assert_eq!(walk(&log).len(), 4);
}

#[test]
fn strict_recovery_refuses_corruption_and_unflushed_damage_but_opens_a_clean_log() {
    let dir = tempfile::tempdir().unwrap();
    let appended = four_segments(dir.path());
    let (_, clean) = open_with(dir.path(), &plan(RecoveryMode::Strict)).unwrap();
    assert_eq!((clean.truncation, clean.skipped.len()), (None, 0));

    let victim = appended[10];
    damage(dir.path(), victim.physical_offset);
    let before = segment_bytes(dir.path());
    let err = open_with(dir.path(), &plan(RecoveryMode::Strict)).unwrap_err();
    assert!(matches!(err, StoreError::Corrupted { .. }), "{err}");
    // Past the last flush before a crash, where `fail` would cut it.
    let crashed = Plan {
        flushed: Flushed::Below(victim.physical_offset),
        ..plan(RecoveryMode::Strict)
    };
    let err = open_with(dir.path(), &crashed).unwrap_err();
    assert!(
        matches!(&err, StoreError::WouldCut { truncation, .. } if matches!(truncation.cut, Cut::Unflushed { .. })),
        "{err}"
    );
    assert!(before == segment_bytes(dir.path()), "nothing was changed");
}
