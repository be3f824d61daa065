//! Creating `__consumer_offsets`, as Kafka does: on demand (FindCoordinator, and one attempt at start), with
//! exactly `offsets.topic.replication.factor` replicas, and only once that many brokers are alive. Until then
//! FindCoordinator answers COORDINATOR_NOT_AVAILABLE and clients retry; a smaller replication factor is never
//! substituted (the setting would otherwise be accepted and ignored).
//!
//! Several brokers may try at once: the active controller creates the topic once and answers the others
//! TOPIC_ALREADY_EXISTS, which is success here. Within one broker, one attempt runs at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kraftwerk_controller::{ControllerError, CreateTopicSpec};

use crate::quorum::cluster::ClusterHandle;

use super::OFFSETS_TOPIC;

/// What a creation attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The topic exists with this many partitions.
    Exists(i32),
    /// Fewer live brokers than the replication factor: not created (yet).
    TooFewBrokers { live: usize, needed: i16 },
    /// A creation is under way (or was just asked for).
    Creating,
}

/// Whether `__consumer_offsets` can be created from `image` now, or exists.
pub fn readiness(
    image: &kraftwerk_controller::MetadataImage,
    replication_factor: i16,
) -> Readiness {
    if let Some(t) = image.topic(OFFSETS_TOPIC) {
        return Readiness::Exists(t.partition_count());
    }
    let live = image.unfenced_broker_ids().len();
    if live < replication_factor.max(1) as usize {
        return Readiness::TooFewBrokers {
            live,
            needed: replication_factor,
        };
    }
    Readiness::Creating
}

/// Creates `__consumer_offsets` when asked and possible.
pub struct OffsetsTopic {
    cluster: ClusterHandle,
    num_partitions: i32,
    replication_factor: i16,
    creating: AtomicBool,
}

impl OffsetsTopic {
    pub fn new(cluster: ClusterHandle, num_partitions: i32, replication_factor: i16) -> Self {
        Self {
            cluster,
            num_partitions,
            replication_factor,
            creating: AtomicBool::new(false),
        }
    }

    /// The topic's state; starts creating it in the background when it is missing and enough brokers are
    /// live (at most one attempt at a time from this broker).
    pub fn ensure(self: &Arc<Self>) -> Readiness {
        let state = readiness(&self.cluster.image(), self.replication_factor);
        if state == Readiness::Creating && !self.creating.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            tokio::spawn(async move {
                this.create().await;
                this.creating.store(false, Ordering::Release);
            });
        }
        state
    }

    async fn create(&self) {
        let spec =
            CreateTopicSpec::new(OFFSETS_TOPIC, self.num_partitions, self.replication_factor)
                .with_config("cleanup.policy", "compact")
                .with_config("segment.bytes", "104857600")
                .with_config("compression.type", "producer");
        let result = self.cluster.create_topics(vec![spec], false).await;
        match result.into_iter().next().map(|r| r.result) {
            Some(Ok(created)) => tracing::info!(
                partitions = created.num_partitions,
                replication_factor = self.replication_factor,
                "created {OFFSETS_TOPIC}"
            ),
            Some(Err(ControllerError::TopicAlreadyExists(_))) => {
                tracing::debug!("{OFFSETS_TOPIC} was created by another broker")
            }
            Some(Err(e)) => tracing::warn!(error = %e, "cannot create {OFFSETS_TOPIC} yet"),
            None => tracing::warn!("no answer from the controller creating {OFFSETS_TOPIC}"),
        }
    }
}
