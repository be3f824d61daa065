//! The topics part of the image: topics by name and by id, each with its partitions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tracing::warn;
use uuid::Uuid;

use crate::records::{PartitionChangeRecord, PartitionRecord};

/// Leader id meaning "no leader".
pub const NO_LEADER: i32 = -1;

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Current leader, or [`NO_LEADER`].
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change.
    pub partition_epoch: i32,
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
                leader: rec.leader,
                leader_epoch: rec.leader_epoch,
                partition_epoch: rec.partition_epoch,
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
        if let Some(isr) = &rec.isr {
            partition.isr = isr.clone();
        }
        if let Some(replicas) = &rec.replicas {
            partition.replicas = replicas.clone();
        }
        if let Some(leader) = rec.leader {
            if leader != partition.leader {
                partition.leader = leader;
                partition.leader_epoch = partition.leader_epoch.saturating_add(1);
            }
        }
        partition.partition_epoch = partition.partition_epoch.saturating_add(1);
    }
}
