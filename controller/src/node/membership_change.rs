//! Membership changes on the leader (KIP-853 AddRaftVoter, RemoveRaftVoter, UpdateRaftVoter) and applying
//! committed ones on every node.
//!
//! As in Kafka's `AddVoterHandler`/`RemoveVoterHandler`, one change runs at a time and only on a leader that
//! has committed an entry of its own term. Each step is a raft-rs `ConfChangeV2` with a single change, so
//! raft-rs applies it as a simple change (never a joint configuration); its context is the whole membership
//! after the change (see [`crate::membership`]):
//! - add: `AddLearnerNode` (the new controller starts receiving the log without voting, Kafka's observer),
//!   then once its log has reached the commit index, `AddNode` (promotion); the request fails with
//!   REQUEST_TIMED_OUT if it does not catch up in time (it stays a learner; asking again resumes there, and
//!   RemoveRaftVoter removes it);
//! - remove: `RemoveNode`; the leader never removes itself (raft-rs cannot run a leader without its own
//!   progress): asked to, it hands leadership to the most caught-up voter and answers NOT_CONTROLLER, and the
//!   client's retry reaches the new leader, which removes it as a follower;
//! - update: `AddNode` of a node that already votes (a no-op for raft) carrying its new endpoints.
//!
//! The request is answered when the last step commits, NOT_CONTROLLER if leadership is lost first; an addition
//! asked with AddRaftVoter v1's `AckWhenCommitted=false` is answered as soon as the leader has appended the
//! promotion (the new voter set) to its log, as Kafka's `AddVoterHandler` does, and the change stays in progress
//! (no other change starts) until that entry commits or is lost.
//!
//! Voters change only at kraft.version 1 (KIP-853): on a quorum still at 0 (the static `controller.quorum.voters`)
//! AddRaftVoter and RemoveRaftVoter are UNSUPPORTED_VERSION, as Kafka answers them, until `kafka-features upgrade
//! --feature kraft.version=1` has been committed (see `ops::features::KRAFT_VERSION`). UpdateRaftVoter is answered
//! at either level, as Kafka's `UpdateVoterHandler`, and its kraft.version range must include the current level
//! (INVALID_REQUEST otherwise). At level 0 Kafka's leader keeps the new endpoints in memory for a later upgrade;
//! Kraftwerk records them in the log as at level 1 (the answer is the same, and they survive a restart).

use std::time::Duration;

use raft::prelude::{ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, EntryType};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::{MembershipRequest, Node};
use crate::config::{node_id, raft_id};
use crate::error::ControllerError;
use crate::membership::Membership;

type Reply = oneshot::Sender<Result<(), ControllerError>>;

/// Where a change is.
#[derive(Debug)]
enum Stage {
    /// Waiting for the conf change at (term, index) to commit; `learner` when it only added the learner.
    Proposed {
        term: u64,
        index: u64,
        learner: bool,
    },
    /// The learner is in; waiting for its log to reach the commit index before promoting it.
    CatchingUp,
}

/// The change in progress on the leader.
pub(super) struct InProgress {
    request: MembershipRequest,
    stage: Stage,
    deadline: Instant,
    /// `None` once answered early (an addition with `ack_when_committed` false whose promotion is appended);
    /// the change still holds the single change slot until that entry commits.
    reply: Option<Reply>,
}

