use std::net::SocketAddr;

use super::*;
use crate::message::{QueuePosition, Schedule};

fn limits(entries: usize, windows: usize) -> Limits {
    Limits {
        window: Duration::from_secs(60),
        entries,
        windows,
    }
}

fn key(producer: u64, queue_id: u32) -> WindowKey {
    WindowKey {
        producer,
        topic: "t".into(),
        queue_id,
    }
}

/// What claiming one number found, in the shape of the old single claim.
#[derive(Debug, PartialEq, Eq)]
enum Claim {
    New,
    Duplicate(StoredAt),
    Refused(Refusal),
}

trait ClaimOne {
    fn claim_one(&self, key: &WindowKey, seq: u64, now_ms: u64) -> Claim;
}

impl ClaimOne for ProducerSequences {
    fn claim_one(&self, key: &WindowKey, seq: u64, now_ms: u64) -> Claim {
        match self.claim(key, seq, 1, now_ms) {
            Ok(known) => known[0].map_or(Claim::New, Claim::Duplicate),
            Err(refusal) => Claim::Refused(refusal),
        }
    }
}

fn at(physical_offset: u64) -> StoredAt {
    StoredAt {
        physical_offset,
        size: 100,
        queue_offset: physical_offset / 100,
    }
}

/// A record as the dispatcher decodes it, numbered by `producer`.
fn record(producer: u64, seq: u64, store_ms: u64) -> StoredMessage {
    let host = SocketAddr::from(([127, 0, 0, 1], 1));
    let mut properties = Properties::new();
    stamp(&mut properties, producer, seq);
    StoredMessage {
        topic: "t".into(),
        queue_id: 2,
        flags: 0,
        queue_offset: 7,
        physical_offset: 700,
        record_size: 120,
        born_timestamp_ms: 0,
        store_timestamp_ms: store_ms,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        tags: None,
        keys: Vec::new(),
        unique_id: None,
        delay_level: None,
        schedule: None,
        fired_from: None,
        properties,
        body: bytes::Bytes::from_static(b"x"),
    }
}

#[test]
fn a_filled_sequence_is_a_duplicate_with_its_original_place() {
    let windows = ProducerSequences::new(limits(16, 16));
    assert_eq!(windows.claim_one(&key(1, 0), 0, 1_000), Claim::New);
    windows.fill(&key(1, 0), [(0, at(500))], 1_000);
    assert_eq!(
        windows.claim_one(&key(1, 0), 0, 1_001),
        Claim::Duplicate(at(500))
    );
    // Another queue, another producer: their own numbering.
    assert_eq!(windows.claim_one(&key(1, 1), 0, 1_001), Claim::New);
    assert_eq!(windows.claim_one(&key(2, 0), 0, 1_001), Claim::New);
    assert_eq!(windows.window_count(), 3);
}

#[test]
fn a_claim_in_flight_is_not_claimed_twice_and_a_release_frees_it() {
    let windows = ProducerSequences::new(limits(16, 16));
    assert_eq!(windows.claim_one(&key(1, 0), 4, 0), Claim::New);
    assert_eq!(
        windows.claim_one(&key(1, 0), 4, 0),
        Claim::Refused(Refusal::InFlight { sequence: 4 })
    );
    windows.release(&key(1, 0), [4]);
    assert_eq!(windows.claim_one(&key(1, 0), 4, 0), Claim::New);
    // A release never forgets a stored sequence.
    windows.fill(&key(1, 0), [(4, at(0))], 0);
    windows.release(&key(1, 0), [4]);
    assert_eq!(windows.claim_one(&key(1, 0), 4, 0), Claim::Duplicate(at(0)));
}

#[test]
fn a_batch_claims_what_is_new_and_nothing_if_one_is_in_flight() {
    let windows = ProducerSequences::new(limits(16, 16));
    windows.claim_one(&key(1, 0), 1, 0);
    windows.fill(&key(1, 0), [(1, at(100))], 0);
    assert_eq!(
        windows.claim(&key(1, 0), 0, 3, 0),
        Ok(vec![None, Some(at(100)), None])
    );
    // 0 and 2 are in flight now: a batch that overlaps them claims
    // nothing, not even 3.
    assert_eq!(
        windows.claim(&key(1, 0), 2, 2, 0),
        Err(Refusal::InFlight { sequence: 2 })
    );
    windows.release(&key(1, 0), [0, 2]);
    assert_eq!(windows.claim(&key(1, 0), 3, 1, 0), Ok(vec![None]));
    assert_eq!(windows.claim(&key(1, 0), 0, 1, 0), Ok(vec![None]));
}

