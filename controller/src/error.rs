//! The controller's error type and the Kafka error codes it maps to.
//!
//! Every variant that can reach a client carries the human-readable message Kafka would send in
//! the response's `error_message` field, so the broker can copy both straight into the wire
//! response without knowing anything about the controller's internals.

use thiserror::Error;

/// Kafka's numeric error codes used by the controller (see Kafka's `Errors` enum).
pub mod codes {
    /// UNKNOWN_SERVER_ERROR
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    /// NONE
    pub const NONE: i16 = 0;
    /// UNKNOWN_TOPIC_OR_PARTITION
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// INVALID_TOPIC_EXCEPTION
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    /// TOPIC_ALREADY_EXISTS
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    /// INVALID_PARTITIONS
    pub const INVALID_PARTITIONS: i16 = 37;
    /// INVALID_REPLICATION_FACTOR
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    /// INVALID_REPLICA_ASSIGNMENT
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    /// INVALID_CONFIG
    pub const INVALID_CONFIG: i16 = 40;
    /// NOT_CONTROLLER
    pub const NOT_CONTROLLER: i16 = 41;
    /// INVALID_REQUEST
    pub const INVALID_REQUEST: i16 = 42;
    /// POLICY_VIOLATION
    pub const POLICY_VIOLATION: i16 = 44;
    /// UNKNOWN_TOPIC_ID
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    /// BROKER_ID_NOT_REGISTERED
    pub const BROKER_ID_NOT_REGISTERED: i16 = 102;
    /// INCONSISTENT_CLUSTER_ID
    pub const INCONSISTENT_CLUSTER_ID: i16 = 104;
    /// REQUEST_TIMED_OUT
    pub const REQUEST_TIMED_OUT: i16 = 7;
    /// DUPLICATE_VOTER
    pub const DUPLICATE_VOTER: i16 = 126;
    /// VOTER_NOT_FOUND
    pub const VOTER_NOT_FOUND: i16 = 127;
    /// UNSUPPORTED_VERSION
    pub const UNSUPPORTED_VERSION: i16 = 35;
    /// FENCED_LEADER_EPOCH
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    /// STALE_BROKER_EPOCH
    pub const STALE_BROKER_EPOCH: i16 = 77;
    /// INELIGIBLE_REPLICA
    pub const INELIGIBLE_REPLICA: i16 = 107;
    /// INVALID_UPDATE_VERSION
    pub const INVALID_UPDATE_VERSION: i16 = 95;
    /// NO_REASSIGNMENT_IN_PROGRESS
    pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
    /// NEW_LEADER_ELECTED
    pub const NEW_LEADER_ELECTED: i16 = 108;
    /// PREFERRED_LEADER_NOT_AVAILABLE
    pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE
    pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
    /// ELECTION_NOT_NEEDED
    pub const ELECTION_NOT_NEEDED: i16 = 84;
    /// UNSUPPORTED_SASL_MECHANISM
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    /// RESOURCE_NOT_FOUND
    pub const RESOURCE_NOT_FOUND: i16 = 91;
    /// DUPLICATE_RESOURCE
    pub const DUPLICATE_RESOURCE: i16 = 92;
    /// UNACCEPTABLE_CREDENTIAL
    pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
}

