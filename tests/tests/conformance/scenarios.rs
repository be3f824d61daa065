//! The scenarios: each sends the same requests to both brokers at the lowest and highest common version
//! and compares the answers. Names carry the version where a scenario creates state, so the runs at two
//! versions do not see each other's topics or groups.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest,
    DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest, DescribeConfigsResponse,
    DescribeGroupsRequest, DescribeTopicPartitionsRequest, FetchRequest, FindCoordinatorRequest,
    GroupId, InitProducerIdRequest, JoinGroupRequest, ListConfigResourcesRequest,
    ListConfigResourcesResponse, ListOffsetsRequest, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetFetchRequest, ProduceRequest, SyncGroupRequest, TopicName,
    UpdateFeaturesRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};
use kraftwerk_storage::batch::{BatchBuilder, Compression};
use kraftwerk_tests::conformance::compare::{Difference, Normalise, Rule};
use kraftwerk_tests::conformance::{api_name, Pair};
use kraftwerk_tests::wire::encode_request;

#[path = "admin_scenarios.rs"]
mod admin_scenarios;
#[path = "fetch_limits.rs"]
mod fetch_limits;

const TIMEOUT_MS: i32 = 30_000;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn topic_name(text: &str) -> TopicName {
    TopicName(s(text))
}

/// Runs a scenario step and panics with its name if a request itself fails (a closed connection or an
/// undecodable answer is not a difference to list, it is a broken broker).
fn check<T>(what: &str, result: Result<T, kraftwerk_tests::HarnessError>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

pub fn run_all(pair: &mut Pair) {
    api_versions(pair);
    // Kraftwerk creates __consumer_offsets at start, Kafka on the first FindCoordinator: make both have
    // it before topics are listed.
    find_coordinator(pair);
    setup_topics(pair);
    metadata(pair);
    create_topics(pair);
    delete_topics(pair);
    create_partitions(pair);
    request_record_bounds(pair);
    produce(pair);
    produce_edges(pair);
    fetch(pair);
    fetch_sessions(pair);
    fetch_limits::fetch_limits(pair);
    list_offsets(pair);
    offset_for_leader_epoch(pair);
    describe_log_dirs(pair);
    offset_commit_fetch(pair);
    stale_generation(pair);
    describe_configs(pair);
    init_producer_id(pair);
    describe_cluster(pair);
    describe_groups(pair);
    describe_topic_partitions(pair);
    list_config_resources(pair);
    update_features(pair);
    client_telemetry(pair);
    admin_scenarios::run_all(pair, crate::CLUSTER_ID);
    // Last: it deletes groups the scenarios above use.
    delete_groups(pair);
}

// --- setup ----------------------------------------------------------------------------------------

fn creatable(name: &str, partitions: i32, rf: i16, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(rf)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                })
                .collect(),
        )
}

/// Creates topics on both brokers (not compared) and fails unless both succeed.
fn create_on_both(pair: &mut Pair, topics: Vec<CreatableTopic>) {
    let v = check(
        "CreateTopics version",
        pair.max_version::<CreateTopicsRequest>(),
    );
    let req = CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(TIMEOUT_MS);
    let names: Vec<String> = req.topics.iter().map(|t| t.name.0.to_string()).collect();
    let (a, b) = check("CreateTopics (setup)", pair.both(v, &req));
    for t in a.topics.iter().chain(&b.topics) {
        assert_eq!(
            t.error_code, 0,
            "setup topic {:?}: {:?}",
            t.name, t.error_message
        );
    }
    // Kafka answers CreateTopics once the controller committed; its broker serves the topic a moment later.
    let mv = check("Metadata version", pair.max_version::<MetadataRequest>());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let probe = metadata_request(mv, Some(&refs), false);
    wait_for_both(pair, mv, &probe, |r| {
        r.topics.len() == names.len()
            && r.topics.iter().all(|t| {
                t.error_code == 0
                    && t.partitions
                        .iter()
                        .all(|p| p.error_code == 0 && p.leader_id.0 >= 0)
            })
    });
}

/// `conf-topic` (1 partition), `conf-small` (max.message.bytes=1000), `conf-records` (3 records with
/// timestamps 1000, 2000, 3000).
fn setup_topics(pair: &mut Pair) {
    create_on_both(
        pair,
        vec![
            creatable("conf-topic", 1, 1, &[]),
            creatable("conf-small", 1, 1, &[("max.message.bytes", "1000")]),
            // Its records are stamped 1970: without retention.ms=-1, Kafka's first retention pass (30 s after
            // start) deletes them and any later scenario reading them would differ by timing.
            creatable("conf-records", 1, 1, &[("retention.ms", "-1")]),
        ],
    );
    let v = check("Produce version", pair.max_version::<ProduceRequest>());
    let (ka, kw) = produce_pair(
        pair,
        v,
        "conf-records",
        0,
        -1,
        batch(&[1000, 2000, 3000], 10),
    );
    setup_produce(pair, v, &ka, &kw);
}

fn batch(timestamps: &[i64], value_len: usize) -> Bytes {
    let value = vec![b'v'; value_len];
    let mut b = BatchBuilder::new(0, -1);
    for ts in timestamps {
        b.push(*ts, Some(b"key"), Some(&value), &[])
            .expect("record fits a batch");
    }
    Bytes::from(b.build())
}

// --- ApiVersions ------------------------------------------------------------------------------------

/// Compared without the API list (Kraftwerk advertises fewer APIs and some lower maxima, printed as
/// notes); the rest of the answer (error code, features) is compared.
fn api_versions(pair: &mut Pair) {
    let kafka_keys = pair.kafka.versions.api_keys.clone();
    let ours = pair.kraftwerk.versions.api_keys.clone();
    let missing: Vec<String> = kafka_keys
        .iter()
        .filter(|k| !ours.iter().any(|o| o.api_key == k.api_key))
        .map(|k| format!("{}({})", api_name(k.api_key), k.api_key))
        .collect();
    pair.note(format!(
        "Kafka APIs Kraftwerk does not advertise ({}): {}",
        missing.len(),
        missing.join(", ")
    ));
    // The range of every API both serve is compared: a lower maximum is a version Kafka 4.4's clients
    // would use and Kraftwerk does not serve.
    let mut ranges = Vec::new();
    for k in &kafka_keys {
        if let Some(o) = ours.iter().find(|o| o.api_key == k.api_key) {
            let name = api_name(k.api_key);
            for (end, kafka, kraftwerk) in [
                ("min_version", k.min_version, o.min_version),
                ("max_version", k.max_version, o.max_version),
            ] {
                if kafka != kraftwerk {
                    ranges.push((
                        format!("api_keys[{name}].{end}"),
                        kafka.to_string(),
                        kraftwerk.to_string(),
                    ));
                }
            }
        }
    }
    for k in &ours {
        if !kafka_keys.iter().any(|o| o.api_key == k.api_key) {
            ranges.push((
                format!("api_keys[{}]", api_name(k.api_key)),
                "<absent>".to_string(),
                format!("{}..={}", k.min_version, k.max_version),
            ));
        }
    }
    pair.report
        .scenarios
        .insert("api versions ranges".to_string());
    for (path, kafka, kraftwerk) in ranges {
        pair.report.differences.push(Difference {
            scenario: "api versions ranges".to_string(),
            api: "ApiVersions".to_string(),
            version: 0,
            path,
            kafka,
            kraftwerk,
        });
    }
    for v in pair.versions::<ApiVersionsRequest>() {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(s("kraftwerk-conformance"))
            .with_client_software_version(s("1.0"));
        check(
            "ApiVersions",
            pair.exchange_with("api versions", v, &req, &[], |a, b| {
                a.api_keys.clear();
                b.api_keys.clear();
            }),
        );
    }
    // The error answers list no APIs, so they are compared whole.
    for v in pair.versions::<ApiVersionsRequest>() {
        if v >= 3 {
            let req = ApiVersionsRequest::default()
                .with_client_software_name(s("bad name!"))
                .with_client_software_version(s("1.0"));
            check(
                "ApiVersions invalid",
                pair.exchange("api versions invalid software name", v, &req),
            );
        }
        if v >= 5 {
            let mv = check("Metadata version", pair.max_version::<MetadataRequest>());
            let (meta, _) = check(
                "Metadata (cluster id)",
                pair.both(mv, &metadata_request(mv, Some(&[]), false)),
            );
            let cluster = meta.cluster_id.map(|c| c.to_string()).unwrap_or_default();
            for (scenario, cluster_id, node_id) in [
                ("api versions for this node", Some(cluster.as_str()), 1),
                (
                    "api versions for another cluster",
                    Some("AAAAAAAAAAAAAAAAAAAAAA"),
                    1,
                ),
                ("api versions for another node", Some(cluster.as_str()), 2),
                ("api versions for any cluster", None, -1),
            ] {
                let req = ApiVersionsRequest::default()
                    .with_client_software_name(s("kraftwerk-conformance"))
                    .with_client_software_version(s("1.0"))
                    .with_cluster_id(cluster_id.map(s))
                    .with_node_id(node_id);
                check(
                    scenario,
                    pair.exchange_with(scenario, v, &req, &[], |a, b| {
                        a.api_keys.clear();
                        b.api_keys.clear();
                    }),
                );
            }
        }
    }
}

