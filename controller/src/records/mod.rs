//! Metadata records: the only thing the controller writes to `__cluster_metadata`.
//!
//! The types here are Kraftwerk's in-memory view of Apache Kafka's metadata records (the
//! schemas in Kafka's `metadata/src/main/resources/common/metadata/`); every field of the
//! records we use is kept, so decoding and re-encoding a record written by Kafka loses nothing.
//! [`kafka_format`] is the byte codec, Kafka's `MetadataRecordSerde` framing.
//!
//! A raft entry carries one operation's records, applied atomically. Its payload
//! ([`encode_batch`]) is the Kafka serialization of each record, each prefixed with its length
//! as an unsigned varint; the metadata log stores each of those serialized records as one Kafka
//! record of one record batch, so the payload converts to and from the log without re-encoding.

pub mod kafka_format;
pub mod wire;

#[cfg(test)]
mod tests;

use uuid::Uuid;

pub use wire::{DecodeError, EncodeError};

/// Kafka's `SecurityProtocol` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SecurityProtocol {
    /// PLAINTEXT (0)
    Plaintext,
    /// SSL (1)
    Ssl,
    /// SASL_PLAINTEXT (2)
    SaslPlaintext,
    /// SASL_SSL (3)
    SaslSsl,
}

impl SecurityProtocol {
    /// The id Kafka puts on the wire (e.g. in BrokerRegistration and DescribeCluster).
    pub fn id(self) -> i16 {
        match self {
            Self::Plaintext => 0,
            Self::Ssl => 1,
            Self::SaslPlaintext => 2,
            Self::SaslSsl => 3,
        }
    }

    /// Maps a wire id back; `None` for ids Kafka does not define.
    pub fn from_id(id: i16) -> Option<Self> {
        match id {
            0 => Some(Self::Plaintext),
            1 => Some(Self::Ssl),
            2 => Some(Self::SaslPlaintext),
            3 => Some(Self::SaslSsl),
            _ => None,
        }
    }

    /// Kafka's name, as used in `listener.security.protocol.map`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }
}

/// One listener a broker accepts clients on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    /// Listener name, e.g. `PLAINTEXT` or `INTERNAL`.
    pub name: String,
    /// Host clients should connect to.
    pub host: String,
    /// Port clients should connect to.
    pub port: u16,
    /// Security protocol spoken on this listener.
    pub security_protocol: SecurityProtocol,
}

/// A feature range a broker supports (RegisterBrokerRecord's `Features`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerFeature {
    /// Feature name, e.g. `metadata.version`.
    pub name: String,
    /// Lowest supported level.
    pub min_supported_version: i16,
    /// Highest supported level.
    pub max_supported_version: i16,
}

/// Kafka's `DirectoryId.MIGRATING`: the replica's directory is not known to the controller
/// because the broker did not register its log directories (Kraftwerk's brokers do not).
pub const DIRECTORY_MIGRATING: Uuid = Uuid::from_u128(0);
/// Kafka's `DirectoryId.UNASSIGNED`: the broker has several directories and has not said which
/// one holds the replica.
pub const DIRECTORY_UNASSIGNED: Uuid = Uuid::from_u128(1);
/// Kafka's `DirectoryId.LOST`: the directory that held the replica is offline.
pub const DIRECTORY_LOST: Uuid = Uuid::from_u128(2);

/// A broker announcing itself (Kafka's RegisterBrokerRecord).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRecord {
    /// The broker's `node.id`.
    pub broker_id: i32,
    /// Only ever true for ZooKeeper brokers during a migration (never for Kraftwerk).
    pub is_migrating_zk_broker: bool,
    /// Identifies the broker process that registered; a new one per registration.
    pub incarnation_id: Uuid,
    /// The broker epoch: as in Kafka, the offset of the batch holding this record, so every
    /// replica agrees on it and a re-registration always gets a larger one.
    pub broker_epoch: i64,
    /// Endpoints clients reach it on.
    pub listeners: Vec<Endpoint>,
    /// Feature ranges the broker supports.
    pub features: Vec<BrokerFeature>,
    /// Optional rack for rack-aware placement.
    pub rack: Option<String>,
    /// Whether the broker starts fenced. Kraftwerk has no heartbeats yet and registers brokers
    /// unfenced; Kafka registers them fenced and unfences on the first heartbeat.
    pub fenced: bool,
    /// Whether the broker is in controlled shutdown.
    pub in_controlled_shutdown: bool,
    /// Online log directory ids (empty: the broker did not report them).
    pub log_dirs: Vec<Uuid>,
    /// Cordoned log directories (record version 4), `None` until reported.
    pub cordoned_log_dirs: Option<Vec<Uuid>>,
}

