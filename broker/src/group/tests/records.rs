//! The `__consumer_offsets` key/value codec, against Kafka's layouts.

use bytes::{BufMut, Bytes, BytesMut};

use crate::group::records::{
    GroupMetadataValue, GroupRecord, MemberMetadataValue, OffsetCommitValue, RecordError,
    TopicPartition,
};

fn offset_record(value: Option<OffsetCommitValue>) -> GroupRecord {
    GroupRecord::Offset {
        group_id: "g".into(),
        topic_partition: TopicPartition {
            topic: "t".into(),
            partition: 3,
        },
        value,
    }
}

fn group_value() -> GroupMetadataValue {
    GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 7,
        protocol: Some("range".into()),
        leader: Some("m1".into()),
        current_state_timestamp_ms: Some(1_234),
        members: vec![
            MemberMetadataValue {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/h".into(),
                rebalance_timeout_ms: 30_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            },
            MemberMetadataValue {
                member_id: "m2".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/h".into(),
                rebalance_timeout_ms: 30_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::new(),
                assignment: Bytes::new(),
            },
        ],
    }
}

fn round_trip(record: &GroupRecord) -> GroupRecord {
    let key = record.encode_key().expect("key");
    let value = record.encode_value().expect("value");
    GroupRecord::decode(&key, value.as_deref()).expect("decode")
}

#[test]
fn records_round_trip() {
    let v3 = offset_record(Some(OffsetCommitValue {
        offset: 99,
        leader_epoch: Some(4),
        metadata: "m".into(),
        commit_timestamp_ms: 5,
        expire_timestamp_ms: None,
    }));
    let v1 = offset_record(Some(OffsetCommitValue {
        offset: 99,
        leader_epoch: None,
        metadata: String::new(),
        commit_timestamp_ms: 5,
        expire_timestamp_ms: Some(6),
    }));
    let group = GroupRecord::Group {
        group_id: "g".into(),
        value: Some(group_value()),
    };
    let empty_group = GroupRecord::Group {
        group_id: "g".into(),
        value: Some(GroupMetadataValue {
            protocol_type: String::new(),
            generation: 1,
            protocol: None,
            leader: None,
            current_state_timestamp_ms: None,
            members: Vec::new(),
        }),
    };
    let tombstones = [
        offset_record(None),
        GroupRecord::Group {
            group_id: "g".into(),
            value: None,
        },
    ];
    for record in [v3, v1, group, empty_group].iter().chain(&tombstones) {
        assert_eq!(&round_trip(record), record);
    }
    assert_eq!(tombstones[0].encode_value(), Ok(None));
}

