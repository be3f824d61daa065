//! Partition leader election: the one place that decides who leads a partition, after Kafka's
//! `PartitionChangeBuilder` (without eligible leader replicas, KIP-966, which Kraftwerk does not track).
//!
//! Every path that moves leadership goes through [`change`]: a broker fenced or unregistered (it leaves the
//! ISRs it is in), a broker unfenced or registered (leaderless partitions get a leader again), ElectLeaders
//! (PREFERRED or UNCLEAN), the periodic preferred-leader rebalance, and a topic whose
//! `unclean.leader.election.enable` was switched on. The rules, as Kafka's:
//! - `Online`: keep the current leader if it is still in the (target) ISR and acceptable, else the first
//!   replica in assignment order that is in the ISR and acceptable.
//! - `Preferred`: the first assigned replica if it is in the ISR and acceptable, else as `Online`.
//! - `Unclean`: as `Online`, and when no ISR member can lead, the first acceptable replica outside the ISR.
//!   The ISR becomes just that leader and (metadata.version permitting) the leader recovery state RECOVERING
//!   until the leader reports RECOVERED in an AlterPartition: data the old ISR had may be lost.
//!
//! "Acceptable" means registered, unfenced and not in controlled shutdown, as Kafka's `LeaderAcceptor`; an
//! ISR is never emptied (Kafka keeps the last member when ELR is off), so the last in-sync replica can lead
//! again when it returns.

use uuid::Uuid;

use super::features::{METADATA_VERSION, METADATA_VERSION_LEVEL};
use crate::image::{MetadataImage, PartitionImage, NO_LEADER};
use crate::records::{ConfigResource, PartitionChangeRecord, LEADER_RECOVERING};

/// The topic config (and broker-level default of the same name) that allows unclean elections.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// Kafka's `MetadataVersion.IBP_3_2_IV0`, the first level with leader recovery (KIP-704).
const LEADER_RECOVERY_LEVEL: i16 = 3;

/// How a leader may be chosen (Kafka's `PartitionChangeBuilder.Election`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Election {
    /// The preferred (first assigned) replica if it can lead, else as `Online`.
    Preferred,
    /// Only from the ISR.
    Online,
    /// From the ISR if possible, else any acceptable replica (possible data loss).
    Unclean,
}

/// Controller settings elections depend on, besides the image.
#[derive(Debug, Clone)]
pub struct ElectionPolicy {
    /// The active controller's node id: its dynamic broker configs take part in a topic's effective config.
    pub node_id: i32,
    /// `unclean.leader.election.enable` in the controller's own configuration (the static default).
    pub unclean_leader_election_enable: bool,
}

impl Default for ElectionPolicy {
    fn default() -> Self {
        Self {
            node_id: -1,
            unclean_leader_election_enable: false,
        }
    }
}

impl ElectionPolicy {
    /// Whether `topic` allows unclean elections, with Kafka's precedence: the topic's override, the dynamic
    /// config of the controller's node, the dynamic cluster default, then the controller's static config.
    pub(crate) fn unclean_enabled(&self, image: &MetadataImage, topic: &str) -> bool {
        let resources = [
            ConfigResource::topic(topic),
            ConfigResource::broker(self.node_id.to_string()),
            ConfigResource::broker(""),
        ];
        resources
            .iter()
            .find_map(|r| {
                image
                    .resource_configs(r)
                    .and_then(|c| c.get(UNCLEAN_LEADER_ELECTION_ENABLE))
            })
            .map_or(self.unclean_leader_election_enable, |v| {
                // Java's Boolean.parseBoolean: "true" in any case, anything else is false.
                v.trim().eq_ignore_ascii_case("true")
            })
    }

    /// `Unclean` where the topic allows it, else `Online`.
    pub(crate) fn online_election(&self, image: &MetadataImage, topic: &str) -> Election {
        if self.unclean_enabled(image, topic) {
            Election::Unclean
        } else {
            Election::Online
        }
    }
}

/// Which brokers may lead. Built from the image, with the broker being fenced excluded and the broker being
/// unfenced included (the image does not show either change yet when the records are computed).
#[derive(Clone, Copy)]
pub(crate) struct Acceptor<'a> {
    image: &'a MetadataImage,
    exclude: Option<i32>,
    include: Option<i32>,
}

impl<'a> Acceptor<'a> {
    /// Registered, unfenced brokers not in controlled shutdown.
    pub(crate) fn new(image: &'a MetadataImage) -> Self {
        Self {
            image,
            exclude: None,
            include: None,
        }
    }

