//! CreateTopics, DeleteTopics and CreatePartitions, after Kafka's `ReplicationControlManager`.

use std::collections::{BTreeMap, HashMap, HashSet};

use uuid::Uuid;

use super::{placement, topic_name, OpContext, OpOutput, MAX_RECORDS_PER_USER_OP};
use crate::api::{CreatePartitionsSpec, CreateTopicSpec, CreatedTopic, TopicRef, TopicResult};
use crate::error::ControllerError;
use crate::image::{MetadataImage, TopicImage};
use crate::policy::CreateTopicRequest;
use crate::records::{
    ConfigRecord, ConfigResource, MetadataRecord, PartitionRecord, DIRECTORY_UNASSIGNED,
};
use crate::topic_configs::validate_topic_config;

/// Kafka reserves the all-zero id and `0..01` (the metadata topic's id).
const RESERVED_TOPIC_IDS: [Uuid; 2] = [Uuid::nil(), Uuid::from_u128(1)];
const UNKNOWN_TOPIC_MESSAGE: &str = "This server does not host this topic-partition.";

/// Creates topics. Later topics of the request see the earlier ones, so a request cannot create
/// two colliding names. With `validate_only` the response is the same but no records are made.
/// A request whose topics would take more than [`MAX_RECORDS_PER_USER_OP`] records fails whole (see
/// [`whole_request_refused`]), validate-only or not, as in Kafka.
pub(crate) fn create_topics(
    image: &MetadataImage,
    ctx: &mut OpContext,
    specs: &[CreateTopicSpec],
    validate_only: bool,
) -> OpOutput<Vec<TopicResult<CreatedTopic>>> {
    let counts = count(specs.iter().map(|s| s.name.as_str()));
    let mut working = image.clone();
    let mut records = Vec::new();
    let mut response = Vec::with_capacity(specs.len());
    for spec in specs {
        let result = if counts.get(spec.name.as_str()).copied().unwrap_or(0) > 1 {
            Err(ControllerError::InvalidRequest(
                "Found multiple entries for this topic.".into(),
            ))
        } else {
            let room = MAX_RECORDS_PER_USER_OP.saturating_sub(records.len());
            create_topic(&working, ctx, spec, room).map(|(topic_records, created)| {
                working = working.apply(working.last_applied_offset(), &topic_records);
                records.extend(topic_records);
                created
            })
        };
        if matches!(result, Err(ControllerError::ExcessiveBatch)) {
            return whole_request_refused(specs.iter().map(|s| &s.name));
        }
        response.push(TopicResult {
            name: Some(spec.name.clone()),
            result,
        });
    }
    if validate_only {
        records.clear();
    }
    OpOutput { records, response }
}

/// Kafka's answer to a request past [`MAX_RECORDS_PER_USER_OP`]: its controller's bounded record list
/// throws, the operation fails, and every topic of the request (valid or not) gets that one error.
fn whole_request_refused<'a, T>(
    names: impl Iterator<Item = &'a String>,
) -> OpOutput<Vec<TopicResult<T>>> {
    OpOutput {
        records: Vec::new(),
        response: names
            .map(|name| TopicResult {
                name: Some(name.clone()),
                result: Err(ControllerError::ExcessiveBatch),
            })
            .collect(),
    }
}

/// Refuses, before anything is allocated for them, `records` more than the request has `room` for.
fn check_room(records: usize, room: usize) -> Result<(), ControllerError> {
    if records > room {
        return Err(ControllerError::ExcessiveBatch);
    }
    Ok(())
}

