use super::*;
use crate::api::{AlterConfigOp, AlterConfigOpType, AlterConfigSpec, CreateTopicSpec};
use crate::error::codes;
use crate::ops::brokers::{fence_broker, unfence_broker};
use crate::ops::configs::incremental_alter_configs;
use crate::ops::election::UNCLEAN_LEADER_ELECTION_ENABLE;
use crate::ops::test_support::*;
use crate::ops::topics::create_topics;
use crate::records::{ConfigResource, LEADER_RECOVERING};

/// Brokers 1..=3 and topic "t" with 3 RF-3 partitions (preferred leaders 1, 2, 3 in some order).
fn cluster() -> MetadataImage {
    let image = image_with_brokers(&[1, 2, 3]);
    let out = create_topics(
        &image,
        &mut ctx(),
        &[CreateTopicSpec::new("t", 3, 3)],
        false,
    );
    commit(&image, &out.records)
}

fn leaders(image: &MetadataImage, topic: &str) -> Vec<i32> {
    image
        .topic(topic)
        .unwrap()
        .partitions
        .values()
        .map(|p| p.leader)
        .collect()
}

fn preferred(image: &MetadataImage, topic: &str) -> Vec<i32> {
    image
        .topic(topic)
        .unwrap()
        .partitions
        .values()
        .map(|p| p.replicas[0])
        .collect()
}

/// Fences broker 1 and unfences it again: it is back in no ISR and leads nothing.
fn bounced() -> MetadataImage {
    let policy = ElectionPolicy::default();
    let image = cluster();
    let image = commit(&image, &fence_broker(&image, &policy, 1).records);
    commit(&image, &unfence_broker(&image, &policy, 1).records)
}

/// Puts broker 1 back into every ISR, as its AlterPartition expansions would.
fn back_in_sync(image: &MetadataImage) -> MetadataImage {
    let t = image.topic("t").unwrap();
    let records: Vec<_> = t
        .partitions
        .iter()
        .map(|(&partition, p)| {
            let mut isr = p.isr.clone();
            if !isr.contains(&1) {
                isr.push(1);
            }
            MetadataRecord::PartitionChange(crate::records::PartitionChangeRecord {
                topic_id: t.id,
                partition,
                isr: Some(isr),
                ..Default::default()
            })
        })
        .collect();
    commit(image, &records)
}

fn codes_of(out: &[TopicElection]) -> Vec<(String, i32, i16)> {
    out.iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let code = p.result.as_ref().map_or_else(|e| e.error_code(), |_| 0);
                (t.topic.clone(), p.partition, code)
            })
        })
        .collect()
}

fn named(topic: &str, partitions: &[i32]) -> Vec<ElectLeadersTopic> {
    vec![ElectLeadersTopic {
        topic: topic.into(),
        partitions: partitions.to_vec(),
    }]
}

#[test]
fn preferred_election_moves_leadership_back_only_when_in_sync() {
    let image = bounced();
    let one = preferred(&image, "t").iter().position(|&b| b == 1).unwrap() as i32;
    // Broker 1 is live but not in sync yet.
    let out = elect_leaders(
        &image,
        ElectionType::Preferred,
        Some(&named("t", &[0, 1, 2])),
    );
    assert!(out.records.is_empty());
    for (_, p, code) in codes_of(&out.response) {
        let want = if p == one {
            codes::PREFERRED_LEADER_NOT_AVAILABLE
        } else {
            codes::ELECTION_NOT_NEEDED
        };
        assert_eq!(code, want, "partition {p}");
    }
    let image = back_in_sync(&image);
    let out = elect_leaders(
        &image,
        ElectionType::Preferred,
        Some(&named("t", &[one, one])),
    );
    assert_eq!(
        codes_of(&out.response),
        vec![
            ("t".into(), one, 0),
            ("t".into(), one, codes::ELECTION_NOT_NEEDED)
        ]
    );
    assert_eq!(out.records.len(), 1);
    let image = commit(&image, &out.records);
    assert_eq!(leaders(&image, "t"), preferred(&image, "t"));
}

