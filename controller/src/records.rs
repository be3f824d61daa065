//! Metadata records: the only thing the controller writes to `__cluster_metadata`.
//!
//! A raft entry carries one *record batch*: every record one operation produced, so that an
//! operation is applied atomically. The batch is encoded as one format-version byte followed by
//! the postcard encoding of `Vec<MetadataRecord>`. Postcard encodes enum variants by index, so
//! new variants may only be appended at the end of [`MetadataRecord`]; any change to an existing
//! variant's fields needs a new [`FORMAT_VERSION`] and a decoder for the old one.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// Version byte written in front of every encoded batch.
pub const FORMAT_VERSION: u8 = 1;

/// Kafka's `SecurityProtocol` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// A broker announcing itself. The broker epoch is not carried: it is the offset of the batch
/// holding this record, which every replica learns identically when replaying (as in Kafka).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRecord {
    /// The broker's `node.id`.
    pub broker_id: i32,
    /// Endpoints clients reach it on.
    pub listeners: Vec<Endpoint>,
    /// Optional rack for rack-aware placement.
    pub rack: Option<String>,
}

/// A partition's full state, written when the partition is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// The owning topic.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Current leader, or -1 when there is none.
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of this partition.
    pub partition_epoch: i32,
}

/// A change to an existing partition; `None` fields are unchanged. Replaying it bumps the
/// partition epoch, and the leader epoch when the leader changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChangeRecord {
    /// The owning topic.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// New ISR, if it changed.
    pub isr: Option<Vec<i32>>,
    /// New leader (-1 for none), if it changed.
    pub leader: Option<i32>,
    /// New replica set, if it changed.
    pub replicas: Option<Vec<i32>>,
}

/// The kinds of resource dynamic configs are kept for (Kafka's `ConfigResource.Type` ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecord {
    /// The resource the key belongs to.
    pub resource: ConfigResource,
    /// Config key.
    pub name: String,
    /// New value, or `None` to remove the override.
    pub value: Option<String>,
}

/// One change to the cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A broker registered (or re-registered); it is unfenced from then on.
    RegisterBroker(BrokerRecord),
    /// A broker left the cluster for good.
    UnregisterBroker {
        /// The broker's id.
        broker_id: i32,
    },
    /// A broker must not lead or be in any ISR.
    FenceBroker {
        /// The broker's id.
        broker_id: i32,
    },
    /// A fenced broker may lead again.
    UnfenceBroker {
        /// The broker's id.
        broker_id: i32,
    },
    /// A topic was created.
    Topic {
        /// Topic name.
        name: String,
        /// Topic id.
        id: Uuid,
    },
    /// A partition was created.
    Partition(PartitionRecord),
    /// A partition's leader, ISR or replicas changed.
    PartitionChange(PartitionChangeRecord),
    /// A topic (its partitions and configs) was deleted.
    RemoveTopic {
        /// Topic id.
        id: Uuid,
    },
    /// A dynamic config was set or removed.
    Config(ConfigRecord),
    /// A feature's finalized level changed (0 removes it).
    FeatureLevel {
        /// Feature name, e.g. `metadata.version`.
        name: String,
        /// Finalized level.
        level: i16,
    },
    /// A block of producer ids was handed to a broker; ids below `next_producer_id` are taken for good.
    ProducerIds {
        /// The broker that got the block.
        broker_id: i32,
        /// First id of the next block.
        next_producer_id: i64,
    },
}

/// Why a stored batch could not be decoded.
#[derive(Debug, Error)]
pub enum RecordsError {
    /// The batch was empty (not even a version byte).
    #[error("empty metadata record batch")]
    Empty,
    /// Written by a newer (or unknown) format.
    #[error("unsupported metadata record format version {0}")]
    UnsupportedVersion(u8),
    /// The body is not a valid encoding.
    #[error("malformed metadata record batch: {0}")]
    Malformed(#[from] postcard::Error),
}

/// Encodes one operation's records as a raft entry payload.
pub fn encode_batch(records: &[MetadataRecord]) -> Result<Vec<u8>, RecordsError> {
    Ok(postcard::to_extend(records, vec![FORMAT_VERSION])?)
}

/// Decodes a raft entry payload written by [`encode_batch`]. Never panics on bad input: the
/// bytes come from disk or from a peer.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<MetadataRecord>, RecordsError> {
    let (&version, body) = bytes.split_first().ok_or(RecordsError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(RecordsError::UnsupportedVersion(version));
    }
    Ok(postcard::from_bytes(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<MetadataRecord> {
        let id = Uuid::from_u128(7);
        vec![
            MetadataRecord::RegisterBroker(BrokerRecord {
                broker_id: 1,
                listeners: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "localhost".into(),
                    port: 9092,
                    security_protocol: SecurityProtocol::Plaintext,
                }],
                rack: Some("r1".into()),
            }),
            MetadataRecord::Topic {
                name: "t".into(),
                id,
            },
            MetadataRecord::Partition(PartitionRecord {
                topic_id: id,
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            }),
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: id,
                partition: 0,
                isr: None,
                leader: Some(-1),
                replicas: None,
            }),
            MetadataRecord::Config(ConfigRecord {
                resource: ConfigResource::topic("t"),
                name: "retention.ms".into(),
                value: None,
            }),
            MetadataRecord::FeatureLevel {
                name: "metadata.version".into(),
                level: 1,
            },
            MetadataRecord::FenceBroker { broker_id: 1 },
            MetadataRecord::UnfenceBroker { broker_id: 1 },
            MetadataRecord::UnregisterBroker { broker_id: 1 },
            MetadataRecord::RemoveTopic { id },
        ]
    }

    #[test]
    fn round_trip() {
        let records = sample();
        let bytes = encode_batch(&records).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode_batch(&bytes).unwrap(), records);
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert!(matches!(decode_batch(&[]), Err(RecordsError::Empty)));
        assert!(matches!(
            decode_batch(&[9, 0]),
            Err(RecordsError::UnsupportedVersion(9))
        ));
        let bytes = encode_batch(&sample()).unwrap();
        for cut in 1..bytes.len() {
            assert!(decode_batch(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        // A huge claimed length must fail, not allocate.
        assert!(decode_batch(&[FORMAT_VERSION, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn wire_ids() {
        for id in 0..4 {
            assert_eq!(SecurityProtocol::from_id(id).unwrap().id(), id);
        }
        for id in [2, 4, 8, 16, 32] {
            assert_eq!(ConfigResourceType::from_id(id).unwrap().id(), id);
        }
        assert!(ConfigResourceType::from_id(0).is_none());
    }
}
