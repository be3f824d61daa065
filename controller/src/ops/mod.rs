//! Controller operations, one file per domain. Each is a pure function from the current image
//! and a request to the records that carry out the request plus the response to give once those
//! records commit. Nothing here touches raft, disk or the clock, so every Kafka error path is
//! unit-tested against hand-built images.

pub(crate) mod acls;
pub(crate) mod brokers;
pub(crate) mod configs;
pub(crate) mod election;
pub(crate) mod features;
pub(crate) mod leaders;
pub(crate) mod partition_change;
pub(crate) mod partitions;
pub(crate) mod placement;
pub(crate) mod producer_ids;
pub(crate) mod reassignment;
pub(crate) mod scram;
pub(crate) mod topic_name;
pub(crate) mod topics;

#[cfg(test)]
pub(crate) mod test_support;

use uuid::Uuid;

use crate::policy::Policies;
use crate::records::MetadataRecord;

/// Kafka's `MAX_RECORDS_PER_USER_OP`: the most records one request may make the controller write. Kafka
/// collects them in a bounded list and fails the whole request once it would pass the bound (a topic is one
/// record, plus one per partition and per config), so one request creates at most 9,999 partitions in a
/// topic; it also keeps a request from making the controller allocate and replicate an unbounded batch.
pub const MAX_RECORDS_PER_USER_OP: usize = 10_000;

/// What an operation needs besides the image.
pub(crate) struct OpContext {
    /// Partition count for topics created with -1.
    pub default_num_partitions: i32,
    /// Replication factor for topics created with -1.
    pub default_replication_factor: i16,
    /// Operator policies.
    pub policies: Policies,
    /// What leader elections depend on besides the image (the static unclean-election default).
    pub election: election::ElectionPolicy,
    /// Source of new topic ids (random in production, a sequence in tests).
    pub new_topic_id: Box<dyn FnMut() -> Uuid + Send>,
    /// Source of new ACL ids (random in production, a sequence in tests).
    pub new_acl_id: Box<dyn FnMut() -> Uuid + Send>,
}

/// An operation's result: records to commit, and the response to give once they have.
#[derive(Debug)]
pub(crate) struct OpOutput<R> {
    pub records: Vec<MetadataRecord>,
    pub response: R,
}