#[test]
fn all_partitions_reports_only_elections_that_happened() {
    let image = back_in_sync(&bounced());
    let image = commit(
        &image,
        &create_topics(
            &image,
            &mut ctx(),
            &[CreateTopicSpec::new("u", 2, 1)],
            false,
        )
        .records,
    );
    let out = elect_leaders(&image, ElectionType::Preferred, None);
    let one = preferred(&image, "t").iter().position(|&b| b == 1).unwrap() as i32;
    assert_eq!(codes_of(&out.response), vec![("t".into(), one, 0)]);
    // Every topic is listed, as Kafka does, even with nothing to report.
    let topics: Vec<_> = out.response.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(topics, ["t", "u"]);
    let image = commit(&image, &out.records);
    assert_eq!(leaders(&image, "t"), preferred(&image, "t"));
    assert!(elect_leaders(&image, ElectionType::Preferred, None)
        .records
        .is_empty());
}

#[test]
fn unknown_partitions_and_unclean_requests() {
    let image = cluster();
    let mut request = named("t", &[7]);
    request.extend(named("nope", &[0]));
    let out = elect_leaders(&image, ElectionType::Preferred, Some(&request));
    assert_eq!(
        codes_of(&out.response),
        vec![
            ("t".into(), 7, codes::UNKNOWN_TOPIC_OR_PARTITION),
            ("nope".into(), 0, codes::UNKNOWN_TOPIC_OR_PARTITION)
        ]
    );
    // A partition with a leader needs no unclean election.
    let out = elect_leaders(&image, ElectionType::Unclean, Some(&named("t", &[0])));
    assert_eq!(codes_of(&out.response)[0].2, codes::ELECTION_NOT_NEEDED);
}

#[test]
fn unclean_election_through_the_api_ignores_the_topic_config() {
    // RF 2, unclean disabled: follower out of the ISR, leader fenced, follower back.
    let policy = ElectionPolicy::default();
    let image = image_with_brokers(&[1, 2]);
    let image = commit(
        &image,
        &create_topics(
            &image,
            &mut ctx(),
            &[CreateTopicSpec::new("t", 1, 2)],
            false,
        )
        .records,
    );
    let leader = image.topic("t").unwrap().partitions[&0].leader;
    let follower = 3 - leader;
    let image = commit(&image, &fence_broker(&image, &policy, follower).records);
    let image = commit(&image, &fence_broker(&image, &policy, leader).records);
    let out = elect_leaders(&image, ElectionType::Unclean, Some(&named("t", &[0])));
    assert_eq!(
        codes_of(&out.response)[0].2,
        codes::ELIGIBLE_LEADERS_NOT_AVAILABLE
    );
    let out = elect_leaders(&image, ElectionType::Preferred, Some(&named("t", &[0])));
    assert_eq!(
        codes_of(&out.response)[0].2,
        codes::PREFERRED_LEADER_NOT_AVAILABLE
    );
    let image = commit(&image, &unfence_broker(&image, &policy, follower).records);
    assert_eq!(image.topic("t").unwrap().partitions[&0].leader, NO_LEADER);
    let out = elect_leaders(&image, ElectionType::Unclean, Some(&named("t", &[0])));
    assert_eq!(codes_of(&out.response)[0].2, 0);
    let image = commit(&image, &out.records);
    let p = &image.topic("t").unwrap().partitions[&0];
    assert_eq!(
        (p.leader, p.isr.clone(), p.leader_recovery_state),
        (follower, vec![follower], LEADER_RECOVERING)
    );
}

