use super::*;
use crate::api::CreateTopicSpec;
use crate::ops::brokers::{fence_broker, unfence_broker, unregister_broker};
use crate::ops::test_support::*;
use crate::ops::topics::create_topics;
use crate::records::{ConfigRecord, MetadataRecord, LEADER_RECOVERED};

fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionImage {
    PartitionImage {
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader,
        ..PartitionImage::default()
    }
}

#[test]
fn online_keeps_a_valid_leader_else_first_in_sync_replica() {
    let image = image_with_brokers(&[1, 2, 3]);
    let all = Acceptor::new(&image);
    let p = partition(&[1, 2, 3], &[1, 2, 3], 2);
    assert_eq!(elect(&p, &p.isr, Election::Online, &all).leader, 2);
    // Leader 2 leaving the ISR: the first replica in assignment order that is in sync.
    assert_eq!(elect(&p, &[1, 3], Election::Online, &all).leader, 1);
    let without_1 = Acceptor::new(&image).excluding(1);
    assert_eq!(elect(&p, &[1, 3], Election::Online, &without_1).leader, 3);
    // Nobody in the ISR can lead: no leader, even though 2 and 3 are live.
    let p = partition(&[1, 2, 3], &[1], 1);
    let e = elect(&p, &[1], Election::Online, &without_1);
    assert_eq!((e.leader, e.unclean), (NO_LEADER, false));
}

#[test]
fn preferred_takes_the_first_replica_only_when_it_is_in_sync_and_live() {
    let image = image_with_brokers(&[1, 2, 3]);
    let all = Acceptor::new(&image);
    let p = partition(&[1, 2, 3], &[1, 2, 3], 2);
    assert_eq!(elect(&p, &p.isr, Election::Preferred, &all).leader, 1);
    // Not in the ISR: the current leader stays.
    let p = partition(&[1, 2, 3], &[2, 3], 2);
    assert_eq!(elect(&p, &p.isr, Election::Preferred, &all).leader, 2);
    // In the ISR but not live: the current leader stays.
    let p = partition(&[1, 2, 3], &[1, 2, 3], 2);
    let without_1 = Acceptor::new(&image).excluding(1);
    assert_eq!(elect(&p, &p.isr, Election::Preferred, &without_1).leader, 2);
}

#[test]
fn unclean_elects_outside_the_isr_only_when_no_isr_member_can_lead() {
    let image = image_with_brokers(&[1, 2, 3]);
    let without_1 = Acceptor::new(&image).excluding(1);
    let p = partition(&[1, 2, 3], &[1, 3], NO_LEADER);
    // An in-sync replica is live: a clean election even when unclean is allowed.
    let e = elect(&p, &p.isr, Election::Unclean, &without_1);
    assert_eq!((e.leader, e.unclean), (3, false));
    let p = partition(&[1, 2, 3], &[1], NO_LEADER);
    let e = elect(&p, &p.isr, Election::Unclean, &without_1);
    assert_eq!((e.leader, e.unclean), (2, true));
    let none = Acceptor::new(&image).excluding(1);
    let p = partition(&[1], &[1], NO_LEADER);
    assert_eq!(
        elect(&p, &p.isr, Election::Unclean, &none).leader,
        NO_LEADER
    );
}

#[test]
fn acceptor_honours_fencing_controlled_shutdown_and_overrides() {
    let mut records = vec![register(1), register(2), register(3)];
    if let MetadataRecord::RegisterBroker(b) = &mut records[1] {
        b.fenced = true;
    }
    if let MetadataRecord::RegisterBroker(b) = &mut records[2] {
        b.in_controlled_shutdown = true;
    }
    let image = MetadataImage::empty("c").apply(0, &records);
    let a = Acceptor::new(&image);
    assert!(a.accepts(1) && !a.accepts(2) && !a.accepts(3) && !a.accepts(9));
    assert!(a.including(2).accepts(2));
    assert!(!a.excluding(1).accepts(1));
}

#[test]
fn unclean_change_forces_the_isr_and_marks_recovering() {
    let image = image_with_brokers(&[1, 2]);
    let p = partition(&[1, 2], &[1], 1);
    let acceptor = Acceptor::new(&image).excluding(1);
    let id = Uuid::from_u128(5);
    let record = change(&image, id, 0, &p, &[], Election::Unclean, &acceptor).unwrap();
    assert_eq!(record.leader, Some(2));
    assert_eq!(record.isr, Some(vec![2]));
    assert_eq!(record.leader_recovery_state, Some(LEADER_RECOVERING));
    // Disabled: the ISR keeps its last member and nobody leads.
    let record = change(&image, id, 0, &p, &[], Election::Online, &acceptor).unwrap();
    assert_eq!((record.leader, record.isr), (Some(NO_LEADER), None));
    // A metadata.version before KIP-704 has no recovery state.
    let old = image.apply(
        image.next_offset(),
        &[MetadataRecord::FeatureLevel {
            name: METADATA_VERSION.into(),
            level: 2,
        }],
    );
    let acceptor = Acceptor::new(&old).excluding(1);
    let record = change(&old, id, 0, &p, &[], Election::Unclean, &acceptor).unwrap();
    assert_eq!(
        (record.leader, record.leader_recovery_state),
        (Some(2), None)
    );
    // Nothing to change: no record.
    let all = Acceptor::new(&image);
    assert!(change(&image, id, 0, &p, &p.isr, Election::Online, &all).is_none());
    assert_eq!(LEADER_RECOVERED, 0);
}

