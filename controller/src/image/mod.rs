//! The immutable metadata image: what the cluster looks like after some prefix of the metadata
//! log.
//!
//! Images are values. `apply` returns a new image and leaves `self` alone; the parts that a batch
//! does not touch stay shared (`Arc`) between the two, so publishing an image per committed batch
//! is cheap and readers never need a lock. Replay never fails: a record that does not fit (say a
//! partition of an unknown topic) is skipped with a warning, identically on every replica.

mod brokers;
mod configs;
mod topics;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

pub use brokers::BrokerImage;
pub use configs::ConfigsMap;
pub use topics::{PartitionImage, TopicImage, NO_LEADER};

use crate::records::{ConfigResource, MetadataRecord};
use configs::ConfigsImage;
use topics::TopicsImage;

/// The cluster metadata at one offset of `__cluster_metadata`.
#[derive(Debug, Clone)]
pub struct MetadataImage {
    cluster_id: Arc<str>,
    topics: TopicsImage,
    configs: ConfigsImage,
    brokers: Arc<BTreeMap<i32, BrokerImage>>,
    features: Arc<BTreeMap<String, i16>>,
    next_producer_id: i64,
    last_applied_offset: i64,
}

impl MetadataImage {
    /// The image before any record: no topics, no brokers, offset -1.
    pub fn empty(cluster_id: impl Into<String>) -> Self {
        Self {
            cluster_id: Arc::from(cluster_id.into()),
            topics: TopicsImage::default(),
            configs: ConfigsImage::default(),
            brokers: Arc::default(),
            features: Arc::default(),
            next_producer_id: 0,
            last_applied_offset: -1,
        }
    }

    /// The cluster id this metadata belongs to.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Offset in `__cluster_metadata` of the last batch applied (-1 before any).
    pub fn last_applied_offset(&self) -> i64 {
        self.last_applied_offset
    }

    /// Topic ids by name, in name order.
    pub fn topics_by_name(&self) -> &BTreeMap<String, Uuid> {
        &self.topics.by_name
    }

    /// Topics by id.
    pub fn topics_by_id(&self) -> &HashMap<Uuid, Arc<TopicImage>> {
        &self.topics.by_id
    }

    /// All topics in name order.
    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topics
            .by_name
            .values()
            .filter_map(|id| self.topics.by_id.get(id))
    }

    /// The named topic.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics
            .by_name
            .get(name)
            .and_then(|id| self.topics.by_id.get(id))
    }

    /// The topic with this id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topics.by_id.get(id)
    }

    /// Every dynamic config override.
    pub fn configs(&self) -> &ConfigsMap {
        &self.configs.map
    }

    /// The dynamic overrides of one resource.
    pub fn resource_configs(&self, resource: &ConfigResource) -> Option<&BTreeMap<String, String>> {
        self.configs.map.get(resource)
    }

    /// Registered brokers by id.
    pub fn brokers(&self) -> &BTreeMap<i32, BrokerImage> {
        &self.brokers
    }

    /// One registered broker.
    pub fn broker(&self, id: i32) -> Option<&BrokerImage> {
        self.brokers.get(&id)
    }

    /// Ids of registered, unfenced brokers in ascending order: the candidates for new replicas.
    pub fn unfenced_broker_ids(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.id)
            .collect()
    }

    /// Whether `id` is registered and unfenced.
    pub fn is_broker_active(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// Finalized feature levels.
    pub fn features(&self) -> &BTreeMap<String, i16> {
        &self.features
    }

    /// The image after the batch at `offset` (all the records of one operation).
    pub fn apply(&self, offset: i64, records: &[MetadataRecord]) -> MetadataImage {
        let mut next = self.clone();
        for record in records {
            next.replay(offset, record);
        }
        next.last_applied_offset = next.last_applied_offset.max(offset);
        next
    }

    /// The first producer id not yet handed out (idempotent producers' ids are unique cluster-wide).
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    fn replay(&mut self, offset: i64, record: &MetadataRecord) {
        match record {
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => self.next_producer_id = self.next_producer_id.max(*next_producer_id),
            MetadataRecord::RegisterBroker(rec) => {
                Arc::make_mut(&mut self.brokers)
                    .insert(rec.broker_id, BrokerImage::registered(rec, offset));
            }
            MetadataRecord::UnregisterBroker { broker_id } => {
                if self.brokers.contains_key(broker_id) {
                    Arc::make_mut(&mut self.brokers).remove(broker_id);
                    self.configs
                        .remove_resource(&ConfigResource::broker(broker_id.to_string()));
                }
            }
            MetadataRecord::FenceBroker { broker_id } => self.set_fenced(*broker_id, true),
            MetadataRecord::UnfenceBroker { broker_id } => self.set_fenced(*broker_id, false),
            MetadataRecord::Topic { name, id } => self.topics.add_topic(name, *id),
            MetadataRecord::Partition(rec) => self.topics.set_partition(rec),
            MetadataRecord::PartitionChange(rec) => self.topics.change_partition(rec),
            MetadataRecord::RemoveTopic { id } => {
                if let Some(name) = self.topics.remove_topic(*id) {
                    self.configs.remove_resource(&ConfigResource::topic(name));
                }
            }
            MetadataRecord::Config(rec) => self.configs.apply(rec),
            MetadataRecord::FeatureLevel { name, level } => {
                let features = Arc::make_mut(&mut self.features);
                if *level == 0 {
                    features.remove(name);
                } else {
                    features.insert(name.clone(), *level);
                }
            }
        }
    }

    fn set_fenced(&mut self, broker_id: i32, fenced: bool) {
        match Arc::make_mut(&mut self.brokers).get_mut(&broker_id) {
            Some(broker) => broker.fenced = fenced,
            None => tracing::warn!(
                broker_id,
                "skipping fence change for an unregistered broker"
            ),
        }
    }
}

#[cfg(test)]
mod tests;
