//! The CommitLog record format, version 1: the one place that knows how a
//! message is laid out on disk. `docs/storage-format.md` documents it byte
//! by byte and a test checks this code against that document.
//!
//! All integers are little-endian. A record:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | total size of the record, this field included |
//! | 4 | 4 | magic: [`MAGIC_MESSAGE_V1`] |
//! | 8 | 4 | CRC32C of bytes `12..total size` |
//! | 12 | 4 | queue id |
//! | 16 | 4 | flags |
//! | 20 | 8 | queue offset |
//! | 28 | 8 | physical offset (of this record in the CommitLog) |
//! | 36 | 8 | born timestamp, ms since the Unix epoch |
//! | 44 | 8 | store timestamp, ms since the Unix epoch |
//! | 52 | 16 | born host IP (IPv6; IPv4 as `::ffff:a.b.c.d`) |
//! | 68 | 2 | born host port |
//! | 70 | 16 | store host IP |
//! | 86 | 2 | store host port |
//! | 88 | 4 | reconsume times |
//! | 92 | 1 | topic length T |
//! | 93 | T | topic, UTF-8 |
//! | 93+T | 2 | properties length P |
//! | 95+T | P | properties: (u16 key length, key, u16 value length, value)* |
//! | 95+T+P | 4 | body length B |
//! | 99+T+P | B | body |
//!
//! The end of a segment's data is marked by an 8-byte header whose total
//! size covers the rest of the segment and whose magic is
//! [`MAGIC_END_OF_SEGMENT`]; a total size of 0 means nothing was written
//! there (segments are zero-filled). Damaged bytes that recovery skipped
//! (`recovery_mode = "skip_corrupted"`) start with the same 8-byte header,
//! magic [`MAGIC_SKIPPED`], whose total size covers the damaged range: the
//! data goes on right after it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use thiserror::Error;

use super::fields;
use crate::message::{MessageToStore, Properties, StoredMessage};

/// Magic of a message record, format version 1 (`"MQ"`, 0, 1).
pub const MAGIC_MESSAGE_V1: u32 = 0x4D51_0001;
/// Magic of the marker that closes a segment's data.
pub const MAGIC_END_OF_SEGMENT: u32 = 0x4D51_FFFF;
/// Magic of the marker recovery writes over damaged bytes it skipped.
pub const MAGIC_SKIPPED: u32 = 0x4D51_FFFE;
/// Bytes of the fixed part, before the topic length.
pub const FIXED_LEN: usize = 92;
/// Bytes of an end-of-segment marker: total size and magic.
pub const END_MARKER_LEN: usize = 8;
/// Offset of the first byte the CRC covers.
const CRC_START: usize = 12;
/// The smallest possible message record: empty topic, properties and body.
pub const MIN_RECORD_LEN: usize = FIXED_LEN + 1 + 2 + 4;

/// A record that cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("record truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("unknown record magic {0:#010x}")]
    BadMagic(u32),
    #[error("impossible record size {0}")]
    BadSize(u32),
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("malformed record: {0}")]
    Malformed(&'static str),
    #[error("{field} is {len} bytes; at most {max} fit in a record")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

/// What the store stamps on a record as it appends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub queue_offset: u64,
    pub physical_offset: u64,
    pub store_timestamp_ms: u64,
    pub store_host: SocketAddr,
}

/// The encoded size of `msg`, or why it cannot be encoded.
pub fn encoded_len(msg: &MessageToStore) -> Result<usize, RecordError> {
    layout(msg).map(|(total, _)| total)
}

/// The encoded size of `msg`'s properties (its typed fields included), or
/// why they cannot be encoded.
pub fn properties_len(msg: &MessageToStore) -> Result<usize, RecordError> {
    let max = usize::from(u16::MAX);
    let mut len = 0;
    let mut too_long = None;
    fields::for_each(msg, |key, value| {
        for (field, text) in [("property name", key), ("property value", value)] {
            if text.len() > max {
                too_long.get_or_insert(RecordError::TooLong {
                    field,
                    len: text.len(),
                    max,
                });
            }
            len += 2 + text.len();
        }
    });
    if let Some(err) = too_long {
        return Err(err);
    }
    if len > max {
        return Err(RecordError::TooLong {
            field: "properties",
            len,
            max,
        });
    }
    Ok(len)
}