// --- Metadata ---------------------------------------------------------------------------------------

fn metadata_request(v: i16, names: Option<&[&str]>, auto_create: bool) -> MetadataRequest {
    let topics = match names {
        // All topics: null from v1, an empty list at v0.
        None if v == 0 => Some(Vec::new()),
        None => None,
        Some(names) => Some(
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                .collect(),
        ),
    };
    let mut req = MetadataRequest::default().with_topics(topics);
    if v >= 4 {
        req.allow_auto_topic_creation = auto_create;
    }
    req
}

/// Brokers' topic order is a hash map's; the comparison is by name.
fn sort_metadata(a: &mut MetadataResponse, b: &mut MetadataResponse) {
    for r in [a, b] {
        r.topics.sort_by(|x, y| x.name.cmp(&y.name));
        for t in &mut r.topics {
            t.partitions.sort_by_key(|p| p.partition_index);
        }
    }
}

fn metadata(pair: &mut Pair) {
    for v in pair.versions::<MetadataRequest>() {
        let all = metadata_request(v, None, false);
        check(
            "Metadata all",
            pair.exchange_with("metadata all topics", v, &all, &[], sort_metadata),
        );
        let named = metadata_request(v, Some(&["conf-topic"]), false);
        check(
            "Metadata named",
            pair.exchange("metadata named topic", v, &named),
        );
        if v >= 4 {
            let unknown = metadata_request(v, Some(&["conf-missing"]), false);
            check(
                "Metadata unknown",
                pair.exchange("metadata unknown topic, auto-create off", v, &unknown),
            );
        }
        let invalid = metadata_request(v, Some(&["bad name!"]), true);
        check(
            "Metadata invalid",
            pair.exchange("metadata invalid topic name", v, &invalid),
        );
    }
}

// --- CreateTopics -----------------------------------------------------------------------------------

fn create_topics(pair: &mut Pair) {
    for v in pair.versions::<CreateTopicsRequest>() {
        let ok = format!("conf-create-v{v}");
        let cases: Vec<(&str, CreatableTopic, bool)> = vec![
            (
                "create topics success",
                creatable(&ok, 3, 1, &[("retention.ms", "3600000")]),
                false,
            ),
            (
                "create topics already exists",
                creatable(&ok, 3, 1, &[]),
                false,
            ),
            (
                "create topics invalid name",
                creatable("bad name!", 1, 1, &[]),
                false,
            ),
            (
                "create topics invalid replication factor",
                creatable(&format!("conf-rf-v{v}"), 1, 3, &[]),
                false,
            ),
            (
                "create topics zero partitions",
                creatable(&format!("conf-zero-v{v}"), 0, 1, &[]),
                false,
            ),
            (
                "create topics invalid config value",
                creatable(
                    &format!("conf-cfg-v{v}"),
                    1,
                    1,
                    &[("cleanup.policy", "bogus")],
                ),
                false,
            ),
            (
                "create topics unknown config",
                creatable(&format!("conf-cfg2-v{v}"), 1, 1, &[("no.such.config", "1")]),
                false,
            ),
            (
                "create topics validate only",
                creatable(&format!("conf-validate-v{v}"), 2, 1, &[]),
                true,
            ),
        ];
        for (scenario, topic, validate_only) in cases {
            let req = CreateTopicsRequest::default()
                .with_topics(vec![topic])
                .with_timeout_ms(TIMEOUT_MS)
                .with_validate_only(validate_only);
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, &[], |a, b| {
                    for r in [a, b] {
                        for t in &mut r.topics {
                            if let Some(c) = t.configs.as_mut() {
                                c.sort_by(|x, y| x.name.cmp(&y.name));
                            }
                        }
                    }
                }),
            );
        }
    }
}

// --- DeleteTopics, CreatePartitions -----------------------------------------------------------------

fn delete_topics(pair: &mut Pair) {
    for v in pair.versions::<DeleteTopicsRequest>() {
        let mut req = DeleteTopicsRequest::default().with_timeout_ms(TIMEOUT_MS);
        if v >= 6 {
            req.topics =
                vec![DeleteTopicState::default().with_name(Some(topic_name("conf-missing")))];
        } else {
            req.topic_names = vec![topic_name("conf-missing")];
        }
        check(
            "DeleteTopics",
            pair.exchange("delete topics unknown", v, &req),
        );
    }
}

fn create_partitions(pair: &mut Pair) {
    for v in pair.versions::<CreatePartitionsRequest>() {
        for (scenario, topic, count) in [
            ("create partitions same count", "conf-topic", 1),
            ("create partitions fewer", "conf-topic", 0),
            ("create partitions unknown topic", "conf-missing", 2),
        ] {
            let req = CreatePartitionsRequest::default()
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(topic_name(topic))
                    .with_count(count)])
                .with_timeout_ms(TIMEOUT_MS)
                .with_validate_only(true);
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
}

