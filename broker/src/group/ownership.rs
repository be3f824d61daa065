//! Which `__consumer_offsets` partitions this coordinator holds, and in which leader epoch.
//!
//! A broker coordinates the groups of the partitions it leads (Kafka's rule, so FindCoordinator can name the
//! partition leader). Leadership moves, so the coordinator holds a partition only between
//! [`GroupCoordinator::begin_load`] (this broker became its leader) and [`GroupCoordinator::release`] (it
//! stopped being leader). While the partition's records are being read back the partition is *loading*:
//! its groups answer COORDINATOR_LOAD_IN_PROGRESS (the client retries the same broker); groups of partitions
//! not held answer NOT_COORDINATOR (the client looks the coordinator up again), as Kafka's
//! `validateGroupStatus` does.

use std::collections::HashMap;

use kafka_protocol::ResponseError;
use tracing::info;

use super::coordinator::GroupCoordinator;
use super::output::Output;
use super::records::{partition_for, GroupRecord};

/// How far the coordinator has taken over one `__consumer_offsets` partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// Led by this broker in `leader_epoch`; its records are being read back.
    Loading { leader_epoch: i32 },
    /// Led by this broker in `leader_epoch`, groups loaded: its requests are served.
    Active { leader_epoch: i32 },
}

impl Holding {
    pub fn leader_epoch(self) -> i32 {
        match self {
            Holding::Loading { leader_epoch } | Holding::Active { leader_epoch } => leader_epoch,
        }
    }
}

/// The partitions held, and the partition count of `__consumer_offsets` (0 until the topic exists).
#[derive(Debug, Default)]
pub(super) struct Ownership {
    pub(super) num_partitions: i32,
    pub(super) partitions: HashMap<i32, Holding>,
}

impl GroupCoordinator {
    /// Records the partition count of `__consumer_offsets`, which decides the partition of every group. Set
    /// once the topic exists; a later, different count is ignored (Kafka never changes it either: the hash of
    /// every group would move).
    pub fn set_offsets_partitions(&mut self, num_partitions: i32) {
        if self.ownership.num_partitions == 0 && num_partitions > 0 {
            self.ownership.num_partitions = num_partitions;
        }
    }

    pub fn offsets_partitions(&self) -> i32 {
        self.ownership.num_partitions
    }

    /// What is held of `partition`.
    pub fn holding(&self, partition: i32) -> Option<Holding> {
        self.ownership.partitions.get(&partition).copied()
    }

    /// Partitions held, loading or active.
    pub fn held_partitions(&self) -> Vec<(i32, Holding)> {
        let mut held: Vec<(i32, Holding)> = self
            .ownership
            .partitions
            .iter()
            .map(|(p, h)| (*p, *h))
            .collect();
        held.sort_unstable_by_key(|(p, _)| *p);
        held
    }

    /// This broker became leader of `partition` in `leader_epoch`: its groups answer
    /// COORDINATOR_LOAD_IN_PROGRESS until [`Self::complete_load`]. Whatever was held of the partition from an
    /// earlier epoch is dropped first (its parked requests are answered NOT_COORDINATOR).
    pub fn begin_load(&mut self, partition: i32, leader_epoch: i32) -> Vec<Output> {
        let out = if self.ownership.partitions.contains_key(&partition) {
            self.release(partition)
        } else {
            Vec::new()
        };
        self.ownership
            .partitions
            .insert(partition, Holding::Loading { leader_epoch });
        out
    }

    /// The records of `partition` read back for the leadership of `leader_epoch`: its groups are rebuilt and
    /// served from now on. `None` (and nothing changes) when the partition is no longer loading in that epoch
    /// (leadership moved while it was read): the records are stale. Records of groups that belong to another
    /// partition are ignored.
    pub fn complete_load(
        &mut self,
        partition: i32,
        leader_epoch: i32,
        records: Vec<GroupRecord>,
        now_ms: i64,
    ) -> Option<usize> {
        if self.holding(partition) != Some(Holding::Loading { leader_epoch }) {
            return None;
        }
        let n = self.ownership.num_partitions;
        let records = records
            .into_iter()
            .filter(|r| partition_for(r.group_id(), n) == partition);
        let groups = self.load(records, now_ms);
        self.ownership
            .partitions
            .insert(partition, Holding::Active { leader_epoch });
        info!(
            partition,
            leader_epoch, groups, "coordinating __consumer_offsets partition"
        );
        Some(groups)
    }

    /// This broker no longer leads `partition`: its groups are dropped, their parked requests answered
    /// NOT_COORDINATOR.
    pub fn release(&mut self, partition: i32) -> Vec<Output> {
        if self.ownership.partitions.remove(&partition).is_none() {
            return Vec::new();
        }
        self.unload_partition(partition, self.ownership.num_partitions)
    }

    /// Coordinates every partition at once with nothing to load (a coordinator without a log, in tests).
    #[cfg(test)]
    pub fn hold_all_partitions(&mut self, num_partitions: i32) {
        self.set_offsets_partitions(num_partitions);
        for p in 0..num_partitions {
            self.ownership
                .partitions
                .insert(p, Holding::Active { leader_epoch: 0 });
        }
    }

    /// Whether this coordinator serves `group_id` now: COORDINATOR_NOT_AVAILABLE before `__consumer_offsets`
    /// exists, NOT_COORDINATOR if another broker leads its partition, COORDINATOR_LOAD_IN_PROGRESS while its
    /// partition is being read back.
    pub(super) fn check_coordinator(&self, group_id: &str) -> Result<(), ResponseError> {
        let n = self.ownership.num_partitions;
        if n <= 0 {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        match self.holding(partition_for(group_id, n)) {
            Some(Holding::Active { .. }) => Ok(()),
            Some(Holding::Loading { .. }) => Err(ResponseError::CoordinatorLoadInProgress),
            None => Err(ResponseError::NotCoordinator),
        }
    }

    /// Whether any held partition is still loading (ListGroups cannot list all groups then).
    pub(super) fn any_loading(&self) -> bool {
        self.ownership
            .partitions
            .values()
            .any(|h| matches!(h, Holding::Loading { .. }))
    }
}
