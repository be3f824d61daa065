//! AlterPartitionReassignments and ListPartitionReassignments, after Kafka's
//! `ReplicationControlManager.alterPartitionReassignments` and `PartitionReassignmentReplicas`.
//!
//! A reassignment to a target replica list is written as one PartitionChangeRecord: the replicas become the
//! target followed by the current replicas that are not in it (still serving while the new ones catch up),
//! with `adding_replicas` (target minus current) and `removing_replicas` (current minus target). The brokers
//! of the new replicas create them and fetch from the leader; when the leader's AlterPartition brings every
//! target replica into the ISR, [`super::partitions::alter_partition`] completes the reassignment in that same
//! change (replicas = target, the removed ones out of the ISR, a new leader if the leader was removed). A
//! reassignment the ISR already allows (a reorder, or removals whose remaining replicas are all in sync)
//! completes at once. `None` replicas cancel: the adding replicas leave, the removing ones stay.

use std::collections::BTreeSet;

use super::election::{Election, ElectionPolicy};
use super::partition_change::PartitionChange;
use super::OpOutput;
use crate::api::{OngoingReassignment, PartitionResult, ReassignmentQuery, ReassignmentSpec};
use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionImage};
use crate::records::{MetadataRecord, PartitionChangeRecord};

/// The topic config (and cluster-wide default) that allows electing an out-of-sync leader.
/// AlterPartitionReassignments: one result per partition, in request order. Every partition is checked
/// against `image` alone and the accepted ones are written together (Kafka's `atomicOf`). With
/// `allow_replication_factor_change` false (KIP-860, request v1), a target whose size differs from the
/// partition's replication factor is refused with INVALID_REPLICATION_FACTOR.
pub(crate) fn alter_partition_reassignments(
    image: &MetadataImage,
    policy: &ElectionPolicy,
    specs: &[ReassignmentSpec],
    allow_replication_factor_change: bool,
) -> OpOutput<Vec<PartitionResult>> {
    let mut records = Vec::new();
    let mut response = Vec::with_capacity(specs.len());
    for spec in specs {
        let result = reassign(image, policy, spec, allow_replication_factor_change).map(|record| {
            if let Some(record) = record {
                records.push(MetadataRecord::PartitionChange(record));
            }
        });
        if let Err(e) = &result {
            tracing::info!(topic = %spec.topic, partition = spec.partition, error = %e,
                "unable to alter the partition reassignment");
        }
        response.push(PartitionResult {
            topic: spec.topic.clone(),
            partition: spec.partition,
            result,
        });
    }
    OpOutput { records, response }
}

/// The record for one partition (`None` if nothing changes), or why it is refused.
fn reassign(
    image: &MetadataImage,
    policy: &ElectionPolicy,
    spec: &ReassignmentSpec,
    allow_replication_factor_change: bool,
) -> Result<Option<PartitionChangeRecord>, ControllerError> {
    let topic = image.topic(&spec.topic).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!(
            "Unable to find a topic named {}.",
            spec.topic
        ))
    })?;
    let part = topic.partitions.get(&spec.partition).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!(
            "Unable to find partition {}:{}.",
            spec.topic, spec.partition
        ))
    })?;
    match &spec.replicas {
        None => cancel(image, policy, &spec.topic, topic.id, spec.partition, part),
        Some(target) => {
            validate_target(image, target)?;
            if !allow_replication_factor_change {
                let original = original_replicas(part).len();
                if target.len() != original {
                    return Err(ControllerError::InvalidReplicationFactor(format!(
                        "The replication factor is changed from {original} to {} but \
                         allowReplicationFactorChange is false.",
                        target.len()
                    )));
                }
            }
            Ok(change(image, topic.id, spec.partition, part, target))
        }
    }
}

/// Kafka's `validateManualPartitionAssignment`: non-empty, registered brokers, no duplicates.
fn validate_target(image: &MetadataImage, target: &[i32]) -> Result<(), ControllerError> {
    if target.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    let mut previous = None;
    for id in sorted {
        if image.broker(id).is_none() {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            )));
        }
        if previous == Some(id) {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes the broker {id} more than once."
            )));
        }
        previous = Some(id);
    }
    Ok(())
}

/// The replicas before the reassignment in progress (Kafka's `originalReplicas`): all but the adding ones.
fn original_replicas(part: &PartitionImage) -> Vec<i32> {
    part.replicas
        .iter()
        .copied()
        .filter(|r| !part.adding_replicas.contains(r))
        .collect()
}

