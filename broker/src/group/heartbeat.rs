//! Heartbeat (v0-v4): keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::ResponseError;

use super::coordinator::GroupCoordinator;
use super::output::{Outbox, Output, ReplyId, Response};
use super::rebalance::touch_session;
use super::state::GroupState;

impl GroupCoordinator {
    pub fn heartbeat(
        &mut self,
        id: ReplyId,
        _version: i16,
        request: HeartbeatRequest,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Outbox::default();
        let group_id = request.group_id.0.as_str().to_owned();
        self.settle_group(&group_id, now_ms, &mut out);
        let error = match self.beat(&group_id, &request, now_ms) {
            Ok(()) => 0,
            Err(error) => error.code(),
        };
        out.reply(
            id,
            Response::Heartbeat(HeartbeatResponse::default().with_error_code(error)),
        );
        self.settle_group(&group_id, now_ms, &mut out);
        out.into_outputs()
    }

    fn beat(
        &mut self,
        group_id: &str,
        request: &HeartbeatRequest,
        now_ms: i64,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        self.check_coordinator(group_id)?;
        let member_id = request.member_id.as_str();
        let instance_id = request.group_instance_id.as_ref().map(|s| s.as_str());
        let group = self.member_group_mut(group_id, member_id, instance_id)?;
        let state = group.state;
        let generation = group.generation;
        let Some(member) = group.members.get_mut(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if request.generation_id != generation {
            return Err(ResponseError::IllegalGeneration);
        }
        match state {
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            // Members may heartbeat between their JoinGroup answer and SyncGroup.
            GroupState::CompletingRebalance | GroupState::Stable => {
                touch_session(member, now_ms);
                Ok(())
            }
            GroupState::PreparingRebalance => {
                touch_session(member, now_ms);
                Err(ResponseError::RebalanceInProgress)
            }
        }
    }
}
