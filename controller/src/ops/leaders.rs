//! Leader moves that are not caused by a broker coming or going: the ElectLeaders API (Kafka's
//! `ReplicationControlManager.electLeaders`), the periodic preferred-leader rebalance
//! (`auto.leader.rebalance.enable`), and the unclean elections that follow switching
//! `unclean.leader.election.enable` on. Who leads is always decided by [`super::election`].

use std::collections::{BTreeMap, HashSet};

use uuid::Uuid;

use super::election::{self, Acceptor, Election, ElectionPolicy};
use super::OpOutput;
use crate::api::{ElectLeadersTopic, ElectionType, PartitionElection, TopicElection};
use crate::error::ControllerError;
use crate::image::{MetadataImage, TopicImage, NO_LEADER};
use crate::records::MetadataRecord;

/// Most partition changes one rebalance pass writes in one batch (Kafka's `maxElectionsPerImbalance` is
/// 1000 per event; one raft entry of this many leader changes stays well under a megabyte). The caller
/// runs passes back to back while a pass reports more to do, so any number of partitions can move.
pub const MAX_MOVES_PER_BATCH: usize = 10_000;

/// ElectLeaders. With `topics` = `None` every partition is tried and only those where something happened (an
/// election or an error other than ELECTION_NOT_NEEDED) are reported, every topic listed, as Kafka does.
pub(crate) fn elect_leaders(
    image: &MetadataImage,
    election_type: ElectionType,
    topics: Option<&[ElectLeadersTopic]>,
) -> OpOutput<Vec<TopicElection>> {
    let mut records = Vec::new();
    let mut done = HashSet::new();
    let mut elect = |topic: &str, partition: i32| {
        if !done.insert((topic.to_owned(), partition)) {
            // Named twice: the first mention already elected (or failed) and the records are not applied
            // yet; a second record would bump the epochs twice.
            return Err(ControllerError::ElectionNotNeeded(format!(
                "Partition {topic}-{partition} is listed more than once."
            )));
        }
        elect_one(image, election_type, topic, partition).map(|r| records.extend(r))
    };
    let response = match topics {
        Some(topics) => topics
            .iter()
            .map(|t| TopicElection {
                topic: t.topic.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|&partition| PartitionElection {
                        partition,
                        result: elect(&t.topic, partition),
                    })
                    .collect(),
            })
            .collect(),
        None => image
            .topics_by_name()
            .iter()
            .map(|(name, id)| TopicElection {
                topic: name.clone(),
                partitions: image
                    .topic_by_id(id)
                    .map(|t| t.partitions.keys().copied().collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|partition| PartitionElection {
                        partition,
                        result: elect(name, partition),
                    })
                    .filter(|p| !matches!(p.result, Err(ControllerError::ElectionNotNeeded(_))))
                    .collect(),
            })
            .collect(),
    };
    OpOutput { records, response }
}

/// One partition of ElectLeaders (Kafka's `electLeader`). An UNCLEAN election is allowed whatever the
/// topic's config says: asking for one is the operator's decision.
fn elect_one(
    image: &MetadataImage,
    election_type: ElectionType,
    topic: &str,
    partition: i32,
) -> Result<Option<MetadataRecord>, ControllerError> {
    let unknown = || {
        ControllerError::UnknownTopicOrPartition(format!(
            "No such partition as {topic}-{partition}"
        ))
    };
    let t = image.topic(topic).ok_or_else(unknown)?;
    let p = t.partitions.get(&partition).ok_or_else(unknown)?;
    let election = match election_type {
        ElectionType::Preferred if election::has_preferred_leader(p) => {
            return Err(ControllerError::ElectionNotNeeded(format!(
                "The preferred replica {} already leads {topic}-{partition}.",
                p.leader
            )))
        }
        ElectionType::Unclean if p.leader != NO_LEADER => {
            return Err(ControllerError::ElectionNotNeeded(format!(
                "{topic}-{partition} already has leader {}.",
                p.leader
            )))
        }
        ElectionType::Preferred => Election::Preferred,
        ElectionType::Unclean => Election::Unclean,
    };
    let acceptor = Acceptor::new(image);
    match election::change(image, t.id, partition, p, &p.isr, election, &acceptor) {
        Some(record) => Ok(Some(MetadataRecord::PartitionChange(record))),
        None if election_type == ElectionType::Preferred => {
            Err(ControllerError::PreferredLeaderNotAvailable(format!(
                "The preferred replica of {topic}-{partition} is not live and in sync."
            )))
        }
        None => Err(ControllerError::EligibleLeadersNotAvailable(format!(
            "No live replica of {topic}-{partition} can lead."
        ))),
    }
}

