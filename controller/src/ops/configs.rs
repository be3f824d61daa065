//! IncrementalAlterConfigs and the legacy AlterConfigs, after Kafka's
//! `ConfigurationControlManager`.
//!
//! Topic resources accept every key of the topic config table. Broker resources (a broker id, or
//! "" for the cluster-wide default) accept the primary broker synonyms of those keys, e.g.
//! `log.retention.ms`, which are the dynamic defaults topics fall back to, and the log cleaner's
//! thread settings (`topic_configs::broker_dynamic_definition`); other broker configs are read-only
//! in Kraftwerk and refused with Kafka's "Cannot update these configs dynamically".

use std::collections::{BTreeMap, HashMap, HashSet};

use super::election::UNCLEAN_LEADER_ELECTION_ENABLE;
use super::{leaders, OpContext, OpOutput};
use crate::api::{AlterConfigOpType, AlterConfigSpec, ResourceResult};
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::{ConfigRecord, ConfigResource, ConfigResourceType, MetadataRecord};
use crate::topic_configs::{self, split_list, ConfigType, TopicConfigDef};

/// IncrementalAlterConfigs: SET / DELETE / APPEND / SUBTRACT per key.
pub(crate) fn incremental_alter_configs(
    image: &MetadataImage,
    ctx: &OpContext,
    specs: &[AlterConfigSpec],
    validate_only: bool,
) -> OpOutput<Vec<ResourceResult>> {
    alter(image, ctx, specs, validate_only, incremental)
}

/// Legacy AlterConfigs: the request's keys become the resource's complete set of overrides.
pub(crate) fn alter_configs(
    image: &MetadataImage,
    ctx: &OpContext,
    specs: &[AlterConfigSpec],
    validate_only: bool,
) -> OpOutput<Vec<ResourceResult>> {
    alter(image, ctx, specs, validate_only, replace_all)
}

type Overrides = BTreeMap<String, String>;

fn alter(
    image: &MetadataImage,
    ctx: &OpContext,
    specs: &[AlterConfigSpec],
    validate_only: bool,
    compute: fn(
        &ConfigResource,
        &Overrides,
        &AlterConfigSpec,
    ) -> Result<Overrides, ControllerError>,
) -> OpOutput<Vec<ResourceResult>> {
    let mut counts = HashMap::new();
    for spec in specs {
        *counts.entry(&spec.resource).or_insert(0usize) += 1;
    }
    let mut records = Vec::new();
    let mut response = Vec::with_capacity(specs.len());
    for spec in specs {
        let result = if counts.get(&spec.resource).copied().unwrap_or(0) > 1 {
            Err(ControllerError::InvalidRequest(
                "Duplicate resource in request.".into(),
            ))
        } else {
            alter_resource(image, ctx, spec, compute)
                .map(|changes| records.extend(changes))
                .map_err(|e| as_broker_validation(&spec.resource, e))
        };
        response.push(ResourceResult {
            resource: spec.resource.clone(),
            result,
        });
    }
    if validate_only {
        records.clear();
    } else {
        records.extend(unclean_elections_after(image, ctx, &records));
    }
    OpOutput { records, response }
}

/// Kafka validates broker configs (per broker and the cluster default) on the broker that receives the
/// request (`ConfigAdminManager.preprocess`), which answers INVALID_REQUEST for a key it cannot change or
/// a value it cannot parse; topic configs are validated by the controller, which answers INVALID_CONFIG.
fn as_broker_validation(resource: &ConfigResource, e: ControllerError) -> ControllerError {
    match (resource.resource_type, e) {
        (ConfigResourceType::Broker, ControllerError::InvalidConfig(message)) => {
            ControllerError::InvalidRequest(message)
        }
        (_, e) => e,
    }
}

/// When `changes` touch `unclean.leader.election.enable`, the unclean elections it now allows: leaderless
/// partitions of the topics concerned (all topics for a broker-level change) get a live replica as leader
/// in the same batch, as Kafka's controller does on its next unclean-election check.
fn unclean_elections_after(
    image: &MetadataImage,
    ctx: &OpContext,
    changes: &[MetadataRecord],
) -> Vec<MetadataRecord> {
    let mut topics = HashSet::new();
    let mut all = false;
    for change in changes {
        let MetadataRecord::Config(c) = change else {
            continue;
        };
        if c.name != UNCLEAN_LEADER_ELECTION_ENABLE {
            continue;
        }
        match c.resource.resource_type {
            ConfigResourceType::Topic => {
                topics.extend(image.topic(&c.resource.name).map(|t| t.id));
            }
            _ => all = true,
        }
    }
    if topics.is_empty() && !all {
        return Vec::new();
    }
    // The image as it will be once the config records are applied (partitions are unchanged by them).
    let after = image.apply(image.next_offset(), changes);
    leaders::elect_unclean_leaderless(&after, &ctx.election, (!all).then_some(&topics))
}

fn alter_resource(
    image: &MetadataImage,
    ctx: &OpContext,
    spec: &AlterConfigSpec,
    compute: fn(
        &ConfigResource,
        &Overrides,
        &AlterConfigSpec,
    ) -> Result<Overrides, ControllerError>,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    check_resource(image, &spec.resource)?;
    let mut keys = HashSet::new();
    if let Some(dup) = spec.ops.iter().find(|op| !keys.insert(op.name.as_str())) {
        return Err(ControllerError::InvalidRequest(format!(
            "Error due to duplicate config keys: {}",
            dup.name
        )));
    }
    let current = image
        .resource_configs(&spec.resource)
        .cloned()
        .unwrap_or_default();
    let next = compute(&spec.resource, &current, spec)?;
    for (key, value) in &next {
        if current.get(key) != Some(value) {
            definition_for(&spec.resource, key)?.validate(value)?;
        }
    }
    if spec.resource.resource_type == ConfigResourceType::Broker {
        check_broker_combination(&next)?;
    }
    if let Some(policy) = &ctx.policies.alter_config {
        policy
            .validate(&spec.resource, &next)
            .map_err(ControllerError::PolicyViolation)?;
    }
    Ok(diff(&spec.resource, &current, &next))
}

