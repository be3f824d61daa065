//! Broker registration, fencing and unregistration, after Kafka's `ClusterControlManager`.
//!
//! Kraftwerk has no broker heartbeats yet, so a registered broker is unfenced at once and stays
//! so until fenced explicitly. Fencing or unregistering a broker moves its leaderships to
//! another in-sync, unfenced replica and takes it out of ISRs (never emptying an ISR, so the last
//! in-sync replica can lead again when it returns); (re)registering or unfencing lets it lead
//! the leaderless partitions whose ISR it is in.

use std::collections::HashSet;

use uuid::Uuid;

use super::OpOutput;
use crate::api::BrokerRegistration;
use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionImage, NO_LEADER};
use crate::records::{BrokerRecord, MetadataRecord, PartitionChangeRecord};

type BrokerOutput = OpOutput<Result<(), ControllerError>>;

fn rejected(err: ControllerError) -> BrokerOutput {
    OpOutput {
        records: Vec::new(),
        response: Err(err),
    }
}

fn accepted(records: Vec<MetadataRecord>) -> BrokerOutput {
    OpOutput {
        records,
        response: Ok(()),
    }
}

/// Registers (or re-registers) a broker; it becomes unfenced. As in Kafka, the broker epoch is
/// the offset of the batch this registration is written in (`image` is everything before it),
/// and `incarnation_id` identifies this registration (the caller draws a random one).
pub(crate) fn register_broker(
    image: &MetadataImage,
    reg: &BrokerRegistration,
    incarnation_id: Uuid,
) -> BrokerOutput {
    if let Err(err) = validate_registration(reg) {
        return rejected(err);
    }
    let mut records = vec![MetadataRecord::RegisterBroker(BrokerRecord {
        broker_id: reg.broker_id,
        incarnation_id,
        broker_epoch: image.next_offset(),
        listeners: reg.listeners.clone(),
        rack: reg.rack.clone(),
        // No heartbeats yet: a registered broker serves at once.
        fenced: false,
        ..BrokerRecord::default()
    })];
    records.extend(elect_leaderless(image, reg.broker_id));
    accepted(records)
}

fn validate_registration(reg: &BrokerRegistration) -> Result<(), ControllerError> {
    if reg.broker_id < 0 {
        return Err(ControllerError::InvalidRequest(format!(
            "Invalid broker id {}",
            reg.broker_id
        )));
    }
    if reg.listeners.is_empty() {
        return Err(ControllerError::InvalidRequest(
            "The broker registration has no listeners.".into(),
        ));
    }
    let mut names = HashSet::new();
    for listener in &reg.listeners {
        if !names.insert(listener.name.as_str()) {
            return Err(ControllerError::InvalidRequest(format!(
                "Duplicate listener name {} in broker registration.",
                listener.name
            )));
        }
        if listener.host.is_empty() || listener.port == 0 {
            return Err(ControllerError::InvalidRequest(format!(
                "Listener {} needs a host and a non-zero port.",
                listener.name
            )));
        }
    }
    Ok(())
}

/// The broker's (fenced, epoch).
fn require_registered(
    image: &MetadataImage,
    broker_id: i32,
) -> Result<(bool, i64), ControllerError> {
    image
        .broker(broker_id)
        .map(|b| (b.fenced, b.epoch))
        .ok_or_else(|| {
            ControllerError::BrokerIdNotRegistered(format!("Broker {broker_id} is not registered."))
        })
}

/// Fences a broker: it leads nothing and leaves the ISRs. Fencing a fenced broker is a no-op.
pub(crate) fn fence_broker(image: &MetadataImage, broker_id: i32) -> BrokerOutput {
    match require_registered(image, broker_id) {
        Err(err) => rejected(err),
        Ok((true, _)) => accepted(Vec::new()),
        Ok((false, epoch)) => {
            let mut records = vec![MetadataRecord::FenceBroker { broker_id, epoch }];
            records.extend(demote(image, broker_id));
            accepted(records)
        }
    }
}

/// Unfences a broker and lets it lead the leaderless partitions whose ISR it is in.
pub(crate) fn unfence_broker(image: &MetadataImage, broker_id: i32) -> BrokerOutput {
    match require_registered(image, broker_id) {
        Err(err) => rejected(err),
        Ok((false, _)) => accepted(Vec::new()),
        Ok((true, epoch)) => {
            let mut records = vec![MetadataRecord::UnfenceBroker { broker_id, epoch }];
            records.extend(elect_leaderless(image, broker_id));
            accepted(records)
        }
    }
}

/// Removes a broker from the cluster (its replicas stay assigned until reassigned).
pub(crate) fn unregister_broker(image: &MetadataImage, broker_id: i32) -> BrokerOutput {
    match require_registered(image, broker_id) {
        Err(err) => rejected(err),
        Ok((_, broker_epoch)) => {
            let mut records = demote(image, broker_id);
            records.push(MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch,
            });
            accepted(records)
        }
    }
}

/// Partition changes that take `broker_id` out of leaderships and ISRs.
fn demote(image: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics() {
        for (&partition, p) in &topic.partitions {
            if p.leader != broker_id && !p.isr.contains(&broker_id) {
                continue;
            }
            let isr: Vec<i32> = if p.isr.len() > 1 {
                p.isr.iter().copied().filter(|&b| b != broker_id).collect()
            } else {
                p.isr.clone()
            };
            let leader = if p.leader == broker_id {
                Some(pick_leader(image, p, &isr, broker_id))
            } else {
                None
            };
            let isr = (isr != p.isr).then_some(isr);
            if leader.is_some() || isr.is_some() {
                records.push(MetadataRecord::PartitionChange(PartitionChangeRecord {
                    topic_id: topic.id,
                    partition,
                    isr,
                    leader,
                    ..PartitionChangeRecord::default()
                }));
            }
        }
    }
    records
}

/// The first replica (preferred order) that is in `isr`, unfenced and not `excluded`.
fn pick_leader(image: &MetadataImage, p: &PartitionImage, isr: &[i32], excluded: i32) -> i32 {
    p.replicas
        .iter()
        .copied()
        .find(|&b| b != excluded && isr.contains(&b) && image.is_broker_active(b))
        .unwrap_or(NO_LEADER)
}

/// Makes `broker_id` leader of every leaderless partition whose ISR holds it.
fn elect_leaderless(image: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    image
        .topics()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .filter(move |(_, p)| p.leader == NO_LEADER && p.isr.contains(&broker_id))
                .map(move |(&partition, _)| {
                    MetadataRecord::PartitionChange(PartitionChangeRecord {
                        topic_id: topic.id,
                        partition,
                        leader: Some(broker_id),
                        ..PartitionChangeRecord::default()
                    })
                })
        })
        .collect()
}

#[cfg(test)]
mod tests;