impl Default for BrokerRecord {
    fn default() -> Self {
        Self {
            broker_id: 0,
            is_migrating_zk_broker: false,
            incarnation_id: Uuid::nil(),
            broker_epoch: 0,
            listeners: Vec::new(),
            features: Vec::new(),
            rack: None,
            // Kafka's schema default.
            fenced: true,
            in_controlled_shutdown: false,
            log_dirs: Vec::new(),
            cordoned_log_dirs: None,
        }
    }
}

/// Kafka's LeaderRecoveryState: the leader was elected cleanly (or has recovered).
pub const LEADER_RECOVERED: i8 = 0;
/// Kafka's LeaderRecoveryState: the leader came from an unclean election and is recovering.
pub const LEADER_RECOVERING: i8 = 1;

/// A partition's full state, written when the partition is created (Kafka's PartitionRecord).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionRecord {
    /// The owning topic.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas being removed by a reassignment.
    pub removing_replicas: Vec<i32>,
    /// Replicas being added by a reassignment.
    pub adding_replicas: Vec<i32>,
    /// Current leader, or -1 when there is none.
    pub leader: i32,
    /// [`LEADER_RECOVERED`] or [`LEADER_RECOVERING`].
    pub leader_recovery_state: i8,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of this partition.
    pub partition_epoch: i32,
    /// The log directory of each replica, in `replicas` order (record version 1+).
    pub directories: Vec<Uuid>,
    /// Eligible leader replicas (KIP-966, record version 2+), `None` when not tracked.
    pub eligible_leader_replicas: Option<Vec<i32>>,
    /// Last known eligible leader replicas (KIP-966, record version 2+).
    pub last_known_elr: Option<Vec<i32>>,
}

/// A change to an existing partition (Kafka's PartitionChangeRecord); `None` fields are
/// unchanged. Replaying it bumps the partition epoch, and the leader epoch when it names a leader
/// (even the current one, as Kafka's replay does).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionChangeRecord {
    /// The owning topic.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// New ISR, if it changed.
    pub isr: Option<Vec<i32>>,
    /// New leader (-1 for none), if it changed. -2 is reserved (the wire's "unchanged").
    pub leader: Option<i32>,
    /// New replica set, if it changed.
    pub replicas: Option<Vec<i32>>,
    /// New removing replicas, if they changed.
    pub removing_replicas: Option<Vec<i32>>,
    /// New adding replicas, if they changed.
    pub adding_replicas: Option<Vec<i32>>,
    /// New leader recovery state, if it changed (-1 is the wire's "unchanged").
    pub leader_recovery_state: Option<i8>,
    /// New replica directories, if they changed (record version 1+).
    pub directories: Option<Vec<Uuid>>,
    /// New eligible leader replicas, if they changed (record version 2+).
    pub eligible_leader_replicas: Option<Vec<i32>>,
    /// New last known eligible leader replicas, if they changed (record version 2+).
    pub last_known_elr: Option<Vec<i32>>,
}

/// The kinds of resource dynamic configs are kept for (Kafka's `ConfigResource.Type` ids).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum ConfigResourceType {
    /// TOPIC (2)
    Topic,
    /// BROKER (4); name "" is the cluster-wide default, otherwise a broker id.
    Broker,
    /// BROKER_LOGGER (8)
    BrokerLogger,
    /// CLIENT_METRICS (16)
    ClientMetrics,
    /// GROUP (32)
    Group,
}

impl ConfigResourceType {
    /// The id Kafka puts on the wire.
    pub fn id(self) -> i8 {
        match self {
            Self::Topic => 2,
            Self::Broker => 4,
            Self::BrokerLogger => 8,
            Self::ClientMetrics => 16,
            Self::Group => 32,
        }
    }

    /// Maps a wire id back; `None` for UNKNOWN (0) and ids Kafka does not define.
    pub fn from_id(id: i8) -> Option<Self> {
        match id {
            2 => Some(Self::Topic),
            4 => Some(Self::Broker),
            8 => Some(Self::BrokerLogger),
            16 => Some(Self::ClientMetrics),
            32 => Some(Self::Group),
            _ => None,
        }
    }
}

/// A resource that dynamic configs attach to.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ConfigResource {
    /// What kind of resource.
    pub resource_type: ConfigResourceType,
    /// Topic name, broker id as decimal, or "" for the cluster default.
    pub name: String,
}

impl ConfigResource {
    /// A topic's config resource.
    pub fn topic(name: impl Into<String>) -> Self {
        Self {
            resource_type: ConfigResourceType::Topic,
            name: name.into(),
        }
    }