impl InProgress {
    /// Answers the request unless it was answered already.
    fn answer(&mut self, result: Result<(), ControllerError>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

fn timed_out(what: &str) -> ControllerError {
    ControllerError::RequestTimedOut(what.to_string())
}

/// Directory ids match unless one side is unknown (a voter from the static configuration has none).
fn same_directory(a: uuid::Uuid, b: uuid::Uuid) -> bool {
    a.is_nil() || b.is_nil() || a == b
}

impl Node {
    fn membership(&self) -> &Membership {
        self.raw.store().membership()
    }

    /// The quorum's kraft.version as the leader sees it (its pending image: an upgrade it has proposed counts,
    /// as Kafka's leader reads the newest KRaftVersionRecord of its log).
    fn kraft_version(&self) -> i16 {
        crate::ops::features::kraft_version(self.pending.as_ref().unwrap_or(&self.committed))
    }

    /// Kafka's refusal of a voter change on a quorum that is not at kraft.version 1.
    fn check_reconfig_supported(&self, request: &MembershipRequest) -> Result<(), ControllerError> {
        let level = self.kraft_version();
        let what = match request {
            MembershipRequest::Add { .. } => "adding",
            MembershipRequest::Remove { .. } => "removing",
            MembershipRequest::Update(member) => {
                let (min, max) = member.kraft_version;
                if !(min..=max).contains(&level) {
                    return Err(ControllerError::InvalidRequest(format!(
                        "voter {} supports kraft.version {min}..{max}, which does not include the quorum's \
                         finalized kraft.version {level}",
                        member.id
                    )));
                }
                return Ok(());
            }
        };
        if level < 1 {
            return Err(ControllerError::UnsupportedVersion(format!(
                "Cluster doesn't support {what} voter because the {} feature is {level}",
                crate::ops::features::KRAFT_VERSION
            )));
        }
        Ok(())
    }

    /// Starts a change asked by a client; answers at once when it cannot start.
    pub(super) fn start_change(
        &mut self,
        request: MembershipRequest,
        timeout: Duration,
        reply: Reply,
    ) {
        if !self.is_leader() {
            let _ = reply.send(Err(ControllerError::NotController));
            return;
        }
        if !self.caught_up() {
            let _ = reply.send(Err(timed_out(
                "the leader has not yet committed an entry of its epoch; retry the voter change",
            )));
            return;
        }
        if self.change.is_some() || self.raw.raft.has_pending_conf() {
            let _ = reply.send(Err(timed_out(
                "another voter change is in progress; retry once it has completed",
            )));
            return;
        }
        if let Err(e) = self.check_reconfig_supported(&request) {
            let _ = reply.send(Err(e));
            return;
        }
        if let MembershipRequest::Remove { id, .. } = &request {
            let others = self.membership().voters.iter().any(|v| v.id != *id);
            if Some(*id) == node_id(self.raw.raft.id)
                && self.membership().voter(*id).is_some()
                && others
            {
                // raft-rs cannot run a leader that removed itself (it keeps no progress for it and panics on the
                // next append response), so the leader hands over first and the client, told NOT_LEADER, sends
                // the removal again to the new leader, which removes this node as a follower.
                let answer = match self.hand_over() {
                    Some(to) => format!(
                        "controller {id} is the leader: handing leadership to {to} first; retry"
                    ),
                    None => {
                        format!("controller {id} is the leader and no other voter can take over")
                    }
                };
                info!("{answer}");
                let _ = reply.send(Err(ControllerError::NotController));
                return;
            }
        }
        let deadline = Instant::now() + timeout;
        let first = match self.first_step(&request) {
            Ok(step) => step,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let stage = match first {
            None => Stage::CatchingUp,
            Some((change, id, after)) => {
                let learner = change == ConfChangeType::AddLearnerNode;
                match self.propose_membership(change, id, &after) {
                    Ok((term, index)) => Stage::Proposed {
                        term,
                        index,
                        learner,
                    },
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                }
            }
        };
        info!(?request, ?stage, "membership change started");
        self.change = Some(InProgress {
            request,
            stage,
            deadline,
            reply: Some(reply),
        });
    }

    /// Validates a request against the current membership and gives its first conf change, or `None` when an
    /// addition's learner is already in (it only has to catch up).
    fn first_step(
        &self,
        request: &MembershipRequest,
    ) -> Result<Option<(ConfChangeType, i32, Membership)>, ControllerError> {
        let current = self.membership();
        match request {
            MembershipRequest::Add { member, .. } => {
                if member.id < 0 {
                    return Err(ControllerError::InvalidRequest(format!(
                        "voter id {} is negative",
                        member.id
                    )));
                }
                if member.endpoints.is_empty() {
                    return Err(ControllerError::InvalidRequest(format!(
                        "voter {} has no listener endpoints",
                        member.id
                    )));
                }
                if let Some(v) = current.voter(member.id) {
                    return Err(ControllerError::DuplicateVoter(format!(
                        "The voter id for ReplicaKey(id={}, directoryId={}) is already part of the set of voters {:?}.",
                        member.id, v.directory_id, current.voter_ids()
                    )));
                }
                if current.learner(member.id) == Some(member) {
                    return Ok(None);
                }
                Ok(Some((
                    ConfChangeType::AddLearnerNode,
                    member.id,
                    current.with_learner(member.clone()),
                )))
            }
            MembershipRequest::Remove { id, directory_id } => {
                let found = current.voter(*id).or_else(|| current.learner(*id));
                match found {
                    Some(m) if same_directory(m.directory_id, *directory_id) => {}
                    _ => {
                        return Err(ControllerError::VoterNotFound(format!(
                            "Cannot remove voter ReplicaKey(id={id}, directoryId={directory_id}): not in the set of \
                             voters {:?}",
                            current.voter_ids()
                        )))
                    }
                }
                if current.voter_ids() == [*id] {
                    return Err(ControllerError::InvalidRequest(format!(
                        "cannot remove voter {id}: it is the only voter"
                    )));
                }
                Ok(Some((
                    ConfChangeType::RemoveNode,
                    *id,
                    current.without(*id),
                )))
            }
            MembershipRequest::Update(member) => {
                match current.voter(member.id) {
                    Some(v) if same_directory(v.directory_id, member.directory_id) => {}
                    _ => {
                        return Err(ControllerError::VoterNotFound(format!(
                            "Cannot update voter ReplicaKey(id={}, directoryId={}): not in the set of voters {:?}",
                            member.id,
                            member.directory_id,
                            current.voter_ids()
                        )))
                    }
                }
                if member.endpoints.is_empty() {
                    return Err(ControllerError::InvalidRequest(format!(
                        "voter {} has no listener endpoints",
                        member.id
                    )));
                }
                Ok(Some((
                    ConfChangeType::AddNode,
                    member.id,
                    current.with_voter(member.clone()),
                )))
            }
        }
    }

    /// Proposes one single-change `ConfChangeV2` whose context is `after`; its (term, index).
    fn propose_membership(
        &mut self,
        change: ConfChangeType,
        id: i32,
        after: &Membership,
    ) -> Result<(u64, u64), ControllerError> {
        let context = after
            .encode()
            .map_err(|e| ControllerError::Internal(format!("encoding the membership: {e}")))?;
        let mut single = ConfChangeSingle::default();
        single.set_change_type(change);
        single.node_id = raft_id(id);
        let cc = ConfChangeV2 {
            changes: vec![single],
            ..ConfChangeV2::default()
        };
        let before = self.raw.raft.raft_log.last_index();
        match self.raw.propose_conf_change(context, cc) {
            Ok(()) => {}
            Err(raft::Error::ProposalDropped) => return Err(ControllerError::NotController),
            Err(e) => return Err(ControllerError::Raft(e.to_string())),
        }
        let index = before + 1;
        // raft-rs turns a conf change it will not take (one already pending) into an empty normal entry.
        let appended = self
            .raw
            .raft
            .raft_log
            .entries(index, None, raft::GetEntriesContext::empty(false))
            .ok()
            .and_then(|e| e.into_iter().next());
        match appended {
            Some(e) if e.get_entry_type() == EntryType::EntryConfChangeV2 => {
                Ok((self.raw.raft.term, index))
            }
            _ => Err(timed_out(
                "raft refused the voter change because another one is pending; retry",
            )),
        }
    }

    /// Moves the change in progress on (leader only); `true` if it proposed something (settle again).
    pub(super) fn drive_change(&mut self) -> bool {
        let Some(change) = self.change.as_ref() else {
            return false;
        };
        if Instant::now() >= change.deadline {
            let what = match (&change.request, &change.stage) {
                (MembershipRequest::Add { member: m, .. }, Stage::CatchingUp) => format!(
                    "controller {} did not catch up with the leader's log in time; it stays a learner \
                     (add it again once it has caught up, or remove it)",
                    m.id
                ),
                _ => "the voter change did not commit in time".to_string(),
            };
            self.fail_change(timed_out(&what));
            return false;
        }
        let MembershipRequest::Add {
            member,
            ack_when_committed,
        } = &change.request
        else {
            return false;
        };
        let ack_when_committed = *ack_when_committed;
        if !matches!(change.stage, Stage::CatchingUp) {
            return false;
        }
        let committed = self.raw.raft.raft_log.committed;
        let caught_up = self
            .raw
            .raft
            .prs()
            .get(raft_id(member.id))
            .is_some_and(|p| p.matched >= committed);
        if !caught_up {
            return false;
        }
        let member = member.clone();
        let after = self.membership().with_voter(member.clone());
        match self.propose_membership(ConfChangeType::AddNode, member.id, &after) {
            Ok((term, index)) => {
                info!(
                    voter = member.id,
                    index, "new controller caught up; promoting it to voter"
                );
                if let Some(c) = self.change.as_mut() {
                    c.stage = Stage::Proposed {
                        term,
                        index,
                        learner: false,
                    };
                    if !ack_when_committed {
                        // AckWhenCommitted=false: the new voter set is in the leader's log; answer now.
                        info!(
                            voter = member.id,
                            index, "promotion appended; answered before it commits (AckWhenCommitted=false)"
                        );
                        c.answer(Ok(()));
                    }
                }
                true
            }
            Err(e) => {
                self.fail_change(e);
                false
            }
        }
    }

    /// Asks the most caught-up other voter to take over (raft's leadership transfer: MsgTimeoutNow once it has
    /// the whole log); its node id.
    fn hand_over(&mut self) -> Option<i32> {
        let self_id = self.raw.raft.id;
        let voters = self.raw.raft.prs().conf().to_conf_state().voters;
        let best = self
            .raw
            .raft
            .prs()
            .iter()
            .filter(|(id, _)| **id != self_id && voters.contains(id))
            .max_by_key(|(_, p)| p.matched)
            .map(|(&id, _)| id)?;
        self.raw.transfer_leader(best);
        node_id(best)
    }

    /// A leader that is no longer a voter (a removal of itself proposed by a previous leader, committed under
    /// it) steps down, between two rounds of `Ready` handling (raft-rs refuses a role change in the middle of
    /// one). A transfer asked for when the removal was applied keeps its MsgTimeoutNow queued; otherwise the
    /// remaining voters elect a leader after an election timeout. As a non-voter it never campaigns again.
    /// Returns whether it stepped down.
    pub(super) fn step_down_if_removed(&mut self) -> bool {
        if !self.is_leader() {
            return false;
        }
        let id = self.raw.raft.id;
        if self.raw.raft.prs().conf().voters().contains(id) {
            return false;
        }
        info!("this controller is no longer a voter; stepping down");
        let term = self.raw.raft.term;
        self.raw.raft.become_follower(term, raft::INVALID_ID);
        true
    }

    /// Answers the change in progress with `err` and forgets it.
    pub(super) fn fail_change(&mut self, err: ControllerError) {
        if let Some(mut change) = self.change.take() {
            warn!(request = ?change.request, error = %err, "membership change failed");
            change.answer(Err(err));
        }
    }

    /// Notes a committed entry for the change in progress: the next step once its proposal commits.
    pub(super) fn note_applied_for_change(&mut self, entry: &Entry) {
        let Some(change) = self.change.as_mut() else {
            return;
        };
        let Stage::Proposed {
            term,
            index,
            learner,
        } = change.stage
        else {
            return;
        };
        if entry.index < index {
            return;
        }
        if entry.index > index || entry.term != term {
            // Overwritten by another leader's entry.
            self.fail_change(ControllerError::NotController);
            return;
        }
        if learner {
            change.stage = Stage::CatchingUp;
            return;
        }
        if let Some(mut change) = self.change.take() {
            info!(request = ?change.request, index, "membership change committed");
            change.answer(Ok(()));
        }
    }

    /// Applies a committed conf change: raft-rs's configuration, the membership the entry carries, the
    /// transport, and the published membership. A leader that is no longer a voter hands over leadership.
    pub(super) fn apply_membership(&mut self, entry: &Entry) {
        let cc = match crate::transport::decode_conf_change_v2(entry.data.as_slice()) {
            Ok(cc) => cc,
            Err(e) => {
                error!(index = entry.index, error = %e, "undecodable conf change; skipped");
                return;
            }
        };
        let membership = match Membership::decode(&entry.context) {
            Ok(m) => m,
            Err(e) => {
                error!(index = entry.index, error = %e, "conf change without a readable membership; skipped");
                return;
            }
        };
        let cs = match self.raw.apply_conf_change(&cc) {
            Ok(cs) => cs,
            Err(e) => {
                error!(index = entry.index, error = %e, "raft refused a committed conf change");
                return;
            }
        };
        if !membership.matches(&cs) {
            error!(
                index = entry.index,
                ?cs,
                ?membership,
                "conf change and its membership disagree"
            );
        }
        info!(index = entry.index, voters = ?membership.voter_ids(),
            learners = ?membership.learners.iter().map(|l| l.id).collect::<Vec<_>>(), "applied a membership change");
        self.raw.mut_store().set_membership(membership.clone());
        self.publish_membership(membership);
        if self.is_leader() && !cs.voters.contains(&self.raw.raft.id) {
            // Only possible when a previous leader proposed this node's removal; `settle` steps down next.
            let to = self.hand_over();
            info!(
                ?to,
                "this controller is no longer a voter; handing over leadership"
            );
        }
    }
}
