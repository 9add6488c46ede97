//! Replication: a broker group is one master (id 0) and replicas (ids
//! above 0) sharing a broker name. A replica follows the master's CommitLog
//! over `mq.replication.v1.Replication/Follow` from its own end and appends
//! the bytes at the same offsets (`mq_store`'s `read_raw`/`append_raw`), so
//! both logs are byte for byte the same and the replica's dispatcher builds
//! the same queues and indexes. Replicas are read-only: sends and
//! send-backs are refused naming the master, and their scheduler does not
//! fire (the master's deliveries arrive through the log).
//!
//! `master.rs` serves the stream; `follower.rs` is the replica's side.

pub mod config_sync;
pub mod follower;
pub mod master;
pub mod replicas;

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
        max_lag: u64,
    },
    Replica {
        status: std::sync::Arc<follower::FollowStatus>,
    },
}

/// How a sync-replication master waits for its replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReplication {
    pub min_in_sync: usize,
    pub timeout: std::time::Duration,
    pub max_lag: u64,
}

/// Most bytes of one streamed chunk: large reads for catch-up, whole
/// records only (a chunk holds at least one record, however large).
pub const CHUNK_BYTES: usize = 4 << 20;