/// One topic's records, if they fit in the `room` the request has left.
fn create_topic(
    image: &MetadataImage,
    ctx: &mut OpContext,
    spec: &CreateTopicSpec,
    room: usize,
) -> Result<(Vec<MetadataRecord>, CreatedTopic), ControllerError> {
    let name = spec.name.as_str();
    topic_name::validate(name)?;
    if image.topic(name).is_some() {
        return Err(ControllerError::TopicAlreadyExists(format!(
            "Topic '{name}' already exists."
        )));
    }
    if let Some(existing) = topic_name::colliding_topic(image, name) {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic '{name}' collides with existing topic: {existing}"
        )));
    }

    let manual = if spec.assignments.is_empty() {
        None
    } else {
        Some(manual_assignments(image, spec)?)
    };
    let replicas: Vec<Vec<i32>> = match &manual {
        Some(assignments) => assignments.values().cloned().collect(),
        None => auto_assignments(image, ctx, spec, room)?,
    };
    let configs = collect_configs(&spec.configs)?;
    // The topic record, its partitions and its configs.
    check_room(1 + replicas.len() + configs.len(), room)?;

    if let Some(policy) = &ctx.policies.create_topic {
        let request = CreateTopicRequest {
            topic: name,
            num_partitions: manual.is_none().then(|| partition_count(&replicas)),
            replication_factor: manual.is_none().then(|| replication_factor(&replicas)),
            assignments: manual.as_ref(),
            configs: &configs,
        };
        policy
            .validate(&request)
            .map_err(ControllerError::PolicyViolation)?;
    }

    let id = fresh_topic_id(image, ctx)?;
    let mut records = vec![MetadataRecord::Topic {
        name: name.to_owned(),
        id,
    }];
    for (partition, replicas) in (0..).zip(&replicas) {
        records.push(new_partition(image, id, partition, replicas));
    }
    records.extend(configs.into_iter().map(|(key, value)| {
        MetadataRecord::Config(ConfigRecord {
            resource: ConfigResource::topic(name),
            name: key,
            value: Some(value),
        })
    }));
    let created = CreatedTopic {
        topic_id: id,
        num_partitions: partition_count(&replicas),
        replication_factor: replication_factor(&replicas),
    };
    Ok((records, created))
}

fn manual_assignments(
    image: &MetadataImage,
    spec: &CreateTopicSpec,
) -> Result<BTreeMap<i32, Vec<i32>>, ControllerError> {
    if spec.num_partitions != -1 {
        return Err(ControllerError::InvalidRequest(
            "A manual partition assignment was specified, but numPartitions was not set to -1."
                .into(),
        ));
    }
    if spec.replication_factor != -1 {
        return Err(ControllerError::InvalidRequest(
            "A manual partition assignment was specified, but replicationFactor was not set to -1."
                .into(),
        ));
    }
    let mut by_partition = BTreeMap::new();
    for assignment in &spec.assignments {
        if by_partition
            .insert(assignment.partition, assignment.broker_ids.clone())
            .is_some()
        {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Found multiple manual partition assignments for partition {}.",
                assignment.partition
            )));
        }
    }
    for (expected, &partition) in (0..).zip(by_partition.keys()) {
        if partition != expected {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Partitions must be numbered consecutively from 0, but partition {expected} has no assignment."
            )));
        }
    }
    let expected_rf = by_partition.values().next().map(Vec::len);
    for (&partition, replicas) in &by_partition {
        validate_manual_replicas(image, partition, replicas, expected_rf)?;
    }
    Ok(by_partition)
}

/// Checks one explicitly assigned replica list: non-empty, distinct, registered brokers, the
/// expected replication factor, and at least one active broker to lead.
fn validate_manual_replicas(
    image: &MetadataImage,
    partition: i32,
    replicas: &[i32],
    expected_rf: Option<usize>,
) -> Result<(), ControllerError> {
    if replicas.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut seen = HashSet::new();
    for &broker in replicas {
        if !seen.insert(broker) {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes the broker {broker} more than once."
            )));
        }
        if image.broker(broker).is_none() {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {broker}, but no such broker is registered."
            )));
        }
    }
    if let Some(rf) = expected_rf.filter(|&rf| rf != replicas.len()) {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not \
             consistent with previous partitions, which have {rf} replica(s).",
            replicas.len()
        )));
    }
    if !replicas.iter().any(|&b| image.is_broker_active(b)) {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "All brokers specified in the manual partition assignment for partition {partition} are fenced."
        )));
    }
    Ok(())
}

