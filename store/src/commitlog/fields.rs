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
type Entry<'a> = (&'a str, Cow<'a, str>);

/// Most properties typed fields write (the schedule writes four).
const MAX_TYPED: usize = 9;

/// Calls `write` with every property `msg` writes, its typed fields
/// included, in name order. Sorts nothing and allocates nothing but the
/// text of keys and numbers that are set: it runs three times per
/// appended message (size, layout, bytes).
pub(super) fn for_each(msg: &MessageToStore, mut write: impl FnMut(&str, &str)) {
    let typed = typed(msg);
    let mut typed = typed.iter().flatten().peekable();
    for (name, value) in &msg.properties {
        if shadowed(msg, name) {
            continue;
        }
        while let Some((t, v)) = typed.next_if(|(t, _)| *t < name.as_str()) {
            write(t, v);
        }
        write(name, value);
    }
    for (t, v) in typed {
        write(t, v);
    }
}

/// The properties `msg`'s typed fields write, in name order (checked by a
/// test); `None` for a field that is not set.
fn typed(msg: &MessageToStore) -> [Option<Entry<'_>>; MAX_TYPED] {
    let number = |name, n: u64| (name, Cow::Owned(n.to_string()));
    let schedule = msg.schedule.as_ref();
    [
        msg.delay_level
            .map(|level| number(property::DELAY, u64::from(level))),
        (!msg.keys.is_empty()).then(|| (property::KEYS, Cow::Owned(msg.keys.join(" ")))),
        schedule.map(|s| number(property::REAL_QID, u64::from(s.real_queue_id))),
        schedule.map(|s| (property::REAL_TOPIC, Cow::Borrowed(s.real_topic.as_str()))),
        msg.fired_from.map(|QueuePosition { queue_id, offset }| {
            (
                property::FIRED_FROM,
                Cow::Owned(format!("{queue_id}:{offset}")),
            )
        }),
        schedule.map(|s| number(property::FIRE_AT, s.fire_at_ms)),
        msg.tags
            .as_deref()
            .map(|t| (property::TAGS, Cow::Borrowed(t))),
        schedule.map(|s| number(property::DELIVER_AT, s.deliver_at_ms)),
        msg.unique_id
            .as_deref()
            .map(|id| (property::UNIQUE_ID, Cow::Borrowed(id))),
    ]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_are_listed_in_name_order() {
        let msg = MessageToStore {
            tags: Some("t".into()),
            keys: vec!["k".into()],
            unique_id: Some("u".into()),
            delay_level: Some(1),
            schedule: Some(Schedule {
                real_topic: "r".into(),
                real_queue_id: 0,
                deliver_at_ms: 0,
                fire_at_ms: 0,
            }),
            fired_from: Some(QueuePosition {
                queue_id: 0,
                offset: 0,
            }),
            ..MessageToStore::new("t", 0, bytes::Bytes::new())
        };
        let names: Vec<&str> = typed(&msg).iter().flatten().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), MAX_TYPED, "every field set");
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    }
}
