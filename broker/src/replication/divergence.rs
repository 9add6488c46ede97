//! Where a replica's log and its master's part ways, told by their epochs
//! (as RocketMQ 5's epoch comparison and Kafka's leader-epoch truncation):
//! the newest epoch both hold from the same start is shared up to where
//! the first of the two logs leaves it; anything the replica holds past
//! that point is not the master's and must go.
//!
//! A master never cuts a replica that knows a newer epoch than the
//! master's newest, nor one that shares no epoch with it: such a master's
//! log is the older one (it started on an empty or restored disk), and the
//! replica may hold the only copy of acknowledged messages.

use mq_proto::replication::v1 as pb;
use mq_store::epochs::Epoch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    /// The replica's whole log is the master's: follow from its end.
    Follow,
    /// The replica's log diverges after this offset: cut it back there.
    CutBackTo(u64),
    /// The master must not decide; why.
    Refuse(String),
}

/// Compares a replica's log (`replica` epochs, ending at `replica_end`)
/// with the master's.
pub fn agree(master: &[Epoch], master_end: u64, replica: &[Epoch], replica_end: u64) -> Agreement {
    if replica_end == 0 {
        return Agreement::Follow;
    }
    let Some(replica_newest) = replica.last() else {
        // Written before epochs were kept: the bytes alone decide.
        return if replica_end <= master_end {
            Agreement::Follow
        } else {
            Agreement::Refuse(format!(
                "the replica's log ends at {replica_end}, past this master's end {master_end}, and has no epochs to tell where they part"
            ))
        };
    };
    let master_newest = master.last().map_or(0, |e| e.epoch);
    if replica_newest.epoch > master_newest {
        return Agreement::Refuse(format!(
            "the replica's log has epoch {}, newer than this master's newest ({master_newest}): \
             this master's log is older than the replica's (was it started on an empty or restored disk?); \
             the replica keeps its log",
            replica_newest.epoch
        ));
    }
    for (i, shared) in replica.iter().enumerate().rev() {
        let Some(j) = master.iter().position(|m| m == shared) else {
            continue;
        };
        let master_leaves = master.get(j + 1).map_or(master_end, |e| e.start);
        let replica_leaves = replica.get(i + 1).map_or(replica_end, |e| e.start);
        let common = master_leaves.min(replica_leaves);
        return if common >= replica_end {
            Agreement::Follow
        } else {
            Agreement::CutBackTo(common)
        };
    }
    Agreement::Refuse(format!(
        "the replica's log (epochs {}) shares no epoch with this master's ({}): \
         it is another group's, or this master started on an empty or restored disk; the replica keeps its log",
        list(replica),
        list(master)
    ))
}

/// The epochs that bytes `from..to` of a log with `epochs` belong to: the
/// one `from` falls in and any that begin inside.
pub fn covering(epochs: &[Epoch], from: u64, to: u64) -> Vec<Epoch> {
    let first = epochs.iter().rposition(|e| e.start <= from).unwrap_or(0);
    epochs[first.min(epochs.len())..]
        .iter()
        .filter(|e| e.start < to)
        .copied()
        .collect()
}

/// Epochs as the replication protocol carries them.
pub fn to_wire(epochs: impl IntoIterator<Item = Epoch>) -> Vec<pb::Epoch> {
    epochs
        .into_iter()
        .map(|e| pb::Epoch {
            epoch: e.epoch,
            start_offset: e.start,
        })
        .collect()
}

/// Epochs from the replication protocol.
pub fn from_wire(epochs: &[pb::Epoch]) -> Vec<Epoch> {
    epochs
        .iter()
        .map(|e| Epoch {
            epoch: e.epoch,
            start: e.start_offset,
        })
        .collect()
}

fn list(epochs: &[Epoch]) -> String {
    let all: Vec<String> = epochs
        .iter()
        .map(|e| format!("{}@{}", e.epoch, e.start))
        .collect();
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(epoch: u64, start: u64) -> Epoch {
        Epoch { epoch, start }
    }

    #[test]
    fn a_replica_that_has_only_the_masters_bytes_follows() {
        let master = [e(1, 0), e(2, 900)];
        assert_eq!(agree(&master, 1200, &[], 0), Agreement::Follow);
        assert_eq!(agree(&master, 1200, &[e(1, 0)], 900), Agreement::Follow);
        assert_eq!(
            agree(&master, 1200, &[e(1, 0), e(2, 900)], 1100),
            Agreement::Follow
        );
        // Older replicas without epochs: bytes decide.
        assert_eq!(agree(&master, 1200, &[], 1000), Agreement::Follow);
        assert!(matches!(
            agree(&master, 1200, &[], 1300),
            Agreement::Refuse(_)
        ));
    }

    #[test]
    fn a_tail_the_master_lost_is_cut_back_to_where_the_master_left_the_epoch() {
        // The master crashed at 950 of epoch 1 (it had reached 1000, which
        // the replica copied) and began epoch 2 at 950.
        let master = [e(1, 0), e(2, 950)];
        assert_eq!(
            agree(&master, 2000, &[e(1, 0)], 1000),
            Agreement::CutBackTo(950)
        );
        // The replica had begun copying an epoch the master lost entirely.
        let master = [e(1, 0), e(3, 950)];
        assert_eq!(
            agree(&master, 2000, &[e(1, 0), e(2, 980)], 1100),
            Agreement::CutBackTo(950)
        );
    }

    #[test]
    fn a_master_older_than_its_replica_never_cuts_it() {
        // Started on an empty disk: a new epoch from 0, newer than the
        // replica's but sharing none.
        let fresh = [e(99, 0)];
        let refused = agree(&fresh, 0, &[e(1, 0), e(2, 500)], 800);
        assert!(
            matches!(&refused, Agreement::Refuse(why) if why.contains("shares no epoch")),
            "{refused:?}"
        );
        // Restored from an old backup: the replica saw a newer epoch.
        let restored = [e(1, 0)];
        let refused = agree(&restored, 400, &[e(1, 0), e(2, 500)], 800);
        assert!(
            matches!(&refused, Agreement::Refuse(why) if why.contains("newer")),
            "{refused:?}"
        );
    }

    #[test]
    fn chunks_carry_the_epochs_their_bytes_belong_to() {
        let epochs = [e(1, 0), e(2, 100), e(3, 200)];
        assert_eq!(covering(&epochs, 0, 50), [e(1, 0)]);
        assert_eq!(covering(&epochs, 50, 150), [e(1, 0), e(2, 100)]);
        assert_eq!(covering(&epochs, 100, 200), [e(2, 100)]);
        assert_eq!(covering(&epochs, 150, 300), [e(2, 100), e(3, 200)]);
        assert!(covering(&[], 0, 10).is_empty());
    }
}
