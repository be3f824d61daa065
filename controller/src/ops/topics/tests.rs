use std::sync::Arc;

use uuid::Uuid;

use super::*;
use crate::api::ReplicaAssignment;
use crate::error::codes;
use crate::ops::test_support::*;
use crate::policy::{CreateTopicPolicy, Policies};

fn create(
    image: &MetadataImage,
    specs: &[CreateTopicSpec],
) -> (MetadataImage, Vec<TopicResult<CreatedTopic>>) {
    let out = create_topics(image, &mut ctx(), specs, false);
    (commit(image, &out.records), out.response)
}

fn manual(assignments: &[&[i32]]) -> CreateTopicSpec {
    CreateTopicSpec {
        assignments: (0..)
            .zip(assignments)
            .map(|(partition, ids)| ReplicaAssignment {
                partition,
                broker_ids: ids.to_vec(),
            })
            .collect(),
        ..CreateTopicSpec::new("m", -1, -1)
    }
}

#[test]
fn creates_topic_with_round_robin_placement_and_configs() {
    let image = image_with_brokers(&[1, 2, 3]);
    let spec = CreateTopicSpec::new("orders", 3, 2).with_config("retention.ms", "1000");
    let (image, results) = create(&image, &[spec]);
    let created = results[0].result.clone().unwrap();
    assert_eq!(
        created,
        CreatedTopic {
            topic_id: Uuid::from_u128(100),
            num_partitions: 3,
            replication_factor: 2
        }
    );
    let topic = image.topic("orders").unwrap();
    assert_eq!(topic.id, created.topic_id);
    let replicas: Vec<_> = topic
        .partitions
        .values()
        .map(|p| p.replicas.clone())
        .collect();
    assert_eq!(replicas, vec![vec![1, 2], vec![2, 3], vec![3, 1]]);
    for p in topic.partitions.values() {
        assert_eq!(p.leader, p.replicas[0]);
        assert_eq!(p.isr, p.replicas);
    }
    assert_eq!(
        image
            .resource_configs(&ConfigResource::topic("orders"))
            .unwrap()["retention.ms"],
        "1000"
    );
}

#[test]
fn defaults_apply_for_minus_one() {
    let image = image_with_brokers(&[1]);
    let mut ctx = ctx();
    ctx.default_num_partitions = 4;
    let out = create_topics(
        &image,
        &mut ctx,
        &[CreateTopicSpec::new("t", -1, -1)],
        false,
    );
    let created = out.response[0].result.clone().unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (4, 1));
}

#[test]
fn validate_only_makes_no_records() {
    let image = image_with_brokers(&[1]);
    let out = create_topics(&image, &mut ctx(), &[CreateTopicSpec::new("t", 1, 1)], true);
    assert!(out.records.is_empty());
    assert!(out.response[0].result.is_ok());
}

#[test]
fn name_errors() {
    let image = image_with_brokers(&[1]);
    let long = "x".repeat(250);
    let specs: Vec<_> = ["", ".", "..", "a b", long.as_str()]
        .iter()
        .map(|n| CreateTopicSpec::new(*n, 1, 1))
        .collect();
    let (_, results) = create(&image, &specs);
    assert!(codes(&results)
        .iter()
        .all(|&c| c == codes::INVALID_TOPIC_EXCEPTION));
}

#[test]
fn already_exists_collision_and_duplicates() {
    let image = image_with_brokers(&[1]);
    let (image, _) = create(&image, &[CreateTopicSpec::new("a_b", 1, 1)]);
    let (_, results) = create(
        &image,
        &[
            CreateTopicSpec::new("a_b", 1, 1),
            CreateTopicSpec::new("a.b", 1, 1),
            CreateTopicSpec::new("dup", 1, 1),
            CreateTopicSpec::new("dup", 1, 1),
            CreateTopicSpec::new("x.y", 1, 1),
            CreateTopicSpec::new("x_y", 1, 1),
        ],
    );
    assert_eq!(
        codes(&results),
        vec![
            codes::TOPIC_ALREADY_EXISTS,
            codes::INVALID_TOPIC_EXCEPTION,
            codes::INVALID_REQUEST,
            codes::INVALID_REQUEST,
            0,
            codes::INVALID_TOPIC_EXCEPTION,
        ]
    );
    assert_eq!(
        results[0].result.as_ref().unwrap_err().message(),
        "Topic 'a_b' already exists."
    );
    assert_eq!(
        results[1].result.as_ref().unwrap_err().message(),
        "Topic 'a.b' collides with existing topic: a_b"
    );
}

