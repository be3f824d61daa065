//! Requests encoded the way a client would (with `kafka-protocol`'s client-side encoders), shared by the
//! round-trip tests and the fuzz seeds.

#![allow(dead_code)] // each test binary uses a different subset

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic, ForgottenTopic,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::{ApiKey, BrokerId, RequestHeader, RequestKind, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use uuid::Uuid;

/// One request as a client sends it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
}

impl Sample {
    pub fn new(api_key: ApiKey, api_version: i16, correlation_id: i32, body: RequestKind) -> Self {
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(api_version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("kraftwerk-test")));
        Self {
            api_key,
            api_version,
            header,
            body,
        }
    }

    /// Header (in the version the api calls for) followed by the body, without the size prefix.
    pub fn encode_body(&self) -> Result<Bytes, String> {
        let mut buf = BytesMut::new();
        let header_version = self.api_key.request_header_version(self.api_version);
        self.header
            .encode(&mut buf, header_version)
            .map_err(|e| format!("header: {e}"))?;
        self.body
            .encode(&mut buf, self.api_version)
            .map_err(|e| format!("body: {e}"))?;
        Ok(buf.freeze())
    }

    /// The whole frame: 4-byte size prefix, header, body.
    pub fn encode_frame(&self) -> Result<Bytes, String> {
        let body = self.encode_body()?;
        let mut buf = BytesMut::with_capacity(4 + body.len());
        buf.put_i32(i32::try_from(body.len()).map_err(|e| e.to_string())?);
        buf.put_slice(&body);
        Ok(buf.freeze())
    }
}

fn s(text: &'static str) -> StrBytes {
    StrBytes::from_static_str(text)
}

fn topic(text: &'static str) -> TopicName {
    TopicName(s(text))
}

/// Opaque record-batch bytes: the request decoder never looks inside them.
fn records() -> Bytes {
    Bytes::from_static(b"\x00\x00\x00\x00\x00\x00\x00\x00record-batch-bytes")
}

pub fn produce(version: i16) -> Sample {
    let partitions = vec![
        PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(records())),
        PartitionProduceData::default()
            .with_index(7)
            .with_records(None),
    ];
    let topic_data = if version >= 13 {
        TopicProduceData::default().with_topic_id(Uuid::from_u128(0x1234_5678))
    } else {
        TopicProduceData::default().with_name(topic("orders"))
    };
    let body = ProduceRequest::default()
        .with_transactional_id(Some(s("txn-1").into()))
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic_data.with_partition_data(partitions)]);
    Sample::new(ApiKey::Produce, version, 11, RequestKind::Produce(body))
}

pub fn fetch(version: i16) -> Sample {
    let mut partition = FetchPartition::default()
        .with_partition(3)
        .with_fetch_offset(42)
        .with_partition_max_bytes(1 << 20);
    if version >= 5 {
        partition = partition.with_log_start_offset(5);
    }
    if version >= 9 {
        partition = partition.with_current_leader_epoch(2);
    }
    if version >= 12 {
        partition = partition.with_last_fetched_epoch(1);
    }
    let (fetch_topic, forgotten) = if version >= 13 {
        (
            FetchTopic::default().with_topic_id(Uuid::from_u128(0xabcdef)),
            ForgottenTopic::default().with_topic_id(Uuid::from_u128(0xfeed)),
        )
    } else {
        (
            FetchTopic::default().with_topic(topic("orders")),
            ForgottenTopic::default().with_topic(topic("old")),
        )
    };
    let mut body = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_isolation_level(1)
        .with_topics(vec![fetch_topic.with_partitions(vec![partition])]);
    if version >= 7 {
        body = body
            .with_session_id(9)
            .with_session_epoch(4)
            .with_forgotten_topics_data(vec![forgotten.with_partitions(vec![1, 2])]);
    }
    if version >= 11 {
        body = body.with_rack_id(s("rack-a"));
    }
    Sample::new(ApiKey::Fetch, version, 12, RequestKind::Fetch(body))
}

pub fn metadata(version: i16) -> Sample {
    let mut t = MetadataRequestTopic::default().with_name(Some(topic("orders")));
    if version >= 10 {
        t = t.with_topic_id(Uuid::from_u128(0));
    }
    let mut body = MetadataRequest::default().with_topics(Some(vec![t]));
    if version >= 4 {
        body = body.with_allow_auto_topic_creation(false);
    }
    if version >= 8 {
        body = body.with_include_topic_authorized_operations(true);
    }
    Sample::new(ApiKey::Metadata, version, 13, RequestKind::Metadata(body))
}

pub fn api_versions(version: i16) -> Sample {
    let mut body = ApiVersionsRequest::default();
    if version >= 3 {
        body = body
            .with_client_software_name(s("kraftwerk-tests"))
            .with_client_software_version(s("0.1.0"));
    }
    Sample::new(
        ApiKey::ApiVersions,
        version,
        14,
        RequestKind::ApiVersions(body),
    )
}

pub fn create_topics(version: i16) -> Sample {
    let body = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_validate_only(false)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(topic("payments"))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2)])])
                .with_configs(vec![
                    CreatableTopicConfig::default()
                        .with_name(s("cleanup.policy"))
                        .with_value(Some(s("compact"))),
                    CreatableTopicConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(None),
                ]),
            CreatableTopic::default()
                .with_name(topic("audit"))
                .with_num_partitions(3)
                .with_replication_factor(1),
        ]);
    Sample::new(
        ApiKey::CreateTopics,
        version,
        15,
        RequestKind::CreateTopics(body),
    )
}

/// The hand-built samples the brief names, at the versions it names.
pub fn named_samples() -> Vec<Sample> {
    vec![
        produce(3),
        produce(9),
        produce(13),
        fetch(4),
        fetch(12),
        fetch(13),
        metadata(1),
        metadata(9),
        metadata(12),
        api_versions(0),
        api_versions(3),
        create_topics(5),
    ]
}

/// `RequestKind::<Api>(Default::default())` for every api key `kafka-protocol` knows; the variant names
/// are the `ApiKey` names, so one list drives the mapping.
macro_rules! default_requests {
    ($($name:ident),* $(,)?) => {
        pub fn default_request(key: ApiKey) -> RequestKind {
            match key {
                $(ApiKey::$name => RequestKind::$name(Default::default()),)*
            }
        }
    };
}

kraftwerk_protocol::with_api_names!(default_requests);

/// A default-bodied request for every api key at every version `kafka-protocol` can encode, followed by
/// the hand-built samples; the seeds the fuzz tests mutate.
pub fn every_api_sample() -> Vec<Sample> {
    let mut out = Vec::new();
    for key in ApiKey::iter() {
        let valid = key.valid_versions();
        for version in valid.min..=valid.max {
            let sample = Sample::new(key, version, 1000 + version as i32, default_request(key));
            if sample.encode_body().is_ok() {
                out.push(sample);
            }
        }
    }
    out.extend(named_samples());
    out
}
