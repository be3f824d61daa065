//! SyncGroup (v0-v5): the leader hands in the assignment; every member waits for its share.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::messages::SyncGroupRequest;
use kafka_protocol::ResponseError;
use tracing::{debug, info};

use super::coordinator::GroupCoordinator;
use super::member::PendingReply;
use super::output::{Outbox, Output, ReplyId, Response};
use super::rebalance::{park, touch_session};
use super::responses;
use super::state::GroupState;

impl GroupCoordinator {
    /// Handles SyncGroup. A follower's reply may come out of a later call (the leader's SyncGroup).
    pub fn sync_group(
        &mut self,
        id: ReplyId,
        version: i16,
        request: SyncGroupRequest,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Outbox::default();
        let group_id = request.group_id.0.as_str().to_owned();
        self.settle_group(&group_id, now_ms, &mut out);
        let reply = PendingReply { id, version };
        if let Err(error) = self.sync(&group_id, reply, &request, now_ms, &mut out) {
            debug!(group = %group_id, member = %request.member_id.as_str(), ?error, "SyncGroup rejected");
            out.reply(id, Response::SyncGroup(responses::sync_error(error)));
        }
        self.settle_group(&group_id, now_ms, &mut out);
        out.into_outputs()
    }

    fn sync(
        &mut self,
        group_id: &str,
        reply: PendingReply,
        request: &SyncGroupRequest,
        now_ms: i64,
        out: &mut Outbox,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        self.check_coordinator(group_id)?;
        let assignment_bytes: usize = request.assignments.iter().map(|a| a.assignment.len()).sum();
        if assignment_bytes > self.config.max_member_metadata_bytes {
            return Err(ResponseError::MessageTooLarge);
        }
        let member_id = request.member_id.as_str();
        let instance_id = request.group_instance_id.as_ref().map(|s| s.as_str());
        let group = self.member_group_mut(group_id, member_id, instance_id)?;
        if request.generation_id != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        // v5+ clients state what they expect; a mismatch means they would misread the assignment.
        let type_mismatch = request
            .protocol_type
            .as_ref()
            .is_some_and(|t| group.protocol_type.as_deref() != Some(t.as_str()));
        let name_mismatch = request
            .protocol_name
            .as_ref()
            .is_some_and(|n| group.protocol_name.as_deref() != Some(n.as_str()));
        if type_mismatch || name_mismatch {
            return Err(ResponseError::InconsistentGroupProtocol);
        }

        match group.state {
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                // Late follower: the assignment is already known.
                group.mark_synced(member_id);
                let Some(member) = group.members.get_mut(member_id) else {
                    return Err(ResponseError::UnknownMemberId);
                };
                touch_session(member, now_ms);
                let assignment = member.assignment.clone();
                let response = responses::sync_success(group, assignment);
                out.reply(reply.id, Response::SyncGroup(response));
                Ok(())
            }
            GroupState::CompletingRebalance => {
                let Some(member) = group.members.get_mut(member_id) else {
                    return Err(ResponseError::UnknownMemberId);
                };
                park(&mut member.pending_sync, reply, out, |_| {
                    Response::SyncGroup(responses::sync_error(ResponseError::RebalanceInProgress))
                });
                group.mark_synced(member_id);
                if group.is_leader(member_id) {
                    // Later entries win, as in Kafka's map; members the leader left out get nothing.
                    let assignments: HashMap<&str, &Bytes> = request
                        .assignments
                        .iter()
                        .map(|a| (a.member_id.as_str(), &a.assignment))
                        .collect();
                    for member in group.members.values_mut() {
                        member.assignment = assignments
                            .get(member.id.as_str())
                            .map(|a| (*a).clone())
                            .unwrap_or_default();
                    }
                    info!(group = %group.id, generation = group.generation, "assignment received from leader");
                    out.persist(vec![group.metadata_record()]);
                    group.propagate_assignment(now_ms, out);
                    group.state = GroupState::Stable;
                }
                Ok(())
            }
        }
    }
}
