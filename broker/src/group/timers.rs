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

    fn earliest_due(&self, now_ms: i64) -> Option<(i64, Due)> {
        let pending = self
            .pending_members
            .iter()
            .map(|(id, at)| (*at, Due::PendingMember(id.clone())));
        let sessions = self.members.values().filter_map(|m| {
            m.session_deadline_ms
                .map(|at| (at, Due::Session(m.id.clone())))
        });
        let sync = self.sync_deadline_ms.map(|at| (at, Due::Sync));
        let join = self.join_timer.map(|t| (t.deadline_ms(), Due::Join));
        pending
            .chain(sessions)
            .chain(sync)
            .chain(join)
            .filter(|(at, _)| *at <= now_ms)
            .min_by_key(|(at, _)| *at)
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
