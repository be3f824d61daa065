//! Shared fixtures for the op tests.

use uuid::Uuid;

use super::OpContext;
use crate::image::MetadataImage;
use crate::policy::Policies;
use crate::records::{BrokerRecord, Endpoint, MetadataRecord, SecurityProtocol};

/// A context with defaults of 1 partition / RF 1 and topic ids 100, 101, ...
pub(crate) fn ctx() -> OpContext {
    ctx_with(Policies::default())
}

pub(crate) fn ctx_with(policies: Policies) -> OpContext {
    let mut next = 99u128;
    OpContext {
        default_num_partitions: 1,
        default_replication_factor: 1,
        policies,
        election: super::election::ElectionPolicy::default(),
        new_topic_id: Box::new(move || {
            next += 1;
            Uuid::from_u128(next)
        }),
    }
}

pub(crate) fn register(id: i32) -> MetadataRecord {
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

/// An image with the given brokers registered and unfenced.
pub(crate) fn image_with_brokers(ids: &[i32]) -> MetadataImage {
    let records: Vec<_> = ids.iter().map(|&id| register(id)).collect();
    MetadataImage::empty("test-cluster").apply(0, &records)
}

/// Applies records as the next committed batch.
pub(crate) fn commit(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
    image.apply(image.last_applied_offset() + 1, records)
}

/// The error code of every result, in order (0 for success).
pub(crate) fn codes<T>(results: &[crate::api::TopicResult<T>]) -> Vec<i16> {
    results
        .iter()
        .map(|r| r.result.as_ref().map_or_else(|e| e.error_code(), |_| 0))
        .collect()
}
