//! The records a classic group coordinator keeps in `__consumer_offsets`, and their key/value codec.
//!
//! Kafka's layout, so a log written by either broker can be read by the other: every key and value starts
//! with an `i16` version. Keys 0 and 1 are `OffsetCommitKey` (group, topic, partition), key 2 is
//! `GroupMetadataKey` (group). A null value is a tombstone: the offset or group was deleted. We write
//! `OffsetCommitValue` v3 (v1 when a commit carries an explicit expiry) and `GroupMetadataValue` v3, and
//! read every value version up to the flexible v4.

mod codec;
mod partitioning;
mod wire;

use bytes::Bytes;

pub use partitioning::{java_string_hash, partition_for};

/// A `__consumer_offsets` record could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record ends early: {field} needs {needed} bytes, {remaining} left")]
    Truncated {
        field: &'static str,
        needed: usize,
        remaining: usize,
    },
    #[error("{field} has invalid length {length}")]
    InvalidLength { field: &'static str, length: i64 },
    #[error("{field} is null but the format does not allow it")]
    UnexpectedNull { field: &'static str },
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("{field} holds a varint longer than five bytes")]
    InvalidVarint { field: &'static str },
    /// Key versions 3 and up hold other record kinds (e.g. KIP-848 consumer groups); a classic
    /// coordinator skips them.
    #[error("__consumer_offsets key version {0} is not a classic group record")]
    UnknownKeyVersion(i16),
    #[error("{record} version {version} is not supported")]
    UnsupportedValueVersion { record: &'static str, version: i16 },
    #[error("{field} is {length} bytes, more than its length prefix can express")]
    FieldTooLong { field: &'static str, length: usize },
}

/// A topic partition whose offset a group committed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// One committed offset (`OffsetCommitValue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// Leader epoch of the record at `offset`, for truncation detection; absent before value v3.
    pub leader_epoch: Option<i32>,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Explicit expiry from an OffsetCommit v2-v4 `retention_time_ms`; `None` means the broker's
    /// retention applies.
    pub expire_timestamp_ms: Option<i64>,
}

/// A group's membership after a rebalance step (`GroupMetadataValue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// `""` when the group never had a member.
    pub protocol_type: String,
    pub generation: i32,
    /// Chosen protocol; `None` while the group is empty.
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: Option<i64>,
    pub members: Vec<MemberMetadataValue>,
}

/// One member inside [`GroupMetadataValue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the chosen protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// One `__consumer_offsets` record of a classic group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupRecord {
    /// A committed offset, or (value `None`) its deletion.
    Offset {
        group_id: String,
        topic_partition: TopicPartition,
        value: Option<OffsetCommitValue>,
    },
    /// A group's membership, or (value `None`) the group's deletion.
    Group {
        group_id: String,
        value: Option<GroupMetadataValue>,
    },
}

impl GroupRecord {
    /// The group the record belongs to; it decides the `__consumer_offsets` partition.
    pub fn group_id(&self) -> &str {
        match self {
            GroupRecord::Offset { group_id, .. } | GroupRecord::Group { group_id, .. } => group_id,
        }
    }

    /// Whether this record deletes what its key names.
    pub fn is_tombstone(&self) -> bool {
        match self {
            GroupRecord::Offset { value, .. } => value.is_none(),
            GroupRecord::Group { value, .. } => value.is_none(),
        }
    }

    /// The `__consumer_offsets` partition this record goes to, for a topic of `num_partitions`.
    pub fn partition(&self, num_partitions: i32) -> i32 {
        partition_for(self.group_id(), num_partitions)
    }

    /// Encodes the record key.
    pub fn encode_key(&self) -> Result<Bytes, RecordError> {
        codec::encode_key(self)
    }

    /// Encodes the record value; `None` for a tombstone.
    pub fn encode_value(&self) -> Result<Option<Bytes>, RecordError> {
        codec::encode_value(self)
    }

    /// Decodes a record read back from `__consumer_offsets`. Records of other coordinators (key
    /// versions above 2) give [`RecordError::UnknownKeyVersion`], which a loader should skip.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<GroupRecord, RecordError> {
        codec::decode(key, value)
    }
}