#[test]
fn layouts_match_kafka() {
    let key = offset_record(None).encode_key().expect("key");
    assert_eq!(&key[..], b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x03");
    let key = GroupRecord::Group {
        group_id: "g".into(),
        value: None,
    }
    .encode_key()
    .expect("key");
    assert_eq!(&key[..], b"\x00\x02\x00\x01g");
    let value = offset_record(Some(OffsetCommitValue {
        offset: 1,
        leader_epoch: Some(2),
        metadata: "m".into(),
        commit_timestamp_ms: 3,
        expire_timestamp_ms: None,
    }))
    .encode_value()
    .expect("value")
    .expect("not a tombstone");
    let mut expected = BytesMut::new();
    expected.put_i16(3);
    expected.put_i64(1);
    expected.put_i32(2);
    expected.put_i16(1);
    expected.put_slice(b"m");
    expected.put_i64(3);
    assert_eq!(value, expected.freeze());
}

fn string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn compact_string(buf: &mut BytesMut, s: &str) {
    buf.put_u8(s.len() as u8 + 1);
    buf.put_slice(s.as_bytes());
}

#[test]
fn decodes_version_0_group_value() {
    let mut value = BytesMut::new();
    value.put_i16(0);
    string(&mut value, "consumer");
    value.put_i32(3);
    string(&mut value, "range");
    string(&mut value, "m1");
    value.put_i32(1);
    string(&mut value, "m1");
    string(&mut value, "c");
    string(&mut value, "/h");
    value.put_i32(10_000);
    value.put_i32(3);
    value.put_slice(b"sub");
    value.put_i32(0);
    let record = GroupRecord::decode(b"\x00\x02\x00\x01g", Some(&value)).expect("decodes");
    let GroupRecord::Group {
        value: Some(value), ..
    } = record
    else {
        panic!("not a group record: {record:?}");
    };
    assert_eq!(value.generation, 3);
    assert_eq!(value.current_state_timestamp_ms, None);
    let member = &value.members[0];
    // v0 has one timeout; it serves as both.
    assert_eq!(
        (member.session_timeout_ms, member.rebalance_timeout_ms),
        (10_000, 10_000)
    );
    assert_eq!(member.subscription, Bytes::from_static(b"sub"));
    assert_eq!(member.group_instance_id, None);
}

#[test]
fn decodes_flexible_version_4_values() {
    let mut value = BytesMut::new();
    value.put_i16(4);
    compact_string(&mut value, "consumer");
    value.put_i32(9);
    compact_string(&mut value, "range");
    value.put_u8(0); // null leader
    value.put_i64(77);
    value.put_u8(2); // one member
    compact_string(&mut value, "m1");
    compact_string(&mut value, "i1");
    compact_string(&mut value, "c");
    compact_string(&mut value, "/h");
    value.put_i32(30_000);
    value.put_i32(10_000);
    value.put_u8(4);
    value.put_slice(b"sub");
    value.put_u8(1); // empty assignment
    value.put_u8(0); // member tagged fields
    value.put_slice(&[1, 5, 2, 0xAA, 0xBB]); // one unknown tagged field, skipped
    let record = GroupRecord::decode(b"\x00\x02\x00\x01g", Some(&value)).expect("decodes");
    let GroupRecord::Group {
        value: Some(value), ..
    } = record
    else {
        panic!("not a group record: {record:?}");
    };
    assert_eq!(value.leader, None);
    assert_eq!(value.current_state_timestamp_ms, Some(77));
    assert_eq!(value.members[0].group_instance_id.as_deref(), Some("i1"));
    assert_eq!(value.members[0].subscription, Bytes::from_static(b"sub"));

    let mut offset = BytesMut::new();
    offset.put_i16(4);
    offset.put_i64(5);
    offset.put_i32(-1);
    compact_string(&mut offset, "meta");
    offset.put_i64(8);
    offset.put_u8(0);
    let record = GroupRecord::decode(b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x03", Some(&offset))
        .expect("decodes");
    assert_eq!(
        record,
        offset_record(Some(OffsetCommitValue {
            offset: 5,
            leader_epoch: None,
            metadata: "meta".into(),
            commit_timestamp_ms: 8,
            expire_timestamp_ms: None,
        }))
    );
}

#[test]
fn corrupt_records_are_errors_not_panics() {
    let record = GroupRecord::Group {
        group_id: "g".into(),
        value: Some(group_value()),
    };
    let key = record.encode_key().expect("key");
    let value = record
        .encode_value()
        .expect("value")
        .expect("value present");
    for cut in 0..value.len() {
        assert!(
            GroupRecord::decode(&key, Some(&value[..cut])).is_err(),
            "a value cut at {cut} bytes must not decode"
        );
    }
    for cut in 0..key.len() {
        assert!(GroupRecord::decode(&key[..cut], None).is_err());
    }
    assert_eq!(
        GroupRecord::decode(b"\x00\x03\x00\x01g", None),
        Err(RecordError::UnknownKeyVersion(3))
    );
    assert_eq!(
        GroupRecord::decode(&key, Some(b"\x00\x05")),
        Err(RecordError::UnsupportedValueVersion {
            record: "GroupMetadataValue",
            version: 5
        })
    );
    // A member count far beyond the bytes present is refused before anything is reserved.
    let mut huge = BytesMut::new();
    huge.put_i16(3);
    string(&mut huge, "consumer");
    huge.put_i32(1);
    huge.put_i16(-1);
    huge.put_i16(-1);
    huge.put_i64(0);
    huge.put_i32(i32::MAX);
    assert!(matches!(
        GroupRecord::decode(&key, Some(&huge)),
        Err(RecordError::Truncated {
            field: "members",
            ..
        })
    ));
    let mut negative = BytesMut::new();
    negative.put_i16(1);
    negative.put_i16(-5);
    assert!(matches!(
        GroupRecord::decode(&negative, None),
        Err(RecordError::InvalidLength { .. })
    ));
}

#[test]
fn unencodable_fields_are_errors() {
    let record = GroupRecord::Group {
        group_id: "x".repeat(40_000),
        value: None,
    };
    assert!(matches!(
        record.encode_key(),
        Err(RecordError::FieldTooLong {
            field: "group",
            length: 40_000
        })
    ));
}
