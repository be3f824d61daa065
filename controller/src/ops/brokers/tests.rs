use super::*;
use crate::api::CreateTopicSpec;
use crate::error::codes;
use crate::ops::test_support::*;
use crate::ops::topics::create_topics;
use crate::records::{Endpoint, SecurityProtocol};

fn registration(id: i32) -> BrokerRegistration {
    BrokerRegistration {
        broker_id: id,
        listeners: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9092,
            security_protocol: SecurityProtocol::Plaintext,
        }],
        rack: Some("rack-a".into()),
    }
}

fn code(out: &BrokerOutput) -> i16 {
    out.response.as_ref().map_or_else(|e| e.error_code(), |_| 0)
}

/// Brokers 1..=3 and a 3-partition RF-2 topic "t": replicas [1,2], [2,3], [3,1].
fn cluster() -> MetadataImage {
    let image = image_with_brokers(&[1, 2, 3]);
    let out = create_topics(
        &image,
        &mut ctx(),
        &[CreateTopicSpec::new("t", 3, 2)],
        false,
    );
    commit(&image, &out.records)
}

fn state(image: &MetadataImage, partition: i32) -> (i32, Vec<i32>) {
    let p = &image.topic("t").unwrap().partitions[&partition];
    (p.leader, p.isr.clone())
}

#[test]
fn register_new_broker() {
    let image = MetadataImage::empty("c");
    let out = register_broker(&image, &policy(), &registration(7), Uuid::from_u128(77));
    assert_eq!(code(&out), 0);
    let image = commit(&image, &out.records);
    let broker = image.broker(7).unwrap();
    assert!(!broker.fenced);
    assert_eq!(broker.rack.as_deref(), Some("rack-a"));
    assert_eq!(broker.listener("PLAINTEXT").unwrap().port, 9092);
    assert_eq!(broker.incarnation_id, Uuid::from_u128(77));
    // The broker epoch is the offset of the registering batch, here the first one.
    assert_eq!(broker.epoch, 0);
    let image = commit(&image, &[]);
    let again = register_broker(&image, &policy(), &registration(7), Uuid::from_u128(78));
    let image = commit(&image, &again.records);
    let broker = image.broker(7).unwrap();
    assert_eq!(
        (broker.epoch, broker.incarnation_id),
        (2, Uuid::from_u128(78))
    );
    // Fencing records carry the current epoch.
    let fence = fence_broker(&image, &policy(), 7);
    assert_eq!(
        fence.records,
        vec![MetadataRecord::FenceBroker {
            broker_id: 7,
            epoch: 2
        }]
    );
}

#[test]
fn registration_errors() {
    let image = MetadataImage::empty("c");
    let mut negative = registration(-1);
    negative.broker_id = -1;
    let mut none = registration(1);
    none.listeners.clear();
    let mut dup = registration(1);
    dup.listeners.push(dup.listeners[0].clone());
    let mut no_port = registration(1);
    no_port.listeners[0].port = 0;
    for reg in [negative, none, dup, no_port] {
        let out = register_broker(&image, &policy(), &reg, Uuid::from_u128(77));
        assert_eq!(code(&out), codes::INVALID_REQUEST, "{reg:?}");
        assert!(out.records.is_empty());
    }
}

#[test]
fn fence_moves_leadership_and_shrinks_isr() {
    let image = cluster();
    let out = fence_broker(&image, &policy(), 1);
    assert_eq!(code(&out), 0);
    let image = commit(&image, &out.records);
    assert!(image.broker(1).unwrap().fenced);
    assert_eq!(state(&image, 0), (2, vec![2]));
    assert_eq!(state(&image, 1), (2, vec![2, 3]));
    assert_eq!(state(&image, 2), (3, vec![3]));
    assert_eq!(image.topic("t").unwrap().partitions[&0].leader_epoch, 1);
    // Fencing again changes nothing.
    assert!(fence_broker(&image, &policy(), 1).records.is_empty());
}

#[test]
fn last_isr_member_keeps_isr_and_leads_again_when_back() {
    let image = cluster();
    let image = commit(&image, &fence_broker(&image, &policy(), 1).records);
    let image = commit(&image, &fence_broker(&image, &policy(), 2).records);
    // Partition 0 had ISR [2] only: now leaderless with ISR kept.
    assert_eq!(state(&image, 0), (NO_LEADER, vec![2]));
    let out = unfence_broker(&image, &policy(), 2);
    assert_eq!(code(&out), 0);
    let image = commit(&image, &out.records);
    assert_eq!(state(&image, 0), (2, vec![2]));
    assert!(unfence_broker(&image, &policy(), 2).records.is_empty());
}

#[test]
fn reregistration_elects_leaderless_partitions() {
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
    let image = commit(&image, &fence_broker(&image, &policy(), 1).records);
    assert_eq!(state(&image, 0), (NO_LEADER, vec![1]));
    let image = commit(
        &image,
        &register_broker(&image, &policy(), &registration(1), Uuid::from_u128(77)).records,
    );
    assert_eq!(state(&image, 0), (1, vec![1]));
    assert!(!image.broker(1).unwrap().fenced);
}

#[test]
fn unregister() {
    let image = cluster();
    let out = unregister_broker(&image, &policy(), 3);
    assert_eq!(code(&out), 0);
    let image = commit(&image, &out.records);
    assert!(image.broker(3).is_none());
    assert_eq!(state(&image, 1), (2, vec![2]));
    assert_eq!(state(&image, 2), (1, vec![1]));
}

#[test]
fn unknown_broker() {
    let image = cluster();
    for out in [
        fence_broker(&image, &policy(), 9),
        unfence_broker(&image, &policy(), 9),
        unregister_broker(&image, &policy(), 9),
    ] {
        assert_eq!(code(&out), codes::BROKER_ID_NOT_REGISTERED);
    }
}

fn policy() -> ElectionPolicy {
    ElectionPolicy::default()
}
