//! What brokers ask the active controller, and what it answers, on a controller channel.
//!
//! A broker (or the broker half of a combined node that is not the active controller) sends these over the
//! controller listener: its registration and heartbeats, the writes its clients asked for (forwarded so that
//! every write is decided by the one active controller), producer-id blocks, and fetches of the committed
//! metadata log it follows. Each frame body is one postcard-encoded value; decoding is bounded by the frame
//! (postcard never preallocates more than the bytes present), so a hostile peer cannot make us allocate.
//!
//! This is Kraftwerk's own node-to-node protocol; see ARCHITECTURE.md for how it maps to Kafka's
//! BrokerRegistration, BrokerHeartbeat, AllocateProducerIds, Envelope and metadata Fetch.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::{AclBinding, AclFilter};
use crate::api::{
    AlterConfigSpec, AlterPartitionRequest, BrokerRegistration, CreatePartitionsSpec,
    CreateTopicSpec, CreatedTopic, ElectLeadersTopic, ElectionType, OngoingReassignment,
    PartitionResult, PartitionState, ProducerIdBlock, ReassignmentQuery, ReassignmentSpec,
    ResourceResult, ScramDeletion, ScramResult, ScramUpsertion, TopicElection, TopicRef,
    TopicResult,
};
use crate::error::ControllerError;
use crate::membership::Member;

/// A request to the active controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// BrokerRegistration.
    RegisterBroker(BrokerRegistration),
    /// BrokerHeartbeat: the broker is alive and has applied the metadata log up to `metadata_offset`.
    /// With `shutting_down`, the broker is about to stop (controlled shutdown): it is fenced now so its
    /// leaderships move before it stops serving.
    BrokerHeartbeat {
        /// The broker's id.
        broker_id: i32,
        /// The epoch (registration offset) the broker registered with.
        broker_epoch: i64,
        /// Offset of the last metadata batch the broker applied.
        metadata_offset: i64,
        /// Controlled shutdown.
        shutting_down: bool,
    },
    /// AllocateProducerIds.
    AllocateProducerIds {
        /// The broker that wants a block.
        broker_id: i32,
    },
    /// CreateTopics, forwarded.
    CreateTopics {
        /// One spec per topic.
        topics: Vec<CreateTopicSpec>,
        /// Validate only.
        validate_only: bool,
    },
    /// DeleteTopics, forwarded.
    DeleteTopics {
        /// Topics by name or id.
        topics: Vec<TopicRef>,
    },
    /// CreatePartitions, forwarded.
    CreatePartitions {
        /// One spec per topic.
        reqs: Vec<CreatePartitionsSpec>,
        /// Validate only.
        validate_only: bool,
    },
    /// IncrementalAlterConfigs, forwarded.
    IncrementalAlterConfigs {
        /// One spec per resource.
        reqs: Vec<AlterConfigSpec>,
        /// Validate only.
        validate_only: bool,
    },
    /// AlterConfigs (legacy), forwarded.
    AlterConfigs {
        /// One spec per resource.
        reqs: Vec<AlterConfigSpec>,
        /// Validate only.
        validate_only: bool,
    },
    /// Fetch of the committed metadata log from raft index `from_index` (the next entry the follower needs;
    /// entries, not Kafka offsets, since one entry spans one offset per record). Waits up
    /// to `max_wait_ms` when there is nothing new yet.
    FetchMetadata {
        /// First offset wanted.
        from_index: u64,
        /// Upper bound on the entry bytes in the answer (at least one entry is always sent).
        max_bytes: u32,
        /// Long-poll time.
        max_wait_ms: u32,
    },
    /// DescribeQuorum: the raft state of `__cluster_metadata` as the active controller sees it.
    DescribeQuorum,
    /// AddRaftVoter forwarded by a broker: add this controller as a voter (KIP-853).
    AddVoter {
        /// The controller to add.
        member: Member,
        /// How long it may take to catch up and be promoted.
        timeout_ms: u32,
        /// AddRaftVoter v1's AckWhenCommitted: false answers once the promotion is appended, not committed.
        ack_when_committed: bool,
    },
    /// RemoveRaftVoter forwarded by a broker.
    RemoveVoter {
        /// The voter's id.
        id: i32,
        /// Its directory id (zero matches any).
        directory_id: Uuid,
    },
    /// UpdateRaftVoter: a voter's new endpoints.
    UpdateVoter {
        /// The voter as it is now.
        member: Member,
    },
    /// AlterPartition: a partition leader's ISR shrink or expansion.
    AlterPartition(AlterPartitionRequest),
    /// AlterUserScramCredentials, forwarded.
    AlterUserScramCredentials {
        /// Credentials to delete.
        deletions: Vec<ScramDeletion>,
        /// Credentials to set.
        upsertions: Vec<ScramUpsertion>,
    },
    /// AlterPartitionReassignments, forwarded.
    AlterPartitionReassignments {
        /// One spec per partition.
        specs: Vec<ReassignmentSpec>,
        /// KIP-860: whether a target may change the replication factor.
        allow_replication_factor_change: bool,
    },
    /// CreateAcls, forwarded.
    CreateAcls {
        /// The bindings to create.
        acls: Vec<AclBinding>,
    },
    /// DeleteAcls, forwarded.
    DeleteAcls {
        /// What to delete.
        filters: Vec<AclFilter>,
    },
    /// ListPartitionReassignments, forwarded: every reassignment in progress (`None`) or those of the
    /// partitions named.
    ListPartitionReassignments {
        /// The partitions asked about, or `None` for all.
        query: Option<Vec<ReassignmentQuery>>,
    },
    /// ElectLeaders, forwarded.
    ElectLeaders {
        /// PREFERRED or UNCLEAN.
        election_type: ElectionType,
        /// The partitions to elect leaders for; `None` for all.
        topics: Option<Vec<ElectLeadersTopic>>,
    },
    /// UpdateFeatures: new finalized levels, all or none.
    UpdateFeatures {
        updates: Vec<crate::FeatureUpdate>,
        validate_only: bool,
    },
    /// AlterPartition for every pending ISR change of one leader (Kafka's AlterPartitionManager batches them
    /// the same way): one commit for all, instead of one round trip and one commit per partition. A broker
    /// sends this; the single-partition `AlterPartition` above stays served for brokers of earlier versions.
    AlterPartitions(Vec<AlterPartitionRequest>),
}

