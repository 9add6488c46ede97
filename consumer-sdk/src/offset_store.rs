//! Where a group keeps its place: on the brokers (clustering: shared by
//! the group) or in a local file (broadcasting: each member its own).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use mq_proto::broker::v1 as pb;

use crate::cluster::Cluster;
use crate::error::ConsumerError;
use crate::queue::MessageQueue;

#[derive(Debug)]
pub enum OffsetStore {
    /// `CommitOffset` / `QueryOffset` on the queue's broker.
    Remote { group: String },
    /// A JSON file: queue -> next offset.
    Local {
        path: PathBuf,
        offsets: Mutex<BTreeMap<String, u64>>,
    },
}

impl OffsetStore {
    pub fn remote(group: &str) -> Self {
        OffsetStore::Remote {
            group: group.to_owned(),
        }
    }

    /// Offsets in `path`, loaded now (a missing file is empty).
    pub fn local(path: PathBuf) -> Result<Self, ConsumerError> {
        let offsets = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ConsumerError::Config(format!("{}: {e}", path.display())))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(err) => return Err(ConsumerError::Config(format!("{}: {err}", path.display()))),
        };
        Ok(OffsetStore::Local {
            path,
            offsets: Mutex::new(offsets),
        })
    }

    pub async fn query(
        &self,
        cluster: &Cluster,
        queue: &MessageQueue,
    ) -> Result<Option<u64>, ConsumerError> {
        match self {
            OffsetStore::Remote { group } => {
                let addr = cluster.addr_of(queue).ok_or_else(|| no_broker(queue))?;
                let response = cluster
                    .client(&addr)?
                    .query_offset(pb::QueryOffsetRequest {
                        group: group.clone(),
                        topic: queue.topic.clone(),
                        queue_id: queue.queue_id,
                    })
                    .await
                    .map_err(|s| {
                        cluster.failed(&addr, &s);
                        ConsumerError::broker(&queue.broker_name, s)
                    })?;
                Ok(response.into_inner().offset)
            }
            OffsetStore::Local { offsets, .. } => {
                Ok(lock(offsets).get(&queue.to_string()).copied())
            }
        }
    }

    pub async fn commit(
        &self,
        cluster: &Cluster,
        queue: &MessageQueue,
        offset: u64,
        reset_version: u64,
    ) -> Result<(), ConsumerError> {
        match self {
            OffsetStore::Remote { group } => {
                let addr = cluster.addr_of(queue).ok_or_else(|| no_broker(queue))?;
                cluster
                    .client(&addr)?
                    .commit_offset(pb::CommitOffsetRequest {
                        group: group.clone(),
                        topic: queue.topic.clone(),
                        queue_id: queue.queue_id,
                        offset,
                        offset_reset_version: reset_version,
                    })
                    .await
                    .map_err(|s| {
                        cluster.failed(&addr, &s);
                        ConsumerError::broker(&queue.broker_name, s)
                    })?;
                Ok(())
            }
            OffsetStore::Local { path, offsets } => {
                let bytes = {
                    let mut offsets = lock(offsets);
                    offsets.insert(queue.to_string(), offset);
                    serde_json::to_vec_pretty(&*offsets)
                        .map_err(|e| ConsumerError::Config(e.to_string()))?
                };
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, bytes)
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .map_err(|e| ConsumerError::Config(format!("{}: {e}", path.display())))
            }
        }
    }
}

fn lock(
    offsets: &Mutex<BTreeMap<String, u64>>,
) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
    offsets.lock().unwrap_or_else(|e| e.into_inner())
}

fn no_broker(queue: &MessageQueue) -> ConsumerError {
    ConsumerError::NoRoute {
        topic: queue.topic.clone(),
        reason: format!("broker {} is not in the route", queue.broker_name),
    }
}