    /// Never accepts `broker` (it is being fenced or removed).
    pub(crate) fn excluding(mut self, broker: i32) -> Self {
        self.exclude = Some(broker);
        self
    }

    /// Accepts `broker` even though the image still shows it fenced (it is being unfenced).
    pub(crate) fn including(mut self, broker: i32) -> Self {
        self.include = Some(broker);
        self
    }

    pub(crate) fn accepts(&self, broker: i32) -> bool {
        if self.exclude == Some(broker) {
            return false;
        }
        if self.include == Some(broker) {
            return true;
        }
        self.image
            .broker(broker)
            .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
    }
}

/// The leader an election picks, and whether it came from outside the ISR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elected {
    pub leader: i32,
    pub unclean: bool,
}

/// Picks the leader of `p` given the ISR it will have (`isr`); [`NO_LEADER`] when nobody can lead.
pub(crate) fn elect(
    p: &PartitionImage,
    isr: &[i32],
    election: Election,
    acceptor: &Acceptor<'_>,
) -> Elected {
    elect_among(p.leader, &p.replicas, isr, election, acceptor)
}

/// [`elect`] for a partition whose replicas are about to change (a reassignment completing): the candidates
/// are `replicas` in their order, the current leader stays if it is still valid.
pub(crate) fn elect_among(
    current_leader: i32,
    replicas: &[i32],
    isr: &[i32],
    election: Election,
    acceptor: &Acceptor<'_>,
) -> Elected {
    let valid = |b: i32| isr.contains(&b) && acceptor.accepts(b);
    let clean = |leader| Elected {
        leader,
        unclean: false,
    };
    if election == Election::Preferred {
        if let Some(&preferred) = replicas.first() {
            if valid(preferred) {
                return clean(preferred);
            }
        }
    }
    if current_leader != NO_LEADER && valid(current_leader) {
        return clean(current_leader);
    }
    if let Some(&b) = replicas.iter().find(|&&b| valid(b)) {
        return clean(b);
    }
    if election == Election::Unclean {
        if let Some(&b) = replicas.iter().find(|&&b| acceptor.accepts(b)) {
            return Elected {
                leader: b,
                unclean: true,
            };
        }
    }
    clean(NO_LEADER)
}

/// Whether the cluster's metadata.version has leader recovery states (absent: the level Kraftwerk writes).
pub(crate) fn leader_recovery_supported(image: &MetadataImage) -> bool {
    image
        .features()
        .get(METADATA_VERSION)
        .copied()
        .unwrap_or(METADATA_VERSION_LEVEL)
        >= LEADER_RECOVERY_LEVEL
}

/// The record that takes partition `partition` of topic `topic_id` to `target_isr` and runs `election`
/// (Kafka's `PartitionChangeBuilder.build`); `None` when nothing would change. An empty `target_isr` keeps
/// the current ISR (Kraftwerk never empties one).
pub(crate) fn change(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
    p: &PartitionImage,
    target_isr: &[i32],
    election: Election,
    acceptor: &Acceptor<'_>,
) -> Option<PartitionChangeRecord> {
    let target_isr = if target_isr.is_empty() {
        &p.isr[..]
    } else {
        target_isr
    };
    let elected = elect(p, target_isr, election, acceptor);
    let mut record = PartitionChangeRecord {
        topic_id,
        partition,
        ..PartitionChangeRecord::default()
    };
    if elected.leader != p.leader {
        record.leader = Some(elected.leader);
        if elected.unclean {
            // The ISR is forced to the new leader alone: whatever the old ISR had beyond its log is lost.
            record.isr = Some(vec![elected.leader]);
            if p.leader_recovery_state != LEADER_RECOVERING && leader_recovery_supported(image) {
                record.leader_recovery_state = Some(LEADER_RECOVERING);
            }
        }
    }
    if record.isr.is_none() && target_isr != p.isr.as_slice() {
        record.isr = Some(target_isr.to_vec());
    }
    let changed = record.leader.is_some() || record.isr.is_some();
    changed.then_some(record)
}

/// Whether `p`'s leader is its preferred replica (Kafka's `PartitionRegistration.hasPreferredLeader`).
pub(crate) fn has_preferred_leader(p: &PartitionImage) -> bool {
    p.replicas.first() == Some(&p.leader)
}

#[cfg(test)]
mod tests;
