//! AlterPartition: a partition leader's ISR change, after Kafka's `ReplicationControlManager.alterPartition`.
//!
//! Only the current leader, in its current leader epoch, with the partition epoch its view came from, may
//! change the ISR; otherwise the request is refused with Kafka's codes (STALE_BROKER_EPOCH, INVALID_REQUEST,
//! FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION), so a deposed leader or one acting on an outdated ISR cannot
//! undo a change the controller made meanwhile (such as fencing a broker out of the ISR). Members it adds
//! must be assigned replicas on unfenced brokers not shutting down (INELIGIBLE_REPLICA): a fenced broker
//! must not count towards `min.insync.replicas`. The request also carries the leader recovery state: a leader
//! elected uncleanly (RECOVERING) reports RECOVERED this way; RECOVERING with more than the leader in the ISR,
//! or going back from RECOVERED to RECOVERING, is INVALID_REQUEST (Kafka's `validateAlterPartitionData`).

use std::collections::HashSet;

use super::partition_change::PartitionChange;
use super::OpOutput;
use crate::api::{AlterPartitionRequest, PartitionState};
use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionImage};
use crate::records::{MetadataRecord, PartitionChangeRecord, LEADER_RECOVERED, LEADER_RECOVERING};

type AlterOutput = OpOutput<Result<PartitionState, ControllerError>>;

fn refused(err: ControllerError) -> AlterOutput {
    OpOutput {
        records: Vec::new(),
        response: Err(err),
    }
}

/// The ISR change goes through [`PartitionChange`], so an ISR that now holds every replica a reassignment adds
/// completes that reassignment in the same record (Kafka's `alterPartition`). If that removed the asking
/// leader, the change is still written but the leader is answered NEW_LEADER_ELECTED, as Kafka does.
pub(crate) fn alter_partition(image: &MetadataImage, req: &AlterPartitionRequest) -> AlterOutput {
    let (topic, current) = match validate(image, req) {
        Err(e) => return refused(e),
        Ok(found) => found,
    };
    let mut old = current.isr.clone();
    old.sort_unstable();
    let mut new = req.new_isr.clone();
    new.sort_unstable();
    // The same members in another order change nothing.
    let target = if old == new {
        current.isr.clone()
    } else {
        req.new_isr.clone()
    };
    let mut record = PartitionChange::new(image, req.topic_id, req.partition, current)
        .target_isr(target)
        .build();
    // A leader elected uncleanly reports RECOVERED once it is sure of its log (KIP-704).
    if current.leader_recovery_state != req.leader_recovery_state {
        record
            .get_or_insert_with(|| PartitionChangeRecord {
                topic_id: req.topic_id,
                partition: req.partition,
                ..PartitionChangeRecord::default()
            })
            .leader_recovery_state = Some(req.leader_recovery_state);
    }
    let mut after = current.clone();
    let records = match record {
        Some(record) => {
            after.merge(&record);
            vec![MetadataRecord::PartitionChange(record)]
        }
        // Nothing to write: answer the state as it is, as Kafka does.
        None => Vec::new(),
    };
    let response = if after.leader == req.broker_id {
        Ok(PartitionState {
            leader: after.leader,
            leader_epoch: after.leader_epoch,
            partition_epoch: after.partition_epoch,
            isr: after.isr,
        })
    } else {
        tracing::info!(
            topic,
            partition = req.partition,
            old_leader = req.broker_id,
            new_leader = after.leader,
            "AlterPartition completed a reassignment that moved the leadership"
        );
        Err(ControllerError::NewLeaderElected(format!(
            "The ISR change completed a reassignment of {topic}-{}: broker {} now leads, not {}.",
            req.partition, after.leader, req.broker_id
        )))
    };
    OpOutput { records, response }
}

/// A batch of AlterPartition items, as Kafka's AlterPartitionManager sends every pending ISR change of a
/// leader in one request: each item is decided on its own against `image` (one refusal does not refuse the
/// others) and the accepted changes are written together, in one commit. Partitions differ between items: a
/// leader has at most one change in flight per partition, so an item naming a partition an earlier item of
/// the same batch already named is refused (INVALID_REQUEST) rather than decided from a state the first
/// change is about to replace.
pub(crate) fn alter_partitions(
    image: &MetadataImage,
    reqs: &[AlterPartitionRequest],
) -> OpOutput<Vec<Result<PartitionState, ControllerError>>> {
    let mut seen = HashSet::with_capacity(reqs.len());
    let mut records = Vec::new();
    let mut responses = Vec::with_capacity(reqs.len());
    for req in reqs {
        if !seen.insert((req.topic_id, req.partition)) {
            responses.push(Err(ControllerError::InvalidRequest(format!(
                "Partition {} of topic {} appears more than once in one AlterPartition request.",
                req.partition, req.topic_id
            ))));
            continue;
        }
        let out = alter_partition(image, req);
        records.extend(out.records);
        responses.push(out.response);
    }
    OpOutput {
        records,
        response: responses,
    }
}