#[test]
fn partition_and_replication_factor_errors() {
    let image = image_with_brokers(&[1, 2]);
    let (_, results) = create(
        &image,
        &[
            CreateTopicSpec::new("p0", 0, 1),
            CreateTopicSpec::new("pneg", -5, 1),
            CreateTopicSpec::new("rf0", 1, 0),
            CreateTopicSpec::new("rf3", 1, 3),
        ],
    );
    assert_eq!(
        codes(&results),
        vec![
            codes::INVALID_PARTITIONS,
            codes::INVALID_PARTITIONS,
            codes::INVALID_REPLICATION_FACTOR,
            codes::INVALID_REPLICATION_FACTOR,
        ]
    );
    assert!(results[3]
        .result
        .as_ref()
        .unwrap_err()
        .message()
        .contains("only 2 broker(s) are registered"));
}

#[test]
fn fenced_brokers_do_not_count_for_replication() {
    let image = commit(
        &image_with_brokers(&[1, 2]),
        &[MetadataRecord::FenceBroker {
            broker_id: 2,
            epoch: 0,
        }],
    );
    let (_, results) = create(&image, &[CreateTopicSpec::new("t", 1, 2)]);
    assert_eq!(codes(&results), vec![codes::INVALID_REPLICATION_FACTOR]);
}

#[test]
fn config_errors() {
    let image = image_with_brokers(&[1]);
    let mut null_value = CreateTopicSpec::new("n", 1, 1);
    null_value.configs.push(("retention.ms".into(), None));
    let (image, results) = create(
        &image,
        &[
            CreateTopicSpec::new("u", 1, 1).with_config("no.such.config", "1"),
            CreateTopicSpec::new("v", 1, 1).with_config("retention.ms", "soon"),
            null_value,
        ],
    );
    assert_eq!(codes(&results), vec![codes::INVALID_CONFIG; 3]);
    assert!(image.topics_by_name().is_empty());
}

#[test]
fn manual_assignment() {
    let image = commit(
        &image_with_brokers(&[1, 2, 3]),
        &[MetadataRecord::FenceBroker {
            broker_id: 3,
            epoch: 0,
        }],
    );
    let (image, results) = create(&image, &[manual(&[&[3, 1], &[2, 3]])]);
    let created = results[0].result.clone().unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (2, 2));
    let topic = image.topic("m").unwrap();
    // The fenced broker stays a replica but is neither leader nor in the ISR.
    assert_eq!(topic.partitions[&0].replicas, vec![3, 1]);
    assert_eq!(topic.partitions[&0].isr, vec![1]);
    assert_eq!(topic.partitions[&0].leader, 1);
    assert_eq!(topic.partitions[&1].leader, 2);
}

#[test]
fn manual_assignment_errors() {
    let image = commit(
        &image_with_brokers(&[1, 2, 3]),
        &[MetadataRecord::FenceBroker {
            broker_id: 3,
            epoch: 0,
        }],
    );
    let mut with_count = manual(&[&[1]]);
    with_count.num_partitions = 1;
    let mut with_rf = manual(&[&[1]]);
    with_rf.replication_factor = 1;
    let mut gap = manual(&[&[1]]);
    gap.assignments[0].partition = 1;
    let mut twice = manual(&[&[1], &[2]]);
    twice.assignments[1].partition = 0;
    let cases = [
        (with_count, codes::INVALID_REQUEST),
        (with_rf, codes::INVALID_REQUEST),
        (manual(&[&[]]), codes::INVALID_REPLICA_ASSIGNMENT),
        (manual(&[&[1, 1]]), codes::INVALID_REPLICA_ASSIGNMENT),
        (manual(&[&[9]]), codes::INVALID_REPLICA_ASSIGNMENT),
        (manual(&[&[1, 2], &[1]]), codes::INVALID_REPLICA_ASSIGNMENT),
        (manual(&[&[3]]), codes::INVALID_REPLICA_ASSIGNMENT),
        (gap, codes::INVALID_REPLICA_ASSIGNMENT),
        (twice, codes::INVALID_REPLICA_ASSIGNMENT),
    ];
    for (spec, code) in cases {
        let (_, results) = create(&image, std::slice::from_ref(&spec));
        assert_eq!(codes(&results), vec![code], "{spec:?}");
    }
}

struct NoSinglePartition;

impl CreateTopicPolicy for NoSinglePartition {
    fn validate(&self, request: &CreateTopicRequest<'_>) -> Result<(), String> {
        match request.num_partitions {
            Some(1) => Err(format!("{} needs more than one partition", request.topic)),
            _ => Ok(()),
        }
    }
}

