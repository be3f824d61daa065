//! The rebalance cycle: Empty/Stable/CompletingRebalance → PreparingRebalance (members rejoin) →
//! CompletingRebalance (leader assigns) → Stable, and how parked JoinGroup/SyncGroup requests are
//! answered along the way.

use kafka_protocol::ResponseError;
use tracing::{error, info, warn};

use super::classic_group::{Group, JoinTimer};
use super::config::GroupConfig;
use super::member::{Member, PendingReply};
use super::output::{Outbox, Response};
use super::responses;
use super::state::GroupState;

impl Group {
    /// Kafka lets a rebalance start from these states; in PreparingRebalance one is already running.
    fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance
        )
    }

    pub(super) fn maybe_prepare_rebalance(
        &mut self,
        config: &GroupConfig,
        now_ms: i64,
        out: &mut Outbox,
        reason: &str,
    ) {
        if self.can_rebalance() {
            self.prepare_rebalance(config, now_ms, out, reason);
        }
    }

    /// Starts the JoinGroup phase: members waiting for an assignment are told to rejoin, and the join
    /// timer is armed (the initial-delay variant for an empty group).
    fn prepare_rebalance(
        &mut self,
        config: &GroupConfig,
        now_ms: i64,
        out: &mut Outbox,
        reason: &str,
    ) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_assignments_with_error(ResponseError::RebalanceInProgress, now_ms, out);
        }
        self.sync_deadline_ms = None;
        self.pending_sync_members.clear();
        let rebalance_timeout_ms = i64::from(self.rebalance_timeout_ms());
        self.join_timer = Some(if self.state == GroupState::Empty {
            let delay_ms = i64::from(config.initial_rebalance_delay_ms.max(0));
            JoinTimer::Initial {
                deadline_ms: now_ms.saturating_add(delay_ms),
                remaining_ms: (rebalance_timeout_ms - delay_ms).max(0),
            }
        } else {
            JoinTimer::Rebalance {
                deadline_ms: now_ms.saturating_add(rebalance_timeout_ms),
            }
        });
        info!(group = %self.id, generation = self.generation, reason, "preparing to rebalance");
        self.state = GroupState::PreparingRebalance;
    }

    /// Ends the JoinGroup phase early once every member is in. The initial delay never ends early: its
    /// point is to wait for members not known yet.
    pub(super) fn try_complete_join(&mut self, now_ms: i64, out: &mut Outbox) {
        if self.state == GroupState::PreparingRebalance
            && matches!(self.join_timer, Some(JoinTimer::Rebalance { .. }))
            && self.all_members_joined()
        {
            self.complete_join(now_ms, out);
        }
    }

    /// The join timer fired at `at_ms`.
    pub(super) fn fire_join_timer(&mut self, config: &GroupConfig, at_ms: i64, out: &mut Outbox) {
        match self.join_timer {
            Some(JoinTimer::Initial { remaining_ms, .. })
                if self.new_member_added && remaining_ms > 0 =>
            {
                self.new_member_added = false;
                let delay_ms =
                    i64::from(config.initial_rebalance_delay_ms.max(0)).min(remaining_ms);
                self.join_timer = Some(JoinTimer::Initial {
                    deadline_ms: at_ms.saturating_add(delay_ms),
                    remaining_ms: remaining_ms - delay_ms,
                });
            }
            _ => self.complete_join(at_ms, out),
        }
    }

    /// Ends the JoinGroup phase: dynamic members that did not rejoin are dropped (static ones keep their
    /// place until their session expires), a new generation starts, and every parked JoinGroup is
    /// answered, the leader's with the member list.
    fn complete_join(&mut self, now_ms: i64, out: &mut Outbox) {
        let stragglers: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for member_id in stragglers {
            info!(group = %self.id, member = %member_id, "removing member that did not rejoin");
            if let Some(member) = self.remove_member(&member_id) {
                answer_parked_requests(member, ResponseError::UnknownMemberId, out);
            }
        }
        self.join_timer = None;
        self.new_member_added = false;

        if !self.elect_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin are left. Wait another rebalance timeout; their
            // sessions expire meanwhile if they are really gone.
            warn!(group = %self.id, "no member rejoined; extending the rebalance");
            let timeout_ms = i64::from(self.rebalance_timeout_ms()).max(1);
            self.join_timer = Some(JoinTimer::Rebalance {
                deadline_ms: now_ms.saturating_add(timeout_ms),
            });
            return;
        }

        self.init_next_generation(now_ms);
        if self.state == GroupState::Empty {
            info!(group = %self.id, generation = self.generation, "group is now empty");
            out.persist(vec![self.metadata_record()]);
            return;
        }
        info!(
            group = %self.id,
            generation = self.generation,
            protocol = self.protocol_name.as_deref().unwrap_or_default(),
            members = self.members.len(),
            "rebalance completed its join phase"
        );
        let member_ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in &member_ids {
            let parked = self
                .members
                .get_mut(member_id)
                .and_then(|m| m.pending_join.take());
            if let Some(reply) = parked {
                let response = responses::join_success(reply.version, self, member_id, false);
                out.reply(reply.id, Response::JoinGroup(response));
            }
            if let Some(member) = self.members.get_mut(member_id) {
                touch_session(member, now_ms);
                member.is_new = false;
            }
        }
        self.pending_sync_members = member_ids.into_iter().collect();
        self.sync_deadline_ms = Some(now_ms.saturating_add(i64::from(self.rebalance_timeout_ms())));
    }

    fn init_next_generation(&mut self, now_ms: i64) {
        self.generation = self.generation.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.state = GroupState::Empty;
        } else {
            self.protocol_name = self.select_protocol();
            if self.protocol_name.is_none() {
                // Joins are checked against every member's protocols, so this means a bug.
                error!(group = %self.id, "members share no protocol");
            }
            self.state = GroupState::CompletingRebalance;
        }
        self.subscribed_topics = self.compute_subscribed_topics();
        self.state_timestamp_ms = Some(now_ms);
    }

    /// Clears every assignment and answers parked SyncGroups with `error`.
    fn reset_assignments_with_error(
        &mut self,
        error: ResponseError,
        now_ms: i64,
        out: &mut Outbox,
    ) {
        for member in self.members.values_mut() {
            member.assignment = bytes::Bytes::new();
            if let Some(reply) = member.pending_sync.take() {
                out.reply(reply.id, Response::SyncGroup(responses::sync_error(error)));
                touch_session(member, now_ms);
            }
        }
    }

    /// Answers parked SyncGroups with each member's new assignment.
    pub(super) fn propagate_assignment(&mut self, now_ms: i64, out: &mut Outbox) {
        let member_ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in member_ids {
            let Some(member) = self.members.get_mut(&member_id) else {
                continue;
            };
            let Some(reply) = member.pending_sync.take() else {
                continue;
            };
            touch_session(member, now_ms);
            let assignment = member.assignment.clone();
            let response = responses::sync_success(self, assignment);
            out.reply(reply.id, Response::SyncGroup(response));
        }
    }

    /// Drops a member (session expiry, LeaveGroup, admin removal) and starts the rebalance its departure
    /// calls for. In PreparingRebalance the departure may instead let the join phase complete, which
    /// the caller checks afterwards.
    pub(super) fn remove_member_and_rebalance(
        &mut self,
        config: &GroupConfig,
        member_id: &str,
        now_ms: i64,
        out: &mut Outbox,
        reason: &str,
    ) {
        let Some(member) = self.remove_member(member_id) else {
            return;
        };
        answer_parked_requests(member, ResponseError::UnknownMemberId, out);
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance
        ) {
            self.maybe_prepare_rebalance(config, now_ms, out, reason);
        }
    }

    /// Moves a static member to a new member id (its instance restarted). Requests still parked under
    /// the old id come from the replaced instance and are fenced.
    pub(super) fn replace_static_member(
        &mut self,
        instance_id: &str,
        old_member_id: &str,
        new_member_id: &str,
        out: &mut Outbox,
    ) -> bool {
        let Some((index, _, mut member)) = self.members.shift_remove_full(old_member_id) else {
            return false;
        };
        if let Some(reply) = member.pending_join.take() {
            let response = responses::join_error(
                reply.version,
                old_member_id,
                ResponseError::FencedInstanceId,
            );
            out.reply(reply.id, Response::JoinGroup(response));
        }
        if let Some(reply) = member.pending_sync.take() {
            let response = responses::sync_error(ResponseError::FencedInstanceId);
            out.reply(reply.id, Response::SyncGroup(response));
        }
        member.id = new_member_id.to_owned();
        self.members
            .shift_insert(index, new_member_id.to_owned(), member);
        if self.is_leader(old_member_id) {
            self.leader = Some(new_member_id.to_owned());
        }
        if self.pending_sync_members.remove(old_member_id) {
            self.pending_sync_members.insert(new_member_id.to_owned());
        }
        self.static_members
            .insert(instance_id.to_owned(), new_member_id.to_owned());
        info!(group = %self.id, instance = instance_id, old = old_member_id, new = new_member_id,
            "static member replaced");
        true
    }

    /// The rebalance timeout after the join phase ran out for members that never sent SyncGroup: they
    /// are dropped and the group rebalances without them.
    pub(super) fn expire_pending_syncs(
        &mut self,
        config: &GroupConfig,
        at_ms: i64,
        out: &mut Outbox,
    ) {
        self.sync_deadline_ms = None;
        if !matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) || self.pending_sync_members.is_empty()
        {
            return;
        }
        let missing: Vec<String> = self.pending_sync_members.drain().collect();
        info!(group = %self.id, members = ?missing, "removing members that did not sync in time");
        for member_id in &missing {
            if let Some(member) = self.remove_member(member_id) {
                answer_parked_requests(member, ResponseError::UnknownMemberId, out);
            }
        }
        self.maybe_prepare_rebalance(config, at_ms, out, "members did not sync in time");
    }

    /// Marks a member's SyncGroup as received; once all are in, the sync timer is no longer needed.
    pub(super) fn mark_synced(&mut self, member_id: &str) {
        self.pending_sync_members.remove(member_id);
        if self.pending_sync_members.is_empty() {
            self.sync_deadline_ms = None;
        }
    }
}

/// Records that the member showed life: its session restarts now.
pub(super) fn touch_session(member: &mut Member, now_ms: i64) {
    member.session_deadline_ms = Some(now_ms.saturating_add(i64::from(member.session_timeout_ms)));
}

/// Parks a JoinGroup or SyncGroup reply in `slot`. A request already parked there is from the same
/// member and superseded (the client retried); it is told to rejoin rather than left unanswered.
pub(super) fn park(
    slot: &mut Option<PendingReply>,
    reply: PendingReply,
    out: &mut Outbox,
    superseded: impl FnOnce(PendingReply) -> Response,
) {
    if let Some(old) = slot.replace(reply) {
        out.reply(old.id, superseded(old));
    }
}

/// Answers whatever a departing member had parked, so no caller waits forever.
pub(super) fn answer_parked_requests(member: Member, error: ResponseError, out: &mut Outbox) {
    if let Some(reply) = member.pending_join {
        let response = responses::join_error(reply.version, "", error);
        out.reply(reply.id, Response::JoinGroup(response));
    }
    if let Some(reply) = member.pending_sync {
        out.reply(reply.id, Response::SyncGroup(responses::sync_error(error)));
    }
}
