//! Scheduled messages: delay levels, delivery times and the retry path.
//!
//! A scheduled message is stored at once, in the internal topic
//! [`SCHEDULE_TOPIC`] (one queue per delay, see [`delays`]), with its real
//! topic and queue and its times in properties. The [`scheduler`] delivers
//! it to its real queue when due, where consumers then see it. Everything
//! is durable: the schedule queues are ordinary ConsumeQueues over the
//! CommitLog, and the scheduler's progress is a small offsets file plus a
//! scan of the CommitLog's tail at start (see [`scheduler`]).

pub mod delays;
pub mod scheduler;

use std::time::Duration;

use mq_store::MessageToStore;
use mq_store::message::{QueuePosition, Schedule};

pub use delays::DelayTable;

/// The internal topic holding scheduled messages until they are due.
pub use mq_common::system_topics::SCHEDULE_TOPIC;

/// Properties of scheduled and retried messages the broker sets and
/// producers may not, as RocketMQ names them where it has a name.
pub mod property {
    pub use mq_common::message::property::{
        DELAY, DELIVER_AT, FIRE_AT, FIRED_FROM, ORIGIN_QUEUE_ID, REAL_QID, REAL_TOPIC, RETRY_TOPIC,
    };

    /// Every property above.
    pub const ALL: [&str; 8] = [
        REAL_TOPIC,
        REAL_QID,
        DELAY,
        DELIVER_AT,
        FIRE_AT,
        FIRED_FROM,
        RETRY_TOPIC,
        ORIGIN_QUEUE_ID,
    ];
}

/// Turns `msg` (for its own topic and queue) into the schedule entry that
/// delivers it at `deliver_at_ms`; `level` is recorded when there is one.
pub fn schedule(
    mut msg: MessageToStore,
    table: &DelayTable,
    deliver_at_ms: u64,
    level: Option<u32>,
    now_ms: u64,
) -> MessageToStore {
    let (queue, wait) = table.hop(Duration::from_millis(deliver_at_ms.saturating_sub(now_ms)));
    msg.fired_from = None;
    msg.schedule = Some(Schedule {
        real_topic: std::mem::replace(&mut msg.topic, SCHEDULE_TOPIC.into()),
        real_queue_id: msg.queue_id,
        deliver_at_ms,
        fire_at_ms: now_ms + millis(wait),
    });
    if level.is_some() {
        msg.delay_level = level;
    }
    msg.queue_id = queue;
    msg
}

/// Where a schedule entry goes when its stop ends at `now_ms`: to its real
/// queue if due, else to the next hop. `fired_from` marks the new record.
pub fn fire(
    entry: &mq_store::StoredMessage,
    table: &DelayTable,
    now_ms: u64,
) -> Result<MessageToStore, String> {
    let Some(schedule) = &entry.schedule else {
        return Err("no schedule (real topic, queue and times) on the entry".into());
    };
    let mut msg = entry.to_store();
    msg.fired_from = Some(QueuePosition {
        queue_id: entry.queue_id,
        offset: entry.queue_offset,
    });
    if schedule.deliver_at_ms > now_ms {
        let (queue, wait) = table.hop(Duration::from_millis(schedule.deliver_at_ms - now_ms));
        msg.queue_id = queue;
        if let Some(schedule) = &mut msg.schedule {
            schedule.fire_at_ms = now_ms + millis(wait);
        }
        return Ok(msg);
    }
    msg.topic = schedule.real_topic.clone();
    msg.queue_id = schedule.real_queue_id;
    msg.schedule = None;
    Ok(msg)
}

/// When the stop of a schedule entry ends (0 without a schedule: at once).
pub fn fire_at(entry: &mq_store::StoredMessage) -> u64 {
    entry.schedule.as_ref().map_or(0, |s| s.fire_at_ms)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
