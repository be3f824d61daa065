//! One member of a classic group and the requests it has waiting.

use bytes::Bytes;

use super::output::ReplyId;

/// A protocol a member can use, with the member's metadata for it (for "consumer" groups: the
/// subscription). Members list protocols in order of preference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Protocol {
    pub(super) name: String,
    pub(super) metadata: Bytes,
}

/// A request parked until the rebalance step it waits for completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PendingReply {
    pub(super) id: ReplyId,
    /// Version of the request, so the late response is shaped for it.
    pub(super) version: i16,
}

#[derive(Clone, Debug)]
pub(super) struct Member {
    pub(super) id: String,
    /// `group.instance.id` of a static member: it keeps its place across restarts.
    pub(super) instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) session_timeout_ms: i32,
    pub(super) rebalance_timeout_ms: i32,
    pub(super) protocol_type: String,
    pub(super) protocols: Vec<Protocol>,
    /// Assignment handed out by the leader for the current generation.
    pub(super) assignment: Bytes,
    /// A JoinGroup waiting for the rebalance to complete.
    pub(super) pending_join: Option<PendingReply>,
    /// A SyncGroup waiting for the leader's assignment.
    pub(super) pending_sync: Option<PendingReply>,
    /// When the member is dropped unless it shows life; `None` while no expiry is armed (a member
    /// parked in a rebalance is timed by the rebalance, not by its session).
    pub(super) session_deadline_ms: Option<i64>,
    /// Joined without a member id and has not yet got a JoinGroup answer, so it cannot heartbeat; it is
    /// timed by `new_member_join_timeout_ms` even while parked.
    pub(super) is_new: bool,
}

impl Member {
    pub(super) fn is_awaiting_join(&self) -> bool {
        self.pending_join.is_some()
    }

    pub(super) fn is_awaiting_sync(&self) -> bool {
        self.pending_sync.is_some()
    }

    pub(super) fn metadata_for(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| &p.metadata)
    }

    pub(super) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    /// Whether a rejoin carries exactly the protocols this member already has, so nothing changed
    /// that would need a new assignment.
    pub(super) fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's most preferred protocol among `candidates`.
    pub(super) fn vote<'a>(&'a self, candidates: &[&str]) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| candidates.contains(name))
    }

    /// Whether the member expired at its session deadline. A member parked in JoinGroup or SyncGroup
    /// cannot heartbeat, so it is excused, except a brand-new member whose only bound is this timer.
    pub(super) fn fails_session_check(&self) -> bool {
        self.is_new || !(self.is_awaiting_join() || self.is_awaiting_sync())
    }
}
