//! Request and result types of the controller's public API.
//!
//! They mirror the Kafka requests the broker receives (CreateTopics, DeleteTopics,
//! CreatePartitions, (Incremental)AlterConfigs, BrokerRegistration) without tying the controller
//! to a wire version. Results come back in request order, one per requested item.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ControllerError;
use crate::records::{ConfigResource, Endpoint};

/// `num_partitions` / `replication_factor` value meaning "use the controller's default".
pub const USE_DEFAULT: i32 = -1;

/// One topic of a CreateTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicSpec {
    /// Topic name.
    pub name: String,
    /// Partition count, or -1 for the default (must be -1 with explicit assignments).
    pub num_partitions: i32,
    /// Replication factor, or -1 for the default (must be -1 with explicit assignments).
    pub replication_factor: i16,
    /// Explicit replica assignments; empty for automatic placement.
    pub assignments: Vec<ReplicaAssignment>,
    /// Topic config overrides (`None` values are rejected, as in Kafka).
    pub configs: Vec<(String, Option<String>)>,
}

impl CreateTopicSpec {
    /// A topic with automatic placement and no config overrides.
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> Self {
        Self {
            name: name.into(),
            num_partitions,
            replication_factor,
            assignments: Vec::new(),
            configs: Vec::new(),
        }
    }

    /// Adds a config override.
    pub fn with_config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((name.into(), Some(value.into())));
        self
    }
}

/// The replicas of one partition in an explicit assignment, preferred leader first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaAssignment {
    /// Partition index.
    pub partition: i32,
    /// Broker ids.
    pub broker_ids: Vec<i32>,
}

/// What CreateTopics reports for a created (or, with `validate_only`, creatable) topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTopic {
    /// The new topic's id (with `validate_only`, the id it would have had).
    pub topic_id: Uuid,
    /// Partition count.
    pub num_partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
}

/// Names a topic by name or by id (DeleteTopics v6+ accepts either).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TopicRef {
    /// By name.
    Name(String),
    /// By id.
    Id(Uuid),
}

/// The outcome for one topic of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicResult<T> {
    /// Topic name when known (a delete by an unknown id has none).
    pub name: Option<String>,
    /// Success value or the Kafka error.
    pub result: Result<T, ControllerError>,
}

/// One topic of a CreatePartitions request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitionsSpec {
    /// Topic name.
    pub name: String,
    /// The new total partition count.
    pub count: i32,
    /// Replicas for each *new* partition, or `None` for automatic placement.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// IncrementalAlterConfigs operation (Kafka's `AlterConfigOp.OpType` ids 0..=3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlterConfigOpType {
    /// Set the value.
    Set,
    /// Remove the override.
    Delete,
    /// Add elements to a LIST config.
    Append,
    /// Remove elements from a LIST config.
    Subtract,
}

impl AlterConfigOpType {
    /// Maps the wire id; `None` for unknown ids.
    pub fn from_id(id: i8) -> Option<Self> {
        match id {
            0 => Some(Self::Set),
            1 => Some(Self::Delete),
            2 => Some(Self::Append),
            3 => Some(Self::Subtract),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Set => "SET",
            Self::Delete => "DELETE",
            Self::Append => "APPEND",
            Self::Subtract => "SUBTRACT",
        }
    }
}

impl std::fmt::Display for AlterConfigOpType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One key of an alter-configs request. The legacy AlterConfigs ignores `op` (every key is a
/// SET and absent keys are removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterConfigOp {
    /// Config key.
    pub name: String,
    /// What to do.
    pub op: AlterConfigOpType,
    /// Value (ignored by DELETE).
    pub value: Option<String>,
}

impl AlterConfigOp {
    /// A SET of `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: AlterConfigOpType::Set,
            value: Some(value.into()),
        }
    }

    /// A DELETE of `name`.
    pub fn delete(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: AlterConfigOpType::Delete,
            value: None,
        }
    }
}

/// All changes to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterConfigSpec {
    /// The resource.
    pub resource: ConfigResource,
    /// Its changes.
    pub ops: Vec<AlterConfigOp>,
}

/// The outcome for one resource of an alter-configs request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceResult {
    /// The resource.
    pub resource: ConfigResource,
    /// Success or the Kafka error.
    pub result: Result<(), ControllerError>,
}

/// A broker announcing itself to the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// The broker's `node.id`.
    pub broker_id: i32,
    /// Its client listeners.
    pub listeners: Vec<Endpoint>,
    /// Its rack, if configured.
    pub rack: Option<String>,
}

/// Turns a computed response into the one to send when its records did not commit: every item
/// that would have succeeded gets the error instead; items that already failed keep their error.
pub(crate) trait FailUncommitted {
    fn fail_uncommitted(self, err: &ControllerError) -> Self;
}