/// Rules across keys of one broker resource, as Kafka's `KafkaConfig` validation: `max.connections.per.ip=0`
/// needs `max.connections.per.ip.overrides`.
fn check_broker_combination(next: &Overrides) -> Result<(), ControllerError> {
    let per_ip_zero = next
        .get("max.connections.per.ip")
        .is_some_and(|v| v.trim().parse::<i64>() == Ok(0));
    let no_overrides = next
        .get("max.connections.per.ip.overrides")
        .is_none_or(|v| v.trim().is_empty());
    if per_ip_zero && no_overrides {
        return Err(ControllerError::InvalidConfig(
            "max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set."
                .into(),
        ));
    }
    Ok(())
}

fn check_resource(image: &MetadataImage, resource: &ConfigResource) -> Result<(), ControllerError> {
    match resource.resource_type {
        ConfigResourceType::Topic => {
            if resource.name.is_empty() {
                return Err(ControllerError::InvalidRequest(
                    "Default topic resources are not allowed.".into(),
                ));
            }
            if image.topic(&resource.name).is_none() {
                return Err(ControllerError::UnknownTopicOrPartition(format!(
                    "The topic '{}' does not exist.",
                    resource.name
                )));
            }
            Ok(())
        }
        ConfigResourceType::Broker => {
            if resource.name.is_empty() || resource.name.parse::<i32>().is_ok_and(|id| id >= 0) {
                Ok(())
            } else {
                Err(ControllerError::InvalidRequest(format!(
                    "Unexpected broker id, expected a non-negative integer or empty string, but received {}",
                    resource.name
                )))
            }
        }
        other => Err(ControllerError::InvalidRequest(format!(
            "Unsupported resource type {other:?} for altering configs."
        ))),
    }
}

/// The definition that governs `key` on `resource`, or INVALID_CONFIG.
fn definition_for(
    resource: &ConfigResource,
    key: &str,
) -> Result<&'static TopicConfigDef, ControllerError> {
    match resource.resource_type {
        ConfigResourceType::Topic => topic_configs::definition(key).ok_or_else(|| {
            ControllerError::InvalidConfig(format!("Unknown topic config name: {key}"))
        }),
        _ => topic_configs::by_broker_synonym(key)
            .or_else(|| topic_configs::broker_dynamic_definition(key))
            .ok_or_else(|| {
                ControllerError::InvalidConfig(format!(
                    "Cannot update these configs dynamically: {key}"
                ))
            }),
    }
}

fn incremental(
    resource: &ConfigResource,
    current: &Overrides,
    spec: &AlterConfigSpec,
) -> Result<Overrides, ControllerError> {
    let mut next = current.clone();
    for op in &spec.ops {
        match (op.op, &op.value) {
            (AlterConfigOpType::Delete, _) => {
                next.remove(&op.name);
            }
            // Only DELETE goes without a value (Kafka's `ConfigAdminManager` refuses the rest).
            (_, None) => return Err(null_value(&op.name)),
            (AlterConfigOpType::Set, Some(value)) => {
                next.insert(op.name.clone(), value.clone());
            }
            (AlterConfigOpType::Append | AlterConfigOpType::Subtract, Some(value)) => {
                let def = definition_for(resource, &op.name)?;
                if def.config_type != ConfigType::List {
                    return Err(ControllerError::InvalidConfig(format!(
                        "Can't {} to key {} because its type is not LIST.",
                        op.op, op.name
                    )));
                }
                let base = next
                    .get(&op.name)
                    .map(String::as_str)
                    .unwrap_or(def.default);
                let mut items: Vec<&str> = split_list(base);
                let given = split_list(value);
                if op.op == AlterConfigOpType::Append {
                    for item in given {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                } else {
                    items.retain(|item| !given.contains(item));
                }
                let joined = items.join(",");
                next.insert(op.name.clone(), joined);
            }
        }
    }
    Ok(next)
}

fn replace_all(
    _resource: &ConfigResource,
    _current: &Overrides,
    spec: &AlterConfigSpec,
) -> Result<Overrides, ControllerError> {
    let mut next = Overrides::new();
    for op in &spec.ops {
        let value = op.value.as_ref().ok_or_else(|| null_value(&op.name))?;
        next.insert(op.name.clone(), value.clone());
    }
    Ok(next)
}

/// A SET, APPEND or SUBTRACT (or a legacy AlterConfigs entry) without a value, in Kafka's words.
fn null_value(name: &str) -> ControllerError {
    ControllerError::InvalidRequest(format!("Null value not supported for : {name}"))
}

/// Records turning `current` into `next`: a set per new or changed key, a removal per dropped key.
fn diff(resource: &ConfigResource, current: &Overrides, next: &Overrides) -> Vec<MetadataRecord> {
    let record = |name: &str, value: Option<&String>| {
        MetadataRecord::Config(ConfigRecord {
            resource: resource.clone(),
            name: name.to_owned(),
            value: value.cloned(),
        })
    };
    let removed = current
        .keys()
        .filter(|k| !next.contains_key(*k))
        .map(|k| record(k, None));
    let set = next
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| record(k, Some(v)));
    removed.chain(set).collect()
}

#[cfg(test)]
mod tests;
