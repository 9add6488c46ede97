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

pub use delays::DelayTable;

/// The internal topic holding scheduled messages until they are due.
pub use mq_common::system_topics::SCHEDULE_TOPIC;

/// Properties of scheduled and retried messages, as RocketMQ names them
/// where it has a name.
pub mod property {
    /// Topic the message is delivered to when due.
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    /// Queue the message is delivered to when due.
    pub const REAL_QID: &str = "REAL_QID";
    /// The delay level the producer (or the retry path) asked for.
    pub const DELAY: &str = "DELAY";
    /// When the message is due, ms since the epoch.
    pub const DELIVER_AT: &str = "TIMER_DELIVER_MS";
    /// When this stop of the message in a schedule queue ends.
    pub const FIRE_AT: &str = "SCHEDULE_FIRE_MS";
    /// `queue:offset` of the schedule entry a record was fired from; lets
    /// a restarted scheduler tell what it already fired.
    pub const FIRED_FROM: &str = "SCHEDULE_FIRED_FROM";
    /// The topic a retried or dead-lettered message was first consumed from.
    pub use mq_common::message::property::RETRY_TOPIC;
    /// The queue it was first consumed from.
    pub const ORIGIN_QUEUE_ID: &str = "ORIGIN_QUEUE_ID";

    /// Every property above: the broker sets them, producers may not.
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
    let props = &mut msg.properties;
    props.remove(property::FIRED_FROM);
    props.insert(property::REAL_TOPIC.into(), msg.topic.clone());
    props.insert(property::REAL_QID.into(), msg.queue_id.to_string());
    props.insert(property::DELIVER_AT.into(), deliver_at_ms.to_string());
    props.insert(
        property::FIRE_AT.into(),
        (now_ms + millis(wait)).to_string(),
    );
    if let Some(level) = level {
        props.insert(property::DELAY.into(), level.to_string());
    }
    msg.topic = SCHEDULE_TOPIC.into();
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
    let prop = |name: &str| {
        entry
            .properties
            .get(name)
            .ok_or_else(|| format!("no {name} property"))
    };
    let number = |name: &str| -> Result<u64, String> {
        prop(name)?
            .parse()
            .map_err(|_| format!("{name} is not a number"))
    };
    let deliver_at = number(property::DELIVER_AT)?;
    let mut msg = entry.to_store();
    msg.properties.insert(
        property::FIRED_FROM.into(),
        format!("{}:{}", entry.queue_id, entry.queue_offset),
    );
    if deliver_at > now_ms {
        let (queue, wait) = table.hop(Duration::from_millis(deliver_at - now_ms));
        msg.queue_id = queue;
        msg.properties.insert(
            property::FIRE_AT.into(),
            (now_ms + millis(wait)).to_string(),
        );
        return Ok(msg);
    }
    msg.topic = prop(property::REAL_TOPIC)?.clone();
    msg.queue_id = u32::try_from(number(property::REAL_QID)?)
        .map_err(|_| format!("{} is out of range", property::REAL_QID))?;
    for name in [
        property::REAL_TOPIC,
        property::REAL_QID,
        property::DELIVER_AT,
        property::FIRE_AT,
    ] {
        msg.properties.remove(name);
    }
    Ok(msg)
}

/// When the stop of a schedule entry ends (0 when unreadable: at once).
pub fn fire_at(entry: &mq_store::StoredMessage) -> u64 {
    entry
        .properties
        .get(property::FIRE_AT)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