    /// A broker's (or with "" the cluster default's) config resource.
    pub fn broker(name: impl Into<String>) -> Self {
        Self {
            resource_type: ConfigResourceType::Broker,
            name: name.into(),
        }
    }
}

/// Sets (`Some`) or removes (`None`) one dynamic config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRecord {
    /// The resource the key belongs to.
    pub resource: ConfigResource,
    /// Config key.
    pub name: String,
    /// New value, or `None` to remove the override.
    pub value: Option<String>,
}

/// One change to the cluster metadata: the Kafka metadata records Kraftwerk reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    /// A broker registered or re-registered (RegisterBrokerRecord, type 0).
    RegisterBroker(BrokerRecord),
    /// A broker left the cluster for good (UnregisterBrokerRecord, type 1).
    UnregisterBroker {
        /// The broker's id.
        broker_id: i32,
        /// Its epoch when it was unregistered.
        broker_epoch: i64,
    },
    /// A broker must not lead or be in any ISR (FenceBrokerRecord, type 7).
    FenceBroker {
        /// The broker's id.
        broker_id: i32,
        /// Its epoch when it was fenced.
        epoch: i64,
    },
    /// A fenced broker may lead again (UnfenceBrokerRecord, type 8).
    UnfenceBroker {
        /// The broker's id.
        broker_id: i32,
        /// Its epoch when it was unfenced.
        epoch: i64,
    },
    /// A topic was created (TopicRecord, type 2).
    Topic {
        /// Topic name.
        name: String,
        /// Topic id.
        id: Uuid,
    },
    /// A partition was created (PartitionRecord, type 3).
    Partition(PartitionRecord),
    /// A partition's leader, ISR or replicas changed (PartitionChangeRecord, type 5).
    PartitionChange(PartitionChangeRecord),
    /// A topic (its partitions and configs) was deleted (RemoveTopicRecord, type 9).
    RemoveTopic {
        /// Topic id.
        id: Uuid,
    },
    /// A dynamic config was set or removed (ConfigRecord, type 4).
    Config(ConfigRecord),
    /// A feature's finalized level changed, 0 removes it (FeatureLevelRecord, type 12).
    FeatureLevel {
        /// Feature name, e.g. `metadata.version`.
        name: String,
        /// Finalized level.
        level: i16,
    },
    /// A block of producer ids was handed to a broker; ids below `next_producer_id` are taken
    /// for good (ProducerIdsRecord, type 15).
    ProducerIds {
        /// The broker that got the block.
        broker_id: i32,
        /// That broker's epoch (-1 if unknown).
        broker_epoch: i64,
        /// First id of the next block.
        next_producer_id: i64,
    },
}

/// Encodes one operation's records as a raft entry payload: each record in Kafka's
/// serialization, prefixed with its length as an unsigned varint.
pub fn encode_batch(records: &[MetadataRecord]) -> Result<Vec<u8>, EncodeError> {
    let mut out = wire::Writer::new();
    for record in records {
        let bytes = kafka_format::encode_record(record)?;
        let len = u32::try_from(bytes.len())
            .map_err(|_| EncodeError::ArrayTooLong("serialized metadata record"))?;
        out.uvarint(len);
        out.bytes(&bytes);
    }
    Ok(out.into_bytes())
}

/// Splits a raft entry payload into the serialized records it holds, without decoding them.
/// Never panics on bad input: the bytes come from disk or from a peer.
pub fn split_batch(bytes: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let mut reader = wire::Reader::new(bytes);
    let mut out = Vec::new();
    while reader.remaining() > 0 {
        let len = reader.uvarint("serialized record length")? as usize;
        if len > reader.remaining() {
            return Err(DecodeError::Length {
                what: "serialized record",
                claimed: len as u64,
                left: reader.remaining(),
            });
        }
        out.push(reader.take(len, "serialized record")?);
    }
    Ok(out)
}

/// Joins serialized records into a raft entry payload (the inverse of [`split_batch`]).
pub fn join_batch<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, EncodeError> {
    let mut out = wire::Writer::new();
    for bytes in records {
        let len = u32::try_from(bytes.len())
            .map_err(|_| EncodeError::ArrayTooLong("serialized metadata record"))?;
        out.uvarint(len);
        out.bytes(bytes);
    }
    Ok(out.into_bytes())
}

/// Decodes a raft entry payload written by [`encode_batch`].
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<MetadataRecord>, DecodeError> {
    split_batch(bytes)?
        .into_iter()
        .map(kafka_format::decode_record)
        .collect()
}