#[test]
fn unclean_setting_precedence_topic_then_node_then_cluster_then_static() {
    let image = image_with_brokers(&[1]);
    let image = commit(
        &image,
        &create_topics(
            &image,
            &mut ctx(),
            &[CreateTopicSpec::new("t", 1, 1)],
            false,
        )
        .records,
    );
    let policy = |default| ElectionPolicy {
        node_id: 7,
        unclean_leader_election_enable: default,
    };
    assert!(!policy(false).unclean_enabled(&image, "t"));
    assert!(policy(true).unclean_enabled(&image, "t"));
    let set = |image: &MetadataImage, resource: ConfigResource, value: &str| {
        commit(
            image,
            &[MetadataRecord::Config(ConfigRecord {
                resource,
                name: UNCLEAN_LEADER_ELECTION_ENABLE.into(),
                value: Some(value.into()),
            })],
        )
    };
    let image = set(&image, ConfigResource::broker(""), "TRUE");
    assert!(policy(false).unclean_enabled(&image, "t"));
    let image = set(&image, ConfigResource::broker("7"), "false");
    assert!(!policy(true).unclean_enabled(&image, "t"));
    // Another node's override does not count.
    let image = set(&image, ConfigResource::broker("8"), "true");
    assert!(!policy(true).unclean_enabled(&image, "t"));
    let image = set(&image, ConfigResource::topic("t"), "true");
    assert!(policy(false).unclean_enabled(&image, "t"));
    assert_eq!(
        policy(false).online_election(&image, "t"),
        Election::Unclean
    );
}

/// Brokers 1, 2 and an RF-2 topic "t" (replicas [1,2] for partition 0), optionally with unclean elections.
fn rf2(unclean: bool) -> (MetadataImage, ElectionPolicy) {
    let image = image_with_brokers(&[1, 2]);
    let spec = CreateTopicSpec::new("t", 1, 2).with_config(
        UNCLEAN_LEADER_ELECTION_ENABLE,
        if unclean { "true" } else { "false" },
    );
    let out = create_topics(&image, &mut ctx(), &[spec], false);
    (commit(&image, &out.records), ElectionPolicy::default())
}

fn state(image: &MetadataImage) -> (i32, Vec<i32>, i8) {
    let p = &image.topic("t").unwrap().partitions[&0];
    (p.leader, p.isr.clone(), p.leader_recovery_state)
}

/// The scenario of the replication issue: the follower leaves the ISR, the leader dies, the ex-follower
/// comes back alone.
fn follower_out_leader_dead(unclean: bool) -> (MetadataImage, ElectionPolicy, i32, i32) {
    let (image, policy) = rf2(unclean);
    let (leader, _, _) = state(&image);
    let follower = if leader == 1 { 2 } else { 1 };
    let image = commit(&image, &fence_broker(&image, &policy, follower).records);
    assert_eq!(state(&image), (leader, vec![leader], 0));
    let image = commit(&image, &fence_broker(&image, &policy, leader).records);
    (image, policy, leader, follower)
}

#[test]
fn fencing_the_last_isr_member_elects_outside_the_isr_only_when_enabled() {
    // Disabled: leaderless until an ISR member is back, even when the ex-follower returns.
    let (image, policy, leader, follower) = follower_out_leader_dead(false);
    assert_eq!(state(&image), (NO_LEADER, vec![leader], 0));
    let image = commit(&image, &unfence_broker(&image, &policy, follower).records);
    assert_eq!(state(&image), (NO_LEADER, vec![leader], 0));
    let image = commit(&image, &unfence_broker(&image, &policy, leader).records);
    assert_eq!(state(&image), (leader, vec![leader], 0));

    // Enabled: the returning ex-follower leads, alone in the ISR, recovering.
    let (image, policy, leader, follower) = follower_out_leader_dead(true);
    assert_eq!(state(&image), (NO_LEADER, vec![leader], 0));
    let image = commit(&image, &unfence_broker(&image, &policy, follower).records);
    assert_eq!(state(&image), (follower, vec![follower], LEADER_RECOVERING));
}

#[test]
fn fencing_a_leader_with_a_live_out_of_sync_replica_elects_it_when_enabled() {
    let image = image_with_brokers(&[1, 2, 3]);
    let spec = CreateTopicSpec::new("t", 1, 3).with_config(UNCLEAN_LEADER_ELECTION_ENABLE, "true");
    let image = commit(
        &image,
        &create_topics(&image, &mut ctx(), &[spec], false).records,
    );
    let p = image.topic("t").unwrap().partitions[&0].clone();
    let leader = p.leader;
    // The leader alone in the ISR (the followers fell behind), then it is unregistered.
    let id = image.topic("t").unwrap().id;
    let image = commit(
        &image,
        &[MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: id,
            partition: 0,
            isr: Some(vec![leader]),
            ..PartitionChangeRecord::default()
        })],
    );
    let policy = ElectionPolicy::default();
    let image = commit(&image, &unregister_broker(&image, &policy, leader).records);
    let expected = *p.replicas.iter().find(|&&b| b != leader).unwrap();
    assert_eq!(state(&image), (expected, vec![expected], LEADER_RECOVERING));
}
