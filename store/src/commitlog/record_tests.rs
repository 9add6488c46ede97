use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::message::{Properties, QueuePosition, Schedule};

fn example() -> (MessageToStore, Stamp) {
    let msg = MessageToStore {
        flags: 2,
        born_timestamp_ms: 5,
        born_host: "127.0.0.1:7".parse().unwrap(),
        reconsume_times: 9,
        tags: Some("a".into()),
        ..MessageToStore::new("T", 1, Bytes::from_static(b"hi"))
    };
    let stamp = Stamp {
        queue_offset: 3,
        physical_offset: 4,
        store_timestamp_ms: 6,
        store_host: "10.0.0.1:8".parse().unwrap(),
    };
    (msg, stamp)
}

fn encoded(msg: &MessageToStore, stamp: &Stamp) -> Bytes {
    let mut buf = vec![0; encoded_len(msg).unwrap()];
    encode(msg, stamp, &mut buf).unwrap();
    Bytes::from(buf)
}

/// The hex block of `docs/storage-format.md` that follows `marker`.
fn documented_hex(marker: &str) -> Vec<u8> {
    let doc = include_str!("../../../docs/storage-format.md");
    let start = doc.find(marker).expect("the document has the example") + marker.len();
    let block = &doc[start..];
    let block = &block[..block.find("```").expect("the example block is closed")];
    let hex: String = block
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .collect::<String>()
        .split_whitespace()
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}

#[test]
fn layout_matches_the_document_byte_for_byte() {
    let (msg, stamp) = example();
    let bytes = encoded(&msg, &stamp);
    assert_eq!(bytes.len(), 111);
    assert_eq!(
        &bytes[..],
        &documented_hex("```text record-v1-example\n")[..]
    );
}

#[test]
fn end_of_segment_marker_matches_the_document() {
    let mut marker = vec![0xAA; 16];
    encode_end_of_segment(&mut marker);
    assert_eq!(
        &marker[..8],
        &documented_hex("```text end-of-segment-example\n")[..]
    );
    assert_eq!(probe(&marker), Ok(Probe::EndOfSegment));
}

#[test]
fn skipped_marker_matches_the_document_and_says_where_data_goes_on() {
    let mut marker = vec![0xAA; 200];
    encode_skipped(&mut marker);
    assert_eq!(
        &marker[..8],
        &documented_hex("```text skipped-example\n")[..]
    );
    let mut rest = marker.clone();
    rest.extend_from_slice(&[0; 100]);
    assert_eq!(probe(&rest), Ok(Probe::Skipped { size: 200 }));
    assert!(
        probe(&marker[..100]).is_err(),
        "a marker longer than the segment"
    );
}

#[test]
fn example_decodes_back_with_every_field() {
    let (msg, stamp) = example();
    let bytes = encoded(&msg, &stamp);
    assert_eq!(probe(&bytes), Ok(Probe::Message { size: 111 }));
    let stored = decode(&bytes).unwrap();
    assert_eq!(stored.topic, "T");
    assert_eq!(
        (stored.queue_id, stored.flags, stored.queue_offset),
        (1, 2, 3)
    );
    assert_eq!(
        (
            stored.physical_offset,
            stored.born_timestamp_ms,
            stored.store_timestamp_ms
        ),
        (4, 5, 6)
    );
    assert_eq!(stored.born_host, msg.born_host);
    assert_eq!(stored.store_host, stamp.store_host);
    assert_eq!(stored.reconsume_times, 9);
    assert_eq!(stored.tags.as_deref(), Some("a"));
    assert!(stored.properties.is_empty(), "TAGS became the typed field");
    assert_eq!(&stored.body[..], b"hi");
    assert_eq!(stored.record_size, 111);
}

#[test]
fn body_shares_the_record_memory() {
    let (msg, stamp) = example();
    let bytes = encoded(&msg, &stamp);
    let stored = decode(&bytes).unwrap();
    let body_ptr = stored.body.as_ptr() as usize;
    let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
    assert!(range.contains(&body_ptr), "body was copied");
}

#[test]
fn zeros_are_blank_and_garbage_is_an_error() {
    assert_eq!(probe(&[0; 64]), Ok(Probe::Blank));
    assert_eq!(probe(&[0; 3]), Ok(Probe::Blank));
    assert!(matches!(
        probe(&[1, 2, 3]),
        Err(RecordError::Truncated { .. })
    ));
    assert!(matches!(probe(&[0xFF; 64]), Err(RecordError::BadMagic(_))));
}

#[test]
fn a_torn_record_is_truncated_not_accepted() {
    let (msg, stamp) = example();
    let bytes = encoded(&msg, &stamp);
    for cut in [8, 50, 110] {
        assert!(
            matches!(probe(&bytes[..cut]), Err(RecordError::Truncated { .. })),
            "cut at {cut}"
        );
    }
}

