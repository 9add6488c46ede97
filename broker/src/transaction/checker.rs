//! Checking back: every second the checker saves the book and walks the
//! open half messages. One older than `transaction_timeout` is asked
//! about (a live producer of its group, over its session) every
//! `transaction_check_interval`; after `transaction_check_max` checks
//! without an answer it is discarded into `TRANS_CHECK_MAX_TIME_TOPIC`,
//! logged and counted.

use std::sync::Arc;
use std::time::Duration;

use mq_common::system_topics::TRANSACTION_HALF_TOPIC;
use mq_store::{MessageStore, StoredMessage, TagFilter};
use tokio::sync::watch;

use super::book::TransactionBook;
use super::sessions::ProducerSessions;
use super::{Outcome, producer_group, transaction_id};
use crate::service::wire;

/// How often the checker wakes.
const TICK: Duration = Duration::from_secs(1);
/// Half messages read per batch.
const READ_BATCH: usize = 64;
/// Half messages looked at per round at most: a huge backlog of open
/// transactions is walked over several rounds.
const MAX_PER_ROUND: u64 = 10_000;

/// When to ask and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct CheckSettings {
    /// A half message younger than this is not asked about.
    pub timeout: Duration,
    /// Between two checks of one transaction.
    pub interval: Duration,
    /// Checks before the half message is discarded.
    pub max: u32,
}

/// The checker's parts.
#[derive(Debug, Clone)]
pub struct Checker {
    pub store: Arc<MessageStore>,
    pub book: Arc<TransactionBook>,
    pub sessions: Arc<ProducerSessions>,
    pub settings: CheckSettings,
    pub metrics: crate::metrics::BrokerMetrics,
}

impl Checker {
    /// Runs until `stop`, then saves the book.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(TICK.min(self.settings.interval));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            self.book.save();
            self.round(mq_common::clock::unix_millis()).await;
        }
        self.sessions.close_all();
        self.book.save();
    }

    /// Asks about, or discards, every open half message that is due.
    pub async fn round(&self, now_ms: u64) {
        let timeout = millis(self.settings.timeout);
        let interval = millis(self.settings.interval);
        // Half messages retention removed are passed over first.
        self.book.compact();
        let mut offset = self.book.open_from();
        let last = offset + MAX_PER_ROUND;
        while offset < last {
            let read = self.store.get_messages(
                TRANSACTION_HALF_TOPIC,
                0,
                offset,
                READ_BATCH,
                usize::MAX,
                &TagFilter::All,
            );
            if read.messages.is_empty() {
                // Damaged records or a moved queue: go on past them.
                if read.next_offset > offset && read.next_offset < read.max_offset {
                    offset = read.next_offset;
                    continue;
                }
                return;
            }
            for half in &read.messages {
                // The half queue is in store order: the rest are younger.
                if now_ms.saturating_sub(half.store_timestamp_ms) < timeout {
                    return;
                }
                if self.book.settled(half.queue_offset) {
                    continue;
                }
                let checks = self.book.checks(half.queue_offset);
                if checks.last_ms != 0 && now_ms.saturating_sub(checks.last_ms) < interval {
                    continue;
                }
                if checks.count >= self.settings.max {
                    self.discard(half, checks.count).await;
                } else {
                    self.ask(half, now_ms);
                }
            }
            offset = read.next_offset;
        }
    }

    fn ask(&self, half: &StoredMessage, now_ms: u64) {
        let group = producer_group(half).to_owned();
        let checks = self.book.checked(half.queue_offset, now_ms);
        let id = transaction_id(half.queue_offset, half.physical_offset);
        let mut message = wire::stored_message(half.clone());
        if let Some((topic, queue)) = super::destination(half) {
            message.topic = topic;
            message.queue_id = queue;
        }
        let check = mq_proto::broker::v1::TransactionCheck {
            transaction_id: id.clone(),
            message: Some(message),
            check: checks.count,
        };
        self.metrics.transaction_checked();
        match self.sessions.ask(&group, check) {
            Some(client_id) => tracing::info!(
                transaction = %id, group, client_id, check = checks.count,
                "transaction has no outcome yet; asked its producer"
            ),
            None => tracing::warn!(
                transaction = %id, group, check = checks.count,
                "transaction has no outcome yet and no producer of its group is connected to ask"
            ),
        }
    }

    async fn discard(&self, half: &StoredMessage, checks: u32) {
        let id = transaction_id(half.queue_offset, half.physical_offset);
        match self.book.end(half, Outcome::Discarded).await {
            Ok(_) => {
                self.metrics.transaction_discarded();
                tracing::warn!(
                    transaction = %id,
                    group = producer_group(half),
                    checks,
                    "transaction discarded after its last check; its message is kept in TRANS_CHECK_MAX_TIME_TOPIC"
                );
            }
            Err(err) => {
                tracing::warn!(transaction = %id, error = ?err, "cannot discard the transaction yet")
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
