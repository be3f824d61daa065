use super::*;
use crate::api::{AlterPartitionRequest, CreateTopicSpec, ReplicaAssignment};
use crate::error::codes;
use crate::ops::election::ElectionPolicy;
use crate::ops::partitions::alter_partition;
use crate::ops::test_support::*;
use crate::ops::topics::create_topics;
use crate::records::ConfigRecord;

/// Brokers 1..=4; topic "t" with partitions 0 and 1 on `replicas` (leader the first).
fn cluster(replicas: &[i32]) -> MetadataImage {
    let image = image_with_brokers(&[1, 2, 3, 4]);
    let mut spec = CreateTopicSpec::new("t", -1, -1);
    spec.assignments = vec![
        ReplicaAssignment {
            partition: 0,
            broker_ids: replicas.to_vec(),
        },
        ReplicaAssignment {
            partition: 1,
            broker_ids: replicas.to_vec(),
        },
    ];
    let out = create_topics(&image, &mut ctx(), &[spec], false);
    assert_eq!(codes(&out.response), vec![0]);
    commit(&image, &out.records)
}

fn spec(topic: &str, partition: i32, replicas: Option<&[i32]>) -> ReassignmentSpec {
    ReassignmentSpec {
        topic: topic.into(),
        partition,
        replicas: replicas.map(<[i32]>::to_vec),
    }
}

fn result_codes(out: &OpOutput<Vec<PartitionResult>>) -> Vec<i16> {
    out.response
        .iter()
        .map(|r| r.result.as_ref().map_or_else(|e| e.error_code(), |_| 0))
        .collect()
}

fn reassign_ok(image: &MetadataImage, specs: &[ReassignmentSpec]) -> MetadataImage {
    let out = alter_partition_reassignments(image, &ElectionPolicy::default(), specs, true);
    assert!(result_codes(&out).iter().all(|&c| c == 0), "{out:?}");
    commit(image, &out.records)
}

fn p0(image: &MetadataImage) -> PartitionImage {
    image.topic("t").unwrap().partitions[&0].clone()
}

/// The leader of partition 0 asks for `isr`.
fn leader_sets_isr(
    image: &MetadataImage,
    isr: &[i32],
) -> OpOutput<Result<crate::api::PartitionState, ControllerError>> {
    let p = p0(image);
    alter_partition(
        image,
        &AlterPartitionRequest {
            broker_id: p.leader,
            broker_epoch: image.broker(p.leader).unwrap().epoch,
            topic_id: image.topic("t").unwrap().id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: isr.to_vec(),
            leader_recovery_state: p.leader_recovery_state,
        },
    )
}

#[test]
fn a_move_keeps_the_old_replicas_until_the_new_ones_are_in_sync() {
    let image = cluster(&[1, 2]);
    let before = p0(&image);
    let image = reassign_ok(&image, &[spec("t", 0, Some(&[2, 3]))]);
    let p = p0(&image);
    assert_eq!(
        p.replicas,
        vec![2, 3, 1],
        "target first, then the ones leaving"
    );
    assert_eq!(p.adding_replicas, vec![3]);
    assert_eq!(p.removing_replicas, vec![1]);
    assert_eq!(p.isr, vec![1, 2]);
    assert_eq!(p.leader, 1);
    assert_eq!(p.leader_epoch, before.leader_epoch, "nobody left yet");
    assert_eq!(p.partition_epoch, before.partition_epoch + 1);
    assert_eq!(
        list_partition_reassignments(&image, None),
        vec![OngoingReassignment {
            topic: "t".into(),
            partition: 0,
            replicas: vec![2, 3, 1],
            adding: vec![3],
            removing: vec![1],
        }]
    );

    // ISR changes that do not bring 3 in leave the reassignment open.
    let out = leader_sets_isr(&image, &[1]);
    assert!(out.response.is_ok());
    let image = commit(&image, &out.records);
    assert_eq!(p0(&image).replicas, vec![2, 3, 1]);
    assert!(p0(&image).is_reassigning());

    // 3 caught up (and 2 is back): the same AlterPartition completes the move. Broker 1 led and is removed,
    // so the change is written and it is told a new leader was elected.
    let out = leader_sets_isr(&image, &[1, 2, 3]);
    assert_eq!(
        out.response.as_ref().unwrap_err().error_code(),
        codes::NEW_LEADER_ELECTED
    );
    assert_eq!(out.records.len(), 1);
    let before = p0(&image);
    let image = commit(&image, &out.records);
    let p = p0(&image);
    assert_eq!(p.replicas, vec![2, 3]);
    assert_eq!(p.isr, vec![2, 3]);
    assert_eq!(p.leader, 2);
    assert_eq!(p.leader_epoch, before.leader_epoch + 1);
    assert!(!p.is_reassigning());
    assert!(list_partition_reassignments(&image, None).is_empty());
}