/// Every property a record of `msg` carries, its typed fields under their
/// names, sorted by name.
pub fn property_entries(msg: &MessageToStore) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    fields::for_each(msg, |key, value| {
        entries.push((key.to_owned(), value.to_owned()));
    });
    entries
}

/// The sizes of the record and of its properties section.
fn layout(msg: &MessageToStore) -> Result<(usize, usize), RecordError> {
    let topic = msg.topic.len();
    if topic > usize::from(u8::MAX) {
        return Err(RecordError::TooLong {
            field: "topic",
            len: topic,
            max: usize::from(u8::MAX),
        });
    }
    let properties = properties_len(msg)?;
    let total = FIXED_LEN + 1 + topic + 2 + properties + 4 + msg.body.len();
    if u32::try_from(total).is_err() {
        return Err(RecordError::TooLong {
            field: "record",
            len: total,
            max: u32::MAX as usize,
        });
    }
    Ok((total, properties))
}

/// Encodes `msg` into `out`, which must be exactly [`encoded_len`] bytes.
pub fn encode(msg: &MessageToStore, stamp: &Stamp, out: &mut [u8]) -> Result<(), RecordError> {
    let (total, properties) = layout(msg)?;
    if out.len() != total {
        return Err(RecordError::Truncated {
            needed: total,
            available: out.len(),
        });
    }
    let mut w = Writer { buf: out, at: 0 };
    w.u32(total as u32);
    w.u32(MAGIC_MESSAGE_V1);
    w.u32(0); // CRC, filled in last
    w.u32(msg.queue_id);
    w.u32(msg.flags);
    w.u64(stamp.queue_offset);
    w.u64(stamp.physical_offset);
    w.u64(msg.born_timestamp_ms);
    w.u64(stamp.store_timestamp_ms);
    w.host(msg.born_host);
    w.host(stamp.store_host);
    w.u32(msg.reconsume_times);
    w.bytes(&[msg.topic.len() as u8]);
    w.bytes(msg.topic.as_bytes());
    w.u16(properties as u16);
    fields::for_each(msg, |key, value| {
        w.u16(key.len() as u16);
        w.bytes(key.as_bytes());
        w.u16(value.len() as u16);
        w.bytes(value.as_bytes());
    });
    w.u32(msg.body.len() as u32);
    w.bytes(&msg.body);
    debug_assert_eq!(w.at, total);
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Writes an end-of-segment marker covering all of `out` (at least 8 bytes).
pub fn encode_end_of_segment(out: &mut [u8]) {
    let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&MAGIC_END_OF_SEGMENT.to_le_bytes());
}

/// Writes a skipped-range marker covering all of `out` (at least
/// [`END_MARKER_LEN`] bytes), the damaged bytes recovery skips.
pub fn encode_skipped(out: &mut [u8]) {
    let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&MAGIC_SKIPPED.to_le_bytes());
}

/// What lies at a position of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A whole message record whose CRC checks, of this many bytes.
    Message { size: usize },
    /// The end-of-segment marker: the rest of the segment is unused.
    EndOfSegment,
    /// Damaged bytes recovery skipped, this many: the data goes on after.
    Skipped { size: usize },
    /// Zeros: nothing was ever written here.
    Blank,
}

