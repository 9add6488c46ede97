use super::*;

fn message(topic: &str, kind: v2::MessageType) -> v2::Message {
    v2::Message {
        topic: Some(v2::Resource {
            resource_namespace: String::new(),
            name: topic.into(),
        }),
        user_properties: [("color".to_owned(), "red".to_owned())].into(),
        system_properties: Some(v2::SystemProperties {
            tag: Some("TagA".into()),
            keys: vec!["order-1".into()],
            message_id: "01AABBCCDDEEFF000100000001".into(),
            message_type: kind as i32,
            born_timestamp: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5_000_000,
            }),
            ..Default::default()
        }),
        body: bytes::Bytes::from_static(b"hello"),
    }
}

fn code(result: Result<Outgoing, Refusal>) -> Code {
    result.expect_err("refused").code()
}

#[test]
fn a_normal_message_maps_every_field() {
    let out = outgoing(
        vec![message("t", v2::MessageType::Normal)],
        MessageType::Normal,
        1024,
    )
    .unwrap();
    assert_eq!(out.topic, "t");
    let m = &out.messages[0];
    assert_eq!(m.tags, "TagA");
    assert_eq!(m.keys, ["order-1"]);
    assert_eq!(m.unique_id, "01AABBCCDDEEFF000100000001");
    assert_eq!(m.properties.get("color").map(String::as_str), Some("red"));
    assert_eq!(m.born_timestamp_ms, 1_700_000_000_005);
    assert_eq!(&m.body[..], b"hello");
}

#[test]
fn fifo_and_delay_messages_carry_their_group_and_time() {
    let mut fifo = message("t", v2::MessageType::Fifo);
    fifo.system_properties.as_mut().unwrap().message_group = Some("g1".into());
    let out = outgoing(vec![fifo], MessageType::Fifo, 1024).unwrap();
    assert_eq!(out.message_group.as_deref(), Some("g1"));
    assert_eq!(out.messages[0].sharding_key, "g1");

    let mut delay = message("t", v2::MessageType::Delay);
    delay.system_properties.as_mut().unwrap().delivery_timestamp = Some(prost_types::Timestamp {
        seconds: 1_900_000_000,
        nanos: 0,
    });
    let out = outgoing(vec![delay], MessageType::Delay, 1024).unwrap();
    assert_eq!(out.messages[0].deliver_at_ms, 1_900_000_000_000);
}

#[test]
fn a_message_of_another_type_than_its_topic_is_refused() {
    let normal = message("t", v2::MessageType::Normal);
    assert_eq!(
        code(outgoing(vec![normal.clone()], MessageType::Fifo, 1024)),
        Code::MessagePropertyConflictWithType
    );
    let fifo_without_group = message("t", v2::MessageType::Fifo);
    assert_eq!(
        code(outgoing(vec![fifo_without_group], MessageType::Fifo, 1024)),
        Code::MessagePropertyConflictWithType
    );
    let mut normal_with_group = normal;
    normal_with_group
        .system_properties
        .as_mut()
        .unwrap()
        .message_group = Some("g".into());
    assert_eq!(
        code(outgoing(vec![normal_with_group], MessageType::Normal, 1024)),
        Code::MessagePropertyConflictWithType
    );
    let transaction = message("t", v2::MessageType::Transaction);
    assert!(outgoing(vec![transaction.clone()], MessageType::Transaction, 1024).is_ok());
    let mut grouped = transaction;
    grouped.system_properties.as_mut().unwrap().message_group = Some("g".into());
    assert_eq!(
        code(outgoing(vec![grouped], MessageType::Transaction, 1024)),
        Code::MessagePropertyConflictWithType
    );
}

#[test]
fn bad_messages_get_the_protocols_codes() {
    let ok = || message("t", v2::MessageType::Normal);
    let normal = MessageType::Normal;
    assert_eq!(code(outgoing(vec![], normal, 1024)), Code::BadRequest);
    assert_eq!(
        code(outgoing(vec![ok()], normal, 3)),
        Code::MessageBodyTooLarge
    );

    let mut no_id = ok();
    no_id.system_properties.as_mut().unwrap().message_id.clear();
    assert_eq!(
        code(outgoing(vec![no_id], normal, 1024)),
        Code::IllegalMessageId
    );

    let mut reserved = ok();
    reserved
        .user_properties
        .insert("UNIQ_KEY".into(), "x".into());
    assert_eq!(
        code(outgoing(vec![reserved], normal, 1024)),
        Code::IllegalMessagePropertyKey
    );

    let mut bad_tag = ok();
    bad_tag.system_properties.as_mut().unwrap().tag = Some("a||b".into());
    assert_eq!(
        code(outgoing(vec![bad_tag], normal, 1024)),
        Code::IllegalMessageTag
    );

    let mut bad_key = ok();
    bad_key.system_properties.as_mut().unwrap().keys = vec!["two words".into()];
    assert_eq!(
        code(outgoing(vec![bad_key], normal, 1024)),
        Code::IllegalMessageKey
    );

    let mut bad_topic = ok();
    bad_topic.topic.as_mut().unwrap().name = "no spaces allowed".into();
    assert_eq!(
        code(outgoing(vec![bad_topic], normal, 1024)),
        Code::IllegalTopic
    );

    let other_topic = message("u", v2::MessageType::Normal);
    assert_eq!(
        code(outgoing(vec![ok(), other_topic], normal, 1024)),
        Code::BadRequest
    );

    let mut empty = ok();
    empty.body = bytes::Bytes::new();
    let refusal = outgoing(vec![empty], normal, 1024).unwrap_err();
    assert_eq!(refusal.code(), Code::BadRequest);
    assert!(
        refusal.0.message.contains("messages[0].body is empty"),
        "{:?}",
        refusal
    );
}