/// Kafka's `changePartitionReassignment`. The current replicas here are the partition's whole replica list,
/// so a new target replacing one in progress is measured against the union of the old target and the
/// replicas it was removing.
fn change(
    image: &MetadataImage,
    topic_id: uuid::Uuid,
    partition: i32,
    part: &PartitionImage,
    target: &[i32],
) -> Option<PartitionChangeRecord> {
    let removing: Vec<i32> = difference(&part.replicas, target);
    let adding: Vec<i32> = difference(target, &part.replicas);
    let mut replicas = target.to_vec();
    replicas.extend(&removing);

    let mut builder = PartitionChange::new(image, topic_id, partition, part);
    if replicas != part.replicas {
        builder = builder.target_replicas(replicas);
    }
    if !removing.is_empty() {
        builder = builder.target_removing(removing);
    }
    if !adding.is_empty() {
        builder = builder.target_adding(adding);
    }
    builder.build()
}

/// The members of `a` not in `b`, ascending (Kafka's `calculateDifference`, a TreeSet).
fn difference(a: &[i32], b: &[i32]) -> Vec<i32> {
    a.iter()
        .copied()
        .filter(|r| !b.contains(r))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Kafka's `cancelPartitionReassignment` with `PartitionReassignmentRevert`: the adding replicas leave the
/// replicas and the ISR; if none of the ISR would remain, the first original replica becomes the ISR, which
/// is an unclean election and needs `unclean.leader.election.enable`.
fn cancel(
    image: &MetadataImage,
    policy: &ElectionPolicy,
    topic_name: &str,
    topic_id: uuid::Uuid,
    partition: i32,
    part: &PartitionImage,
) -> Result<Option<PartitionChangeRecord>, ControllerError> {
    if !part.is_reassigning() {
        return Err(ControllerError::NoReassignmentInProgress(
            "No partition reassignment is in progress for this topic or partition.".into(),
        ));
    }
    let replicas = original_replicas(part);
    let mut isr: Vec<i32> = part
        .isr
        .iter()
        .copied()
        .filter(|r| !part.adding_replicas.contains(r))
        .collect();
    let unclean_allowed = policy.unclean_enabled(image, topic_name);
    if isr.is_empty() {
        let Some(&first) = replicas.first() else {
            return Err(ControllerError::InvalidReplicaAssignment(
                "Invalid replica assignment: addingReplicas contains all replicas.".into(),
            ));
        };
        if !unclean_allowed {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Unable to revert partition assignment for {topic_name}:{partition} because it would \
                 require an unclean leader election."
            )));
        }
        isr.push(first);
    }
    let election = if unclean_allowed {
        Election::Unclean
    } else {
        Election::Online
    };
    Ok(PartitionChange::new(image, topic_id, partition, part)
        .election(election)
        .target_isr(isr)
        .target_replicas(replicas)
        .target_removing(Vec::new())
        .target_adding(Vec::new())
        .build())
}

/// ListPartitionReassignments: the reassignments in progress, of every partition (`None`) or of the ones
/// asked about; unknown topics and partitions, and ones not being reassigned, are left out (as Kafka does).
pub(crate) fn list_partition_reassignments(
    image: &MetadataImage,
    query: Option<&[ReassignmentQuery]>,
) -> Vec<OngoingReassignment> {
    let ongoing = |topic: &str, index: i32, p: &PartitionImage| {
        p.is_reassigning().then(|| OngoingReassignment {
            topic: topic.to_owned(),
            partition: index,
            replicas: p.replicas.clone(),
            adding: p.adding_replicas.clone(),
            removing: p.removing_replicas.clone(),
        })
    };
    match query {
        None => image
            .topics_by_name()
            .keys()
            .filter_map(|name| image.topic(name))
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter_map(|(&i, p)| ongoing(&t.name, i, p))
                    .collect::<Vec<_>>()
            })
            .collect(),
        Some(queries) => queries
            .iter()
            .filter_map(|q| image.topic(&q.topic).map(|t| (t, q)))
            .flat_map(|(t, q)| {
                q.partitions
                    .iter()
                    .filter_map(|i| t.partitions.get(i).and_then(|p| ongoing(&t.name, *i, p)))
                    .collect::<Vec<_>>()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