#[test]
fn create_topic_policy_violation() {
    let image = image_with_brokers(&[1]);
    let mut ctx = ctx_with(Policies {
        create_topic: Some(Arc::new(NoSinglePartition)),
        alter_config: None,
    });
    let out = create_topics(
        &image,
        &mut ctx,
        &[
            CreateTopicSpec::new("one", 1, 1),
            CreateTopicSpec::new("two", 2, 1),
        ],
        false,
    );
    assert_eq!(codes(&out.response), vec![codes::POLICY_VIOLATION, 0]);
    assert_eq!(
        out.response[0].result.as_ref().unwrap_err().message(),
        "one needs more than one partition"
    );
    let image = commit(&image, &out.records);
    assert!(image.topic("one").is_none());
    assert!(image.topic("two").is_some());
}

#[test]
fn reserved_and_used_ids_are_skipped() {
    let image = image_with_brokers(&[1]);
    let mut ids = vec![
        Uuid::nil(),
        Uuid::from_u128(1),
        Uuid::from_u128(5),
        Uuid::from_u128(5),
    ]
    .into_iter();
    let mut ctx = ctx();
    ctx.new_topic_id = Box::new(move || ids.next().unwrap_or(Uuid::from_u128(6)));
    let out = create_topics(
        &image,
        &mut ctx,
        &[
            CreateTopicSpec::new("a", 1, 1),
            CreateTopicSpec::new("b", 1, 1),
        ],
        false,
    );
    let ids: Vec<_> = out
        .response
        .iter()
        .map(|r| r.result.clone().unwrap().topic_id)
        .collect();
    assert_eq!(ids, vec![Uuid::from_u128(5), Uuid::from_u128(6)]);
}

#[test]
fn delete_by_name_and_id() {
    let image = image_with_brokers(&[1]);
    let (image, _) = create(
        &image,
        &[
            CreateTopicSpec::new("a", 1, 1),
            CreateTopicSpec::new("b", 1, 1),
        ],
    );
    let a = image.topic("a").unwrap().id;
    let b = image.topic("b").unwrap().id;
    let out = delete_topics(
        &image,
        &[
            TopicRef::Name("a".into()),
            TopicRef::Id(b),
            TopicRef::Name("missing".into()),
            TopicRef::Id(Uuid::from_u128(999)),
        ],
    );
    assert_eq!(
        codes(&out.response),
        vec![
            0,
            0,
            codes::UNKNOWN_TOPIC_OR_PARTITION,
            codes::UNKNOWN_TOPIC_ID
        ]
    );
    assert_eq!(out.response[0].result, Ok(a));
    assert_eq!(out.response[1].name.as_deref(), Some("b"));
    assert_eq!(out.response[3].name, None);
    let image = commit(&image, &out.records);
    assert!(image.topics_by_name().is_empty());
}

#[test]
fn delete_duplicates_and_same_topic_twice() {
    let image = image_with_brokers(&[1]);
    let (image, _) = create(&image, &[CreateTopicSpec::new("a", 1, 1)]);
    let a = image.topic("a").unwrap().id;
    let out = delete_topics(
        &image,
        &[TopicRef::Name("a".into()), TopicRef::Name("a".into())],
    );
    assert_eq!(codes(&out.response), vec![codes::INVALID_REQUEST; 2]);
    assert!(out.records.is_empty());
    let out = delete_topics(&image, &[TopicRef::Name("a".into()), TopicRef::Id(a)]);
    assert_eq!(codes(&out.response), vec![0, 0]);
    assert_eq!(out.records, vec![MetadataRecord::RemoveTopic { id: a }]);
}

#[test]
fn create_partitions_extends_round_robin() {
    let image = image_with_brokers(&[1, 2, 3]);
    let (image, _) = create(&image, &[CreateTopicSpec::new("t", 2, 2)]);
    let out = create_partitions(
        &image,
        &[CreatePartitionsSpec {
            name: "t".into(),
            count: 4,
            assignments: None,
        }],
        false,
    );
    assert_eq!(codes(&out.response), vec![0]);
    let image = commit(&image, &out.records);
    let replicas: Vec<_> = image
        .topic("t")
        .unwrap()
        .partitions
        .values()
        .map(|p| p.replicas.clone())
        .collect();
    assert_eq!(
        replicas,
        vec![vec![1, 2], vec![2, 3], vec![3, 1], vec![1, 2]]
    );
}

#[test]
fn create_partitions_manual_and_validate_only() {
    let image = image_with_brokers(&[1, 2]);
    let (image, _) = create(&image, &[CreateTopicSpec::new("t", 1, 1)]);
    let spec = CreatePartitionsSpec {
        name: "t".into(),
        count: 3,
        assignments: Some(vec![vec![2], vec![1]]),
    };
    let out = create_partitions(&image, std::slice::from_ref(&spec), true);
    assert!(out.records.is_empty());
    assert_eq!(codes(&out.response), vec![0]);
    let out = create_partitions(&image, &[spec], false);
    let image = commit(&image, &out.records);
    let topic = image.topic("t").unwrap();
    assert_eq!(topic.partition_count(), 3);
    assert_eq!(topic.partitions[&1].leader, 2);
    assert_eq!(topic.partitions[&2].leader, 1);
}

