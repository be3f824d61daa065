use std::sync::Arc;

use uuid::Uuid;

use super::*;
use crate::records::*;

fn broker(id: i32) -> MetadataRecord {
    MetadataRecord::RegisterBroker(BrokerRecord {
        broker_id: id,
        listeners: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9092,
            security_protocol: SecurityProtocol::Plaintext,
        }],
        fenced: false,
        ..BrokerRecord::default()
    })
}

fn broker_at(id: i32, epoch: i64) -> MetadataRecord {
    match broker(id) {
        MetadataRecord::RegisterBroker(rec) => MetadataRecord::RegisterBroker(BrokerRecord {
            broker_epoch: epoch,
            ..rec
        }),
        other => other,
    }
}

fn partition(topic_id: Uuid, partition: i32, replicas: Vec<i32>) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        topic_id,
        partition,
        isr: replicas.clone(),
        leader: replicas[0],
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
        ..PartitionRecord::default()
    })
}

fn config(resource: ConfigResource, name: &str, value: Option<&str>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource,
        name: name.into(),
        value: value.map(str::to_owned),
    })
}

#[test]
fn empty_image() {
    let image = MetadataImage::empty("c1");
    assert_eq!(image.cluster_id(), "c1");
    assert_eq!(image.last_applied_offset(), -1);
    assert!(image.topics_by_name().is_empty());
    assert!(image.brokers().is_empty());
}

#[test]
fn topics_partitions_and_removal() {
    let id = Uuid::from_u128(1);
    let image = MetadataImage::empty("c").apply(
        0,
        &[
            broker(1),
            broker(2),
            MetadataRecord::Topic {
                name: "orders".into(),
                id,
            },
            partition(id, 0, vec![1, 2]),
            partition(id, 1, vec![2, 1]),
            config(
                ConfigResource::topic("orders"),
                "retention.ms",
                Some("1000"),
            ),
        ],
    );
    // Six records at offsets 0..=5.
    assert_eq!(image.last_applied_offset(), 5);
    let topic = image.topic("orders").unwrap();
    assert_eq!(topic.id, id);
    assert_eq!(topic.partition_count(), 2);
    assert_eq!(topic.replication_factor(), 2);
    assert_eq!(topic.partitions[&1].leader, 2);
    assert_eq!(image.topic_by_id(&id).unwrap().name, "orders");
    assert_eq!(
        image
            .resource_configs(&ConfigResource::topic("orders"))
            .unwrap()["retention.ms"],
        "1000"
    );

    let removed = image.apply(1, &[MetadataRecord::RemoveTopic { id }]);
    assert!(removed.topic("orders").is_none());
    assert!(removed.topic_by_id(&id).is_none());
    assert!(removed
        .resource_configs(&ConfigResource::topic("orders"))
        .is_none());
    // The old image is untouched.
    assert!(image.topic("orders").is_some());
}

#[test]
fn untouched_parts_are_shared() {
    let a = Uuid::from_u128(1);
    let b = Uuid::from_u128(2);
    let image = MetadataImage::empty("c").apply(
        0,
        &[
            broker(1),
            MetadataRecord::Topic {
                name: "a".into(),
                id: a,
            },
            partition(a, 0, vec![1]),
            MetadataRecord::Topic {
                name: "b".into(),
                id: b,
            },
            partition(b, 0, vec![1]),
        ],
    );
    let next = image.apply(
        1,
        &[MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: a,
            partition: 0,
            isr: None,
            leader: Some(NO_LEADER),
            ..PartitionChangeRecord::default()
        })],
    );
    assert!(Arc::ptr_eq(&image.brokers, &next.brokers));
    assert!(Arc::ptr_eq(&image.configs.map, &next.configs.map));
    assert!(Arc::ptr_eq(&image.topics.by_name, &next.topics.by_name));
    assert!(Arc::ptr_eq(
        image.topic("b").unwrap(),
        next.topic("b").unwrap()
    ));
    assert!(!Arc::ptr_eq(
        image.topic("a").unwrap(),
        next.topic("a").unwrap()
    ));
}