impl<T> FailUncommitted for Vec<TopicResult<T>> {
    fn fail_uncommitted(self, err: &ControllerError) -> Self {
        self.into_iter()
            .map(|r| TopicResult {
                name: r.name,
                result: r.result.and(Err(err.clone())),
            })
            .collect()
    }
}

impl FailUncommitted for Vec<ResourceResult> {
    fn fail_uncommitted(self, err: &ControllerError) -> Self {
        self.into_iter()
            .map(|r| ResourceResult {
                resource: r.resource,
                result: r.result.and(Err(err.clone())),
            })
            .collect()
    }
}

/// A block of producer ids owned by one broker: `[first, first + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdBlock {
    pub first: i64,
    pub len: i32,
}

impl FailUncommitted for Result<ProducerIdBlock, ControllerError> {
    fn fail_uncommitted(self, err: &ControllerError) -> Self {
        self.and(Err(err.clone()))
    }
}

/// ElectLeaders' election type (Kafka's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    /// Move leadership to the preferred (first assigned) replica when it is in the ISR and live.
    Preferred,
    /// Give a leaderless partition a leader, from outside the ISR if no ISR member is live.
    Unclean,
}

impl ElectionType {
    /// The wire value (0 PREFERRED, 1 UNCLEAN); `None` for anything else.
    pub fn from_id(id: i8) -> Option<Self> {
        match id {
            0 => Some(Self::Preferred),
            1 => Some(Self::Unclean),
            _ => None,
        }
    }
}

/// The partitions of one topic named in an ElectLeaders request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectLeadersTopic {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// ElectLeaders' outcome for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionElection {
    pub partition: i32,
    /// `Ok` when a leader was elected; ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION otherwise.
    pub result: Result<(), ControllerError>,
}

/// ElectLeaders' outcome for one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicElection {
    pub topic: String,
    pub partitions: Vec<PartitionElection>,
}

/// Whether an ElectLeaders answer says its elections did not commit because this node stopped being the
/// active controller: every partition answered NOT_CONTROLLER (and there was at least one).
pub fn elections_not_committed(results: &[TopicElection]) -> bool {
    let mut any = false;
    for p in results.iter().flat_map(|t| &t.partitions) {
        if !matches!(p.result, Err(ControllerError::NotController)) {
            return false;
        }
        any = true;
    }
    any
}

impl FailUncommitted for Vec<TopicElection> {
    fn fail_uncommitted(self, err: &ControllerError) -> Self {
        self.into_iter()
            .map(|t| TopicElection {
                topic: t.topic,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionElection {
                        partition: p.partition,
                        result: p.result.and(Err(err.clone())),
                    })
                    .collect(),
            })
            .collect()
    }
}

/// AlterPartition: a partition leader asks to change the ISR (Kafka's AlterPartition request, one partition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    /// The leader sending it.
    pub broker_id: i32,
    /// Its broker epoch (registration offset); a stale one is refused.
    pub broker_epoch: i64,
    pub topic_id: uuid::Uuid,
    pub partition: i32,
    /// The leader epoch the leader leads in.
    pub leader_epoch: i32,
    /// The partition epoch the leader's view of the ISR comes from.
    pub partition_epoch: i32,
    /// The ISR it wants.
    pub new_isr: Vec<i32>,
    /// Kafka's LeaderRecoveryState the leader reports: RECOVERED (0) once a leader elected uncleanly has
    /// recovered; RECOVERING (1) is only valid with an ISR of the leader alone.
    pub leader_recovery_state: i8,
}

/// A partition's replication state after an AlterPartition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

impl FailUncommitted for Result<PartitionState, ControllerError> {
    fn fail_uncommitted(self, err: &ControllerError) -> Self {
        self.and(Err(err.clone()))
    }
}

impl FailUncommitted for Result<crate::ops::leaders::RebalancePass, ControllerError> {
    fn fail_uncommitted(self, err: &ControllerError) -> Self {
        self.and(Err(err.clone()))
    }
}

impl FailUncommitted for Result<(), ControllerError> {
    fn fail_uncommitted(self, err: &ControllerError) -> Self {
        self.and(Err(err.clone()))
    }
}

/// One partition of an AlterPartitionReassignments request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentSpec {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The target replicas, preferred leader first; `None` cancels the reassignment in progress.
    pub replicas: Option<Vec<i32>>,
}

/// The outcome for one partition of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionResult {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Success or the Kafka error.
    pub result: Result<(), ControllerError>,
}

impl FailUncommitted for Vec<PartitionResult> {
    fn fail_uncommitted(self, err: &ControllerError) -> Self {
        self.into_iter()
            .map(|r| PartitionResult {
                result: r.result.and(Err(err.clone())),
                ..r
            })
            .collect()
    }
}

/// The partitions of one topic a ListPartitionReassignments request asks about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentQuery {
    /// Topic name.
    pub topic: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// A reassignment in progress (ListPartitionReassignments' `OngoingPartitionReassignment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OngoingReassignment {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The replicas now: the target ones and those being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
}
