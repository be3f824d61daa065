//! The topics part of the image: topics by name and by id, each with its partitions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tracing::warn;
use uuid::Uuid;

use crate::records::{PartitionChangeRecord, PartitionRecord, DIRECTORY_UNASSIGNED};

/// Leader id meaning "no leader".
pub const NO_LEADER: i32 = -1;

/// One partition's replication state (every field of Kafka's PartitionRecord but the ids).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionImage {
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas being removed by a reassignment.
    pub removing_replicas: Vec<i32>,
    /// Replicas being added by a reassignment.
    pub adding_replicas: Vec<i32>,
    /// Current leader, or [`NO_LEADER`].
    pub leader: i32,
    /// Kafka's LeaderRecoveryState (0 recovered, 1 recovering).
    pub leader_recovery_state: i8,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change.
    pub partition_epoch: i32,
    /// Log directory of each replica, in `replicas` order (empty if never assigned).
    pub directories: Vec<Uuid>,
    /// Eligible leader replicas (KIP-966), if tracked.
    pub eligible_leader_replicas: Option<Vec<i32>>,
    /// Last known eligible leader replicas, if tracked.
    pub last_known_elr: Option<Vec<i32>>,
}

impl PartitionImage {
    /// Applies a PartitionChangeRecord of this partition (Kafka's `PartitionRegistration.merge`).
    pub fn merge(&mut self, rec: &PartitionChangeRecord) {
        if let Some(isr) = &rec.isr {
            self.isr = isr.clone();
        }
        if let Some(replicas) = &rec.replicas {
            if rec.directories.is_none() && !self.directories.is_empty() {
                // Keep each remaining replica's directory; a new replica's is not known yet.
                self.directories = replicas
                    .iter()
                    .map(|r| {
                        self.replicas
                            .iter()
                            .position(|old| old == r)
                            .and_then(|i| self.directories.get(i).copied())
                            .unwrap_or(DIRECTORY_UNASSIGNED)
                    })
                    .collect();
            }
            self.replicas = replicas.clone();
        }
        if let Some(v) = &rec.removing_replicas {
            self.removing_replicas = v.clone();
        }
        if let Some(v) = &rec.adding_replicas {
            self.adding_replicas = v.clone();
        }
        if let Some(v) = rec.leader_recovery_state {
            self.leader_recovery_state = v;
        }
        if let Some(v) = &rec.directories {
            self.directories = v.clone();
        }
        if let Some(v) = &rec.eligible_leader_replicas {
            self.eligible_leader_replicas = Some(v.clone());
        }
        if let Some(v) = &rec.last_known_elr {
            self.last_known_elr = Some(v.clone());
        }
        // As Kafka's `PartitionRegistration.merge`: a record that names a leader bumps the leader epoch even
        // when the leader stays, which is how a reassignment that drops replicas fences their old epoch.
        if let Some(leader) = rec.leader {
            self.leader = leader;
            self.leader_epoch = self.leader_epoch.saturating_add(1);
        }
        self.partition_epoch = self.partition_epoch.saturating_add(1);
    }

    /// Whether a reassignment is in progress (Kafka's `isReassignmentInProgress`).
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The PartitionRecord that recreates this partition.
    pub fn to_record(&self, topic_id: Uuid, partition: i32) -> PartitionRecord {
        PartitionRecord {
            topic_id,
            partition,
            replicas: self.replicas.clone(),
            isr: self.isr.clone(),
            removing_replicas: self.removing_replicas.clone(),
            adding_replicas: self.adding_replicas.clone(),
            leader: self.leader,
            leader_recovery_state: self.leader_recovery_state,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            directories: self.directories.clone(),
            eligible_leader_replicas: self.eligible_leader_replicas.clone(),
            last_known_elr: self.last_known_elr.clone(),
        }
    }
}

/// One topic with all of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub id: Uuid,
    /// Partitions by index (always 0..n once the creating batch is applied).
    pub partitions: BTreeMap<i32, PartitionImage>,
}

impl TopicImage {
    /// Number of partitions.
    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    /// Replication factor, taken from partition 0 (all partitions share it when created by us).
    pub fn replication_factor(&self) -> i16 {
        self.partitions
            .values()
            .next()
            .map(|p| i16::try_from(p.replicas.len()).unwrap_or(i16::MAX))
            .unwrap_or(0)
    }
}

/// Topics indexed both ways. Each topic sits behind its own `Arc`, so changing one partition
/// copies one topic and the id map's pointers, never the other topics.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicsImage {
    pub(crate) by_name: Arc<BTreeMap<String, Uuid>>,
    pub(crate) by_id: Arc<HashMap<Uuid, Arc<TopicImage>>>,
}

impl TopicsImage {
    pub(crate) fn add_topic(&mut self, name: &str, id: Uuid) {
        if self.by_name.contains_key(name) || self.by_id.contains_key(&id) {
            warn!(topic = name, %id, "skipping TopicRecord for a name or id already in use");
            return;
        }
        Arc::make_mut(&mut self.by_name).insert(name.to_owned(), id);
        Arc::make_mut(&mut self.by_id).insert(
            id,
            Arc::new(TopicImage {
                name: name.to_owned(),
                id,
                partitions: BTreeMap::new(),
            }),
        );
    }

    /// Removes the topic and returns its name so the caller can drop its configs.
    pub(crate) fn remove_topic(&mut self, id: Uuid) -> Option<String> {
        let topic = Arc::make_mut(&mut self.by_id).remove(&id);
        match topic {
            Some(topic) => {
                Arc::make_mut(&mut self.by_name).remove(&topic.name);
                Some(topic.name.clone())
            }
            None => {
                warn!(%id, "skipping RemoveTopicRecord for an unknown topic id");
                None
            }
        }
    }

    fn topic_mut(&mut self, id: Uuid) -> Option<&mut TopicImage> {
        Arc::make_mut(&mut self.by_id)
            .get_mut(&id)
            .map(Arc::make_mut)
    }

    pub(crate) fn set_partition(&mut self, rec: &PartitionRecord) {
        let Some(topic) = self.topic_mut(rec.topic_id) else {
            warn!(topic_id = %rec.topic_id, "skipping PartitionRecord for an unknown topic id");
            return;
        };
        topic.partitions.insert(
            rec.partition,
            PartitionImage {
                replicas: rec.replicas.clone(),
                isr: rec.isr.clone(),
                removing_replicas: rec.removing_replicas.clone(),
                adding_replicas: rec.adding_replicas.clone(),
                leader: rec.leader,
                leader_recovery_state: rec.leader_recovery_state,
                leader_epoch: rec.leader_epoch,
                partition_epoch: rec.partition_epoch,
                directories: rec.directories.clone(),
                eligible_leader_replicas: rec.eligible_leader_replicas.clone(),
                last_known_elr: rec.last_known_elr.clone(),
            },
        );
    }

    pub(crate) fn change_partition(&mut self, rec: &PartitionChangeRecord) {
        let Some(partition) = self
            .topic_mut(rec.topic_id)
            .and_then(|t| t.partitions.get_mut(&rec.partition))
        else {
            warn!(topic_id = %rec.topic_id, partition = rec.partition,
                "skipping PartitionChangeRecord for an unknown partition");
            return;
        };
        partition.merge(rec);
    }
}