/// Looks at the bytes at the start of `buf` (the rest of a segment) and
/// says what is there, checking the CRC of a message. Never panics.
pub fn probe(buf: &[u8]) -> Result<Probe, RecordError> {
    if buf.len() < END_MARKER_LEN {
        return if buf.iter().all(|&b| b == 0) {
            Ok(Probe::Blank)
        } else {
            Err(RecordError::Truncated {
                needed: END_MARKER_LEN,
                available: buf.len(),
            })
        };
    }
    let size = read_u32(buf, 0);
    let magic = read_u32(buf, 4);
    match magic {
        0 if size == 0 => Ok(Probe::Blank),
        MAGIC_END_OF_SEGMENT if size as usize == buf.len() => Ok(Probe::EndOfSegment),
        MAGIC_END_OF_SEGMENT => Err(RecordError::BadSize(size)),
        MAGIC_SKIPPED if (END_MARKER_LEN..=buf.len()).contains(&(size as usize)) => {
            Ok(Probe::Skipped {
                size: size as usize,
            })
        }
        MAGIC_SKIPPED => Err(RecordError::BadSize(size)),
        MAGIC_MESSAGE_V1 => {
            let size = size as usize;
            if size < MIN_RECORD_LEN {
                return Err(RecordError::BadSize(size as u32));
            }
            if size > buf.len() {
                return Err(RecordError::Truncated {
                    needed: size,
                    available: buf.len(),
                });
            }
            let stored = read_u32(buf, 8);
            let computed = crc32c::crc32c(&buf[CRC_START..size]);
            if stored != computed {
                return Err(RecordError::CrcMismatch { stored, computed });
            }
            Ok(Probe::Message { size })
        }
        other => Err(RecordError::BadMagic(other)),
    }
}

/// Decodes the message record at the start of `record`, checking its CRC.
/// The body and nothing else shares `record`'s memory.
pub fn decode(record: &Bytes) -> Result<StoredMessage, RecordError> {
    match probe(record)? {
        Probe::Message { size } => fields(record, size),
        Probe::EndOfSegment | Probe::Skipped { .. } | Probe::Blank => {
            Err(RecordError::Malformed("no message at this position"))
        }
    }
}

/// Decodes a message record that [`probe`] checked already (a
/// [`crate::commitlog::Next::Record`]): its CRC is not computed again,
/// its structure is still checked.
pub fn decode_probed(record: &Bytes) -> Result<StoredMessage, RecordError> {
    if record.len() < MIN_RECORD_LEN || read_u32(record, 4) != MAGIC_MESSAGE_V1 {
        return Err(RecordError::Malformed("no message at this position"));
    }
    let size = read_u32(record, 0) as usize;
    if !(MIN_RECORD_LEN..=record.len()).contains(&size) {
        return Err(RecordError::BadSize(size as u32));
    }
    fields(record, size)
}

/// The fields of the `size`-byte message record at the start of `record`.
fn fields(record: &Bytes, size: usize) -> Result<StoredMessage, RecordError> {
    let buf = &record[..size];
    let mut r = Reader { buf, at: 4 * 3 };
    let queue_id = r.u32()?;
    let flags = r.u32()?;
    let queue_offset = r.u64()?;
    let physical_offset = r.u64()?;
    let born_timestamp_ms = r.u64()?;
    let store_timestamp_ms = r.u64()?;
    let born_host = r.host()?;
    let store_host = r.host()?;
    let reconsume_times = r.u32()?;
    let topic_len = usize::from(r.take(1)?[0]);
    let topic = r.string(topic_len, "topic is not UTF-8")?;
    let properties_len = usize::from(r.u16()?);
    let properties_end = r.at + properties_len;
    let mut properties = Properties::new();
    while r.at < properties_end {
        let key_len = usize::from(r.u16()?);
        let key = r.string(key_len, "property name is not UTF-8")?;
        let value_len = usize::from(r.u16()?);
        let value = r.string(value_len, "property value is not UTF-8")?;
        properties.insert(key, value);
    }
    if r.at != properties_end {
        return Err(RecordError::Malformed("properties overrun their length"));
    }
    let body_len = r.u32()? as usize;
    let body_start = r.at;
    r.take(body_len)?;
    if r.at != size {
        return Err(RecordError::Malformed(
            "record size does not match its fields",
        ));
    }
    let mut msg = StoredMessage {
        topic,
        queue_id,
        flags,
        queue_offset,
        physical_offset,
        record_size: size as u32,
        born_timestamp_ms,
        store_timestamp_ms,
        born_host,
        store_host,
        reconsume_times,
        tags: None,
        keys: Vec::new(),
        unique_id: None,
        delay_level: None,
        schedule: None,
        fired_from: None,
        properties,
        body: record.slice(body_start..body_start + body_len),
    };
    fields::unfold(&mut msg);
    Ok(msg)
}