#[test]
fn enabling_unclean_on_the_topic_elects_its_leaderless_partitions() {
    let policy = ElectionPolicy::default();
    let image = image_with_brokers(&[1, 2]);
    let specs = [
        CreateTopicSpec::new("t", 1, 2),
        CreateTopicSpec::new("u", 1, 2),
    ];
    let image = commit(
        &image,
        &create_topics(&image, &mut ctx(), &specs, false).records,
    );
    // Leaderless both: fence every broker, then bring back whichever was out of sync in each.
    let image = commit(&image, &fence_broker(&image, &policy, 2).records);
    let image = commit(&image, &fence_broker(&image, &policy, 1).records);
    let image = commit(&image, &unfence_broker(&image, &policy, 2).records);
    assert_eq!(leaders(&image, "t"), vec![NO_LEADER]);
    assert_eq!(leaders(&image, "u"), vec![NO_LEADER]);
    let set = |resource: ConfigResource, value: &str| AlterConfigSpec {
        resource,
        ops: vec![AlterConfigOp {
            name: UNCLEAN_LEADER_ELECTION_ENABLE.into(),
            op: AlterConfigOpType::Set,
            value: Some(value.into()),
        }],
    };
    // validate_only writes nothing.
    let out = incremental_alter_configs(
        &image,
        &ctx(),
        &[set(ConfigResource::topic("t"), "true")],
        true,
    );
    assert!(out.records.is_empty());
    let out = incremental_alter_configs(
        &image,
        &ctx(),
        &[set(ConfigResource::topic("t"), "true")],
        false,
    );
    let image = commit(&image, &out.records);
    assert_eq!(leaders(&image, "t"), vec![2]);
    assert_eq!(
        leaders(&image, "u"),
        vec![NO_LEADER],
        "only the topic changed"
    );
    // The cluster-wide default reaches the other topic.
    let out = incremental_alter_configs(
        &image,
        &ctx(),
        &[set(ConfigResource::broker(""), "true")],
        false,
    );
    let image = commit(&image, &out.records);
    assert_eq!(leaders(&image, "u"), vec![2]);
}

#[test]
fn rebalance_moves_leaders_of_brokers_over_the_threshold_in_bounded_batches() {
    let image = back_in_sync(&bounced());
    let before = leaders(&image, "t");
    assert_ne!(before, preferred(&image, "t"));
    // Broker 1 leads none of its 1 preferred partitions: ratio 100%.
    let out = rebalance_leaders(&image, 100, MAX_MOVES_PER_BATCH);
    assert_eq!(out.response.moved, 0, "100% is never exceeded");
    let out = rebalance_leaders(&image, 10, MAX_MOVES_PER_BATCH);
    assert_eq!(
        out.response,
        RebalancePass {
            moved: 1,
            more: false
        }
    );
    let image = commit(&image, &out.records);
    assert_eq!(leaders(&image, "t"), preferred(&image, "t"));
    assert_eq!(
        rebalance_leaders(&image, 0, MAX_MOVES_PER_BATCH)
            .response
            .moved,
        0
    );
}

#[test]
fn rebalance_of_many_partitions_runs_in_passes() {
    let policy = ElectionPolicy::default();
    let image = image_with_brokers(&[1, 2, 3]);
    let image = commit(
        &image,
        &create_topics(
            &image,
            &mut ctx(),
            &[CreateTopicSpec::new("t", 3000, 2)],
            false,
        )
        .records,
    );
    let image = commit(&image, &fence_broker(&image, &policy, 1).records);
    let image = commit(&image, &unfence_broker(&image, &policy, 1).records);
    let image = back_in_sync(&image);
    let mut image = image;
    let mut passes = 0;
    loop {
        let out = rebalance_leaders(&image, 10, 400);
        passes += 1;
        assert!(out.records.len() <= 400);
        image = commit(&image, &out.records);
        if !out.response.more {
            break;
        }
    }
    // 1000 partitions prefer broker 1: three full passes and one with the rest.
    assert_eq!(passes, 3);
    assert_eq!(leaders(&image, "t"), preferred(&image, "t"));
}

#[test]
fn rebalance_below_threshold_leaves_leaders_alone() {
    let image = image_with_brokers(&[1, 2, 3]);
    let image = commit(
        &image,
        &create_topics(
            &image,
            &mut ctx(),
            &[CreateTopicSpec::new("t", 30, 3)],
            false,
        )
        .records,
    );
    // Move one of broker 1's ten preferred partitions away: 10% is not above 10%.
    let t = image.topic("t").unwrap();
    let (&partition, p) = t
        .partitions
        .iter()
        .find(|(_, p)| p.replicas[0] == 1)
        .unwrap();
    let image = commit(
        &image,
        &[MetadataRecord::PartitionChange(
            crate::records::PartitionChangeRecord {
                topic_id: t.id,
                partition,
                leader: Some(p.replicas[1]),
                ..Default::default()
            },
        )],
    );
    assert_eq!(
        rebalance_leaders(&image, 10, MAX_MOVES_PER_BATCH)
            .response
            .moved,
        0
    );
    assert_eq!(
        rebalance_leaders(&image, 9, MAX_MOVES_PER_BATCH)
            .response
            .moved,
        1
    );
}