/// What one rebalance pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebalancePass {
    /// Partition changes written.
    pub moved: usize,
    /// Whether the pass stopped at its batch limit with more partitions to move.
    pub more: bool,
}

/// For one broker: how many partitions prefer it as leader, and those of them it does not lead.
type PreferredOf<'a> = (usize, Vec<(&'a TopicImage, i32)>);

/// The periodic preferred-leader rebalance (`auto.leader.rebalance.enable`). For each broker, its imbalance
/// ratio is the share of the partitions it is preferred leader of that another replica (or nobody) leads;
/// for every broker whose ratio exceeds `percentage`% (`leader.imbalance.per.broker.percentage`), its
/// partitions go back to it where it is live and in the ISR (a PREFERRED election, as Kafka's
/// `maybeBalancePartitionLeaders`). At most `max_moves` changes per pass.
pub(crate) fn rebalance_leaders(
    image: &MetadataImage,
    percentage: u32,
    max_moves: usize,
) -> OpOutput<RebalancePass> {
    let mut per_broker: BTreeMap<i32, PreferredOf<'_>> = BTreeMap::new();
    for topic in image.topics() {
        for (&partition, p) in &topic.partitions {
            let Some(&preferred) = p.replicas.first() else {
                continue;
            };
            let entry = per_broker.entry(preferred).or_default();
            entry.0 += 1;
            if p.leader != preferred {
                entry.1.push((topic, partition));
            }
        }
    }
    let acceptor = Acceptor::new(image);
    let mut records = Vec::new();
    let mut more = false;
    'brokers: for (broker, (total, imbalanced)) in per_broker {
        // ratio > percentage / 100, in integers.
        let over = imbalanced.len() as u128 * 100 > total as u128 * u128::from(percentage);
        if imbalanced.is_empty() || !over || !acceptor.accepts(broker) {
            continue;
        }
        for (topic, partition) in imbalanced {
            let p = &topic.partitions[&partition];
            let Some(record) = election::change(
                image,
                topic.id,
                partition,
                p,
                &p.isr,
                Election::Preferred,
                &acceptor,
            ) else {
                continue;
            };
            if records.len() == max_moves {
                more = true;
                break 'brokers;
            }
            records.push(MetadataRecord::PartitionChange(record));
        }
    }
    let moved = records.len();
    OpOutput {
        records,
        response: RebalancePass { moved, more },
    }
}

/// Unclean elections for every leaderless partition of the topics that allow them in `image` (Kafka's
/// `maybeElectUncleanLeaders`); used when a config change switched `unclean.leader.election.enable` on.
/// `only` limits the topics looked at (`None`: all).
pub(crate) fn elect_unclean_leaderless(
    image: &MetadataImage,
    policy: &ElectionPolicy,
    only: Option<&HashSet<Uuid>>,
) -> Vec<MetadataRecord> {
    let acceptor = Acceptor::new(image);
    let mut records = Vec::new();
    for topic in image.topics() {
        if only.is_some_and(|ids| !ids.contains(&topic.id)) {
            continue;
        }
        let leaderless = topic
            .partitions
            .iter()
            .filter(|(_, p)| p.leader == NO_LEADER);
        let mut allowed = None;
        for (&partition, p) in leaderless {
            if !*allowed.get_or_insert_with(|| policy.unclean_enabled(image, &topic.name)) {
                break;
            }
            records.extend(
                election::change(
                    image,
                    topic.id,
                    partition,
                    p,
                    &p.isr,
                    Election::Unclean,
                    &acceptor,
                )
                .map(MetadataRecord::PartitionChange),
            );
        }
    }
    records
}

#[cfg(test)]
mod tests;
