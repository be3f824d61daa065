//! The coordinator object: owns every group this broker coordinates and drives their timers. The
//! request handlers are spread over the sibling modules, one per API family.

use std::collections::HashMap;

use kafka_protocol::ResponseError;

use super::classic_group::Group;
use super::config::GroupConfig;
use super::output::{Outbox, Output};
use super::ownership::Ownership;

/// Classic group coordinator for the groups of the `__consumer_offsets` partitions this broker leads.
/// It starts holding none of them (see [`super::ownership`]).
///
/// A pure state machine: no I/O, no clock. Each call gets the current time and returns the outputs the
/// caller must carry out (see [`Output`]); JoinGroup and SyncGroup replies may come out of later calls.
/// Call [`GroupCoordinator::tick`] by [`GroupCoordinator::next_deadline_ms`] so timeouts fire.
#[derive(Debug)]
pub struct GroupCoordinator {
    pub(super) config: GroupConfig,
    pub(super) groups: HashMap<String, Group>,
    /// Next time [`GroupCoordinator::tick`] scans for expired offsets and empty groups.
    pub(super) next_retention_check_ms: Option<i64>,
    /// The `__consumer_offsets` partitions held (see [`super::ownership`]); groups of other partitions are
    /// refused.
    pub(super) ownership: Ownership,
}

/// Who sent a JoinGroup; recorded for DescribeGroups and used to build the member id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// `client.id` from the request header.
    pub client_id: String,
    /// Client address as Kafka prints it, e.g. `/10.0.0.7`.
    pub client_host: String,
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: HashMap::new(),
            next_retention_check_ms: None,
            ownership: Ownership::default(),
        }
    }

    /// The group of a request from a current member: UNKNOWN_MEMBER_ID when the group or member is unknown,
    /// FENCED_INSTANCE_ID when `instance_id` is now held by a newer member id (a zombie instance).
    pub(super) fn member_group_mut(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<&mut Group, ResponseError> {
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        group.validate_member(instance_id, member_id)?;
        Ok(group)
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Ids of the groups held, in no particular order.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Fires every timeout due by `now_ms`: expired sessions, ended join/sync phases, and (every
    /// `offsets_retention_check_interval_ms`) offset retention.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        let mut out = Outbox::default();
        // Only groups with a timer due need work; the scan itself does not allocate.
        let due: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, group)| group.next_deadline_ms().is_some_and(|at| at <= now_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &due {
            self.settle_group(id, now_ms, &mut out);
        }
        let interval_ms = self.config.offsets_retention_check_interval_ms.max(1);
        match self.next_retention_check_ms {
            // The first scan comes one interval after the first tick, not at start-up.
            None => self.next_retention_check_ms = Some(now_ms.saturating_add(interval_ms)),
            Some(at) if at <= now_ms => {
                self.expire_offsets(now_ms, &mut out);
                self.next_retention_check_ms = Some(now_ms.saturating_add(interval_ms));
            }
            Some(_) => {}
        }
        out.into_outputs()
    }

    /// The earliest time [`GroupCoordinator::tick`] has work to do.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.groups
            .values()
            .filter_map(Group::next_deadline_ms)
            .chain(self.next_retention_check_ms)
            .min()
    }

    /// Brings one group up to date: fires its due timers, completes a join phase everyone has joined,
    /// and forgets the group if it was never more than an attempt (no generation, members, joiners or
    /// offsets; nothing was persisted for it).
    pub(super) fn settle_group(&mut self, group_id: &str, now_ms: i64, out: &mut Outbox) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.run_due_timers(&self.config, now_ms, out);
        if group.is_unused() && group.generation == 0 && !group.keep_until_retention_check {
            self.groups.remove(group_id);
        }
    }
}