/// One replica of the metadata log in a DescribeQuorum answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaProgress {
    /// Node id.
    pub node_id: i32,
    /// Log end offset as the leader knows it (-1 when unknown).
    pub log_end_offset: i64,
    /// When the leader last heard from it (ms since the epoch; -1 when never).
    pub last_fetch_ms: i64,
    /// When it was last caught up with the leader's log end (ms since the epoch; -1 when never).
    pub last_caught_up_ms: i64,
}

/// The quorum's state (Kafka's DescribeQuorum partition data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumInfo {
    /// The active controller.
    pub leader_id: i32,
    /// Its epoch (the raft term).
    pub leader_epoch: i32,
    /// The committed offset count of the metadata log.
    pub high_watermark: i64,
    /// The voters.
    pub voters: Vec<ReplicaProgress>,
    /// Brokers following the log, and controllers being added (raft learners).
    pub observers: Vec<ReplicaProgress>,
    /// The quorum's voters and learners with their directory ids and endpoints (DescribeQuorum v2 `Nodes`).
    pub members: Vec<Member>,
}

/// What a heartbeat tells the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// Whether the broker is fenced after this heartbeat.
    pub fenced: bool,
    /// Whether a controlled shutdown may proceed (its leaderships have moved).
    pub shutdown_ready: bool,
}

/// One committed raft entry of the metadata log, as a follower needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedEntry {
    /// Raft index (offset + 1).
    pub index: u64,
    /// Raft term (the batch's partition leader epoch).
    pub term: u64,
    /// Raft entry type (normal or a membership change).
    pub entry_type: i32,
    /// The entry payload (an encoded batch of metadata records).
    pub data: Vec<u8>,
}

/// A chunk of the committed metadata log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataChunk {
    /// Consecutive committed entries starting at the requested offset (empty after a long poll with
    /// nothing new).
    pub entries: Vec<CommittedEntry>,
    /// Raft index of the last committed (and applied) entry on the controller.
    pub commit_index: u64,
    /// When the entries wanted were trimmed behind a snapshot: the snapshot to load instead (the entries
    /// after it come in the next fetches).
    pub snapshot: Option<SnapshotChunk>,
}

