//! Replication: a broker group is one master (id 0) and replicas (ids
//! above 0) sharing a broker name. A replica follows the master's CommitLog
//! over `mq.replication.v1.Replication/Follow` from its own end and appends
//! the bytes at the same offsets (`mq_store`'s `read_raw`/`append_raw`), so
//! both logs are byte for byte the same and the replica's dispatcher builds
//! the same queues and indexes. Replicas are read-only: sends and
//! send-backs are refused naming the master, and their scheduler does not
//! fire (the master's deliveries arrive through the log).
//!
//! `master.rs` serves the stream; `follower.rs` is the replica's side;
//! `state_sync.rs` syncs what is not in the log (topics, consumer offsets,
//! schedule progress); `controlled.rs` is controller mode, where the
//! controller names the master and elects a new one when it dies.

pub mod controlled;
pub mod divergence;
pub mod follower;
pub mod master;
pub mod replicas;
pub mod state_sync;

use crate::config::BrokerConfig;
use crate::error::BrokerError;

/// What this broker is in its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica { id: u64, master_addr: String },
}

impl Role {
    pub fn of(config: &BrokerConfig) -> Role {
        match (&config.master_addr, config.broker_id) {
            (Some(master_addr), id) if id > 0 => Role::Replica {
                id,
                master_addr: master_addr.clone(),
            },
            _ => Role::Master,
        }
    }

    /// Refuses a write on a replica, naming the master.
    pub fn check_writable(&self, broker_name: &str) -> Result<(), BrokerError> {
        match self {
            Role::Master => Ok(()),
            Role::Replica { id, master_addr } => Err(BrokerError::ReadOnlyReplica {
                broker_name: broker_name.to_owned(),
                id: *id,
                master_addr: master_addr.clone(),
            }),
        }
    }
}

/// What the metrics read of replication: a master's replicas, or a
/// replica's following.
#[derive(Debug, Clone)]
pub enum ReplicationView {
    Master {
        replicas: std::sync::Arc<replicas::Replicas>,
    },
    Replica {
        status: std::sync::Arc<follower::FollowStatus>,
    },
}

/// A request that the broker stop and start again in its process: a
/// replica whose log must be cut back (the cut applies when the store
/// opens, see `mq_store::truncate`).
#[derive(Debug, Default)]
pub struct Restart {
    wanted: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Restart {
    pub fn request(&self) {
        self.wanted
            .store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_one();
    }

    /// Resolves once a restart is requested.
    pub async fn requested(&self) {
        self.notify.notified().await;
    }

    pub fn is_requested(&self) -> bool {
        self.wanted.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// How a sync-replication master waits for its replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReplication {
    pub min_in_sync: usize,
    pub timeout: std::time::Duration,
}

/// Most bytes of one streamed chunk: large reads for catch-up, whole
/// records only (a chunk holds at least one record, however large).
pub const CHUNK_BYTES: usize = 4 << 20;

/// Which member of the group a pull should use next (RocketMQ's
/// `suggestWhichBrokerId`): a consumer reading further than `far_behind`
/// bytes behind the log's head goes to an in-sync replica, whose page
/// cache its cold reads may thrash instead of the master's; one that
/// caught up goes back to the master.
#[derive(Debug, Clone)]
pub enum ReadAdvice {
    Master {
        replicas: std::sync::Arc<replicas::Replicas>,
        far_behind: u64,
    },
    Replica {
        id: u64,
        far_behind: u64,
    },
}

impl ReadAdvice {
    /// The member (0 the master) for a pull that read at `read_at` of a
    /// log ending at `end`.
    pub fn suggest(&self, read_at: u64, end: u64) -> u64 {
        let behind = |far: u64| far > 0 && end.saturating_sub(read_at) > far;
        match self {
            ReadAdvice::Master {
                replicas,
                far_behind,
            } if behind(*far_behind) => replicas.first_in_sync(end).unwrap_or(0),
            ReadAdvice::Replica { id, far_behind } if behind(*far_behind) => *id,
            _ => 0,
        }
    }
}