/// Kafka's controller writes at most 10,000 records for one request (`MAX_RECORDS_PER_USER_OP`): a topic is one
/// record plus one per partition, so one CreateTopics of a 10,000-partition topic, or of two 5,000-partition
/// topics, is refused whole, while 9,999 partitions (10,000 records) pass. CreatePartitions counts a record per
/// new partition. Validate-only requests build the same records, so they are bounded the same way and create
/// nothing on either broker.
fn request_record_bounds(pair: &mut Pair) {
    let Some(&v) = pair.versions::<CreateTopicsRequest>().last() else {
        return;
    };
    let cases: Vec<(&str, Vec<CreatableTopic>, bool)> = vec![
        (
            "create topics 10,000 partitions in one topic",
            vec![creatable("conf-bound-10000", 10_000, 1, &[])],
            false,
        ),
        (
            "create topics 9,999 partitions, validate only",
            vec![creatable("conf-bound-9999", 9_999, 1, &[])],
            true,
        ),
        (
            "create topics two topics of 5,000 partitions, validate only",
            vec![
                creatable("conf-bound-a", 5_000, 1, &[]),
                creatable("conf-bound-b", 5_000, 1, &[]),
            ],
            true,
        ),
        (
            "create topics an invalid name beside 10,000 partitions, validate only",
            vec![
                creatable("bad name!", 1, 1, &[]),
                creatable("conf-bound-c", 10_000, 1, &[]),
            ],
            true,
        ),
        (
            "create topics 100,000 partitions, validate only",
            vec![creatable("conf-bound-huge", 100_000, 1, &[])],
            true,
        ),
    ];
    for (scenario, topics, validate_only) in cases {
        let req = CreateTopicsRequest::default()
            .with_topics(topics)
            .with_timeout_ms(TIMEOUT_MS)
            .with_validate_only(validate_only);
        check(scenario, pair.exchange(scenario, v, &req));
    }
    let Some(&v) = pair.versions::<CreatePartitionsRequest>().last() else {
        return;
    };
    for (scenario, count) in [
        ("create partitions 10,001 more, validate only", 10_002),
        ("create partitions 10,000 more, validate only", 10_001),
    ] {
        let req = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name("conf-topic"))
                .with_count(count)])
            .with_timeout_ms(TIMEOUT_MS)
            .with_validate_only(true);
        check(scenario, pair.exchange(scenario, v, &req));
    }
}

// --- Produce, Fetch, ListOffsets --------------------------------------------------------------------

fn produce_request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(TIMEOUT_MS)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// Sends a setup produce (`ka` to Kafka, `kw` to Kraftwerk) until each broker has taken it. A side answering
/// NOT_LEADER_OR_FOLLOWER is asked again, alone, as a client would: Kafka's broker can list a new partition's
/// leader in Metadata a moment before its replica manager has become that leader.
fn setup_produce(pair: &mut Pair, v: i16, ka: &ProduceRequest, kw: &ProduceRequest) {
    let not_leader_or_follower = kafka_protocol::ResponseError::NotLeaderOrFollower.code();
    for (side, endpoint, req) in [
        ("Apache Kafka", &mut pair.kafka, ka),
        ("kraftwerk", &mut pair.kraftwerk, kw),
    ] {
        let mut attempt = 0;
        loop {
            let resp = check("Produce (setup)", endpoint.conn.request(v, req));
            let codes: Vec<i16> = resp
                .responses
                .iter()
                .map(|r| r.partition_responses[0].error_code)
                .collect();
            attempt += 1;
            if codes.contains(&not_leader_or_follower) && attempt < 20 {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            for code in codes {
                assert_eq!(code, 0, "setup produce on {side}");
            }
            break;
        }
    }
}

/// The same produce for each broker: by name, or from v13 by each broker's own topic id (an unknown
/// topic has the zero id on both).
fn produce_pair(
    pair: &mut Pair,
    v: i16,
    topic: &str,
    partition: i32,
    acks: i16,
    records: Bytes,
) -> (ProduceRequest, ProduceRequest) {
    let req = produce_request(topic, partition, acks, records);
    if v < 13 {
        return (req.clone(), req);
    }
    let (ka, kw) = topic_ids(pair, topic);
    let by_id = |id: uuid::Uuid| {
        let mut r = req.clone();
        for t in &mut r.topic_data {
            t.name = TopicName::default();
            t.topic_id = id;
        }
        r
    };
    (by_id(ka), by_id(kw))
}

fn list_offsets_request(v: i16, topic: &str, partition: i32, timestamp: i64) -> ListOffsetsRequest {
    let mut p = ListOffsetsPartition::default()
        .with_partition_index(partition)
        .with_timestamp(timestamp);
    if v >= 4 {
        p.current_leader_epoch = -1;
    }
    let mut req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![p])]);
    if v >= 10 {
        req.timeout_ms = TIMEOUT_MS;
    }
    req
}

fn produce(pair: &mut Pair) {
    for v in pair.versions::<ProduceRequest>() {
        let topic = format!("conf-produce-v{v}");
        create_on_both(pair, vec![creatable(&topic, 1, 1, &[])]);
        let cases = [
            ("produce acks=1", topic.as_str(), 0, 1, batch(&[10, 11], 20)),
            ("produce acks=-1", topic.as_str(), 0, -1, batch(&[12], 20)),
            (
                "produce unknown topic",
                "conf-missing",
                0,
                1,
                batch(&[13], 20),
            ),
            (
                "produce unknown partition",
                topic.as_str(),
                4,
                1,
                batch(&[14], 20),
            ),
            (
                "produce record too large",
                "conf-small",
                0,
                1,
                batch(&[15], 2000),
            ),
            ("produce bad acks", topic.as_str(), 0, 2, batch(&[16], 20)),
        ];
        for (scenario, t, p, acks, records) in cases {
            let (a, b) = produce_pair(pair, v, t, p, acks, records);
            check(scenario, pair.exchange_each(scenario, v, &a, &b));
        }
        // acks=0 gets no answer: send it raw to both, then compare where the log ends.
        let (a, b) = produce_pair(pair, v, &topic, 0, 0, batch(&[17, 18, 19], 20));
        let id = 1_000_000 + i32::from(v);
        let to_kafka = check("encode", encode_request(id, v, &a));
        let to_kraftwerk = check("encode", encode_request(id, v, &b));
        check("acks=0 to kafka", pair.kafka.conn.send_raw(&to_kafka));
        check(
            "acks=0 to kraftwerk",
            pair.kraftwerk.conn.send_raw(&to_kraftwerk),
        );
        let lv = check("ListOffsets", pair.max_version::<ListOffsetsRequest>());
        let latest = list_offsets_request(lv, &topic, 0, -1);
        // The acks=0 append is asynchronous to its connection on neither broker, but allow for it.
        wait_for_both(pair, lv, &latest, |r| {
            r.topics
                .first()
                .and_then(|t| t.partitions.first())
                .map(|p| p.offset)
                == Some(6)
        });
        check(
            "acks=0 latest",
            pair.exchange("produce acks=0 then latest offset", lv, &latest),
        );
    }
}

/// A batch of keyed records, or keyless ones, from an idempotent producer (`producer` = id, epoch, first
/// sequence) or none.
fn producer_batch(
    timestamps: &[i64],
    key: Option<&[u8]>,
    producer: Option<(i64, i16, i32)>,
) -> Bytes {
    let mut b = BatchBuilder::new(0, -1);
    if let Some((id, epoch, sequence)) = producer {
        b = b.producer(id, epoch, sequence);
    }
    for ts in timestamps {
        b.push(*ts, key, Some(b"value"), &[])
            .expect("record fits a batch");
    }
    Bytes::from(b.build())
}

