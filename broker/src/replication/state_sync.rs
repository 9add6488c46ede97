//! What is not in the log, synced from master to replica (as RocketMQ's
//! replicas sync topic configs, consumer offsets and delay offsets): the
//! topic table, consumer offsets with their reset versions, and the
//! scheduler's progress. A replica asks every `interval`; with its ask it
//! hands over the offsets consumers committed on it since the last sync
//! (they read from it while the master was unreachable), so that when the
//! master returns, consumption resumes where it stopped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mq_auth::client::SignedChannel;
use mq_proto::replication::v1 as pb;
use mq_proto::replication::v1::replication_client::ReplicationClient;
use tokio::sync::watch;
use tonic::Status;

use crate::consumer_offsets::{Adopted, Commit, ConsumerOffsets, QueueKey};
use crate::schedule::scheduler::Progress;
use crate::service::wire;
use crate::topic_table::TopicTable;

/// The state a broker keeps beside its log, as both sides of the sync see
/// it.
#[derive(Debug, Clone)]
pub struct BrokerState {
    pub topics: Arc<TopicTable>,
    pub offsets: Arc<ConsumerOffsets>,
    /// `schedule_progress.json` in the store directory.
    pub schedule_path: PathBuf,
}

impl BrokerState {
    /// The master's answer: takes the replica's commits, then tells its
    /// own state.
    pub fn answer(&self, request: pb::SyncStateRequest) -> Result<pb::SyncStateResponse, Status> {
        let mut taken = 0;
        // Offsets of a topic deleted here since stay deleted.
        for c in request
            .committed
            .into_iter()
            .filter(|c| self.topics.get(&c.topic).is_some())
        {
            let commit = Commit {
                offset: c.offset,
                reset_version: c.reset_version,
            };
            taken += usize::from(
                self.offsets
                    .take_forwarded(&(c.group, c.topic, c.queue_id), commit),
            );
        }
        if taken > 0 {
            tracing::info!(
                replica = request.broker_id,
                taken,
                "took offsets committed on a replica"
            );
        }
        let progress = Progress::load(&self.schedule_path).map_err(|e| {
            Status::internal(format!("reading {}: {e}", self.schedule_path.display()))
        })?;
        let reset_versions = self.offsets.reset_versions();
        Ok(pb::SyncStateResponse {
            topics: self
                .topics
                .snapshot()
                .0
                .into_iter()
                .map(wire::pb_topic_config)
                .collect(),
            offsets: self
                .offsets
                .all()
                .into_iter()
                .map(|(group, topic, queue_id, offset)| pb::GroupOffset {
                    reset_version: reset_versions.get(&group).copied().unwrap_or(0),
                    group,
                    topic,
                    queue_id,
                    offset,
                })
                .collect(),
            reset_versions: reset_versions.into_iter().collect(),
            schedule: Some(pb::ScheduleProgress {
                log_end: progress.log_end,
                next_offsets: progress.offsets.into_iter().collect(),
            }),
        })
    }

    /// The replica's side: adopts the master's answer.
    fn adopt(&self, answer: pb::SyncStateResponse) -> Result<(), String> {
        let mut configs = Vec::with_capacity(answer.topics.len());
        for (i, topic) in answer.topics.into_iter().enumerate() {
            configs.push(
                wire::topic_config(&format!("topics[{i}]"), Some(topic))
                    .map_err(|e| e.to_string())?,
            );
        }
        if self
            .topics
            .replace_all(configs)
            .map_err(|e| e.to_string())?
        {
            tracing::info!("took the master's topics");
        }
        self.offsets.adopt(Adopted {
            offsets: answer
                .offsets
                .into_iter()
                .map(|o| ((o.group, o.topic, o.queue_id), o.offset))
                .collect(),
            reset_versions: answer.reset_versions.into_iter().collect(),
        });
        let schedule = answer.schedule.unwrap_or_default();
        let progress = Progress {
            log_end: schedule.log_end,
            offsets: schedule.next_offsets.into_iter().collect(),
        };
        if Progress::load(&self.schedule_path).ok().as_ref() != Some(&progress) {
            progress
                .save(&self.schedule_path)
                .map_err(|e| format!("{}: {e}", self.schedule_path.display()))?;
        }
        Ok(())
    }
}

/// A replica's periodic sync with its master.
#[derive(Debug, Clone)]
pub struct StateSync {
    pub master_addr: String,
    pub broker_name: String,
    pub broker_id: u64,
    pub state: BrokerState,
    pub interval: Duration,
    /// How the master is reached: TLS, signed.
    pub connector: mq_auth::Connector,
}

/// How long one sync may take.
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);

impl StateSync {
    /// Syncs at once, then every `interval`, until `stop`; a master that
    /// does not answer is tried again at the next round.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        // One channel for every round: it reconnects by itself.
        let master = match self.connector.endpoint(&self.master_addr) {
            Ok(endpoint) => ReplicationClient::new(
                self.connector
                    .lazy(endpoint.connect_timeout(Duration::from_secs(3))),
            ),
            Err(err) => {
                tracing::error!(master = %self.master_addr, error = %err, "cannot sync state with the master");
                return;
            }
        };
        let mut ticks = tokio::time::interval(self.interval);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            // A master cut off by the network answers nothing until the
            // call times out: a stop (a restart into a new role, perhaps
            // as master) must not wait for that.
            let unsynced = self.state.offsets.take_unsynced();
            let answer = tokio::select! {
                answer = self.ask(master.clone(), &unsynced) => answer,
                _ = stop.wait_for(|s| *s) => {
                    self.state.offsets.restore_unsynced(unsynced);
                    return;
                }
            };
            if let Err(why) = self.settle(answer, unsynced) {
                tracing::warn!(master = %self.master_addr, error = %why, "cannot sync state with the master");
            }
        }
    }

    /// Adopts the master's answer, or keeps the commits to send again.
    fn settle(
        &self,
        answer: Result<pb::SyncStateResponse, String>,
        unsynced: BTreeMap<QueueKey, Commit>,
    ) -> Result<(), String> {
        match answer {
            Ok(answer) => self.state.adopt(answer),
            Err(why) => {
                self.state.offsets.restore_unsynced(unsynced);
                Err(why)
            }
        }
    }

    async fn ask(
        &self,
        mut master: ReplicationClient<SignedChannel>,
        unsynced: &BTreeMap<QueueKey, Commit>,
    ) -> Result<pb::SyncStateResponse, String> {
        let committed = unsynced
            .iter()
            .map(|((group, topic, queue_id), commit)| pb::GroupOffset {
                group: group.clone(),
                topic: topic.clone(),
                queue_id: *queue_id,
                offset: commit.offset,
                reset_version: commit.reset_version,
            })
            .collect();
        let mut request = tonic::Request::new(pb::SyncStateRequest {
            broker_name: self.broker_name.clone(),
            broker_id: self.broker_id,
            committed,
        });
        request.set_timeout(SYNC_TIMEOUT);
        Ok(master
            .sync_state(request)
            .await
            .map_err(|s| format!("{}: {}", s.code(), s.message()))?
            .into_inner())
    }
}