#[test]
fn partition_change_bumps_epochs() {
    let id = Uuid::from_u128(1);
    let image = MetadataImage::empty("c").apply(
        0,
        &[
            broker(1),
            broker(2),
            MetadataRecord::Topic {
                name: "t".into(),
                id,
            },
            partition(id, 0, vec![1, 2]),
        ],
    );
    let change = |leader: Option<i32>, isr: Option<Vec<i32>>| {
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: id,
            partition: 0,
            isr,
            leader,
            ..PartitionChangeRecord::default()
        })
    };
    let next = image.apply(1, &[change(Some(2), Some(vec![2]))]);
    let p = &next.topic("t").unwrap().partitions[&0];
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 1));
    assert_eq!(p.isr, vec![2]);
    // ISR-only change: partition epoch moves, leader epoch does not.
    let next = next.apply(2, &[change(None, Some(vec![2, 1]))]);
    let p = &next.topic("t").unwrap().partitions[&0];
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 2));
}

#[test]
fn brokers_register_fence_unregister() {
    let image = MetadataImage::empty("c").apply(5, &[broker_at(1, 5), broker_at(2, 5)]);
    assert_eq!(image.broker(1).unwrap().epoch, 5);
    assert_eq!(image.unfenced_broker_ids(), vec![1, 2]);
    let image = image.apply(
        6,
        &[MetadataRecord::FenceBroker {
            broker_id: 1,
            epoch: 0,
        }],
    );
    assert!(image.broker(1).unwrap().fenced);
    assert!(!image.is_broker_active(1));
    assert_eq!(image.unfenced_broker_ids(), vec![2]);
    // Re-registration unfences and takes a new epoch.
    let image = image.apply(7, &[broker_at(1, 7)]);
    assert!(!image.broker(1).unwrap().fenced);
    assert_eq!(image.broker(1).unwrap().epoch, 7);
    let image = image.apply(
        8,
        &[
            config(ConfigResource::broker("2"), "log.retention.ms", Some("5")),
            MetadataRecord::UnregisterBroker {
                broker_id: 2,
                broker_epoch: 5,
            },
        ],
    );
    assert!(image.broker(2).is_none());
    assert!(image
        .resource_configs(&ConfigResource::broker("2"))
        .is_none());
}

#[test]
fn config_delete_removes_empty_resource() {
    let r = ConfigResource::broker("");
    let image = MetadataImage::empty("c").apply(0, &[config(r.clone(), "k", Some("v"))]);
    assert_eq!(image.resource_configs(&r).unwrap()["k"], "v");
    let image = image.apply(1, &[config(r.clone(), "k", None)]);
    assert!(image.resource_configs(&r).is_none());
    assert!(image.configs().is_empty());
}

#[test]
fn bad_records_are_skipped_not_fatal() {
    let id = Uuid::from_u128(1);
    let image = MetadataImage::empty("c").apply(
        0,
        &[
            partition(id, 0, vec![1]),
            MetadataRecord::RemoveTopic { id },
            MetadataRecord::FenceBroker {
                broker_id: 9,
                epoch: 0,
            },
            MetadataRecord::Topic {
                name: "t".into(),
                id,
            },
            // Same name with another id is ignored.
            MetadataRecord::Topic {
                name: "t".into(),
                id: Uuid::from_u128(2),
            },
        ],
    );
    assert_eq!(image.topics_by_name().len(), 1);
    assert_eq!(image.topic("t").unwrap().id, id);
    assert!(image.topic("t").unwrap().partitions.is_empty());
}

#[test]
fn features() {
    let image = MetadataImage::empty("c").apply(
        0,
        &[MetadataRecord::FeatureLevel {
            name: "metadata.version".into(),
            level: 3,
        }],
    );
    assert_eq!(image.features()["metadata.version"], 3);
    let image = image.apply(
        1,
        &[MetadataRecord::FeatureLevel {
            name: "metadata.version".into(),
            level: 0,
        }],
    );
    assert!(image.features().is_empty());
}

#[test]
fn offset_never_goes_back() {
    let image = MetadataImage::empty("c").apply(10, &[]);
    assert_eq!(image.apply(3, &[]).last_applied_offset(), 10);
}