/// Everything the controller can answer instead of success.
///
/// Request-level variants carry Kafka's message text; `error_code()` gives the wire code.
#[derive(Debug, Clone, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize)]
pub enum ControllerError {
    /// The topic (by name) does not exist.
    #[error("{0}")]
    UnknownTopicOrPartition(String),
    /// The topic name is not legal, or collides with an existing one.
    #[error("{0}")]
    InvalidTopic(String),
    /// A topic with this name already exists.
    #[error("{0}")]
    TopicAlreadyExists(String),
    /// The partition count is not acceptable.
    #[error("{0}")]
    InvalidPartitions(String),
    /// The replication factor is not acceptable (e.g. more than the registered brokers).
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// An explicit replica assignment is not acceptable.
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// A config key is unknown or its value is not valid.
    #[error("{0}")]
    InvalidConfig(String),
    /// This node is not the active controller, or lost leadership before the change committed.
    #[error("This node is not the active controller")]
    NotController,
    /// The request is malformed (duplicates, unsupported resource types, ...).
    #[error("{0}")]
    InvalidRequest(String),
    /// A configured create-topic or alter-config policy rejected the request.
    #[error("{0}")]
    PolicyViolation(String),
    /// A request that would make the controller write more than [`crate::ops::MAX_RECORDS_PER_USER_OP`]
    /// records: refused whole, as Kafka's controller refuses it (POLICY_VIOLATION, its message).
    #[error("Unable to perform excessively large batch operation.")]
    ExcessiveBatch,
    /// The topic (by id) does not exist.
    #[error("{0}")]
    UnknownTopicId(String),
    /// The metadata directory belongs to another cluster.
    #[error("{0}")]
    InconsistentClusterId(String),
    /// The `ControllerConfig` handed to `start` cannot work.
    #[error("invalid controller configuration: {0}")]
    Configuration(String),
    /// Reading or writing the metadata log or quorum state failed.
    #[error("metadata storage error: {0}")]
    Storage(String),
    /// The raft state machine refused an operation in a way that is not a leadership change.
    #[error("raft error: {0}")]
    Raft(String),
    /// The broker id is not registered (BROKER_ID_NOT_REGISTERED).
    #[error("{0}")]
    BrokerIdNotRegistered(String),
    /// AddRaftVoter of a node that already votes (DUPLICATE_VOTER).
    #[error("{0}")]
    DuplicateVoter(String),
    /// RemoveRaftVoter/UpdateRaftVoter of a node (or directory id) that is not a voter (VOTER_NOT_FOUND).
    #[error("{0}")]
    VoterNotFound(String),
    /// AddRaftVoter/RemoveRaftVoter on a quorum whose kraft.version is 0 (static voters), which cannot change
    /// its voters until kraft.version is upgraded to 1 (UNSUPPORTED_VERSION, as Kafka answers).
    #[error("{0}")]
    UnsupportedVersion(String),
    /// The change could not complete in time: another membership change is pending, the leader has not
    /// committed in its epoch yet, or a new voter did not catch up (REQUEST_TIMED_OUT, as Kafka answers).
    #[error("{0}")]
    RequestTimedOut(String),
    /// AlterPartition from a leader whose leader epoch is not the partition's (FENCED_LEADER_EPOCH).
    #[error("{0}")]
    FencedLeaderEpoch(String),
    /// AlterPartition based on an outdated partition epoch (INVALID_UPDATE_VERSION).
    #[error("{0}")]
    InvalidUpdateVersion(String),
    /// AlterPartition naming a fenced or shutting-down broker in the new ISR (INELIGIBLE_REPLICA).
    #[error("{0}")]
    IneligibleReplica(String),
    /// A request from an older registration of the broker (STALE_BROKER_EPOCH).
    #[error("{0}")]
    StaleBrokerEpoch(String),
    /// A cancellation (null target replicas) of a partition that is not being reassigned
    /// (NO_REASSIGNMENT_IN_PROGRESS).
    #[error("{0}")]
    NoReassignmentInProgress(String),
    /// AlterPartition whose ISR change completed a reassignment that removed the asking leader: the change
    /// was made, and the broker must look at the new metadata (NEW_LEADER_ELECTED).
    #[error("{0}")]
    NewLeaderElected(String),
    /// ElectLeaders of a partition already led by the replica the election would pick (ELECTION_NOT_NEEDED).
    #[error("{0}")]
    ElectionNotNeeded(String),
    /// A PREFERRED election whose preferred replica cannot lead (PREFERRED_LEADER_NOT_AVAILABLE).
    #[error("{0}")]
    PreferredLeaderNotAvailable(String),
    /// An UNCLEAN election with no live replica to elect (ELIGIBLE_LEADERS_NOT_AVAILABLE).
    #[error("{0}")]
    EligibleLeadersNotAvailable(String),
    /// A SCRAM credential change names an unknown mechanism (UNSUPPORTED_SASL_MECHANISM).
    #[error("{0}")]
    UnsupportedSaslMechanism(String),
    /// A SCRAM credential to delete or describe does not exist (RESOURCE_NOT_FOUND).
    #[error("{0}")]
    ResourceNotFound(String),
    /// One request names the same user twice (DUPLICATE_RESOURCE).
    #[error("{0}")]
    DuplicateResource(String),
    /// A SCRAM credential is not acceptable: empty user, too few or too many iterations (UNACCEPTABLE_CREDENTIAL).
    #[error("{0}")]
    UnacceptableCredential(String),
    /// Something that should not happen did; the request may be retried.
    #[error("internal controller error: {0}")]
    Internal(String),
}