/// Produce's error paths beyond the basic ones: a record without a key on a compacted topic (KIP-467's
/// per-record errors), and idempotent batches with sequence gaps, an unknown producer starting past
/// sequence 0, and a fenced (older) producer epoch. Producer ids are chosen, not allocated: neither broker
/// checks that an idempotent producer's id was handed out.
fn produce_edges(pair: &mut Pair) {
    for v in pair.versions::<ProduceRequest>() {
        let compacted = format!("conf-produce-compacted-v{v}");
        let idempotent = format!("conf-produce-idempotent-v{v}");
        create_on_both(
            pair,
            vec![
                creatable(&compacted, 1, 1, &[("cleanup.policy", "compact")]),
                creatable(&idempotent, 1, 1, &[]),
            ],
        );
        let base_id = 7_000_000 + i64::from(v) * 10;
        let cases = [
            (
                "produce keyless record to a compacted topic",
                compacted.as_str(),
                producer_batch(&[20, 21], None, None),
            ),
            (
                "produce keyed record to a compacted topic",
                compacted.as_str(),
                producer_batch(&[22], Some(b"k"), None),
            ),
            (
                "produce idempotent first batch",
                idempotent.as_str(),
                producer_batch(&[23, 24], Some(b"k"), Some((base_id, 0, 0))),
            ),
            (
                "produce idempotent sequence gap",
                idempotent.as_str(),
                producer_batch(&[25], Some(b"k"), Some((base_id, 0, 5))),
            ),
            (
                "produce idempotent duplicate",
                idempotent.as_str(),
                producer_batch(&[23, 24], Some(b"k"), Some((base_id, 0, 0))),
            ),
            (
                "produce idempotent next epoch",
                idempotent.as_str(),
                producer_batch(&[26], Some(b"k"), Some((base_id, 1, 0))),
            ),
            (
                "produce idempotent fenced epoch",
                idempotent.as_str(),
                producer_batch(&[27], Some(b"k"), Some((base_id, 0, 2))),
            ),
            (
                "produce unknown producer past sequence 0",
                idempotent.as_str(),
                producer_batch(&[28], Some(b"k"), Some((base_id + 1, 0, 7))),
            ),
        ];
        for (scenario, topic, records) in cases {
            let (a, b) = produce_pair(pair, v, topic, 0, -1, records);
            check(scenario, pair.exchange_each(scenario, v, &a, &b));
        }
    }
}

/// Repeats `req` on both (not compared) until `done` holds for both answers (or 30 s pass).
fn wait_for_both<R: Request>(
    pair: &mut Pair,
    v: i16,
    req: &R,
    done: impl Fn(&R::Response) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (a, b) = check("waiting", pair.both(v, req));
        if (done(&a) && done(&b)) || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each broker's topic id for `topic` (Fetch from v13 names topics by id).
fn topic_ids(pair: &mut Pair, topic: &str) -> (uuid::Uuid, uuid::Uuid) {
    let v = check("Metadata version", pair.max_version::<MetadataRequest>());
    let req = metadata_request(v, Some(&[topic]), false);
    let (a, b) = check("Metadata (topic ids)", pair.both(v, &req));
    (a.topics[0].topic_id, b.topics[0].topic_id)
}

fn fetch_request(v: i16, topic: &str, id: uuid::Uuid, offset: i64) -> FetchRequest {
    let mut p = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20);
    if v >= 9 {
        p.current_leader_epoch = -1;
    }
    if v >= 5 {
        p.log_start_offset = -1;
    }
    let mut t = FetchTopic::default().with_partitions(vec![p]);
    if v >= 13 {
        t.topic_id = id;
    } else {
        t.topic = topic_name(topic);
    }
    let mut req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![t]);
    if v < 15 {
        req.replica_id = BrokerId(-1);
    }
    if v >= 7 {
        req.session_epoch = -1;
    }
    req
}

fn fetch(pair: &mut Pair) {
    let (ka, kw) = topic_ids(pair, "conf-records");
    let unknown = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    for v in pair.versions::<FetchRequest>() {
        for (scenario, offset) in [("fetch offset out of range", 1000), ("fetch at log end", 3)] {
            let a = fetch_request(v, "conf-records", ka, offset);
            let b = fetch_request(v, "conf-records", kw, offset);
            check(scenario, pair.exchange_each(scenario, v, &a, &b));
        }
        let req = fetch_request(v, "conf-missing", unknown, 0);
        check(
            "fetch unknown",
            pair.exchange("fetch unknown topic", v, &req),
        );
    }
}

/// Incremental fetch sessions (KIP-227), from v7: a full fetch with epoch 0 opens a session (both answer a
/// session id), the next epoch naming nothing unchanged answers no partition, a replayed epoch and an unknown
/// session are refused, epoch -1 closes the session and is answered sessionless, and the closed id is unknown.
fn fetch_sessions(pair: &mut Pair) {
    let (ka, kw) = topic_ids(pair, "conf-records");
    let with = |base: &FetchRequest, id: i32, epoch: i32, named: bool| {
        let mut req = base.clone();
        req.session_id = id;
        req.session_epoch = epoch;
        if !named {
            req.topics.clear();
        }
        req
    };
    for v in pair
        .versions::<FetchRequest>()
        .into_iter()
        .filter(|&v| v >= 7)
    {
        // At the log end, so neither answer carries records.
        let a = fetch_request(v, "conf-records", ka, 3);
        let b = fetch_request(v, "conf-records", kw, 3);
        let (ra, rb) = check(
            "fetch session open",
            pair.exchange_each(
                "fetch session: open (epoch 0)",
                v,
                &with(&a, 0, 0, true),
                &with(&b, 0, 0, true),
            ),
        );
        let (sa, sb) = (ra.session_id, rb.session_id);
        let steps: [(&str, i32, bool); 5] = [
            ("fetch session: nothing changed (epoch 1)", 1, false),
            ("fetch session: replayed epoch", 1, false),
            ("fetch session: close (epoch -1)", -1, true),
            ("fetch session: closed id", 2, false),
            ("fetch session: unknown id", 1, false),
        ];
        for (i, (scenario, epoch, named)) in steps.into_iter().enumerate() {
            // The last step names an id neither broker gave out (they are random and positive).
            let (ia, ib) = if i == 4 { (-7, -7) } else { (sa, sb) };
            check(
                scenario,
                pair.exchange_each(
                    scenario,
                    v,
                    &with(&a, ia, epoch, named),
                    &with(&b, ib, epoch, named),
                ),
            );
        }
    }
}

/// `conf-maxts`: an uncompressed batch whose largest timestamp is carried by its second and fourth records,
/// then a gzip batch that reaches it again; `conf-maxts-gzip`: one gzip batch with the largest timestamp in its
/// second and fourth records. MAX_TIMESTAMP answers the first such record (KAFKA-16310), and a timestamp lookup
/// finds records inside compressed batches.
fn setup_max_timestamp_topics(pair: &mut Pair) {
    create_on_both(
        pair,
        vec![
            creatable("conf-maxts", 1, 1, &[("retention.ms", "-1")]),
            creatable("conf-maxts-gzip", 1, 1, &[("retention.ms", "-1")]),
        ],
    );
    let v = check("Produce version", pair.max_version::<ProduceRequest>());
    for (topic, records) in [
        ("conf-maxts", batch(&[1000, 5000, 2000, 5000], 10)),
        ("conf-maxts", gzip_batch(&[4000, 5000, 3000])),
        ("conf-maxts-gzip", gzip_batch(&[100, 900, 300, 900])),
    ] {
        let (ka, kw) = produce_pair(pair, v, topic, 0, -1, records);
        setup_produce(pair, v, &ka, &kw);
    }
}

fn gzip_batch(timestamps: &[i64]) -> Bytes {
    let mut b = BatchBuilder::new(0, -1).compression(Compression::Gzip);
    for ts in timestamps {
        b.push(*ts, Some(b"key"), Some(b"value"), &[])
            .expect("record fits a batch");
    }
    Bytes::from(b.build())
}