#[test]
fn a_batch_takes_one_offset_per_record() {
    let image = MetadataImage::empty("c");
    assert_eq!(image.next_offset(), 0);
    let image = image.apply(0, &[broker(1), broker(2), broker(3)]);
    assert_eq!(image.last_applied_offset(), 2);
    assert_eq!(image.next_offset(), 3);
    // A control batch (no records) takes one offset.
    let image = image.apply(3, &[]);
    assert_eq!(image.next_offset(), 4);
    // A batch whose records were skipped still takes its span.
    let image = image.apply_span(4, 5, &[]);
    assert_eq!(image.next_offset(), 9);
}

/// A non-trivial image: features, fenced and unfenced brokers, topics with every partition
/// field set, configs of several resource types, a producer id block.
pub(crate) fn rich_image() -> MetadataImage {
    let a = Uuid::from_u128(0xa);
    let b = Uuid::from_u128(0xb);
    let records = vec![
        MetadataRecord::FeatureLevel {
            name: "kraft.version".into(),
            level: 1,
        },
        MetadataRecord::FeatureLevel {
            name: "metadata.version".into(),
            level: 27,
        },
        MetadataRecord::RegisterBroker(BrokerRecord {
            broker_id: 1,
            incarnation_id: Uuid::from_u128(0x1111),
            broker_epoch: 3,
            rack: Some("r1".into()),
            fenced: false,
            features: vec![BrokerFeature {
                name: "metadata.version".into(),
                min_supported_version: 7,
                max_supported_version: 27,
            }],
            log_dirs: vec![Uuid::from_u128(0xd1)],
            ..BrokerRecord::default()
        }),
        broker_at(2, 4),
        MetadataRecord::FenceBroker {
            broker_id: 2,
            epoch: 4,
        },
        MetadataRecord::Topic {
            name: "orders".into(),
            id: a,
        },
        partition(a, 0, vec![1, 2]),
        MetadataRecord::Partition(PartitionRecord {
            topic_id: a,
            partition: 1,
            replicas: vec![2, 1],
            isr: vec![1],
            removing_replicas: vec![2],
            adding_replicas: vec![],
            leader: 1,
            leader_recovery_state: 1,
            leader_epoch: 3,
            partition_epoch: 8,
            directories: vec![crate::records::DIRECTORY_MIGRATING, Uuid::from_u128(0xd1)],
            eligible_leader_replicas: Some(vec![2]),
            last_known_elr: Some(vec![]),
        }),
        MetadataRecord::Topic {
            name: "audit".into(),
            id: b,
        },
        partition(b, 0, vec![1]),
        config(
            ConfigResource::topic("orders"),
            "retention.ms",
            Some("1000"),
        ),
        config(
            ConfigResource::topic("orders"),
            "cleanup.policy",
            Some("compact"),
        ),
        config(ConfigResource::broker(""), "log.retention.ms", Some("5")),
        config(
            ConfigResource::broker("1"),
            "log.cleaner.threads",
            Some("2"),
        ),
        MetadataRecord::ProducerIds {
            broker_id: 1,
            broker_epoch: 3,
            next_producer_id: 2000,
        },
    ];
    let image = MetadataImage::empty("cluster-x").apply(0, &records);
    // A later change, so the image is not just its creating records.
    image.apply(
        image.next_offset(),
        &[MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: a,
            partition: 0,
            leader: Some(2),
            isr: Some(vec![2]),
            ..PartitionChangeRecord::default()
        })],
    )
}

#[test]
fn to_records_rebuilds_the_image() {
    let image = rich_image();
    let records = image.to_records();
    assert_eq!(
        records.first(),
        Some(&MetadataRecord::FeatureLevel {
            name: "metadata.version".into(),
            level: 27
        })
    );
    let rebuilt = MetadataImage::from_snapshot("cluster-x", image.last_applied_offset(), &records);
    assert_eq!(rebuilt, image);
    assert!(rebuilt.broker(2).unwrap().fenced);
    assert_eq!(rebuilt.broker(1).unwrap().epoch, 3);
    // And the records survive Kafka's byte format.
    let bytes = crate::records::encode_batch(&records).unwrap();
    assert_eq!(crate::records::decode_batch(&bytes).unwrap(), records);
    // Equality is not vacuous.
    assert_ne!(
        MetadataImage::from_snapshot("cluster-x", 0, &records[1..]),
        image
    );
}
