//! Broker registration, fencing and unregistration, after Kafka's `ClusterControlManager`.
//!
//! A registered broker is unfenced at once (the broker side fences it again on missed heartbeats).
//! Fencing or unregistering a broker takes it out of ISRs and moves its leaderships; (re)registering
//! or unfencing elects leaders for leaderless partitions. Who leads is decided by `ops::election`
//! (in-sync replicas first; outside the ISR only where `unclean.leader.election.enable` allows it).

use std::collections::HashSet;

use uuid::Uuid;

use super::election::{self, Acceptor, ElectionPolicy};
use super::OpOutput;
use crate::api::BrokerRegistration;
use crate::error::ControllerError;
use crate::image::{MetadataImage, NO_LEADER};
use crate::records::{BrokerRecord, MetadataRecord};

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
    policy: &ElectionPolicy,
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
    records.extend(elect_leaderless(image, policy, reg.broker_id));
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
pub(crate) fn fence_broker(
    image: &MetadataImage,
    policy: &ElectionPolicy,
    broker_id: i32,
) -> BrokerOutput {
    match require_registered(image, broker_id) {
        Err(err) => rejected(err),
        Ok((true, _)) => accepted(Vec::new()),
        Ok((false, epoch)) => {
            let mut records = vec![MetadataRecord::FenceBroker { broker_id, epoch }];
            records.extend(demote(image, policy, broker_id));
            accepted(records)
        }
    }
}

/// Unfences a broker and lets it lead the leaderless partitions whose ISR it is in.
pub(crate) fn unfence_broker(
    image: &MetadataImage,
    policy: &ElectionPolicy,
    broker_id: i32,
) -> BrokerOutput {
    match require_registered(image, broker_id) {
        Err(err) => rejected(err),
        Ok((false, _)) => accepted(Vec::new()),
        Ok((true, epoch)) => {
            let mut records = vec![MetadataRecord::UnfenceBroker { broker_id, epoch }];
            records.extend(elect_leaderless(image, policy, broker_id));
            accepted(records)
        }
    }
}

/// Removes a broker from the cluster (its replicas stay assigned until reassigned).
pub(crate) fn unregister_broker(
    image: &MetadataImage,
    policy: &ElectionPolicy,
    broker_id: i32,
) -> BrokerOutput {
    match require_registered(image, broker_id) {
        Err(err) => rejected(err),
        Ok((_, broker_epoch)) => {
            let mut records = demote(image, policy, broker_id);
            records.push(MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch,
            });
            accepted(records)
        }
    }
}

/// Partition changes that take `broker_id` out of leaderships and ISRs (Kafka's `handleBrokerFenced`):
/// each partition whose ISR holds it (or that it leads) loses it from the ISR and, if it led, gets the leader
/// [`election::change`] picks (from outside the ISR only where the topic allows unclean elections).
fn demote(image: &MetadataImage, policy: &ElectionPolicy, broker_id: i32) -> Vec<MetadataRecord> {
    let acceptor = Acceptor::new(image).excluding(broker_id);
    let mut records = Vec::new();
    for topic in image.topics() {
        let mut election = None;
        for (&partition, p) in &topic.partitions {
            if p.leader != broker_id && !p.isr.contains(&broker_id) {
                continue;
            }
            let election =
                *election.get_or_insert_with(|| policy.online_election(image, &topic.name));
            let isr: Vec<i32> = p.isr.iter().copied().filter(|&b| b != broker_id).collect();
            records.extend(
                election::change(image, topic.id, partition, p, &isr, election, &acceptor)
                    .map(MetadataRecord::PartitionChange),
            );
        }
    }
    records
}

/// Elections for every leaderless partition now that `broker_id` can lead (Kafka's `handleBrokerUnfenced`):
/// from the ISR, or outside it where the topic allows unclean elections.
fn elect_leaderless(
    image: &MetadataImage,
    policy: &ElectionPolicy,
    broker_id: i32,
) -> Vec<MetadataRecord> {
    let acceptor = Acceptor::new(image).including(broker_id);
    let mut records = Vec::new();
    for topic in image.topics() {
        let mut election = None;
        for (&partition, p) in &topic.partitions {
            if p.leader != NO_LEADER {
                continue;
            }
            let election =
                *election.get_or_insert_with(|| policy.online_election(image, &topic.name));
            records.extend(
                election::change(image, topic.id, partition, p, &p.isr, election, &acceptor)
                    .map(MetadataRecord::PartitionChange),
            );
        }
    }
    records
}

#[cfg(test)]
mod tests;
