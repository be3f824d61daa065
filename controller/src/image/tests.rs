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
        rack: None,
    })
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
    assert_eq!(image.last_applied_offset(), 0);
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
            replicas: None,
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
            replicas: None,
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
    let image = MetadataImage::empty("c").apply(5, &[broker(1), broker(2)]);
    assert_eq!(image.broker(1).unwrap().epoch, 5);
    assert_eq!(image.unfenced_broker_ids(), vec![1, 2]);
    let image = image.apply(6, &[MetadataRecord::FenceBroker { broker_id: 1 }]);
    assert!(image.broker(1).unwrap().fenced);
    assert!(!image.is_broker_active(1));
    assert_eq!(image.unfenced_broker_ids(), vec![2]);
    // Re-registration unfences and takes a new epoch.
    let image = image.apply(7, &[broker(1)]);
    assert!(!image.broker(1).unwrap().fenced);
    assert_eq!(image.broker(1).unwrap().epoch, 7);
    let image = image.apply(
        8,
        &[
            config(ConfigResource::broker("2"), "log.retention.ms", Some("5")),
            MetadataRecord::UnregisterBroker { broker_id: 2 },
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
            MetadataRecord::FenceBroker { broker_id: 9 },
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