fn list_offsets(pair: &mut Pair) {
    setup_max_timestamp_topics(pair);
    for v in pair.versions::<ListOffsetsRequest>() {
        // (scenario, topic, timestamp, the offset Kafka answers: a record inside a batch, never its base).
        let mut more = vec![
            (
                "list offsets by timestamp in a compressed batch",
                "conf-maxts-gzip",
                800,
                1,
            ),
            (
                "list offsets by timestamp in the first of two batches",
                "conf-maxts",
                3500,
                1,
            ),
        ];
        if v >= 7 {
            more.push(("list offsets max timestamp record", "conf-maxts", -3, 1));
            more.push((
                "list offsets max timestamp compressed",
                "conf-maxts-gzip",
                -3,
                1,
            ));
        }
        for (scenario, topic, ts, offset) in more {
            let req = list_offsets_request(v, topic, 0, ts);
            let (kafka, _) = check(scenario, pair.exchange(scenario, v, &req));
            assert_eq!(
                kafka.topics[0].partitions[0].offset, offset,
                "{scenario}: Kafka's own answer is not what the scenario is about"
            );
        }
        let mut cases = vec![
            ("list offsets earliest", "conf-records", 0, -2),
            ("list offsets latest", "conf-records", 0, -1),
            ("list offsets by timestamp", "conf-records", 0, 2000),
            ("list offsets timestamp after all", "conf-records", 0, 5000),
            ("list offsets unknown partition", "conf-records", 5, -1),
            ("list offsets unknown topic", "conf-missing", 0, -1),
        ];
        if v >= 7 {
            cases.push(("list offsets max timestamp", "conf-records", 0, -3));
        }
        // The tiered-storage sentinels, each from the version that introduced it, and -6 (v11) before it.
        if v >= 8 {
            cases.push(("list offsets earliest local", "conf-records", 0, -4));
        }
        if v >= 9 {
            cases.push(("list offsets latest tiered", "conf-records", 0, -5));
            cases.push((
                "list offsets earliest pending upload",
                "conf-records",
                0,
                -6,
            ));
        }
        for (scenario, topic, partition, ts) in cases {
            let req = list_offsets_request(v, topic, partition, ts);
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
}

// --- Groups -----------------------------------------------------------------------------------------

fn find_coordinator_request(v: i16, key: &str) -> FindCoordinatorRequest {
    let req = FindCoordinatorRequest::default().with_key_type(0);
    if v >= 4 {
        req.with_coordinator_keys(vec![s(key)])
    } else {
        req.with_key(s(key))
    }
}

fn coordinator_error(v: i16, r: &kafka_protocol::messages::FindCoordinatorResponse) -> i16 {
    if v >= 4 {
        r.coordinators.first().map_or(-1, |c| c.error_code)
    } else {
        r.error_code
    }
}

fn find_coordinator(pair: &mut Pair) {
    // The first FindCoordinator creates __consumer_offsets on both; wait until both serve groups.
    let top = check(
        "FindCoordinator version",
        pair.max_version::<FindCoordinatorRequest>(),
    );
    let probe = find_coordinator_request(top, "conf-group");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = check("FindCoordinator (setup)", pair.both(top, &probe));
        if coordinator_error(top, &a) == 0 && coordinator_error(top, &b) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no group coordinator after 60 s: {a:?} / {b:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for v in pair.versions::<FindCoordinatorRequest>() {
        let req = find_coordinator_request(v, "conf-group");
        check(
            "FindCoordinator",
            pair.exchange("find coordinator", v, &req),
        );
    }
}

fn commit_request(
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_retention_time_ms(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(s("m")))])])
}

fn fetch_offsets_request(v: i16, group: &str, topic: &str) -> OffsetFetchRequest {
    if v >= 8 {
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s(group)))
            .with_member_epoch(-1)
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(vec![0])]))])
    } else {
        OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(vec![0])]))
    }
}

/// An id no topic has, for topics that exist on neither broker.
const UNKNOWN_TOPIC_ID: uuid::Uuid =
    uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);

/// Each broker's topic id for `topic`, or [`UNKNOWN_TOPIC_ID`] on both when it does not exist.
fn ids_or_unknown(pair: &mut Pair, topic: &str) -> (uuid::Uuid, uuid::Uuid) {
    let (a, b) = topic_ids(pair, topic);
    let known = |id: uuid::Uuid| if id.is_nil() { UNKNOWN_TOPIC_ID } else { id };
    (known(a), known(b))
}

/// The commit for each broker: as it is before v10, by each broker's topic ids from v10 (KIP-848).
fn commit_by_id(
    pair: &mut Pair,
    v: i16,
    req: OffsetCommitRequest,
) -> (OffsetCommitRequest, OffsetCommitRequest) {
    if v < 10 {
        return (req.clone(), req);
    }
    let (mut a, mut b) = (req.clone(), req);
    for (ta, tb) in a.topics.iter_mut().zip(b.topics.iter_mut()) {
        let (ka, kw) = ids_or_unknown(pair, ta.name.0.as_str());
        ta.topic_id = ka;
        tb.topic_id = kw;
        ta.name = TopicName::default();
        tb.name = TopicName::default();
    }
    (a, b)
}

/// [`commit_by_id`] for OffsetFetch.
fn fetch_by_id(
    pair: &mut Pair,
    v: i16,
    req: OffsetFetchRequest,
) -> (OffsetFetchRequest, OffsetFetchRequest) {
    if v < 10 {
        return (req.clone(), req);
    }
    let (mut a, mut b) = (req.clone(), req);
    for (ga, gb) in a.groups.iter_mut().zip(b.groups.iter_mut()) {
        let (Some(ta), Some(tb)) = (ga.topics.as_mut(), gb.topics.as_mut()) else {
            continue;
        };
        for (ta, tb) in ta.iter_mut().zip(tb.iter_mut()) {
            let (ka, kw) = ids_or_unknown(pair, ta.name.0.as_str());
            ta.topic_id = ka;
            tb.topic_id = kw;
            ta.name = TopicName::default();
            tb.name = TopicName::default();
        }
    }
    (a, b)
}

/// Waits until both brokers' coordinators serve `group` (Kafka loads each __consumer_offsets partition
/// asynchronously after creating the topic, answering NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS
/// meanwhile).
fn wait_group_ready(pair: &mut Pair, group: &str) {
    let v = check(
        "OffsetFetch version",
        pair.max_version::<OffsetFetchRequest>(),
    );
    let (ka, kw) = fetch_by_id(pair, v, fetch_offsets_request(v, group, "conf-topic"));
    let error = |r: &kafka_protocol::messages::OffsetFetchResponse| {
        if v >= 8 {
            r.groups.first().map_or(-1, |g| g.error_code)
        } else {
            r.error_code
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = check("OffsetFetch (setup)", pair.both_each(v, &ka, &kw));
        if error(&a) == 0 && error(&b) == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} not served after 60 s: {a:?} / {b:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn offset_commit_fetch(pair: &mut Pair) {
    for v in pair.versions::<OffsetCommitRequest>() {
        let group = format!("conf-simple-v{v}");
        wait_group_ready(pair, &group);
        for (scenario, topic, partition) in [
            ("offset commit simple group", "conf-topic", 0),
            ("offset commit unknown topic", "conf-missing", 0),
            ("offset commit unknown partition", "conf-topic", 7),
        ] {
            let req = commit_request(&group, -1, "", topic, partition, 5);
            let (a, b) = commit_by_id(pair, v, req);
            check(scenario, pair.exchange_each(scenario, v, &a, &b));
        }
    }
    wait_group_ready(pair, "conf-never-used");
    let top = check(
        "OffsetCommit version",
        pair.max_version::<OffsetCommitRequest>(),
    );
    let committed = format!("conf-simple-v{top}");
    for v in pair.versions::<OffsetFetchRequest>() {
        let group = committed.as_str();
        for (scenario, group, topic) in [
            ("offset fetch committed", group, "conf-topic"),
            ("offset fetch unknown topic", group, "conf-missing"),
            (
                "offset fetch unknown group",
                "conf-never-used",
                "conf-topic",
            ),
        ] {
            let (a, b) = fetch_by_id(pair, v, fetch_offsets_request(v, group, topic));
            check(scenario, pair.exchange_each(scenario, v, &a, &b));
        }
    }
}

/// Joins `group` as its only member on both brokers; returns each broker's (member id, generation).
fn join_alone(pair: &mut Pair, group: &str) -> ((String, i32), (String, i32)) {
    let jv = check("JoinGroup version", pair.max_version::<JoinGroupRequest>());
    let join = |member: &str| {
        let mut req = JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(member))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"\x00\x00\x00\x00\x00\x00\x00\x00"))]);
        if jv >= 8 {
            req.reason = Some(s("conformance"));
        }
        req
    };
    let (a, b) = check("JoinGroup (setup)", pair.both(jv, &join("")));
    // From v4 the first join answers MEMBER_ID_REQUIRED with the id to join with.
    let (a, b) = if a.error_code != 0 || b.error_code != 0 {
        check(
            "JoinGroup again (setup)",
            pair.both_each(jv, &join(a.member_id.as_str()), &join(b.member_id.as_str())),
        )
    } else {
        (a, b)
    };
    assert_eq!((a.error_code, b.error_code), (0, 0), "join {group}");
    let sv = check("SyncGroup version", pair.max_version::<SyncGroupRequest>());
    let sync = |member: &str, generation: i32| {
        let mut req = SyncGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation)
            .with_member_id(s(member));
        if sv >= 5 {
            req.protocol_type = Some(s("consumer"));
            req.protocol_name = Some(s("range"));
        }
        req
    };
    let (sa, sb) = check(
        "SyncGroup (setup)",
        pair.both_each(
            sv,
            &sync(a.member_id.as_str(), a.generation_id),
            &sync(b.member_id.as_str(), b.generation_id),
        ),
    );
    assert_eq!((sa.error_code, sb.error_code), (0, 0), "sync {group}");
    (
        (a.member_id.as_str().to_string(), a.generation_id),
        (b.member_id.as_str().to_string(), b.generation_id),
    )
}