/// A metadata snapshot sent to a follower that is too far behind for entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// Raft index of the last entry it covers.
    pub index: u64,
    /// Kafka offset after the last record it covers.
    pub end_offset: i64,
    /// The checkpoint file's bytes (Kafka's format).
    pub bytes: Vec<u8>,
}

/// The active controller's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerReply {
    /// RegisterBroker: the broker epoch it was registered with.
    Registered(Result<i64, ControllerError>),
    /// BrokerHeartbeat.
    Heartbeat(Result<HeartbeatReply, ControllerError>),
    /// AllocateProducerIds.
    ProducerIds(Result<ProducerIdBlock, ControllerError>),
    /// CreateTopics.
    CreatedTopics(Vec<TopicResult<CreatedTopic>>),
    /// DeleteTopics.
    DeletedTopics(Vec<TopicResult<Uuid>>),
    /// CreatePartitions.
    CreatedPartitions(Vec<TopicResult<()>>),
    /// (Incremental)AlterConfigs.
    AlteredConfigs(Vec<ResourceResult>),
    /// FetchMetadata.
    Metadata(Result<MetadataChunk, ControllerError>),
    /// DescribeQuorum.
    Quorum(Result<QuorumInfo, ControllerError>),
    /// AddVoter, RemoveVoter, UpdateVoter: done once the change committed.
    VoterChange(Result<(), ControllerError>),
    /// AlterPartition: the partition's state after the change.
    AlteredPartition(Result<PartitionState, ControllerError>),
    /// AlterPartitionReassignments: one result per partition.
    ReassignedPartitions(Vec<PartitionResult>),
    /// CreateAcls: one result per binding.
    CreatedAcls(Vec<Result<(), ControllerError>>),
    /// DeleteAcls: one result per filter, the bindings it removed.
    DeletedAcls(Vec<Result<Vec<AclBinding>, ControllerError>>),
    /// ListPartitionReassignments.
    Reassignments(Result<Vec<OngoingReassignment>, ControllerError>),
    /// ElectLeaders: per-partition outcomes.
    ElectedLeaders(Result<Vec<TopicElection>, ControllerError>),
    /// AlterUserScramCredentials: one result per user.
    AlteredScramCredentials(Result<Vec<ScramResult>, ControllerError>),
    /// UpdateFeatures: all updates or none.
    UpdatedFeatures(Result<(), ControllerError>),
    /// This node is not the active controller; `leader` is who is, if known. The request was not run.
    NotController {
        /// The active controller's node id, if known.
        leader: Option<i32>,
    },
    /// AlterPartitions: one result per item, in order.
    AlteredPartitions(Vec<Result<PartitionState, ControllerError>>),
}

/// A reply as sent: the answer, and the controller's committed metadata offset after running the request, so
/// the broker can wait until its own image has caught up before answering its client (read your writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyFrame {
    /// The answer.
    pub reply: ControllerReply,
    /// Last committed (applied) metadata offset on the controller when it answered.
    pub committed_offset: i64,
    /// The voters as the answering controller knows them (with their endpoints), so a broker learns of
    /// controllers added after its `controller.quorum.voters` was written.
    pub voters: Vec<Member>,
}

/// Why a frame body could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed controller channel frame: {0}")]
pub struct RpcDecodeError(#[from] postcard::Error);

/// Encodes a request or reply as a frame body.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RpcDecodeError> {
    Ok(postcard::to_stdvec(value)?)
}