#[test]
fn a_follower_swap_keeps_the_leader_and_bumps_its_epoch_on_completion() {
    let image = cluster(&[1, 2]);
    let image = reassign_ok(&image, &[spec("t", 0, Some(&[1, 3]))]);
    assert_eq!(p0(&image).replicas, vec![1, 3, 2]);
    let before = p0(&image);
    let out = leader_sets_isr(&image, &[1, 2, 3]);
    let state = out.response.clone().unwrap();
    let image = commit(&image, &out.records);
    let p = p0(&image);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![1, 3], vec![1, 3], 1)
    );
    assert_eq!(p.leader_epoch, before.leader_epoch + 1, "replica 2 left");
    assert_eq!(
        (
            state.leader,
            state.leader_epoch,
            state.partition_epoch,
            state.isr
        ),
        (1, p.leader_epoch, p.partition_epoch, vec![1, 3])
    );
}

#[test]
fn reorders_and_in_sync_removals_complete_at_once() {
    let image = cluster(&[1, 2, 3]);
    let image = reassign_ok(&image, &[spec("t", 0, Some(&[3, 2, 1]))]);
    let p = p0(&image);
    assert_eq!(
        (p.replicas.clone(), p.leader),
        (vec![3, 2, 1], 1),
        "the leader stays"
    );
    assert!(!p.is_reassigning());

    let before = p0(&image);
    let image = reassign_ok(&image, &[spec("t", 0, Some(&[3, 1]))]);
    let p = p0(&image);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone()),
        (vec![3, 1], vec![1, 3])
    );
    assert!(!p.is_reassigning());
    assert_eq!(p.leader_epoch, before.leader_epoch + 1);

    // The same assignment again writes nothing.
    let out = alter_partition_reassignments(
        &image,
        &ElectionPolicy::default(),
        &[spec("t", 0, Some(&[3, 1]))],
        true,
    );
    assert_eq!(result_codes(&out), vec![0]);
    assert!(out.records.is_empty());
}

#[test]
fn bad_targets_are_refused_with_kafkas_codes() {
    let image = cluster(&[1, 2]);
    let out = alter_partition_reassignments(
        &image,
        &ElectionPolicy::default(),
        &[
            spec("nope", 0, Some(&[1])),
            spec("t", 7, Some(&[1])),
            spec("t", 0, Some(&[])),
            spec("t", 0, Some(&[2, 2])),
            spec("t", 0, Some(&[2, 9])),
            spec("t", 0, Some(&[-1])),
            spec("t", 0, None),
            spec("t", 1, Some(&[4])),
        ],
        true,
    );
    assert_eq!(
        result_codes(&out),
        vec![
            codes::UNKNOWN_TOPIC_OR_PARTITION,
            codes::UNKNOWN_TOPIC_OR_PARTITION,
            codes::INVALID_REPLICA_ASSIGNMENT,
            codes::INVALID_REPLICA_ASSIGNMENT,
            codes::INVALID_REPLICA_ASSIGNMENT,
            codes::INVALID_REPLICA_ASSIGNMENT,
            codes::NO_REASSIGNMENT_IN_PROGRESS,
            0,
        ]
    );
    // Only the accepted one is written.
    assert_eq!(out.records.len(), 1);
    let image = commit(&image, &out.records);
    assert_eq!(
        image.topic("t").unwrap().partitions[&1].replicas,
        vec![4, 1, 2]
    );
    assert_eq!(p0(&image).replicas, vec![1, 2]);
}

