//! Topic administration and metadata through rdkafka's admin client and consumer: create (with configs,
//! duplicate, invalid name), delete, create partitions, describe configs, list offsets, auto-creation.

mod support;

use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::protocol::StrBytes;
use kraftwerk_tests::wire::Connection;
use kraftwerk_tests::Broker;
use rdkafka::admin::{ConfigSource, NewPartitions, ResourceSpecifier};
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use support::{
    admin, admin_options, block_on, consume_all, consumer, create_topic, flush, partition_count,
    recording_producer, send, try_create_topic, wait_for_partitions, TIMEOUT,
};

/// ConfigResource type for topics on the wire.
const TOPIC_RESOURCE: i8 = 2;
/// Kafka's UNKNOWN_TOPIC_OR_PARTITION error code.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn start() -> Broker {
    Broker::start().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn create_topic_with_configs_rejects_duplicates_and_invalid_names() {
    let broker = start();
    let admin = admin(&broker.bootstrap());
    assert_eq!(
        try_create_topic(&admin, "orders", 3, &[("retention.ms", "3600000")]),
        Ok(())
    );
    wait_for_partitions(&broker.bootstrap(), "orders", 3);

    assert_eq!(
        try_create_topic(&admin, "orders", 3, &[]),
        Err(RDKafkaErrorCode::TopicAlreadyExists),
        "creating an existing topic"
    );
    for bad in ["bad name!", "..", "slash/topic", &"x".repeat(250)] {
        assert_eq!(
            try_create_topic(&admin, bad, 1, &[]),
            Err(RDKafkaErrorCode::InvalidTopic),
            "creating topic named {bad:?}"
        );
    }
    // The wire-level listing sees the good topic and none of the rejected ones.
    let md = broker.metadata().unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = md
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    assert!(
        names.contains(&"orders".to_string()),
        "topics listed: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n == ".." || n == "bad name!"),
        "{names:?}"
    );
}

#[test]
fn deleted_topic_disappears_and_can_be_recreated() {
    let broker = start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "doomed", 2, &[]);
    let admin = admin(&bootstrap);
    let results = block_on(admin.delete_topics(&["doomed"], &admin_options()))
        .unwrap_or_else(|e| panic!("DeleteTopics: {e}"));
    assert!(
        matches!(results.as_slice(), [Ok(name)] if name == "doomed"),
        "DeleteTopics answered {results:?}"
    );
    let deadline = Instant::now() + TIMEOUT;
    while partition_count(&bootstrap, "doomed").is_some() {
        assert!(Instant::now() < deadline, "deleted topic still in metadata");
        std::thread::sleep(Duration::from_millis(200));
    }
    let results = block_on(admin.delete_topics(&["never-existed"], &admin_options()))
        .unwrap_or_else(|e| panic!("DeleteTopics: {e}"));
    assert!(
        matches!(
            results.as_slice(),
            [Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))]
        ),
        "deleting an unknown topic answered {results:?}"
    );
    // Recreating with a different partition count must not see leftovers of the old topic.
    create_topic(&bootstrap, "doomed", 1, &[]);
    let log = consume_all(&bootstrap, "doomed", TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        log.is_empty(),
        "recreated topic holds old records: {}",
        log.len()
    );
}

#[test]
fn create_partitions_grows_a_topic() {
    let broker = start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "growing", 1, &[]);
    let admin = admin(&bootstrap);
    let results =
        block_on(admin.create_partitions([&NewPartitions::new("growing", 4)], &admin_options()))
            .unwrap_or_else(|e| panic!("CreatePartitions: {e}"));
    assert!(
        matches!(results.as_slice(), [Ok(_)]),
        "CreatePartitions answered {results:?}"
    );
    wait_for_partitions(&bootstrap, "growing", 4);

    let shrink =
        block_on(admin.create_partitions([&NewPartitions::new("growing", 2)], &admin_options()))
            .unwrap_or_else(|e| panic!("CreatePartitions: {e}"));
    assert!(
        matches!(
            shrink.as_slice(),
            [Err((_, RDKafkaErrorCode::InvalidPartitions))]
        ),
        "shrinking answered {shrink:?}"
    );

    // The new partitions take writes.
    let (producer, recorder) = recording_producer(&bootstrap, &[]);
    for p in 0..4 {
        let record = rdkafka::producer::BaseRecord::with_opaque_to("growing", Box::new(p as u64))
            .partition(p)
            .key("k")
            .payload("v");
        if let Err((e, _)) = producer.send(record) {
            panic!("send to partition {p}: {e}");
        }
    }
    flush(&producer).unwrap_or_else(|e| panic!("{e}"));
    let (acked, failed) = recorder.snapshot();
    assert!(failed.is_empty(), "{failed:?}");
    let mut parts: Vec<(i32, i64)> = acked.iter().map(|a| (a.partition, a.offset)).collect();
    parts.sort();
    assert_eq!(parts, vec![(0, 0), (1, 0), (2, 0), (3, 0)]);
}

