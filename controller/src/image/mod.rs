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

use crate::acl::AclBinding;
use crate::records::{ConfigResource, MetadataRecord, ScramCredentialRecord, ScramMechanism};
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
    /// ACLs by id (AccessControlEntryRecords not yet removed).
    acls: Arc<BTreeMap<Uuid, AclBinding>>,
    next_producer_id: i64,
    /// Broker id and epoch of the last ProducerIdsRecord, kept so a snapshot rewrites it exactly.
    producer_ids_owner: Option<(i32, i64)>,
    /// SCRAM credentials by user and mechanism (UserScramCredentialRecord).
    scram: Arc<BTreeMap<(String, ScramMechanism), ScramCredentialRecord>>,
    last_applied_offset: i64,
}

/// Images are equal when they describe the same metadata at the same offset (shared or not).
impl PartialEq for MetadataImage {
    fn eq(&self, other: &Self) -> bool {
        self.cluster_id == other.cluster_id
            && self.topics.by_name == other.topics.by_name
            && self.topics.by_id == other.topics.by_id
            && self.configs.map == other.configs.map
            && self.brokers == other.brokers
            && self.features == other.features
            && self.acls == other.acls
            && self.next_producer_id == other.next_producer_id
            && self.producer_ids_owner == other.producer_ids_owner
            && self.scram == other.scram
            && self.last_applied_offset == other.last_applied_offset
    }
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
            acls: Arc::default(),
            next_producer_id: 0,
            producer_ids_owner: None,
            scram: Arc::default(),
            last_applied_offset: -1,
        }
    }

    /// The cluster id this metadata belongs to.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Offset in `__cluster_metadata` of the last record applied (-1 before any): the last
    /// offset of the last batch applied.
    pub fn last_applied_offset(&self) -> i64 {
        self.last_applied_offset
    }

    /// The offset the next batch of the metadata log starts at. A batch takes one offset per
    /// record (a control batch one), as in Kafka, so this is also the broker epoch a
    /// registration proposed now gets.
    pub fn next_offset(&self) -> i64 {
        self.last_applied_offset.saturating_add(1)
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

    /// Every ACL by id. The map is shared between images until an ACL changes, so a reader
    /// can tell whether the ACLs changed with `Arc::ptr_eq` (the authorizer rebuilds its index
    /// only then).
    pub fn acls(&self) -> &Arc<BTreeMap<Uuid, AclBinding>> {
        &self.acls
    }

    /// The image after the batch at `offset` (all the records of one operation), which takes
    /// one offset per record (one if empty: a control batch).
    pub fn apply(&self, offset: i64, records: &[MetadataRecord]) -> MetadataImage {
        self.apply_span(offset, records.len().max(1), records)
    }

    /// The image after a batch at `base_offset` that takes `span` offsets, of which `records`
    /// are the ones to replay (a batch with undecodable records is skipped but still counts).
    pub fn apply_span(
        &self,
        base_offset: i64,
        span: usize,
        records: &[MetadataRecord],
    ) -> MetadataImage {
        let mut next = self.clone();
        for record in records {
            next.replay(record);
        }
        let span = i64::try_from(span.max(1)).unwrap_or(i64::MAX);
        let last = base_offset.saturating_add(span - 1);
        next.last_applied_offset = next.last_applied_offset.max(last);
        next
    }

    /// The image a snapshot ending at `last_contained_offset` describes: its records replayed
    /// onto an empty image.
    pub fn from_snapshot(
        cluster_id: impl Into<String>,
        last_contained_offset: i64,
        records: &[MetadataRecord],
    ) -> MetadataImage {
        let mut image = Self::empty(cluster_id);
        for record in records {
            image.replay(record);
        }
        image.last_applied_offset = last_contained_offset;
        image
    }

    /// The records that rebuild this image exactly on an empty one (what a snapshot holds):
    /// features (`metadata.version` first, as Kafka requires), brokers with their fencing
    /// state, topics with their partitions, configs, ACLs, then the producer id block.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        self.records().collect()
    }

    /// [`Self::to_records`] one at a time, without a list of them all (a snapshot of 1,000,000 partitions
    /// encodes them as they come).
    pub fn records(&self) -> impl Iterator<Item = MetadataRecord> + '_ {
        let mv = "metadata.version";
        let features = self
            .features
            .iter()
            .filter(move |(name, _)| *name == mv)
            .chain(self.features.iter().filter(move |(name, _)| *name != mv))
            .map(|(name, level)| MetadataRecord::FeatureLevel {
                name: name.clone(),
                level: *level,
            });
        let brokers = self
            .brokers
            .values()
            .map(|broker| MetadataRecord::RegisterBroker(broker.to_record()));
        let topics = self.topics().flat_map(|topic| {
            std::iter::once(MetadataRecord::Topic {
                name: topic.name.clone(),
                id: topic.id,
            })
            .chain(topic.partitions.iter().map(|(&index, partition)| {
                MetadataRecord::Partition(partition.to_record(topic.id, index))
            }))
        });
        let configs = self.configs.map.iter().flat_map(|(resource, entries)| {
            entries.iter().map(move |(name, value)| {
                MetadataRecord::Config(crate::records::ConfigRecord {
                    resource: resource.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                })
            })
        });
        let acls = self
            .acls
            .iter()
            .map(|(id, acl)| MetadataRecord::AccessControlEntry {
                id: *id,
                acl: acl.clone(),
            });
        let producer_ids =
            (self.next_producer_id != 0 || self.producer_ids_owner.is_some()).then(|| {
                let (broker_id, broker_epoch) = self.producer_ids_owner.unwrap_or((-1, -1));
                MetadataRecord::ProducerIds {
                    broker_id,
                    broker_epoch,
                    next_producer_id: self.next_producer_id,
                }
            });
        let scram = self
            .scram
            .values()
            .map(|credential| MetadataRecord::UserScramCredential(credential.clone()));
        features
            .chain(brokers)
            .chain(topics)
            .chain(configs)
            .chain(acls)
            .chain(producer_ids)
            .chain(scram)
    }

    /// A user's SCRAM credential for one mechanism.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<&ScramCredentialRecord> {
        self.scram.get(&(user.to_string(), mechanism))
    }

    /// Every SCRAM credential, ordered by user then mechanism.
    pub fn scram_credentials(&self) -> impl Iterator<Item = &ScramCredentialRecord> {
        self.scram.values()
    }

    /// The first producer id not yet handed out (idempotent producers' ids are unique cluster-wide).
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    fn replay(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::ProducerIds {
                broker_id,
                broker_epoch,
                next_producer_id,
            } => {
                if *next_producer_id >= self.next_producer_id {
                    self.next_producer_id = *next_producer_id;
                    self.producer_ids_owner = Some((*broker_id, *broker_epoch));
                }
            }
            MetadataRecord::RegisterBroker(rec) => {
                Arc::make_mut(&mut self.brokers)
                    .insert(rec.broker_id, BrokerImage::registered(rec));
            }
            MetadataRecord::UnregisterBroker { broker_id, .. } => {
                if self.brokers.contains_key(broker_id) {
                    Arc::make_mut(&mut self.brokers).remove(broker_id);
                    self.configs
                        .remove_resource(&ConfigResource::broker(broker_id.to_string()));
                }
            }
            MetadataRecord::FenceBroker { broker_id, .. } => self.set_fenced(*broker_id, true),
            MetadataRecord::UnfenceBroker { broker_id, .. } => self.set_fenced(*broker_id, false),
            MetadataRecord::Topic { name, id } => self.topics.add_topic(name, *id),
            MetadataRecord::Partition(rec) => self.topics.set_partition(rec),
            MetadataRecord::PartitionChange(rec) => self.topics.change_partition(rec),
            MetadataRecord::RemoveTopic { id } => {
                if let Some(name) = self.topics.remove_topic(*id) {
                    self.configs.remove_resource(&ConfigResource::topic(name));
                }
            }
            MetadataRecord::Config(rec) => self.configs.apply(rec),
            MetadataRecord::AccessControlEntry { id, acl } => {
                Arc::make_mut(&mut self.acls).insert(*id, acl.clone());
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                if self.acls.contains_key(id) {
                    Arc::make_mut(&mut self.acls).remove(id);
                } else {
                    tracing::warn!(%id, "skipping the removal of an unknown ACL");
                }
            }
            MetadataRecord::UserScramCredential(rec) => {
                Arc::make_mut(&mut self.scram)
                    .insert((rec.name.clone(), rec.mechanism), rec.clone());
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                if Arc::make_mut(&mut self.scram)
                    .remove(&(name.clone(), *mechanism))
                    .is_none()
                {
                    tracing::warn!(user = %name, mechanism = mechanism.name(), "skipping removal of an unknown SCRAM credential");
                }
            }
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
pub(crate) mod tests;