fn stale_generation(pair: &mut Pair) {
    for v in pair.versions::<OffsetCommitRequest>() {
        let group = format!("conf-member-v{v}");
        wait_group_ready(pair, &group);
        let ((ma, ga), (mb, gb)) = join_alone(pair, &group);
        for (scenario, delta, bogus_member) in [
            ("offset commit member current generation", 0, false),
            ("offset commit stale generation", 1, false),
            ("offset commit unknown member", 0, true),
        ] {
            let member = |m: &str| {
                if bogus_member {
                    "conf-nobody".to_string()
                } else {
                    m.to_string()
                }
            };
            let a = commit_request(&group, ga + delta, &member(&ma), "conf-topic", 0, 9);
            let b = commit_request(&group, gb + delta, &member(&mb), "conf-topic", 0, 9);
            let (a, _) = commit_by_id(pair, v, a);
            let (_, b) = commit_by_id(pair, v, b);
            check(scenario, pair.exchange_each(scenario, v, &a, &b));
        }
    }
}

// --- DescribeConfigs --------------------------------------------------------------------------------

/// Keeps only the keys both brokers report (sorted), noting the ones only Kafka has.
fn common_configs(
    notes: &mut Vec<String>,
    scope: &str,
    a: &mut DescribeConfigsResponse,
    b: &mut DescribeConfigsResponse,
) {
    for (ra, rb) in a.results.iter_mut().zip(b.results.iter_mut()) {
        let only_kafka: Vec<String> = ra
            .configs
            .iter()
            .filter(|c| !rb.configs.iter().any(|o| o.name == c.name))
            .map(|c| c.name.as_str().to_string())
            .collect();
        let only_ours: Vec<String> = rb
            .configs
            .iter()
            .filter(|c| !ra.configs.iter().any(|o| o.name == c.name))
            .map(|c| c.name.as_str().to_string())
            .collect();
        if !only_kafka.is_empty() {
            notes.push(format!(
                "{scope}: {} keys only Kafka describes: {}",
                only_kafka.len(),
                only_kafka.join(", ")
            ));
        }
        if !only_ours.is_empty() {
            notes.push(format!(
                "{scope}: {} keys only Kraftwerk describes: {}",
                only_ours.len(),
                only_ours.join(", ")
            ));
        }
        let keep: Vec<_> = ra
            .configs
            .iter()
            .filter(|c| rb.configs.iter().any(|o| o.name == c.name))
            .map(|c| c.name.clone())
            .collect();
        ra.configs.retain(|c| keep.contains(&c.name));
        rb.configs.retain(|c| keep.contains(&c.name));
        ra.configs.sort_by(|x, y| x.name.cmp(&y.name));
        rb.configs.sort_by(|x, y| x.name.cmp(&y.name));
    }
}

/// Broker configs whose values name this run's ports and temp dirs.
const LOCAL_BROKER_CONFIGS: &[Rule] = &[
    Rule {
        path: "results[*].configs[advertised.listeners]*value",
        how: Normalise::Any,
    },
    Rule {
        path: "results[*].configs[listeners]*value",
        how: Normalise::Any,
    },
    Rule {
        path: "results[*].configs[controller.quorum.voters]*value",
        how: Normalise::Any,
    },
    Rule {
        path: "results[*].configs[log.dirs]*value",
        how: Normalise::Any,
    },
];

fn describe_configs(pair: &mut Pair) {
    for v in pair.versions::<DescribeConfigsRequest>() {
        for (scenario, resource_type, name) in [
            ("describe configs topic", 2i8, "conf-small"),
            ("describe configs unknown topic", 2, "conf-missing"),
            ("describe configs broker", 4, "1"),
        ] {
            let mut req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(s(name))
                    .with_configuration_keys(None),
            ]);
            if v >= 1 {
                req.include_synonyms = true;
            }
            if v >= 3 {
                req.include_documentation = true;
            }
            let mut notes = Vec::new();
            let (a, b) = check("DescribeConfigs", pair.both(v, &req));
            let (mut ca, mut cb) = (a.clone(), b.clone());
            common_configs(&mut notes, &format!("{scenario} v{v}"), &mut ca, &mut cb);
            check(
                "compare",
                pair.compare(
                    scenario,
                    DescribeConfigsRequest::KEY,
                    v,
                    &ca,
                    &cb,
                    LOCAL_BROKER_CONFIGS,
                ),
            );
            for n in notes {
                pair.note(n);
            }
        }
    }
}

// --- InitProducerId, DescribeCluster ----------------------------------------------------------------

fn init_producer_id(pair: &mut Pair) {
    // Kafka answers COORDINATOR_LOAD_IN_PROGRESS until its first producer-id block arrives: wait for both.
    let top = check(
        "InitProducerId version",
        pair.max_version::<InitProducerIdRequest>(),
    );
    let probe = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(kafka_protocol::messages::ProducerId(-1))
        .with_producer_epoch(-1);
    wait_for_both(pair, top, &probe, |r| r.error_code == 0);
    for v in pair.versions::<InitProducerIdRequest>() {
        let mut req = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000);
        if v >= 3 {
            req.producer_id = kafka_protocol::messages::ProducerId(-1);
            req.producer_epoch = -1;
        }
        // Ids are allocated: the waits above took a different number on each broker.
        let allocated = [Rule {
            path: "producer_id",
            how: Normalise::Generated,
        }];
        check(
            "InitProducerId",
            pair.exchange_with("init producer id", v, &req, &allocated, |_, _| {}),
        );
    }
}