#[test]
fn describe_configs_shows_defaults_static_settings_and_topic_overrides() {
    let broker = Broker::builder()
        .prop("log.segment.bytes", "1048576")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "configured", 1, &[("retention.ms", "3600000")]);
    let admin = admin(&bootstrap);
    let results = block_on(
        admin.describe_configs([&ResourceSpecifier::Topic("configured")], &admin_options()),
    )
    .unwrap_or_else(|e| panic!("DescribeConfigs: {e}"));
    let resource = match results.as_slice() {
        [Ok(r)] => r,
        other => panic!("DescribeConfigs answered {other:?}"),
    };
    let entry = |name: &str| {
        resource
            .entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no {name} in DescribeConfigs; got {:?}",
                    resource.entries.iter().map(|e| &e.name).collect::<Vec<_>>()
                )
            })
    };

    let retention = entry("retention.ms");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(
        retention.source,
        ConfigSource::DynamicTopic,
        "{retention:?}"
    );
    assert!(!retention.is_default, "{retention:?}");

    let segment = entry("segment.bytes");
    assert_eq!(segment.value.as_deref(), Some("1048576"), "{segment:?}");
    assert_eq!(segment.source, ConfigSource::StaticBroker, "{segment:?}");

    let cleanup = entry("cleanup.policy");
    assert_eq!(cleanup.value.as_deref(), Some("delete"), "{cleanup:?}");
    assert_eq!(cleanup.source, ConfigSource::Default, "{cleanup:?}");
    assert!(cleanup.is_default, "{cleanup:?}");

    // rdkafka hides the per-resource error for an unknown topic (it reports an empty resource), so
    // ask on the wire: Kafka answers UNKNOWN_TOPIC_OR_PARTITION (3) for that resource.
    let mut conn = Connection::connect(broker.addr(), TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(StrBytes::from_static_str("no-such-topic"))
            .with_configuration_keys(None)]);
    let response = conn
        .request(1, &request)
        .unwrap_or_else(|e| panic!("DescribeConfigs v1: {e}"));
    let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![UNKNOWN_TOPIC_OR_PARTITION],
        "describing an unknown topic"
    );
}

#[test]
fn list_offsets_earliest_latest_and_by_timestamp() {
    let broker = start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "timed", 1, &[]);
    // Timestamps one second apart, starting an hour ago (CreateTime, set by the producer).
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_else(|e| panic!("clock before epoch: {e}"))
        - 3_600_000;
    let (producer, recorder) = recording_producer(&bootstrap, &[("linger.ms", "20")]);
    for i in 0..100u64 {
        send(
            &producer,
            "timed",
            i,
            b"k",
            format!("v{i}").as_bytes(),
            Some(base + i as i64 * 1000),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    flush(&producer).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        recorder.acked_count(),
        100,
        "{:?}",
        recorder.snapshot().1.first()
    );

    let consumer = consumer(&bootstrap);
    let (low, high) = consumer
        .fetch_watermarks("timed", 0, TIMEOUT)
        .unwrap_or_else(|e| panic!("ListOffsets earliest/latest: {e}"));
    assert_eq!((low, high), (0, 100));

    let cases = [
        (base - 10_000, Offset::Offset(0)),
        (base, Offset::Offset(0)),
        (base + 50_000, Offset::Offset(50)),
        (base + 49_500, Offset::Offset(50)),
        (base + 99_000, Offset::Offset(99)),
        (base + 100_000, Offset::End),
    ];
    for (ts, expected) in cases {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("timed", 0, Offset::Offset(ts))
            .unwrap_or_else(|e| panic!("{e}"));
        let answer = consumer
            .offsets_for_times(tpl, TIMEOUT)
            .unwrap_or_else(|e| panic!("ListOffsets by timestamp {ts}: {e}"));
        let got = answer
            .find_partition("timed", 0)
            .map(|p| (p.offset(), p.error().map_err(|e| e.to_string())));
        assert_eq!(
            got,
            Some((expected, Ok(()))),
            "offset for timestamp base{:+} ms",
            ts - base
        );
    }
}

#[test]
fn metadata_request_auto_creates_topics_when_enabled() {
    let broker = Broker::builder()
        .prop("num.partitions", "2")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    // A producer's metadata request asks for auto-creation (allow.auto.create.topics defaults to true
    // for producers in librdkafka).
    let (producer, _) = recording_producer(&bootstrap, &[]);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let md = producer
            .client()
            .fetch_metadata(Some("auto-made"), Duration::from_secs(5));
        let ok = md.as_ref().ok().and_then(|md| {
            md.topics()
                .iter()
                .find(|t| t.name() == "auto-made" && t.error().is_none())
                .map(|t| t.partitions().len())
        });
        if ok == Some(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "auto-created topic never appeared with num.partitions=2 partitions; last: {:?}",
            md.map(|m| m
                .topics()
                .iter()
                .map(|t| (t.name().to_string(), t.error(), t.partitions().len()))
                .collect::<Vec<_>>())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn metadata_request_does_not_create_topics_when_disabled() {
    let broker = Broker::builder()
        .prop("auto.create.topics.enable", "false")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    let (producer, _) = recording_producer(&bootstrap, &[]);
    for _ in 0..3 {
        let md = producer
            .client()
            .fetch_metadata(Some("not-made"), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("metadata: {e}"));
        let topic = md.topics().iter().find(|t| t.name() == "not-made");
        assert!(
            topic.map(|t| t.error().is_some()).unwrap_or(true),
            "topic was auto-created although auto.create.topics.enable=false"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(partition_count(&bootstrap, "not-made"), None);
}
