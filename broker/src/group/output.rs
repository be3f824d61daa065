//! What the coordinator asks its caller to do: answer a request, or write records.

use kafka_protocol::messages::{
    DeleteGroupsResponse, DescribeGroupsResponse, HeartbeatResponse, JoinGroupResponse,
    LeaveGroupResponse, ListGroupsResponse, OffsetCommitResponse, OffsetDeleteResponse,
    OffsetFetchResponse, SyncGroupResponse,
};

use super::records::GroupRecord;

/// Caller-chosen handle of one request. JoinGroup and SyncGroup are answered later, often from another
/// member's request or from [`super::GroupCoordinator::tick`]; the handle tells the caller which
/// connection each answer belongs to.
pub type ReplyId = u64;

/// A response, shaped for the version of the request it answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    OffsetDelete(OffsetDeleteResponse),
    ListGroups(ListGroupsResponse),
    DescribeGroups(DescribeGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
}

/// One effect of a coordinator call.
///
/// Outputs are ordered. A [`Output::Persist`] must be durably written to `__consumer_offsets` before any
/// [`Output::Reply`] that follows it is sent, because those replies promise the write happened (a commit
/// acknowledged, an assignment handed out).
///
/// The coordinator has already applied what it asks to persist. If a write fails, memory is ahead of
/// the log: the caller should give up the partition ([`super::GroupCoordinator::unload_partition`])
/// and answer the replies that depended on the write with NOT_COORDINATOR, so clients move to the
/// next coordinator, which loads the log as it really is.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Reply {
        id: ReplyId,
        response: Response,
    },
    /// Records of one group, so all go to partition
    /// [`partition_for(group_id, n)`](super::records::partition_for).
    Persist(Vec<GroupRecord>),
}

/// Collects the outputs of one call in order.
#[derive(Default)]
pub(super) struct Outbox {
    outputs: Vec<Output>,
}

impl Outbox {
    pub(super) fn reply(&mut self, id: ReplyId, response: Response) {
        self.outputs.push(Output::Reply { id, response });
    }

    pub(super) fn persist(&mut self, records: Vec<GroupRecord>) {
        if !records.is_empty() {
            self.outputs.push(Output::Persist(records));
        }
    }

    pub(super) fn into_outputs(self) -> Vec<Output> {
        self.outputs
    }
}
