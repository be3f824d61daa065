//! Firing a group's timers: member sessions, member-id-required joiners, the join phase and the sync
//! phase.
//!
//! Timers fire in deadline order, each at its own deadline rather than at the time of the `tick`, so a
//! late tick gives the same result as a punctual one (a session that ran out before a rebalance
//! completed is handled before it).

use tracing::{info, warn};

use super::classic_group::Group;
use super::config::GroupConfig;
use super::output::Outbox;

/// Bound on timers fired per group per call. Each firing removes or pushes back the timer it handles,
/// so the loop ends by itself; the bound only guards against a timer misconfigured to zero length.
const MAX_FIRINGS: usize = 10_000;

enum Due {
    Session(String),
    PendingMember(String),
    Join,
    Sync,
}

/// [`Due`] borrowing from the group while the earliest timer is searched.
enum DueRef<'a> {
    Session(&'a str),
    PendingMember(&'a str),
    Join,
    Sync,
}

impl Group {
    /// Fires every timer due at or before `now_ms`, then lets a join phase finish if everyone is in.
    pub(super) fn run_due_timers(&mut self, config: &GroupConfig, now_ms: i64, out: &mut Outbox) {
        for _ in 0..MAX_FIRINGS {
            let Some((at_ms, due)) = self.earliest_due(now_ms) else {
                self.try_complete_join(now_ms, out);
                return;
            };
            match due {
                Due::PendingMember(member_id) => {
                    info!(group = %self.id, member = %member_id, "member id handed out was never used");
                    self.pending_members.remove(&member_id);
                }
                Due::Session(member_id) => self.expire_session(config, &member_id, at_ms, out),
                Due::Join => self.fire_join_timer(config, at_ms, out),
                Due::Sync => self.expire_pending_syncs(config, at_ms, out),
            }
            self.try_complete_join(at_ms, out);
        }
        warn!(group = %self.id, "timer firing limit reached; continuing on the next tick");
    }

    /// The earliest timer due by `now_ms`. Runs on every request to the group, so it scans without
    /// allocating and clones only the id of the timer it returns.
    fn earliest_due(&self, now_ms: i64) -> Option<(i64, Due)> {
        let mut best: Option<(i64, DueRef<'_>)> = None;
        for (id, at) in &self.pending_members {
            keep_earlier(&mut best, now_ms, *at, DueRef::PendingMember(id));
        }
        for member in self.members.values() {
            if let Some(at) = member.session_deadline_ms {
                keep_earlier(&mut best, now_ms, at, DueRef::Session(&member.id));
            }
        }
        if let Some(at) = self.sync_deadline_ms {
            keep_earlier(&mut best, now_ms, at, DueRef::Sync);
        }
        if let Some(timer) = self.join_timer {
            keep_earlier(&mut best, now_ms, timer.deadline_ms(), DueRef::Join);
        }
        best.map(|(at, due)| {
            let due = match due {
                DueRef::Session(id) => Due::Session(id.to_owned()),
                DueRef::PendingMember(id) => Due::PendingMember(id.to_owned()),
                DueRef::Join => Due::Join,
                DueRef::Sync => Due::Sync,
            };
            (at, due)
        })
    }

    fn expire_session(
        &mut self,
        config: &GroupConfig,
        member_id: &str,
        at_ms: i64,
        out: &mut Outbox,
    ) {
        let Some(member) = self.members.get_mut(member_id) else {
            return;
        };
        if member.fails_session_check() {
            info!(group = %self.id, member = member_id, "member session expired");
            self.remove_member_and_rebalance(
                config,
                member_id,
                at_ms,
                out,
                "member session expired",
            );
        } else {
            // Parked in a rebalance: the rebalance bounds it, and its session restarts when answered.
            member.session_deadline_ms = None;
        }
    }
}

/// Keeps `due` in `best` if it is due by `now_ms` and strictly earlier (ties keep the first found).
fn keep_earlier<'a>(best: &mut Option<(i64, DueRef<'a>)>, now_ms: i64, at: i64, due: DueRef<'a>) {
    if at <= now_ms && best.as_ref().is_none_or(|(best_at, _)| at < *best_at) {
        *best = Some((at, due));
    }
}