/// What a replica needs of a record it appends as is, read without
/// decoding the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub queue_id: u32,
    pub queue_offset: u64,
    pub physical_offset: u64,
    pub topic: &'a str,
}

/// The header of the message record at the start of `record`, which
/// [`probe`] found whole and CRC-checked.
pub fn header(record: &[u8]) -> Result<Header<'_>, RecordError> {
    let mut r = Reader {
        buf: record,
        at: 12,
    };
    let queue_id = r.u32()?;
    r.take(4)?;
    let queue_offset = r.u64()?;
    let physical_offset = r.u64()?;
    r.at = FIXED_LEN;
    let topic_len = usize::from(r.take(1)?[0]);
    let topic = std::str::from_utf8(r.take(topic_len)?)
        .map_err(|_| RecordError::Malformed("topic is not UTF-8"))?;
    Ok(Header {
        queue_id,
        queue_offset,
        physical_offset,
        topic,
    })
}

/// A stored message's properties read in place: the typed fields are
/// there under their RocketMQ names (`TAGS`, `KEYS`...), as on disk.
/// Looking one up scans the few pairs; nothing is copied or allocated.
#[derive(Debug, Clone, Copy)]
pub struct StoredProperties<'a> {
    encoded: &'a [u8],
}

impl<'a> StoredProperties<'a> {
    /// The value of `name`, if the message has it.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let mut r = Reader {
            buf: self.encoded,
            at: 0,
        };
        while r.at < self.encoded.len() {
            let key_len = usize::from(r.u16().ok()?);
            let key = r.take(key_len).ok()?;
            let value_len = usize::from(r.u16().ok()?);
            let value = r.take(value_len).ok()?;
            if key == name.as_bytes() {
                return std::str::from_utf8(value).ok();
            }
        }
        None
    }
}

/// The properties of the message record at the start of `record`, its CRC
/// checked, without decoding the rest.
pub fn properties(record: &[u8]) -> Result<StoredProperties<'_>, RecordError> {
    if !matches!(probe(record)?, Probe::Message { .. }) {
        return Err(RecordError::Malformed("no message at this position"));
    }
    let mut r = Reader {
        buf: record,
        at: FIXED_LEN,
    };
    let topic_len = usize::from(r.take(1)?[0]);
    r.take(topic_len)?;
    let properties_len = usize::from(r.u16()?);
    Ok(StoredProperties {
        encoded: r.take(properties_len)?,
    })
}

fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn host(&mut self, addr: SocketAddr) {
        let ip = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        self.bytes(&ip.octets());
        self.u16(addr.port());
    }
}

/// Bounds-checked reads: malformed input is an error, never a panic.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], RecordError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.buf.len());
        let Some(end) = end else {
            return Err(RecordError::Malformed(
                "a field runs past the end of the record",
            ));
        };
        let slice = &self.buf[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u16(&mut self) -> Result<u16, RecordError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self, len: usize, error: &'static str) -> Result<String, RecordError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| RecordError::Malformed(error))
    }
    fn host(&mut self) -> Result<SocketAddr, RecordError> {
        let mut octets = [0; 16];
        octets.copy_from_slice(self.take(16)?);
        let port = self.u16()?;
        let v6 = Ipv6Addr::from(octets);
        let ip = match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        };
        Ok(SocketAddr::new(ip, port))
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
