//! The POP book on disk: a snapshot (`pop/snapshot.json`, replaced
//! atomically) and a journal of the changes since (`pop/journal.log`), one
//! line per change: `SEQ CRC32C JSON`. A torn or corrupted tail (a crash
//! mid-write, a bad sector) ends the replay there and is cut off; every
//! change before it stands. Losing a tail can only redeliver messages (an
//! acknowledgement or a lease forgotten), never lose one: a message leaves
//! the book only by an acknowledgement that was written.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::book::{QueueKey, QueueLeases, Record};

const SNAPSHOT: &str = "snapshot.json";
const JOURNAL: &str = "journal.log";

/// Changes written to the journal before it is folded into a snapshot.
pub const COMPACT_EVERY: u64 = 50_000;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    /// The last change folded in.
    seq: u64,
    queues: Vec<(QueueKey, QueueLeases)>,
}

/// The journal file, open for appending.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    file: File,
    /// The last change written.
    seq: u64,
    /// Changes in the journal file (since the snapshot).
    pending: u64,
}

/// What was on disk: the book as it stood, and the journal to go on with.
#[derive(Debug)]
pub struct Recovered {
    pub queues: BTreeMap<QueueKey, QueueLeases>,
    pub journal: Journal,
    /// Bytes of a torn or corrupted tail that were cut off.
    pub cut_bytes: u64,
}

impl Journal {
    /// Reads the snapshot and replays the journal over it with `apply`.
    pub fn recover(
        dir: &Path,
        mut apply: impl FnMut(&mut BTreeMap<QueueKey, QueueLeases>, Record),
    ) -> io::Result<Recovered> {
        std::fs::create_dir_all(dir)?;
        let snapshot: Snapshot =
            mq_common::atomic_file::read_json(&dir.join(SNAPSHOT))?.unwrap_or_default();
        let mut queues: BTreeMap<QueueKey, QueueLeases> = snapshot.queues.into_iter().collect();
        let path = dir.join(JOURNAL);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let length = file.metadata()?.len();
        let mut seq = snapshot.seq;
        let mut pending = 0;
        let mut good_end = 0u64;
        let mut reader = BufReader::new(&mut file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line)?;
            if read == 0 || line.last() != Some(&b'\n') {
                break;
            }
            let Some((line_seq, record)) = parse_line(&line[..line.len() - 1]) else {
                break;
            };
            good_end += read as u64;
            pending += 1;
            if line_seq > seq {
                seq = line_seq;
                apply(&mut queues, record);
            }
        }
        drop(reader);
        let cut_bytes = length - good_end;
        if cut_bytes > 0 {
            file.set_len(good_end)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        Ok(Recovered {
            queues,
            journal: Journal {
                dir: dir.to_owned(),
                file,
                seq,
                pending,
            },
            cut_bytes,
        })
    }

    /// Appends `records` in one write (to the page cache: a killed
    /// process loses nothing written; see [`Journal::sync`]).
    pub fn append(&mut self, records: &[Record]) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(records.len() * 128);
        for record in records {
            self.seq += 1;
            let json = serde_json::to_vec(record).map_err(io::Error::other)?;
            let crc = crc32c::crc32c(&json);
            write!(bytes, "{} {crc:08x} ", self.seq)?;
            bytes.extend_from_slice(&json);
            bytes.push(b'\n');
        }
        self.file.write_all(&bytes)?;
        self.pending += records.len() as u64;
        Ok(())
    }

    /// Makes what was appended durable against power loss.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Whether the journal grew enough to be folded into a snapshot.
    pub fn wants_compaction(&self) -> bool {
        self.pending >= COMPACT_EVERY
    }

    /// Writes `queues` (the book after every change appended) as the new
    /// snapshot and empties the journal. A crash between the two leaves
    /// changes the snapshot already holds: the replay skips them by seq.
    pub fn compact(&mut self, queues: &BTreeMap<QueueKey, QueueLeases>) -> io::Result<()> {
        let snapshot = Snapshot {
            seq: self.seq,
            queues: queues.iter().map(|(k, q)| (k.clone(), q.clone())).collect(),
        };
        mq_common::atomic_file::write_json(&self.dir.join(SNAPSHOT), &snapshot)?;
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.pending = 0;
        Ok(())
    }
}

fn parse_line(line: &[u8]) -> Option<(u64, Record)> {
    let text = std::str::from_utf8(line).ok()?;
    let (seq, rest) = text.split_once(' ')?;
    let (crc, json) = rest.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    if crc32c::crc32c(json.as_bytes()) != crc {
        return None;
    }
    Some((seq.parse().ok()?, serde_json::from_str(json).ok()?))
}