#[test]
fn oversized_fields_are_refused_before_encoding() {
    let (mut msg, _) = example();
    msg.topic = "t".repeat(256);
    assert!(matches!(
        encoded_len(&msg),
        Err(RecordError::TooLong { field: "topic", .. })
    ));
    let (mut msg, _) = example();
    msg.properties.insert("K".into(), "v".repeat(70_000));
    assert!(matches!(
        encoded_len(&msg),
        Err(RecordError::TooLong {
            field: "property value",
            ..
        })
    ));
    let (mut msg, _) = example();
    for i in 0..5_000 {
        msg.properties.insert(format!("key{i}"), "value".into());
    }
    assert!(matches!(
        encoded_len(&msg),
        Err(RecordError::TooLong {
            field: "properties",
            ..
        })
    ));
}

fn host() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| {
            let v6 = Ipv6Addr::from(ip);
            // A v4-mapped v6 address reads back as v4, by design.
            let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
            SocketAddr::new(ip, port)
        }),
    ]
}

#[test]
fn typed_fields_are_written_as_the_properties_they_replace() {
    let (_, stamp) = example();
    let typed = MessageToStore {
        tags: Some("TagA".into()),
        keys: vec!["order-1".into(), "user-9".into()],
        unique_id: Some("AB12".into()),
        delay_level: Some(3),
        schedule: Some(Schedule {
            real_topic: "orders".into(),
            real_queue_id: 2,
            deliver_at_ms: 1_700_000_000_000,
            fire_at_ms: 1_700_000_000_500,
        }),
        fired_from: Some(QueuePosition {
            queue_id: 4,
            offset: 17,
        }),
        properties: Properties::from([("a".to_string(), "1".to_string())]),
        ..MessageToStore::new("SCHEDULE_TOPIC_XXXX", 4, Bytes::from_static(b"x"))
    };
    let as_properties = MessageToStore {
        properties: [
            ("a", "1"),
            ("TAGS", "TagA"),
            ("KEYS", "order-1 user-9"),
            ("UNIQ_KEY", "AB12"),
            ("DELAY", "3"),
            ("REAL_TOPIC", "orders"),
            ("REAL_QID", "2"),
            ("TIMER_DELIVER_MS", "1700000000000"),
            ("SCHEDULE_FIRE_MS", "1700000000500"),
            ("SCHEDULE_FIRED_FROM", "4:17"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..MessageToStore::new("SCHEDULE_TOPIC_XXXX", 4, Bytes::from_static(b"x"))
    };
    let bytes = encoded(&typed, &stamp);
    assert_eq!(bytes, encoded(&as_properties, &stamp));
    let stored = decode(&bytes).unwrap();
    assert_eq!(stored.to_store(), typed, "read back typed");
}

#[test]
fn properties_read_in_place_include_the_typed_fields_under_their_names() {
    let msg = MessageToStore {
        tags: Some("TagA".into()),
        keys: vec!["order-1".into(), "user-9".into()],
        properties: Properties::from([
            ("region".to_string(), "eu".to_string()),
            ("empty".to_string(), String::new()),
        ]),
        ..MessageToStore::new("orders", 1, Bytes::from_static(b"body"))
    };
    let (_, stamp) = example();
    let bytes = encoded(&msg, &stamp);
    let found = properties(&bytes).unwrap();
    assert_eq!(found.get("region"), Some("eu"));
    assert_eq!(found.get("empty"), Some(""));
    assert_eq!(found.get("TAGS"), Some("TagA"));
    assert_eq!(found.get("KEYS"), Some("order-1 user-9"));
    assert_eq!(found.get("regio"), None);
    assert_eq!(found.get("missing"), None);
    // A damaged record is refused, not read.
    let mut damaged = bytes.to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(properties(&damaged).is_err());
}

#[test]
fn a_typed_property_that_does_not_parse_stays_a_property() {
    let (_, stamp) = example();
    let msg = MessageToStore {
        properties: [
            ("DELAY", "soon"),
            ("REAL_TOPIC", "orders"),
            ("REAL_QID", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..MessageToStore::new("t", 0, Bytes::from_static(b"x"))
    };
    let stored = decode(&encoded(&msg, &stamp)).unwrap();
    assert_eq!((stored.delay_level, &stored.schedule), (None, &None));
    assert_eq!(stored.properties, msg.properties);
}

/// Typed fields, each set or not.
fn typed() -> impl Strategy<Value = Typed> {
    (
        proptest::option::of("\\PC{0,10}"),
        proptest::collection::vec("[a-zA-Z0-9_-]{1,8}", 0..3),
        proptest::option::of("[0-9A-F]{1,32}"),
        proptest::option::of(any::<u32>()),
        proptest::option::of(("[a-zA-Z0-9_]{1,20}", any::<(u32, u64, u64)>())),
        proptest::option::of(any::<(u32, u64)>()),
    )
}

type Typed = (
    Option<String>,
    Vec<String>,
    Option<String>,
    Option<u32>,
    Option<(String, (u32, u64, u64))>,
    Option<(u32, u64)>,
);

fn message() -> impl Strategy<Value = (MessageToStore, Stamp)> {
    (
        "[a-zA-Z0-9_%|-]{0,127}",
        any::<(u32, u32, u32, u64, u64, u64, u64)>(),
        (host(), host()),
        // Lower case: never the name of a typed field.
        proptest::collection::btree_map("[a-z][a-z0-9_]{0,11}", "\\PC{0,40}", 0..6),
        typed(),
        proptest::collection::vec(any::<u8>(), 0..2048),
    )
        .prop_map(
            |(
                topic,
                (queue_id, flags, reconsume, qo, po, born, stored),
                (bh, sh),
                properties,
                (tags, keys, unique_id, delay_level, schedule, fired_from),
                body,
            )| {
                (
                    MessageToStore {
                        topic,
                        queue_id,
                        flags,
                        born_timestamp_ms: born,
                        born_host: bh,
                        reconsume_times: reconsume,
                        tags,
                        keys,
                        unique_id,
                        delay_level,
                        schedule: schedule.map(
                            |(real_topic, (real_queue_id, deliver_at_ms, fire_at_ms))| Schedule {
                                real_topic,
                                real_queue_id,
                                deliver_at_ms,
                                fire_at_ms,
                            },
                        ),
                        fired_from: fired_from
                            .map(|(queue_id, offset)| QueuePosition { queue_id, offset }),
                        properties,
                        body: Bytes::from(body),
                    },
                    Stamp {
                        queue_offset: qo,
                        physical_offset: po,
                        store_timestamp_ms: stored,
                        store_host: sh,
                    },
                )
            },
        )
}

proptest! {
    #[test]
    fn every_message_round_trips((msg, stamp) in message()) {
        let bytes = encoded(&msg, &stamp);
        let stored = decode(&bytes).unwrap();
        prop_assert_eq!(&stored.topic, &msg.topic);
        prop_assert_eq!(stored.queue_id, msg.queue_id);
        prop_assert_eq!(stored.flags, msg.flags);
        prop_assert_eq!(stored.queue_offset, stamp.queue_offset);
        prop_assert_eq!(stored.physical_offset, stamp.physical_offset);
        prop_assert_eq!(stored.born_timestamp_ms, msg.born_timestamp_ms);
        prop_assert_eq!(stored.store_timestamp_ms, stamp.store_timestamp_ms);
        prop_assert_eq!(stored.born_host, msg.born_host);
        prop_assert_eq!(stored.store_host, stamp.store_host);
        prop_assert_eq!(stored.reconsume_times, msg.reconsume_times);
        prop_assert_eq!(&stored.properties, &msg.properties);
        prop_assert_eq!(&stored.body, &msg.body);
        prop_assert_eq!(stored.record_size as usize, bytes.len());
        // Typed fields come back typed, and appending the message anew
        // writes the very same bytes.
        let again = stored.to_store();
        prop_assert_eq!(&again, &msg);
        prop_assert_eq!(encoded(&again, &stamp), bytes);
    }

    #[test]
    fn any_flipped_byte_is_detected((msg, stamp) in message(), at in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let mut bytes = encoded(&msg, &stamp).to_vec();
        let at = at.index(bytes.len());
        bytes[at] ^= xor;
        // Trailing room, as in a segment, so that a grown size is caught by the CRC.
        bytes.extend_from_slice(&[0; 64]);
        prop_assert!(probe(&bytes).is_err(), "flip at {} accepted", at);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let bytes = Bytes::from(bytes);
        let _ = probe(&bytes);
        let _ = decode(&bytes);
    }

    #[test]
    fn a_valid_header_over_arbitrary_content_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        // Make the CRC right so that decode goes past the checks into the fields.
        let mut bytes = Vec::with_capacity(12 + body.len());
        let size = (12 + body.len()) as u32;
        bytes.extend_from_slice(&size.to_le_bytes());
        bytes.extend_from_slice(&MAGIC_MESSAGE_V1.to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let bytes = Bytes::from(bytes);
        let _ = decode(&bytes);
    }
}

/// What `probe` checked is not checked again: a probed record decodes as
/// `decode` decodes it, without its CRC computed a second time; what is
/// not a message record is still refused.
#[test]
fn a_probed_record_decodes_without_a_second_crc() {
    let (msg, stamp) = example();
    let bytes = encoded(&msg, &stamp);
    assert_eq!(
        format!("{:?}", decode_probed(&bytes).unwrap()),
        format!("{:?}", decode(&bytes).unwrap())
    );
    // The body changed after the probe: only `decode` recomputes the CRC.
    let mut changed = bytes.to_vec();
    *changed.last_mut().unwrap() ^= 1;
    let changed = Bytes::from(changed);
    assert!(matches!(
        decode(&changed),
        Err(RecordError::CrcMismatch { .. })
    ));
    assert_eq!(&decode_probed(&changed).unwrap().body[..], b"hh");

    let mut blank = bytes.to_vec();
    blank[4..8].fill(0);
    assert!(decode_probed(&Bytes::from(blank)).is_err(), "not a message");
    let mut oversized = bytes.to_vec();
    oversized[0..4].copy_from_slice(&(bytes.len() as u32 + 1).to_le_bytes());
    assert!(matches!(
        decode_probed(&Bytes::from(oversized)),
        Err(RecordError::BadSize(_))
    ));
}