fn describe_cluster(pair: &mut Pair) {
    for v in pair.versions::<DescribeClusterRequest>() {
        let mut req = DescribeClusterRequest::default();
        if v >= 1 {
            req.endpoint_type = 1;
        }
        check(
            "DescribeCluster",
            pair.exchange("describe cluster", v, &req),
        );
    }
}

// --- DescribeGroups ---------------------------------------------------------------------------------

fn describe_groups(pair: &mut Pair) {
    // conf-member-v* are stable one-member groups (stale_generation), conf-simple-v* hold only offsets.
    let top = check(
        "OffsetCommit version",
        pair.max_version::<OffsetCommitRequest>(),
    );
    let stable = format!("conf-member-v{top}");
    let simple = format!("conf-simple-v{top}");
    wait_group_ready(pair, "conf-never-described");
    for v in pair.versions::<DescribeGroupsRequest>() {
        for (scenario, group) in [
            ("describe groups stable", stable.as_str()),
            ("describe groups offsets only", simple.as_str()),
            ("describe groups unknown", "conf-never-described"),
        ] {
            let mut req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
            if v >= 3 {
                req.include_authorized_operations = true;
            }
            let member = [Rule {
                path: "groups[].members[].member_id",
                how: Normalise::Generated,
            }];
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, &member, |_, _| {}),
            );
        }
    }
}

// --- DescribeTopicPartitions ------------------------------------------------------------------------

fn describe_topic_partitions_request(
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsRequest {
    DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    kafka_protocol::messages::describe_topic_partitions_request::TopicRequest::default()
                        .with_name(topic_name(t))
                })
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            kafka_protocol::messages::describe_topic_partitions_request::Cursor::default()
                .with_topic_name(topic_name(t))
                .with_partition_index(p)
        }))
}

fn describe_topic_partitions(pair: &mut Pair) {
    create_on_both(pair, vec![creatable("conf-describe", 3, 1, &[])]);
    for v in pair.versions::<DescribeTopicPartitionsRequest>() {
        let cases: Vec<(&str, DescribeTopicPartitionsRequest)> = vec![
            (
                "describe topic partitions named",
                describe_topic_partitions_request(
                    &["conf-topic", "conf-missing", "bad name!", "conf-describe"],
                    2000,
                    None,
                ),
            ),
            (
                "describe topic partitions first page",
                describe_topic_partitions_request(&["conf-describe", "conf-topic"], 2, None),
            ),
            (
                "describe topic partitions next page",
                describe_topic_partitions_request(
                    &["conf-describe", "conf-topic"],
                    2,
                    Some(("conf-describe", 2)),
                ),
            ),
            (
                "describe topic partitions page ends at a topic",
                describe_topic_partitions_request(&["conf-describe", "conf-topic"], 3, None),
            ),
            (
                "describe topic partitions cursor not listed",
                describe_topic_partitions_request(&["conf-topic"], 10, Some(("conf-describe", 0))),
            ),
            (
                "describe topic partitions negative cursor",
                describe_topic_partitions_request(&["conf-topic"], 10, Some(("conf-topic", -1))),
            ),
            (
                "describe topic partitions all topics",
                describe_topic_partitions_request(&[], 2000, None),
            ),
        ];
        for (scenario, req) in cases {
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
}

// --- ListConfigResources ----------------------------------------------------------------------------

/// Each broker lists topics in its own hash order: compared sorted.
fn sort_config_resources(a: &mut ListConfigResourcesResponse, b: &mut ListConfigResourcesResponse) {
    for r in [a, b] {
        r.config_resources.sort_by(|x, y| {
            (x.resource_type, &x.resource_name).cmp(&(y.resource_type, &y.resource_name))
        });
    }
}

fn list_config_resources(pair: &mut Pair) {
    for v in pair.versions::<ListConfigResourcesRequest>() {
        let mut cases: Vec<(&str, Vec<i8>)> = vec![("list config resources default", vec![])];
        if v >= 1 {
            cases.push(("list config resources topics and brokers", vec![2, 4]));
            cases.push((
                "list config resources groups and client metrics",
                vec![32, 16],
            ));
            cases.push(("list config resources broker loggers", vec![8]));
            cases.push(("list config resources unknown type", vec![2, 64]));
        }
        for (scenario, types) in cases {
            let req = ListConfigResourcesRequest::default().with_resource_types(types);
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, &[], sort_config_resources),
            );
        }
    }
}

// --- DeleteGroups -----------------------------------------------------------------------------------

fn delete_groups(pair: &mut Pair) {
    let top = check(
        "OffsetCommit version",
        pair.max_version::<OffsetCommitRequest>(),
    );
    let versions = pair.versions::<DeleteGroupsRequest>();
    for v in &versions {
        // A group with a member (not deleted), one never used, and (last, deleted) one holding only offsets.
        let stable = format!("conf-member-v{top}");
        let offsets_only = format!("conf-delete-v{v}");
        wait_group_ready(pair, &offsets_only);
        let commit = commit_request(&offsets_only, -1, "", "conf-topic", 0, 3);
        let cv = check(
            "OffsetCommit version",
            pair.max_version::<OffsetCommitRequest>(),
        );
        let (ka, kw) = commit_by_id(pair, cv, commit);
        let (a, b) = check("OffsetCommit (setup)", pair.both_each(cv, &ka, &kw));
        assert_eq!(
            (
                a.topics[0].partitions[0].error_code,
                b.topics[0].partitions[0].error_code
            ),
            (0, 0),
            "setup commit"
        );
        for (scenario, group) in [
            ("delete groups non-empty", stable.as_str()),
            ("delete groups unknown", "conf-never-deleted"),
            ("delete groups offsets only", offsets_only.as_str()),
        ] {
            let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]);
            check(scenario, pair.exchange(scenario, *v, &req));
        }
    }
}

// --- UpdateFeatures ---------------------------------------------------------------------------------

fn feature_update(
    v: i16,
    name: &str,
    level: i16,
    upgrade_type: i8,
    validate_only: bool,
) -> UpdateFeaturesRequest {
    let mut update = kafka_protocol::messages::update_features_request::FeatureUpdateKey::default()
        .with_feature(s(name))
        .with_max_version_level(level);
    if v >= 1 {
        update.upgrade_type = upgrade_type;
    }
    let mut req = UpdateFeaturesRequest::default()
        .with_timeout_ms(TIMEOUT_MS)
        .with_feature_updates(vec![update]);
    if v >= 1 {
        req.validate_only = validate_only;
    }
    req
}