#[test]
fn replication_factor_changes_need_permission() {
    let image = cluster(&[1, 2]);
    let grow = [spec("t", 0, Some(&[1, 2, 3]))];
    let out = alter_partition_reassignments(&image, &ElectionPolicy::default(), &grow, false);
    assert_eq!(result_codes(&out), vec![codes::INVALID_REPLICATION_FACTOR]);
    assert!(out.records.is_empty());
    assert_eq!(
        result_codes(&alter_partition_reassignments(
            &image,
            &ElectionPolicy::default(),
            &grow,
            true
        )),
        vec![0]
    );
    // While {1,2} -> {2,3} is in progress the replication factor is still 2 (replicas [2,3,1] minus adding).
    let image = reassign_ok(&image, &[spec("t", 0, Some(&[2, 3]))]);
    let out = alter_partition_reassignments(
        &image,
        &ElectionPolicy::default(),
        &[spec("t", 0, Some(&[3, 4]))],
        false,
    );
    assert_eq!(result_codes(&out), vec![0]);
}

#[test]
fn cancelling_drops_the_adding_replicas_and_keeps_the_removing_ones() {
    let image = cluster(&[1, 2]);
    let image = reassign_ok(&image, &[spec("t", 0, Some(&[3, 4]))]);
    assert_eq!(p0(&image).replicas, vec![3, 4, 1, 2]);
    let out = leader_sets_isr(&image, &[1, 2, 3]);
    let image = commit(&image, &out.records);
    assert!(p0(&image).is_reassigning(), "4 is not in sync yet");
    let image = reassign_ok(&image, &[spec("t", 0, None)]);
    let p = p0(&image);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![1, 2], vec![1, 2], 1)
    );
    assert!(!p.is_reassigning());
    assert_eq!(
        result_codes(&alter_partition_reassignments(
            &image,
            &ElectionPolicy::default(),
            &[spec("t", 0, None)],
            true
        )),
        vec![codes::NO_REASSIGNMENT_IN_PROGRESS]
    );
}

#[test]
fn a_cancel_that_needs_an_unclean_election_needs_the_config() {
    let image = cluster(&[1, 2]);
    let image = reassign_ok(&image, &[spec("t", 0, Some(&[3]))]);
    let topic_id = image.topic("t").unwrap().id;
    // Only the added replica is in sync and leads (say 1 and 2 failed after 3 caught up).
    let image = commit(
        &image,
        &[MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id,
            partition: 0,
            leader: Some(3),
            isr: Some(vec![3]),
            ..PartitionChangeRecord::default()
        })],
    );
    let out = alter_partition_reassignments(
        &image,
        &ElectionPolicy::default(),
        &[spec("t", 0, None)],
        true,
    );
    assert_eq!(result_codes(&out), vec![codes::INVALID_REPLICA_ASSIGNMENT]);
    let image = commit(
        &image,
        &[MetadataRecord::Config(ConfigRecord {
            resource: crate::records::ConfigResource::topic("t"),
            name: crate::ops::election::UNCLEAN_LEADER_ELECTION_ENABLE.into(),
            value: Some("true".into()),
        })],
    );
    let image = reassign_ok(&image, &[spec("t", 0, None)]);
    let p = p0(&image);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![1, 2], vec![1], 1)
    );
}

#[test]
fn listing_names_only_partitions_being_reassigned() {
    let image = cluster(&[1, 2]);
    let image = reassign_ok(&image, &[spec("t", 0, Some(&[3, 4]))]);
    let query = |topic: &str, partitions: &[i32]| ReassignmentQuery {
        topic: topic.into(),
        partitions: partitions.to_vec(),
    };
    let listed = list_partition_reassignments(
        &image,
        Some(&[query("missing", &[0]), query("t", &[1, 0, 5])]),
    );
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].partition, listed[0].adding.clone()),
        (0, vec![3, 4])
    );
    assert!(list_partition_reassignments(&image, Some(&[query("t", &[1])])).is_empty());
}