impl ControllerError {
    /// The Kafka wire error code for this error.
    pub fn error_code(&self) -> i16 {
        use codes::*;
        match self {
            Self::UnknownTopicOrPartition(_) => UNKNOWN_TOPIC_OR_PARTITION,
            Self::InvalidTopic(_) => INVALID_TOPIC_EXCEPTION,
            Self::TopicAlreadyExists(_) => TOPIC_ALREADY_EXISTS,
            Self::InvalidPartitions(_) => INVALID_PARTITIONS,
            Self::InvalidReplicationFactor(_) => INVALID_REPLICATION_FACTOR,
            Self::InvalidReplicaAssignment(_) => INVALID_REPLICA_ASSIGNMENT,
            Self::InvalidConfig(_) => INVALID_CONFIG,
            Self::NotController => NOT_CONTROLLER,
            Self::InvalidRequest(_) => INVALID_REQUEST,
            Self::PolicyViolation(_) | Self::ExcessiveBatch => POLICY_VIOLATION,
            Self::UnknownTopicId(_) => UNKNOWN_TOPIC_ID,
            Self::InconsistentClusterId(_) => INCONSISTENT_CLUSTER_ID,
            Self::BrokerIdNotRegistered(_) => BROKER_ID_NOT_REGISTERED,
            Self::DuplicateVoter(_) => DUPLICATE_VOTER,
            Self::VoterNotFound(_) => VOTER_NOT_FOUND,
            Self::UnsupportedVersion(_) => UNSUPPORTED_VERSION,
            Self::RequestTimedOut(_) => REQUEST_TIMED_OUT,
            Self::FencedLeaderEpoch(_) => FENCED_LEADER_EPOCH,
            Self::InvalidUpdateVersion(_) => INVALID_UPDATE_VERSION,
            Self::IneligibleReplica(_) => INELIGIBLE_REPLICA,
            Self::StaleBrokerEpoch(_) => STALE_BROKER_EPOCH,
            Self::NoReassignmentInProgress(_) => NO_REASSIGNMENT_IN_PROGRESS,
            Self::NewLeaderElected(_) => NEW_LEADER_ELECTED,
            Self::ElectionNotNeeded(_) => ELECTION_NOT_NEEDED,
            Self::PreferredLeaderNotAvailable(_) => PREFERRED_LEADER_NOT_AVAILABLE,
            Self::EligibleLeadersNotAvailable(_) => ELIGIBLE_LEADERS_NOT_AVAILABLE,
            Self::UnsupportedSaslMechanism(_) => UNSUPPORTED_SASL_MECHANISM,
            Self::ResourceNotFound(_) => RESOURCE_NOT_FOUND,
            Self::DuplicateResource(_) => DUPLICATE_RESOURCE,
            Self::UnacceptableCredential(_) => UNACCEPTABLE_CREDENTIAL,
            Self::Configuration(_) | Self::Storage(_) | Self::Raft(_) | Self::Internal(_) => {
                UNKNOWN_SERVER_ERROR
            }
        }
    }

    /// The text for a response's `error_message` field.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        let cases = [
            (ControllerError::UnknownTopicOrPartition(String::new()), 3),
            (ControllerError::InvalidTopic(String::new()), 17),
            (ControllerError::TopicAlreadyExists(String::new()), 36),
            (ControllerError::InvalidPartitions(String::new()), 37),
            (ControllerError::InvalidReplicationFactor(String::new()), 38),
            (ControllerError::InvalidReplicaAssignment(String::new()), 39),
            (ControllerError::InvalidConfig(String::new()), 40),
            (ControllerError::NotController, 41),
            (ControllerError::InvalidRequest(String::new()), 42),
            (ControllerError::PolicyViolation(String::new()), 44),
            (ControllerError::ExcessiveBatch, 44),
            (ControllerError::UnknownTopicId(String::new()), 100),
            (ControllerError::BrokerIdNotRegistered(String::new()), 102),
            (ControllerError::InconsistentClusterId(String::new()), 104),
            (ControllerError::Storage(String::new()), -1),
            (ControllerError::DuplicateVoter(String::new()), 126),
            (ControllerError::VoterNotFound(String::new()), 127),
            (ControllerError::UnsupportedVersion(String::new()), 35),
            (ControllerError::RequestTimedOut(String::new()), 7),
            (ControllerError::NoReassignmentInProgress(String::new()), 85),
            (ControllerError::NewLeaderElected(String::new()), 108),
            (ControllerError::InvalidUpdateVersion(String::new()), 95),
            (
                ControllerError::PreferredLeaderNotAvailable(String::new()),
                80,
            ),
            (
                ControllerError::EligibleLeadersNotAvailable(String::new()),
                83,
            ),
            (ControllerError::ElectionNotNeeded(String::new()), 84),
        ];
        for (err, code) in cases {
            assert_eq!(err.error_code(), code, "{err:?}");
        }
    }

    #[test]
    fn message_is_the_kafka_text() {
        let err = ControllerError::TopicAlreadyExists("Topic 'a' already exists.".into());
        assert_eq!(err.message(), "Topic 'a' already exists.");
    }
}
