//! Field layout of the `__consumer_offsets` keys and values, per version.

use super::wire::{Reader, Writer};
use super::{
    GroupMetadataValue, GroupRecord, MemberMetadataValue, OffsetCommitValue, RecordError,
    TopicPartition,
};

/// Key version written for offsets; 0 and 1 share a layout and Kafka writes 1.
const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
/// Offset value with leader epoch and no expiry.
const OFFSET_VALUE_VERSION: i16 = 3;
/// The only offset value version with an explicit expiry.
const OFFSET_VALUE_VERSION_WITH_EXPIRY: i16 = 1;
const GROUP_VALUE_VERSION: i16 = 3;
/// Newest value version understood; 4 is the first flexible one.
const MAX_VALUE_VERSION: i16 = 4;
const FIRST_FLEXIBLE_VALUE_VERSION: i16 = 4;

pub(super) fn encode_key(record: &GroupRecord) -> Result<bytes::Bytes, RecordError> {
    let mut w = Writer::default();
    match record {
        GroupRecord::Offset {
            group_id,
            topic_partition,
            ..
        } => {
            w.i16(OFFSET_KEY_VERSION)
                .string("group", group_id)?
                .string("topic", &topic_partition.topic)?
                .i32(topic_partition.partition);
        }
        GroupRecord::Group { group_id, .. } => {
            w.i16(GROUP_KEY_VERSION).string("group", group_id)?;
        }
    }
    Ok(w.finish())
}

pub(super) fn encode_value(record: &GroupRecord) -> Result<Option<bytes::Bytes>, RecordError> {
    match record {
        GroupRecord::Offset { value: None, .. } | GroupRecord::Group { value: None, .. } => {
            Ok(None)
        }
        GroupRecord::Offset {
            value: Some(value), ..
        } => encode_offset_value(value).map(Some),
        GroupRecord::Group {
            value: Some(value), ..
        } => encode_group_value(value).map(Some),
    }
}

fn encode_offset_value(value: &OffsetCommitValue) -> Result<bytes::Bytes, RecordError> {
    let mut w = Writer::default();
    match value.expire_timestamp_ms {
        // v1 is the only layout that can carry an expiry; it has no leader epoch.
        Some(expire) => {
            w.i16(OFFSET_VALUE_VERSION_WITH_EXPIRY)
                .i64(value.offset)
                .string("metadata", &value.metadata)?
                .i64(value.commit_timestamp_ms)
                .i64(expire);
        }
        None => {
            w.i16(OFFSET_VALUE_VERSION)
                .i64(value.offset)
                .i32(value.leader_epoch.unwrap_or(-1))
                .string("metadata", &value.metadata)?
                .i64(value.commit_timestamp_ms);
        }
    }
    Ok(w.finish())
}

fn encode_group_value(value: &GroupMetadataValue) -> Result<bytes::Bytes, RecordError> {
    let mut w = Writer::default();
    w.i16(GROUP_VALUE_VERSION)
        .string("protocol type", &value.protocol_type)?
        .i32(value.generation)
        .nullable_string("protocol", value.protocol.as_deref())?
        .nullable_string("leader", value.leader.as_deref())?
        .i64(value.current_state_timestamp_ms.unwrap_or(-1))
        .array_len("members", value.members.len())?;
    for member in &value.members {
        w.string("member id", &member.member_id)?
            .nullable_string("group instance id", member.group_instance_id.as_deref())?
            .string("client id", &member.client_id)?
            .string("client host", &member.client_host)?
            .i32(member.rebalance_timeout_ms)
            .i32(member.session_timeout_ms)
            .bytes("subscription", &member.subscription)?
            .bytes("assignment", &member.assignment)?;
    }
    Ok(w.finish())
}

pub(super) fn decode(key: &[u8], value: Option<&[u8]>) -> Result<GroupRecord, RecordError> {
    let mut k = Reader::new(key);
    match k.i16("key version")? {
        0 | 1 => {
            let group_id = k.string("group")?;
            let topic = k.string("topic")?;
            let partition = k.i32("partition")?;
            Ok(GroupRecord::Offset {
                group_id,
                topic_partition: TopicPartition { topic, partition },
                value: value.map(decode_offset_value).transpose()?,
            })
        }
        GROUP_KEY_VERSION => Ok(GroupRecord::Group {
            group_id: k.string("group")?,
            value: value.map(decode_group_value).transpose()?,
        }),
        other => Err(RecordError::UnknownKeyVersion(other)),
    }
}

/// Reads a value's version and switches the reader to the flexible encoding when it applies.
fn value_version(r: &mut Reader<'_>, record: &'static str) -> Result<i16, RecordError> {
    let version = r.i16("value version")?;
    if !(0..=MAX_VALUE_VERSION).contains(&version) {
        return Err(RecordError::UnsupportedValueVersion { record, version });
    }
    r.set_flexible(version >= FIRST_FLEXIBLE_VALUE_VERSION);
    Ok(version)
}

fn decode_offset_value(bytes: &[u8]) -> Result<OffsetCommitValue, RecordError> {
    let mut r = Reader::new(bytes);
    let version = value_version(&mut r, "OffsetCommitValue")?;
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 {
        Some(r.i32("leader epoch")?).filter(|epoch| *epoch >= 0)
    } else {
        None
    };
    let metadata = r.string("metadata")?;
    let commit_timestamp_ms = r.i64("commit timestamp")?;
    let expire_timestamp_ms = if version == 1 {
        Some(r.i64("expire timestamp")?).filter(|ts| *ts >= 0)
    } else {
        None
    };
    r.skip_tagged_fields()?;
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

fn decode_group_value(bytes: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut r = Reader::new(bytes);
    let version = value_version(&mut r, "GroupMetadataValue")?;
    let protocol_type = r.string("protocol type")?;
    let generation = r.i32("generation")?;
    let protocol = r.nullable_string("protocol")?;
    let leader = r.nullable_string("leader")?;
    let current_state_timestamp_ms = if version >= 2 {
        Some(r.i64("current state timestamp")?).filter(|ts| *ts >= 0)
    } else {
        None
    };
    let count = r.array_len("members")?;
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let member_id = r.string("member id")?;
        let group_instance_id = if version >= 3 {
            r.nullable_string("group instance id")?
        } else {
            None
        };
        let client_id = r.string("client id")?;
        let client_host = r.string("client host")?;
        let session_or_rebalance = r.i32("rebalance timeout")?;
        // v0 has only the session timeout; Kafka then uses it as the rebalance timeout too.
        let (rebalance_timeout_ms, session_timeout_ms) = if version >= 1 {
            (session_or_rebalance, r.i32("session timeout")?)
        } else {
            (session_or_rebalance, session_or_rebalance)
        };
        let subscription = r.bytes("subscription")?;
        let assignment = r.bytes("assignment")?;
        r.skip_tagged_fields()?;
        members.push(MemberMetadataValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    r.skip_tagged_fields()?;
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}
