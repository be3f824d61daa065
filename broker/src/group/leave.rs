//! LeaveGroup (v0-v5): one member (v0-v2) or a batch with per-member errors (v3+), including
//! administrative removal of static members by instance id alone.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::info;

use super::coordinator::GroupCoordinator;
use super::output::{Outbox, Output, ReplyId, Response};

/// First version that names members in a list and answers each.
const BATCH_VERSION: i16 = 3;

struct Leaver {
    member_id: StrBytes,
    instance_id: Option<StrBytes>,
}

impl GroupCoordinator {
    pub fn leave_group(
        &mut self,
        id: ReplyId,
        version: i16,
        request: LeaveGroupRequest,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Outbox::default();
        let group_id = request.group_id.0.as_str().to_owned();
        let leavers: Vec<Leaver> = if version < BATCH_VERSION {
            vec![Leaver {
                member_id: request.member_id,
                instance_id: None,
            }]
        } else {
            request
                .members
                .into_iter()
                .map(|m| Leaver {
                    member_id: m.member_id,
                    instance_id: m.group_instance_id,
                })
                .collect()
        };
        self.settle_group(&group_id, now_ms, &mut out);
        let (top_error, member_errors) = if group_id.is_empty() {
            (ResponseError::InvalidGroupId.code(), Vec::new())
        } else if let Err(error) = self.check_coordinator(&group_id) {
            (error.code(), Vec::new())
        } else {
            (0, self.leave(&group_id, &leavers, now_ms, &mut out))
        };
        let response = if version < BATCH_VERSION {
            // Single-member versions carry the member's error at the top level.
            let member_error = member_errors.first().copied().unwrap_or(0);
            LeaveGroupResponse::default().with_error_code(if top_error != 0 {
                top_error
            } else {
                member_error
            })
        } else {
            let members = leavers
                .into_iter()
                .zip(member_errors)
                .map(|(leaver, error)| {
                    MemberResponse::default()
                        .with_member_id(leaver.member_id)
                        .with_group_instance_id(leaver.instance_id)
                        .with_error_code(error)
                })
                .collect();
            LeaveGroupResponse::default()
                .with_error_code(top_error)
                .with_members(members)
        };
        out.reply(id, Response::LeaveGroup(response));
        self.settle_group(&group_id, now_ms, &mut out);
        out.into_outputs()
    }

    /// Removes each leaver in turn; returns one error code per leaver.
    fn leave(
        &mut self,
        group_id: &str,
        leavers: &[Leaver],
        now_ms: i64,
        out: &mut Outbox,
    ) -> Vec<i16> {
        let Some(group) = self.groups.get_mut(group_id) else {
            return vec![ResponseError::UnknownMemberId.code(); leavers.len()];
        };
        let config = &self.config;
        leavers
            .iter()
            .map(|leaver| {
                let member_id = leaver.member_id.as_str();
                let instance_id = leaver.instance_id.as_ref().map(|s| s.as_str());
                if member_id.is_empty() {
                    // Admin removal of a static member by instance id.
                    let current = instance_id.and_then(|i| group.static_members.get(i)).cloned();
                    return match current {
                        Some(current) => {
                            info!(group = %group.id, member = %current, "static member removed by instance id");
                            group.remove_member_and_rebalance(config, &current, now_ms, out, "removed by instance id");
                            0
                        }
                        None => ResponseError::UnknownMemberId.code(),
                    };
                }
                if group.pending_members.remove(member_id).is_some() {
                    return 0;
                }
                if let Err(e) = group.validate_member(instance_id, member_id) {
                    return e.code();
                }
                info!(group = %group.id, member = member_id, "member left");
                group.remove_member_and_rebalance(config, member_id, now_ms, out, "member left");
                0
            })
            .collect()
    }
}