fn auto_assignments(
    image: &MetadataImage,
    ctx: &OpContext,
    spec: &CreateTopicSpec,
    room: usize,
) -> Result<Vec<Vec<i32>>, ControllerError> {
    let partitions = if spec.num_partitions == -1 {
        ctx.default_num_partitions
    } else {
        spec.num_partitions
    };
    if partitions <= 0 {
        return Err(ControllerError::InvalidPartitions(
            "Number of partitions was set to an invalid non-positive value.".into(),
        ));
    }
    let rf = if spec.replication_factor == -1 {
        ctx.default_replication_factor
    } else {
        spec.replication_factor
    };
    if rf <= 0 {
        return Err(ControllerError::InvalidReplicationFactor(
            "Replication factor must be larger than 0, or -1 to use the default value.".into(),
        ));
    }
    let rf = usize::try_from(rf).unwrap_or(usize::MAX);
    let brokers = image.unfenced_broker_ids();
    check_enough_brokers(rf, brokers.len())?;
    // Before placing them: a count past the bound must not be allocated.
    check_room(
        1usize.saturating_add(usize::try_from(partitions).unwrap_or(usize::MAX)),
        room,
    )?;
    let start = image.topics_by_name().len();
    Ok(placement::round_robin(&brokers, start, 0, partitions, rf))
}

fn check_enough_brokers(rf: usize, brokers: usize) -> Result<(), ControllerError> {
    if rf > brokers {
        return Err(ControllerError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} \
             cannot be reached because only {brokers} broker(s) are registered."
        )));
    }
    Ok(())
}