/// The topic name and the partition as it is, if the request may change it.
fn validate<'a>(
    image: &'a MetadataImage,
    req: &AlterPartitionRequest,
) -> Result<(&'a str, &'a PartitionImage), ControllerError> {
    let broker = image.broker(req.broker_id).ok_or_else(|| {
        ControllerError::BrokerIdNotRegistered(format!(
            "Broker {} is not registered.",
            req.broker_id
        ))
    })?;
    if broker.epoch != req.broker_epoch {
        return Err(ControllerError::StaleBrokerEpoch(format!(
            "Expected broker epoch {}, but got broker epoch {}.",
            broker.epoch, req.broker_epoch
        )));
    }
    let topic = image.topic_by_id(&req.topic_id).ok_or_else(|| {
        ControllerError::UnknownTopicId(format!("No topic with id {}.", req.topic_id))
    })?;
    let p = topic.partitions.get(&req.partition).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!(
            "Partition {}-{} does not exist.",
            topic.name, req.partition
        ))
    })?;
    if p.leader != req.broker_id {
        return Err(ControllerError::InvalidRequest(format!(
            "Broker {} is not the leader of {}-{} (the leader is {}).",
            req.broker_id, topic.name, req.partition, p.leader
        )));
    }
    if p.leader_epoch != req.leader_epoch {
        return Err(ControllerError::FencedLeaderEpoch(format!(
            "The request leader epoch {} does not match the current leader epoch {} of {}-{}.",
            req.leader_epoch, p.leader_epoch, topic.name, req.partition
        )));
    }
    if p.partition_epoch != req.partition_epoch {
        return Err(ControllerError::InvalidUpdateVersion(format!(
            "The request partition epoch {} does not match the current partition epoch {} of {}-{}.",
            req.partition_epoch, p.partition_epoch, topic.name, req.partition
        )));
    }
    let mut seen = HashSet::new();
    for &id in &req.new_isr {
        if !seen.insert(id) {
            return Err(ControllerError::InvalidRequest(format!(
                "The new ISR {:?} names broker {id} twice.",
                req.new_isr
            )));
        }
        if !p.replicas.contains(&id) {
            return Err(ControllerError::InvalidRequest(format!(
                "The new ISR {:?} names broker {id}, which is not a replica of {}-{}.",
                req.new_isr, topic.name, req.partition
            )));
        }
    }
    if !req.new_isr.contains(&p.leader) {
        return Err(ControllerError::InvalidRequest(format!(
            "The new ISR {:?} does not contain the leader {}.",
            req.new_isr, p.leader
        )));
    }
    match req.leader_recovery_state {
        LEADER_RECOVERING if req.new_isr.len() > 1 => {
            return Err(ControllerError::InvalidRequest(format!(
                "The ISR {:?} of {}-{} has more than one replica while the leader is still recovering \
                 from an unclean leader election.",
                req.new_isr, topic.name, req.partition
            )))
        }
        LEADER_RECOVERING if p.leader_recovery_state == LEADER_RECOVERED => {
            return Err(ControllerError::InvalidRequest(format!(
                "The leader recovery state of {}-{} cannot change from RECOVERED to RECOVERING.",
                topic.name, req.partition
            )))
        }
        LEADER_RECOVERED | LEADER_RECOVERING => {}
        other => {
            return Err(ControllerError::InvalidRequest(format!(
                "Unknown leader recovery state {other}."
            )))
        }
    }
    // Only members being added must be eligible; one already in the ISR may still be removed later.
    for &id in &req.new_isr {
        let eligible = image
            .broker(id)
            .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown);
        if !p.isr.contains(&id) && !eligible {
            return Err(ControllerError::IneligibleReplica(format!(
                "Broker {id} cannot join the ISR of {}-{}: it is fenced, shutting down or unregistered.",
                topic.name, req.partition
            )));
        }
    }
    Ok((&topic.name, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CreateTopicSpec;
    use crate::error::codes;
    use crate::ops::brokers::fence_broker;
    use crate::ops::election::ElectionPolicy;

    fn policy() -> ElectionPolicy {
        ElectionPolicy::default()
    }
    use crate::ops::test_support::*;
    use crate::ops::topics::create_topics;

    /// Brokers 1..=3, topic "t" with one RF-3 partition.
    fn cluster() -> MetadataImage {
        cluster_of(1)
    }

    /// Brokers 1..=3, topic "t" with `partitions` RF-3 partitions.
    fn cluster_of(partitions: i32) -> MetadataImage {
        let image = image_with_brokers(&[1, 2, 3]);
        let out = create_topics(
            &image,
            &mut ctx(),
            &[CreateTopicSpec::new("t", partitions, 3)],
            false,
        );
        commit(&image, &out.records)
    }

    fn request(image: &MetadataImage, new_isr: &[i32]) -> AlterPartitionRequest {
        let topic = image.topic("t").unwrap();
        let p = &topic.partitions[&0];
        AlterPartitionRequest {
            broker_id: p.leader,
            broker_epoch: image.broker(p.leader).unwrap().epoch,
            topic_id: topic.id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: new_isr.to_vec(),
            leader_recovery_state: LEADER_RECOVERED,
        }
    }

    fn code(out: &AlterOutput) -> i16 {
        out.response.as_ref().map_or_else(|e| e.error_code(), |_| 0)
    }

    #[test]
    fn shrink_then_expand_writes_partition_changes() {
        let image = cluster();
        let p = image.topic("t").unwrap().partitions[&0].clone();
        let leader = p.leader;
        let follower = *p.replicas.iter().find(|&&b| b != leader).unwrap();
        let shrunk: Vec<i32> = p.isr.iter().copied().filter(|&b| b != follower).collect();
        let out = alter_partition(&image, &request(&image, &shrunk));
        assert_eq!(code(&out), 0);
        assert_eq!(out.records.len(), 1);
        let image = commit(&image, &out.records);
        let after = &image.topic("t").unwrap().partitions[&0];
        assert_eq!(after.isr, shrunk);
        assert_eq!(after.leader_epoch, p.leader_epoch, "the leader stays");
        assert_eq!(after.partition_epoch, p.partition_epoch + 1);
        let reply = out.response.unwrap();
        assert_eq!(
            (reply.partition_epoch, reply.isr),
            (after.partition_epoch, shrunk.clone())
        );
        // Back in.
        let out = alter_partition(&image, &request(&image, &p.isr));
        assert_eq!(code(&out), 0);
        let image = commit(&image, &out.records);
        assert_eq!(image.topic("t").unwrap().partitions[&0].isr, p.isr);
        // The same ISR again: nothing written.
        let out = alter_partition(&image, &request(&image, &p.isr));
        assert_eq!(code(&out), 0);
        assert!(out.records.is_empty());
    }

    #[test]
    fn stale_epochs_and_bad_isrs_are_refused() {
        let image = cluster();
        let p = image.topic("t").unwrap().partitions[&0].clone();
        let leader = p.leader;
        let others: Vec<i32> = p
            .replicas
            .iter()
            .copied()
            .filter(|&b| b != leader)
            .collect();

        let mut r = request(&image, &[leader]);
        r.leader_epoch -= 1;
        assert_eq!(
            code(&alter_partition(&image, &r)),
            codes::FENCED_LEADER_EPOCH
        );
        let mut r = request(&image, &[leader]);
        r.partition_epoch += 1;
        assert_eq!(
            code(&alter_partition(&image, &r)),
            codes::INVALID_UPDATE_VERSION
        );
        let mut r = request(&image, &[leader]);
        r.broker_epoch += 100;
        assert_eq!(
            code(&alter_partition(&image, &r)),
            codes::STALE_BROKER_EPOCH
        );
        let mut r = request(&image, &[others[0]]);
        r.broker_id = others[0];
        r.broker_epoch = image.broker(others[0]).unwrap().epoch;
        assert_eq!(code(&alter_partition(&image, &r)), codes::INVALID_REQUEST);
        for bad in [vec![leader, 9], vec![leader, leader], others.clone()] {
            assert_eq!(
                code(&alter_partition(&image, &request(&image, &bad))),
                codes::INVALID_REQUEST,
                "{bad:?}"
            );
        }
        let mut r = request(&image, &[leader]);
        r.topic_id = uuid::Uuid::from_u128(4242);
        assert_eq!(code(&alter_partition(&image, &r)), codes::UNKNOWN_TOPIC_ID);
        let mut r = request(&image, &[leader]);
        r.partition = 5;
        assert_eq!(
            code(&alter_partition(&image, &r)),
            codes::UNKNOWN_TOPIC_OR_PARTITION
        );
    }

    #[test]
    fn an_uncleanly_elected_leader_reports_recovered() {
        let image = cluster();
        let topic = image.topic("t").unwrap();
        let (id, leader) = (topic.id, topic.partitions[&0].leader);
        // As an unclean election leaves it: the leader alone in the ISR, recovering.
        let image = commit(
            &image,
            &[MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: id,
                partition: 0,
                isr: Some(vec![leader]),
                leader_recovery_state: Some(LEADER_RECOVERING),
                ..PartitionChangeRecord::default()
            })],
        );
        let mut still = request(&image, &[leader]);
        still.leader_recovery_state = LEADER_RECOVERING;
        let out = alter_partition(&image, &still);
        assert_eq!(code(&out), 0);
        assert!(out.records.is_empty(), "nothing changes");
        let mut grow = request(&image, &image.topic("t").unwrap().partitions[&0].replicas);
        grow.leader_recovery_state = LEADER_RECOVERING;
        assert_eq!(
            code(&alter_partition(&image, &grow)),
            codes::INVALID_REQUEST
        );
        let mut bad = request(&image, &[leader]);
        bad.leader_recovery_state = 7;
        assert_eq!(code(&alter_partition(&image, &bad)), codes::INVALID_REQUEST);
        // Same ISR, RECOVERED: only the recovery state changes.
        let out = alter_partition(&image, &request(&image, &[leader]));
        assert_eq!(code(&out), 0);
        let MetadataRecord::PartitionChange(change) = &out.records[0] else {
            panic!("{:?}", out.records)
        };
        assert_eq!(
            (change.isr.clone(), change.leader_recovery_state),
            (None, Some(LEADER_RECOVERED))
        );
        let image = commit(&image, &out.records);
        assert_eq!(
            image.topic("t").unwrap().partitions[&0].leader_recovery_state,
            LEADER_RECOVERED
        );
        // And never back.
        let mut back = request(&image, &[leader]);
        back.leader_recovery_state = LEADER_RECOVERING;
        assert_eq!(
            code(&alter_partition(&image, &back)),
            codes::INVALID_REQUEST
        );
    }

    #[test]
    fn a_fenced_broker_cannot_join_the_isr() {
        let image = cluster();
        let p = image.topic("t").unwrap().partitions[&0].clone();
        let leader = p.leader;
        let other = *p.replicas.iter().find(|&&b| b != leader).unwrap();
        // Fencing takes it out of the ISR.
        let fenced = fence_broker(&image, &policy(), other);
        let image = commit(&image, &fenced.records);
        let isr = image.topic("t").unwrap().partitions[&0].isr.clone();
        assert!(!isr.contains(&other));
        let mut wanted = isr.clone();
        wanted.push(other);
        assert_eq!(
            code(&alter_partition(&image, &request(&image, &wanted))),
            codes::INELIGIBLE_REPLICA
        );
        assert!(alter_partition(&image, &request(&image, &wanted))
            .records
            .is_empty());
    }

    #[test]
    fn a_batch_decides_each_item_and_writes_the_accepted_ones_together() {
        let image = cluster_of(3);
        let topic = image.topic("t").unwrap();
        let item = |partition: i32, shrink: bool| {
            let p = &topic.partitions[&partition];
            let follower = *p.replicas.iter().find(|&&b| b != p.leader).unwrap();
            let new_isr: Vec<i32> = if shrink {
                p.isr.iter().copied().filter(|&b| b != follower).collect()
            } else {
                p.isr.clone()
            };
            AlterPartitionRequest {
                broker_id: p.leader,
                broker_epoch: image.broker(p.leader).unwrap().epoch,
                topic_id: topic.id,
                partition,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                new_isr,
                leader_recovery_state: LEADER_RECOVERED,
            }
        };
        let mut stale = item(1, true);
        stale.partition_epoch -= 1;
        let batch = vec![item(0, true), stale, item(2, true), item(0, false)];
        let out = alter_partitions(&image, &batch);
        let codes: Vec<i16> = out
            .response
            .iter()
            .map(|r| r.as_ref().map_or_else(|e| e.error_code(), |_| 0))
            .collect();
        assert_eq!(
            codes,
            vec![0, codes::INVALID_UPDATE_VERSION, 0, codes::INVALID_REQUEST]
        );
        assert_eq!(
            out.records.len(),
            2,
            "partitions 0 and 2 change, in one commit"
        );
        let after = commit(&image, &out.records);
        let t = after.topic("t").unwrap();
        assert_eq!(t.partitions[&0].isr.len(), 2);
        assert_eq!(
            t.partitions[&1].isr.len(),
            3,
            "the refused item changed nothing"
        );
        assert_eq!(t.partitions[&2].isr.len(), 2);
    }
}