fn update_features(pair: &mut Pair) {
    // Each broker's finalized metadata.version (they differ: Kafka 4.4's own, Kraftwerk's 4.0 level).
    let finalized = |versions: &kafka_protocol::messages::ApiVersionsResponse| {
        versions
            .finalized_features
            .iter()
            .find(|f| f.name.as_str() == "metadata.version")
            .map_or(0, |f| f.max_version_level)
    };
    let av = check(
        "ApiVersions version",
        pair.max_version::<ApiVersionsRequest>(),
    );
    let (kafka_versions, kraftwerk_versions) = check(
        "ApiVersions (features)",
        pair.both(
            av,
            &ApiVersionsRequest::default()
                .with_client_software_name(s("kraftwerk-conformance"))
                .with_client_software_version(s("1.0")),
        ),
    );
    let (mv_kafka, mv_kraftwerk) = (finalized(&kafka_versions), finalized(&kraftwerk_versions));
    assert!(
        mv_kafka > 0 && mv_kraftwerk > 0,
        "both finalize metadata.version"
    );
    for v in pair.versions::<UpdateFeaturesRequest>() {
        let a = feature_update(v, "metadata.version", mv_kafka, 1, true);
        let b = feature_update(v, "metadata.version", mv_kraftwerk, 1, true);
        check(
            "UpdateFeatures",
            pair.exchange_each("update features metadata.version to its level", v, &a, &b),
        );
        let mut cases = vec![
            (
                "update features unknown feature to 0",
                "no.such.feature",
                0,
                1,
            ),
            (
                "update features unknown feature to 1",
                "no.such.feature",
                1,
                1,
            ),
            ("update features unsupported level", "group.version", 5, 1),
            ("update features negative level", "group.version", -1, 1),
            // Both quorums run on static voters (kraft.version 0); 2 does not exist. The upgrade to 1 is not
            // sent, not even validate-only: Kafka's leader then keeps the voters' directory ids it learned for
            // the upgrade, and DescribeQuorum shows them from then on (tests/tools/run.sh upgrades Kraftwerk
            // with kafka-features).
            ("update features kraft.version to 2", "kraft.version", 2, 1),
        ];
        if v >= 1 {
            cases.push((
                "update features unknown upgrade type",
                "group.version",
                0,
                9,
            ));
            cases.push((
                "update features newer level as a downgrade",
                "group.version",
                5,
                2,
            ));
            cases.push((
                "update features kraft.version downgrade to its level",
                "kraft.version",
                0,
                2,
            ));
        }
        for (scenario, name, level, upgrade_type) in cases {
            let req = feature_update(v, name, level, upgrade_type, true);
            check(scenario, pair.exchange(scenario, v, &req));
        }
        let mut nothing = feature_update(v, "group.version", 0, 1, true);
        nothing.feature_updates.clear();
        check(
            "UpdateFeatures nothing",
            pair.exchange("update features with no updates", v, &nothing),
        );
    }
}

// --- GetTelemetrySubscriptions, PushTelemetry -------------------------------------------------------

/// Neither broker advertises these without a metrics plugin, but both answer them (v0): a client that sends
/// them anyway gets Kafka's ClientMetricsManager answers. A fixed instance id makes the subscription ids
/// (CRC32C of the subscription XOR the id's Java hash) comparable.
fn client_telemetry(pair: &mut Pair) {
    use kafka_protocol::messages::{GetTelemetrySubscriptionsRequest, PushTelemetryRequest};
    let id = uuid::Uuid::from_u128(0x0c0f_fee0_0000_4000_8000_0000_0000_0001);
    let get = GetTelemetrySubscriptionsRequest::default().with_client_instance_id(id);
    let (first, _) = check(
        "GetTelemetrySubscriptions",
        pair.exchange("telemetry subscriptions", 0, &get),
    );
    check(
        "GetTelemetrySubscriptions again",
        pair.exchange("telemetry subscriptions again within the interval", 0, &get),
    );
    let push = |subscription: i32, compression: i8, terminating: bool| {
        PushTelemetryRequest::default()
            .with_client_instance_id(id)
            .with_subscription_id(subscription)
            .with_compression_type(compression)
            .with_terminating(terminating)
            .with_metrics(Bytes::from_static(
                b"not an OTLP payload: no plugin reads it",
            ))
    };
    let sub = first.subscription_id;
    for (scenario, req) in [
        ("telemetry push after get", push(sub, 0, false)),
        ("telemetry push within the interval", push(sub, 0, false)),
        (
            "telemetry push terminating, wrong subscription",
            push(sub ^ 1, 0, true),
        ),
        ("telemetry push after terminating", push(sub, 0, false)),
    ] {
        check(scenario, pair.exchange(scenario, 0, &req));
    }
    let fresh = GetTelemetrySubscriptionsRequest::default();
    let generated = [
        Rule {
            path: "client_instance_id",
            how: Normalise::Generated,
        },
        Rule {
            path: "subscription_id",
            how: Normalise::Generated,
        },
    ];
    check(
        "GetTelemetrySubscriptions new",
        pair.exchange_with(
            "telemetry subscriptions for a new client",
            0,
            &fresh,
            &generated,
            |_, _| {},
        ),
    );
    let reserved = PushTelemetryRequest::default().with_client_instance_id(uuid::Uuid::nil());
    check(
        "PushTelemetry reserved",
        pair.exchange("telemetry push with the zero id", 0, &reserved),
    );
    let other = uuid::Uuid::from_u128(0x0c0f_fee0_0000_4000_8000_0000_0000_0002);
    let get = GetTelemetrySubscriptionsRequest::default().with_client_instance_id(other);
    let (a, _) = check("GetTelemetrySubscriptions other", pair.both(0, &get));
    let bad = PushTelemetryRequest::default()
        .with_client_instance_id(other)
        .with_subscription_id(a.subscription_id)
        .with_compression_type(9);
    check(
        "PushTelemetry compression",
        pair.exchange("telemetry push unknown compression", 0, &bad),
    );
}

// --- OffsetForLeaderEpoch ---------------------------------------------------------------------------

/// A consumer's question after a leader change (KIP-320): where did leader epoch N end? Both single-node
/// logs have one epoch, 0 (Kafka's first leader epoch), so the answers are comparable as they are.
fn offset_for_leader_epoch(pair: &mut Pair) {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::messages::OffsetForLeaderEpochRequest;
    for v in pair.versions::<OffsetForLeaderEpochRequest>() {
        for (scenario, topic, partition, current, epoch) in [
            ("offset for leader epoch current", "conf-records", 0, 0, 0),
            (
                "offset for leader epoch no current epoch",
                "conf-records",
                0,
                -1,
                0,
            ),
            (
                "offset for leader epoch future epoch",
                "conf-records",
                0,
                -1,
                5,
            ),
            (
                "offset for leader epoch unknown current epoch",
                "conf-records",
                0,
                3,
                0,
            ),
            (
                "offset for leader epoch unknown partition",
                "conf-records",
                4,
                -1,
                0,
            ),
            (
                "offset for leader epoch unknown topic",
                "conf-missing",
                0,
                -1,
                0,
            ),
        ] {
            let mut req = OffsetForLeaderEpochRequest::default().with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(vec![OffsetForLeaderPartition::default()
                        .with_partition(partition)
                        .with_current_leader_epoch(current)
                        .with_leader_epoch(epoch)]),
            ]);
            if v >= 3 {
                req.replica_id = BrokerId(-1);
            }
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
}

// --- DescribeLogDirs --------------------------------------------------------------------------------

/// What DescribeLogDirs answers from each broker's own volume: the log directory's path (its own temp dir)
/// and the volume's sizes.
pub(crate) const LOG_DIR_OF_EACH_BROKER: [Rule; 3] = [
    Rule {
        path: "results[].log_dir",
        how: Normalise::Any,
    },
    Rule {
        path: "results[].total_bytes",
        how: Normalise::Generated,
    },
    Rule {
        path: "results[].usable_bytes",
        how: Normalise::Generated,
    },
];

/// The log directory of each broker is its own temp dir on its own volume: its path and the volume's sizes are
/// not compared; the partitions in it (the same records, so the same bytes) are.
fn describe_log_dirs(pair: &mut Pair) {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::messages::DescribeLogDirsRequest;
    let local = LOG_DIR_OF_EACH_BROKER;
    for v in pair.versions::<DescribeLogDirsRequest>() {
        for (scenario, topic, partitions) in [
            ("describe log dirs of a partition", "conf-records", vec![0]),
            (
                "describe log dirs unknown partition",
                "conf-records",
                vec![9],
            ),
            ("describe log dirs unknown topic", "conf-missing", vec![0]),
        ] {
            let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
                DescribableLogDirTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(partitions),
            ]));
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, &local, |_, _| {}),
            );
        }
    }
}