#[test]
fn sequences_may_arrive_out_of_order() {
    let windows = ProducerSequences::new(limits(16, 16));
    for seq in [5, 3, 9, 0] {
        assert_eq!(windows.claim_one(&key(1, 0), seq, 0), Claim::New, "{seq}");
        windows.fill(&key(1, 0), [(seq, at(seq * 100))], 0);
    }
    for seq in [0, 3, 5, 9] {
        assert_eq!(
            windows.claim_one(&key(1, 0), seq, 0),
            Claim::Duplicate(at(seq * 100))
        );
    }
}

#[test]
fn past_its_count_a_window_refuses_what_it_forgot() {
    let windows = ProducerSequences::new(limits(3, 16));
    for seq in 0..5 {
        assert_eq!(windows.claim_one(&key(1, 0), seq, 0), Claim::New);
        windows.fill(&key(1, 0), [(seq, at(seq * 100))], 0);
    }
    assert_eq!(
        windows.claim_one(&key(1, 0), 1, 0),
        Claim::Refused(Refusal::BelowWindow {
            sequence: 1,
            lowest: 2
        })
    );
    assert_eq!(
        windows.claim_one(&key(1, 0), 2, 0),
        Claim::Duplicate(at(200))
    );
    assert_eq!(windows.claim_one(&key(1, 0), 5, 0), Claim::New);
}

#[test]
fn past_its_time_a_window_forgets_and_a_sweep_drops_it() {
    let windows = ProducerSequences::new(limits(1_000, 2));
    windows.claim_one(&key(1, 0), 0, 0);
    windows.fill(&key(1, 0), [(0, at(0))], 0);
    // Within the minute: remembered.
    windows.claim_one(&key(1, 0), 1, 59_000);
    windows.fill(&key(1, 0), [(1, at(100))], 59_000);
    assert_eq!(
        windows.claim_one(&key(1, 0), 0, 59_000),
        Claim::Duplicate(at(0))
    );
    // A minute after it was stored, sequence 0 is gone.
    windows.claim_one(&key(1, 0), 2, 60_001);
    assert_eq!(
        windows.claim_one(&key(1, 0), 0, 60_001),
        Claim::Refused(Refusal::BelowWindow {
            sequence: 0,
            lowest: 1
        })
    );
    windows.fill(&key(1, 0), [(2, at(200))], 60_001);

    // Two windows at most: a third producer waits until a sweep drops
    // one that has been quiet for the whole window.
    windows.claim_one(&key(2, 0), 0, 60_001);
    windows.fill(&key(2, 0), [(0, at(300))], 60_001);
    assert_eq!(
        windows.claim_one(&key(3, 0), 0, 60_002),
        Claim::Refused(Refusal::Full)
    );
    assert_eq!(windows.claim_one(&key(3, 0), 0, 120_002), Claim::New);
    assert_eq!(windows.window_count(), 1, "both quiet windows swept");
}

#[test]
fn records_are_observed_in_the_queue_they_were_sent_to() {
    let windows = ProducerSequences::new(limits(16, 16));
    windows.observe(&record(0xab, 3, 10), 700);
    let sent = WindowKey {
        producer: 0xab,
        topic: "t".into(),
        queue_id: 2,
    };
    let stored = StoredAt {
        physical_offset: 700,
        size: 120,
        queue_offset: 7,
    };
    assert_eq!(windows.claim_one(&sent, 3, 11), Claim::Duplicate(stored));

    // A scheduled message counts in the queue it was sent to.
    let mut scheduled = record(0xab, 4, 10);
    scheduled.topic = "SCHEDULE_TOPIC_XXXX".into();
    scheduled.schedule = Some(Schedule {
        real_topic: "t".into(),
        real_queue_id: 2,
        deliver_at_ms: 0,
        fire_at_ms: 0,
    });
    windows.observe(&scheduled, 800);
    assert!(matches!(
        windows.claim_one(&sent, 4, 11),
        Claim::Duplicate(_)
    ));

    // Copies made later (fired from a schedule, a consumer's retry) and
    // records nobody numbered count nowhere.
    let mut fired = record(0xab, 5, 10);
    fired.fired_from = Some(QueuePosition {
        queue_id: 0,
        offset: 1,
    });
    let mut retried = record(0xab, 6, 10);
    retried.reconsume_times = 1;
    let mut plain = record(0xab, 7, 10);
    plain.properties.clear();
    for msg in [fired, retried, plain] {
        windows.observe(&msg, 900);
    }
    for seq in [5, 6, 7] {
        assert_eq!(windows.claim_one(&sent, seq, 11), Claim::New, "{seq}");
    }
}
