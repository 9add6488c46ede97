//! The typed fields of a message as record properties: on disk, tags,
//! keys, the unique id, the delay level, the schedule and where a record
//! was fired from are properties under their RocketMQ names, written in
//! name order with the others, exactly as when they lived in the property
//! map. Folding and unfolding them happens here and nowhere else.

use std::borrow::Cow;

use crate::message::{
    MessageToStore, Properties, QueuePosition, Schedule, StoredMessage, property,
};

/// A property as written: name and value.
pub(super) type Entry<'a> = (&'a str, Cow<'a, str>);

/// Every property `msg` writes, its typed fields included, sorted by name.
pub(super) fn entries(msg: &MessageToStore) -> Vec<Entry<'_>> {
    let mut out: Vec<Entry<'_>> = Vec::with_capacity(msg.properties.len() + 3);
    if let Some(tags) = &msg.tags {
        out.push((property::TAGS, Cow::Borrowed(tags)));
    }
    if !msg.keys.is_empty() {
        out.push((property::KEYS, Cow::Owned(msg.keys.join(" "))));
    }
    if let Some(id) = &msg.unique_id {
        out.push((property::UNIQUE_ID, Cow::Borrowed(id)));
    }
    if let Some(level) = msg.delay_level {
        out.push((property::DELAY, Cow::Owned(level.to_string())));
    }
    if let Some(schedule) = &msg.schedule {
        out.push((property::REAL_TOPIC, Cow::Borrowed(&schedule.real_topic)));
        let numbers = [
            (property::REAL_QID, u64::from(schedule.real_queue_id)),
            (property::DELIVER_AT, schedule.deliver_at_ms),
            (property::FIRE_AT, schedule.fire_at_ms),
        ];
        out.extend(numbers.map(|(name, n)| (name, Cow::Owned(n.to_string()))));
    }
    if let Some(QueuePosition { queue_id, offset }) = msg.fired_from {
        out.push((
            property::FIRED_FROM,
            Cow::Owned(format!("{queue_id}:{offset}")),
        ));
    }
    out.extend(
        msg.properties
            .iter()
            .filter(|(name, _)| !shadowed(msg, name))
            .map(|(name, value)| (name.as_str(), Cow::Borrowed(value.as_str()))),
    );
    out.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out
}

/// True if a typed field of `msg` that is set writes the property `name`:
/// it wins over a stray property of that name.
fn shadowed(msg: &MessageToStore, name: &str) -> bool {
    match name {
        property::TAGS => msg.tags.is_some(),
        property::KEYS => !msg.keys.is_empty(),
        property::UNIQUE_ID => msg.unique_id.is_some(),
        property::DELAY => msg.delay_level.is_some(),
        property::REAL_TOPIC | property::REAL_QID | property::DELIVER_AT | property::FIRE_AT => {
            msg.schedule.is_some()
        }
        property::FIRED_FROM => msg.fired_from.is_some(),
        _ => false,
    }
}

/// Moves the typed fields of `msg` out of its properties; a value that
/// does not parse stays where it is.
pub(super) fn unfold(msg: &mut StoredMessage) {
    let properties = &mut msg.properties;
    msg.keys = properties
        .remove(property::KEYS)
        .map(|k| {
            k.split(' ')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    msg.tags = properties.remove(property::TAGS);
    msg.unique_id = properties.remove(property::UNIQUE_ID);
    msg.delay_level = take(properties, property::DELAY, |v| v.parse().ok());
    msg.schedule = take_schedule(properties);
    msg.fired_from = take(properties, property::FIRED_FROM, |v| {
        let (queue, offset) = v.split_once(':')?;
        Some(QueuePosition {
            queue_id: queue.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    });
}

/// Removes and parses the property `name`, if it parses.
fn take<T>(
    properties: &mut Properties,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    let value = parse(properties.get(name)?)?;
    properties.remove(name);
    Some(value)
}

fn take_schedule(properties: &mut Properties) -> Option<Schedule> {
    let number = |name: &str| properties.get(name)?.parse::<u64>().ok();
    let schedule = Schedule {
        real_topic: properties.get(property::REAL_TOPIC)?.clone(),
        real_queue_id: u32::try_from(number(property::REAL_QID)?).ok()?,
        deliver_at_ms: number(property::DELIVER_AT)?,
        fire_at_ms: number(property::FIRE_AT)?,
    };
    for name in [
        property::REAL_TOPIC,
        property::REAL_QID,
        property::DELIVER_AT,
        property::FIRE_AT,
    ] {
        properties.remove(name);
    }
    Some(schedule)
}