/// Decodes a frame body; bad input is an error, never a panic or a large allocation.
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, RpcDecodeError> {
    Ok(postcard::from_bytes(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Endpoint, SecurityProtocol};

    #[test]
    fn round_trip_and_bad_input() {
        let requests = vec![
            ControllerRequest::RegisterBroker(BrokerRegistration {
                broker_id: 4,
                listeners: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "b4".into(),
                    port: 9092,
                    security_protocol: SecurityProtocol::Plaintext,
                }],
                rack: Some("r1".into()),
            }),
            ControllerRequest::CreateTopics {
                topics: vec![CreateTopicSpec::new("t", 3, 1).with_config("retention.ms", "1")],
                validate_only: false,
            },
            ControllerRequest::FetchMetadata {
                from_index: 7,
                max_bytes: 1 << 20,
                max_wait_ms: 500,
            },
            ControllerRequest::AlterPartition(AlterPartitionRequest {
                broker_id: 1,
                broker_epoch: 12,
                topic_id: Uuid::from_u128(9),
                partition: 2,
                leader_epoch: 3,
                partition_epoch: 4,
                new_isr: vec![1, 3],
                leader_recovery_state: 0,
            }),
            ControllerRequest::AlterPartitionReassignments {
                specs: vec![
                    ReassignmentSpec {
                        topic: "t".into(),
                        partition: 0,
                        replicas: Some(vec![2, 3]),
                    },
                    ReassignmentSpec {
                        topic: "t".into(),
                        partition: 1,
                        replicas: None,
                    },
                ],
                allow_replication_factor_change: false,
            },
            ControllerRequest::CreateAcls {
                acls: vec![crate::acl::AclBinding {
                    resource_type: crate::acl::ResourceType::Topic,
                    resource_name: "a-".into(),
                    pattern_type: crate::acl::PatternType::Prefixed,
                    principal: "User:a".into(),
                    host: "*".into(),
                    operation: crate::acl::AclOperation::Read,
                    permission: crate::acl::AclPermission::Allow,
                }],
            },
            ControllerRequest::DeleteAcls {
                filters: vec![crate::acl::AclFilter::any()],
            },
            ControllerRequest::AlterUserScramCredentials {
                deletions: vec![ScramDeletion {
                    name: "bob".into(),
                    mechanism: 1,
                }],
                upsertions: vec![ScramUpsertion {
                    name: "alice".into(),
                    mechanism: 2,
                    iterations: 8192,
                    salt: vec![1, 2, 3],
                    salted_password: vec![4; 64],
                }],
            },
            ControllerRequest::ListPartitionReassignments {
                query: Some(vec![ReassignmentQuery {
                    topic: "t".into(),
                    partitions: vec![0, 4],
                }]),
            },
            ControllerRequest::ElectLeaders {
                election_type: ElectionType::Unclean,
                topics: Some(vec![ElectLeadersTopic {
                    topic: "t".into(),
                    partitions: vec![0, 2],
                }]),
            },
            ControllerRequest::ElectLeaders {
                election_type: ElectionType::Preferred,
                topics: None,
            },
            ControllerRequest::AlterPartitions(
                (0..3)
                    .map(|partition| AlterPartitionRequest {
                        broker_id: 1,
                        broker_epoch: 12,
                        topic_id: Uuid::from_u128(9),
                        partition,
                        leader_epoch: 3,
                        partition_epoch: 4,
                        new_isr: vec![1, 2, 3],
                        leader_recovery_state: 0,
                    })
                    .collect(),
            ),
        ];
        for request in requests {
            let bytes = encode(&request).unwrap();
            assert_eq!(decode::<ControllerRequest>(&bytes).unwrap(), request);
            for cut in 0..bytes.len() {
                assert!(decode::<ControllerRequest>(&bytes[..cut]).is_err());
            }
        }
        let reply = ControllerReply::CreatedTopics(vec![TopicResult {
            name: Some("t".into()),
            result: Err(ControllerError::TopicAlreadyExists("exists".into())),
        }]);
        let bytes = encode(&reply).unwrap();
        assert_eq!(decode::<ControllerReply>(&bytes).unwrap(), reply);
        let reply = ControllerReply::AlteredPartitions(vec![
            Ok(PartitionState {
                leader: 1,
                leader_epoch: 3,
                partition_epoch: 5,
                isr: vec![1, 2, 3],
            }),
            Err(ControllerError::InvalidUpdateVersion("stale".into())),
        ]);
        let bytes = encode(&reply).unwrap();
        assert_eq!(decode::<ControllerReply>(&bytes).unwrap(), reply);
        // A huge claimed sequence length fails without allocating it.
        assert!(decode::<ControllerReply>(&[5, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = decode::<ControllerRequest>(&bytes);
            let _ = decode::<ControllerReply>(&bytes);
        }
    }
}