#[test]
fn create_partitions_errors() {
    let image = image_with_brokers(&[1, 2]);
    let (image, _) = create(
        &image,
        &[
            CreateTopicSpec::new("t", 2, 2),
            CreateTopicSpec::new("u", 1, 1),
        ],
    );
    let image = commit(
        &image,
        &[MetadataRecord::FenceBroker {
            broker_id: 2,
            epoch: 0,
        }],
    );
    let spec = |name: &str, count, assignments| CreatePartitionsSpec {
        name: name.into(),
        count,
        assignments,
    };
    let out = create_partitions(
        &image,
        &[
            spec("missing", 3, None),
            spec("t", 1, None),
            spec("t2", 3, None),
            spec("t2", 3, None),
            spec("u", 1, None),
            spec("u", 1, None),
        ],
        false,
    );
    assert_eq!(
        codes(&out.response),
        vec![
            codes::UNKNOWN_TOPIC_OR_PARTITION,
            codes::INVALID_PARTITIONS,
            codes::INVALID_REQUEST,
            codes::INVALID_REQUEST,
            codes::INVALID_REQUEST,
            codes::INVALID_REQUEST,
        ]
    );
    let cases = [
        (spec("t", 2, None), codes::INVALID_PARTITIONS),
        (spec("t", 3, None), codes::INVALID_REPLICATION_FACTOR),
        (
            spec("t", 4, Some(vec![vec![1, 2]])),
            codes::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            spec("t", 3, Some(vec![vec![1]])),
            codes::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            spec("t", 3, Some(vec![vec![1, 7]])),
            codes::INVALID_REPLICA_ASSIGNMENT,
        ),
    ];
    for (spec, code) in cases {
        let out = create_partitions(&image, std::slice::from_ref(&spec), false);
        assert_eq!(codes(&out.response), vec![code], "{spec:?}");
        assert!(out.records.is_empty());
    }
}

/// Kafka's bound of 10,000 records per request (compared with Kafka in the conformance scenario
/// "create topics 10,000 partitions in one topic" and its neighbours): 9,999 partitions fit beside their topic
/// record, 10,000 do not, topics of one request share the bound, and a request past it fails whole, its
/// invalid topics included, without writing anything. Counts far past it are refused before any placement.
#[test]
fn a_request_past_ten_thousand_records_fails_whole() {
    let image = image_with_brokers(&[1]);
    let fits = create_topics(
        &image,
        &mut ctx(),
        &[CreateTopicSpec::new("fits", 9_999, 1)],
        false,
    );
    assert_eq!(codes(&fits.response), vec![codes::NONE]);
    assert_eq!(fits.records.len(), MAX_RECORDS_PER_USER_OP);

    let refused = |specs: &[CreateTopicSpec], validate_only: bool| {
        let out = create_topics(&image, &mut ctx(), specs, validate_only);
        assert!(out.records.is_empty());
        for r in &out.response {
            let e = r.result.as_ref().expect_err("refused");
            assert_eq!(
                e.to_string(),
                "Unable to perform excessively large batch operation."
            );
        }
        codes(&out.response)
    };
    assert_eq!(
        refused(&[CreateTopicSpec::new("one", 10_000, 1)], false),
        vec![codes::POLICY_VIOLATION]
    );
    assert_eq!(
        refused(
            &[
                CreateTopicSpec::new("bad name!", 1, 1),
                CreateTopicSpec::new("a", 5_000, 1),
                CreateTopicSpec::new("b", 5_000, 1),
            ],
            true
        ),
        vec![codes::POLICY_VIOLATION; 3]
    );
    // A config record counts too.
    assert_eq!(
        refused(
            &[CreateTopicSpec::new("c", 9_999, 1).with_config("retention.ms", "1000")],
            false
        ),
        vec![codes::POLICY_VIOLATION]
    );
    assert_eq!(
        refused(&[CreateTopicSpec::new("huge", i32::MAX, 1)], true),
        vec![codes::POLICY_VIOLATION]
    );

    let (image, _) = create(&image, &[CreateTopicSpec::new("t", 1, 1)]);
    let grow = |count: i32| CreatePartitionsSpec {
        name: "t".into(),
        count,
        assignments: None,
    };
    let out = create_partitions(&image, &[grow(10_001)], false);
    assert_eq!(codes(&out.response), vec![codes::NONE]);
    assert_eq!(out.records.len(), MAX_RECORDS_PER_USER_OP);
    let out = create_partitions(&image, &[grow(10_002)], true);
    assert_eq!(codes(&out.response), vec![codes::POLICY_VIOLATION]);
    assert!(out.records.is_empty());
}