fn collect_configs(
    configs: &[(String, Option<String>)],
) -> Result<BTreeMap<String, String>, ControllerError> {
    let mut out = BTreeMap::new();
    for (key, value) in configs {
        let value = value.as_ref().ok_or_else(|| {
            ControllerError::InvalidConfig(format!(
                "Null value not supported for topic configs: {key}"
            ))
        })?;
        validate_topic_config(key, value)?;
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

fn fresh_topic_id(image: &MetadataImage, ctx: &mut OpContext) -> Result<Uuid, ControllerError> {
    for _ in 0..16 {
        let id = (ctx.new_topic_id)();
        if !RESERVED_TOPIC_IDS.contains(&id) && image.topic_by_id(&id).is_none() {
            return Ok(id);
        }
    }
    Err(ControllerError::Internal(
        "could not draw an unused topic id".into(),
    ))
}

/// A new partition: ISR = the active replicas in replica order, leader = the first of them.
fn new_partition(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
    replicas: &[i32],
) -> MetadataRecord {
    let isr: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|&b| image.is_broker_active(b))
        .collect();
    // Each replica's log directory, chosen as Kafka's controller does from what its broker
    // registered (Kraftwerk brokers register none, so MIGRATING).
    let directories = replicas
        .iter()
        .map(|&b| {
            image
                .broker(b)
                .map_or(DIRECTORY_UNASSIGNED, |broker| broker.default_directory())
        })
        .collect();
    MetadataRecord::Partition(PartitionRecord {
        topic_id,
        partition,
        replicas: replicas.to_vec(),
        leader: isr.first().copied().unwrap_or(crate::image::NO_LEADER),
        isr,
        leader_epoch: 0,
        partition_epoch: 0,
        directories,
        ..PartitionRecord::default()
    })
}

fn partition_count(replicas: &[Vec<i32>]) -> i32 {
    i32::try_from(replicas.len()).unwrap_or(i32::MAX)
}

fn replication_factor(replicas: &[Vec<i32>]) -> i16 {
    replicas
        .first()
        .map(|r| i16::try_from(r.len()).unwrap_or(i16::MAX))
        .unwrap_or(0)
}

fn count<'a, K: std::hash::Hash + Eq + 'a>(keys: impl Iterator<Item = K>) -> HashMap<K, usize> {
    let mut counts = HashMap::new();
    for key in keys {
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Deletes topics by name or id, removing their partitions and configs.
pub(crate) fn delete_topics(
    image: &MetadataImage,
    topics: &[TopicRef],
) -> OpOutput<Vec<TopicResult<Uuid>>> {
    let counts = count(topics.iter());
    let mut removed = HashSet::new();
    let mut records = Vec::new();
    let mut response = Vec::with_capacity(topics.len());
    for topic in topics {
        let found: Result<&TopicImage, (Option<String>, ControllerError)> = match topic {
            _ if counts.get(topic).copied().unwrap_or(0) > 1 => {
                let (name, what) = match topic {
                    TopicRef::Name(name) => (Some(name.clone()), "name"),
                    TopicRef::Id(_) => (None, "id"),
                };
                Err((
                    name,
                    ControllerError::InvalidRequest(format!("Duplicate topic {what}.")),
                ))
            }
            TopicRef::Name(name) => image.topic(name).map(|t| t.as_ref()).ok_or_else(|| {
                (
                    Some(name.clone()),
                    ControllerError::UnknownTopicOrPartition(UNKNOWN_TOPIC_MESSAGE.into()),
                )
            }),
            TopicRef::Id(id) => image.topic_by_id(id).map(|t| t.as_ref()).ok_or_else(|| {
                (
                    None,
                    ControllerError::UnknownTopicId(
                        "This server does not host this topic ID.".into(),
                    ),
                )
            }),
        };
        response.push(match found {
            Ok(t) => {
                // A topic named both by name and by id is removed once and reported twice.
                if removed.insert(t.id) {
                    records.push(MetadataRecord::RemoveTopic { id: t.id });
                }
                TopicResult {
                    name: Some(t.name.clone()),
                    result: Ok(t.id),
                }
            }
            Err((name, err)) => TopicResult {
                name,
                result: Err(err),
            },
        });
    }
    OpOutput { records, response }
}

/// Adds partitions to existing topics; bounded as [`create_topics`] is.
pub(crate) fn create_partitions(
    image: &MetadataImage,
    specs: &[CreatePartitionsSpec],
    validate_only: bool,
) -> OpOutput<Vec<TopicResult<()>>> {
    let counts = count(specs.iter().map(|s| s.name.as_str()));
    let mut records = Vec::new();
    let mut response = Vec::with_capacity(specs.len());
    for spec in specs {
        let result = if counts.get(spec.name.as_str()).copied().unwrap_or(0) > 1 {
            Err(ControllerError::InvalidRequest(
                "Duplicate topic name.".into(),
            ))
        } else {
            let room = MAX_RECORDS_PER_USER_OP.saturating_sub(records.len());
            add_partitions(image, spec, room).map(|new| records.extend(new))
        };
        if matches!(result, Err(ControllerError::ExcessiveBatch)) {
            return whole_request_refused(specs.iter().map(|s| &s.name));
        }
        response.push(TopicResult {
            name: Some(spec.name.clone()),
            result,
        });
    }
    if validate_only {
        records.clear();
    }
    OpOutput { records, response }
}

fn add_partitions(
    image: &MetadataImage,
    spec: &CreatePartitionsSpec,
    room: usize,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let name = spec.name.as_str();
    let topic = image
        .topic(name)
        .ok_or_else(|| ControllerError::UnknownTopicOrPartition(UNKNOWN_TOPIC_MESSAGE.into()))?;
    let current = topic.partition_count();
    if spec.count < current {
        return Err(ControllerError::InvalidPartitions(format!(
            "The topic {name} currently has {current} partition(s); {} would not be an increase.",
            spec.count
        )));
    }
    if spec.count == current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic already has {current} partition(s)."
        )));
    }
    let add = spec.count - current;
    // One record per new partition.
    check_room(usize::try_from(add).unwrap_or(usize::MAX), room)?;
    let rf = usize::try_from(topic.replication_factor()).unwrap_or(0);
    let replicas = match &spec.assignments {
        Some(assignments) => {
            if usize::try_from(add).ok() != Some(assignments.len()) {
                return Err(ControllerError::InvalidReplicaAssignment(format!(
                    "Attempted to add {add} additional partition(s), but only {} assignment(s) were specified.",
                    assignments.len()
                )));
            }
            for (partition, replicas) in (current..).zip(assignments) {
                validate_manual_replicas(image, partition, replicas, Some(rf))?;
            }
            assignments.clone()
        }
        None => {
            let brokers = image.unfenced_broker_ids();
            check_enough_brokers(rf, brokers.len())?;
            // Continue the rotation the topic started with: partition 0's leader position.
            let start = topic
                .partitions
                .get(&0)
                .and_then(|p| p.replicas.first())
                .and_then(|first| brokers.iter().position(|b| b == first))
                .unwrap_or(0);
            placement::round_robin(&brokers, start, current, add, rf)
        }
    };
    Ok((current..)
        .zip(&replicas)
        .map(|(partition, replicas)| new_partition(image, topic.id, partition, replicas))
        .collect())
}

#[cfg(test)]
mod tests;
