//! Fetch from the closest replica (KIP-392), on three brokers in three racks running Kafka's
//! `RackAwareReplicaSelector`: the leader points a consumer in a follower's rack at that follower, the follower
//! serves it up to its high watermark, a consumer without client metadata (Fetch v10) is still refused by a
//! follower, and an rdkafka consumer with `client.rack` reads every message back.

mod support;

use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_tests::wire::Connection;
use kraftwerk_tests::Cluster;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use support::{admin, admin_options, block_on, client_config, flush, recording_producer, send};

const TOPIC: &str = "closest-replica";
const MESSAGES: u64 = 100;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

fn rack(broker: i32) -> String {
    format!("rack-{broker}")
}

/// Fetch of partition 0 from `offset` at `version` (v11/v12 carry the rack; v12 still names topics).
fn fetch(
    cluster: &Cluster,
    broker: i32,
    version: i16,
    rack_id: &str,
    offset: i64,
) -> FetchResponse {
    let addr = cluster
        .node(broker)
        .broker_addr()
        .unwrap_or_else(|| panic!("broker {broker} has no address"));
    let mut conn = Connection::connect(addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connecting to {broker}: {e}"));
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = offset;
    p.current_leader_epoch = -1;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_static_str(TOPIC));
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = 0;
    req.min_bytes = 0;
    req.max_bytes = 1 << 20;
    req.topics = vec![t];
    req.rack_id = StrBytes::from_string(rack_id.to_string());
    conn.request(version, &req)
        .unwrap_or_else(|e| panic!("fetch from {broker}: {e}"))
}

/// (leader, replicas, ISR size) of partition 0.
fn layout(cluster: &Cluster, via: i32) -> Option<(i32, Vec<i32>, usize)> {
    let md = cluster.node(via).metadata().ok()?;
    let topic = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == TOPIC))?;
    let p = topic.partitions.iter().find(|p| p.partition_index == 0)?;
    Some((
        p.leader_id.0,
        p.replica_nodes.iter().map(|b| b.0).collect(),
        p.isr_nodes.len(),
    ))
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn consumers_read_from_a_replica_in_their_rack() {
    let cluster = Cluster::builder()
        .controllers(3)
        .brokers(3)
        .prop("broker.rack", "rack-{id}")
        .prop(
            "replica.selector.class",
            "org.apache.kafka.common.replica.RackAwareReplicaSelector",
        )
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let brokers = cluster.broker_ids();
    let bootstrap = cluster.bootstrap();
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3));
    let created = block_on(admin(&bootstrap).create_topics([&topic], &admin_options()))
        .unwrap_or_else(|e| panic!("CreateTopics: {e}"));
    assert!(matches!(created.as_slice(), [Ok(_)]), "{created:?}");
    let (leader, replicas) = wait_for("a full ISR", Duration::from_secs(60), || {
        layout(&cluster, brokers[0]).and_then(|(l, r, isr)| (l >= 0 && isr == 3).then_some((l, r)))
    });
    let follower = *replicas
        .iter()
        .find(|&&b| b != leader)
        .unwrap_or_else(|| panic!("no follower in {replicas:?}"));

    let (producer, recorder) = recording_producer(&bootstrap, &[("acks", "all")]);
    for seq in 0..MESSAGES {
        send(
            &producer,
            TOPIC,
            seq,
            b"k",
            format!("m-{seq}").as_bytes(),
            None,
        )
        .unwrap_or_else(|e| panic!("sending {seq}: {e}"));
    }
    flush(&producer).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recorder.acked_count(), MESSAGES as usize);

    // The leader sends a consumer in the follower's rack to the follower, with no records.
    let redirected = wait_for(
        "the follower to fetch everything",
        Duration::from_secs(30),
        || {
            let resp = fetch(&cluster, leader, 11, &rack(follower), 0);
            let p = &resp.responses[0].partitions[0];
            (p.preferred_read_replica.0 == follower).then_some(resp)
        },
    );
    let p = &redirected.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
    assert_eq!(p.high_watermark, MESSAGES as i64);

    // A consumer in the leader's rack, or in no rack, reads from the leader.
    for rack_id in [rack(leader), String::new(), "elsewhere".to_string()] {
        let resp = fetch(&cluster, leader, 11, &rack_id, 0);
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.preferred_read_replica.0, -1, "rack {rack_id:?}");
        assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()));
    }

    // The follower serves the consumer up to its own high watermark.
    let served = wait_for(
        "the follower's high watermark",
        Duration::from_secs(30),
        || {
            let resp = fetch(&cluster, follower, 12, &rack(follower), 0);
            let p = &resp.responses[0].partitions[0];
            (p.error_code == 0 && p.high_watermark == MESSAGES as i64).then_some(resp)
        },
    );
    let p = &served.responses[0].partitions[0];
    assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()));
    assert_eq!(p.preferred_read_replica.0, -1, "followers never redirect");

    // Without client metadata (before v11) only the leader serves consumers.
    let old = fetch(&cluster, follower, 10, "", 0);
    assert_eq!(
        old.responses[0].partitions[0].error_code,
        NOT_LEADER_OR_FOLLOWER
    );

    // librdkafka follows the preferred read replica and reads everything back.
    let consumer: BaseConsumer = client_config(&bootstrap)
        .set("group.id", "closest-replica-reader")
        .set("client.rack", rack(follower))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap_or_else(|e| panic!("creating consumer: {e}"));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap_or_else(|e| panic!("{e}"));
    consumer
        .assign(&tpl)
        .unwrap_or_else(|e| panic!("assign: {e}"));
    let mut read = Vec::new();
    let start = Instant::now();
    while read.len() < MESSAGES as usize && start.elapsed() < Duration::from_secs(60) {
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            let m = m.unwrap_or_else(|e| panic!("consuming: {e}"));
            read.push((m.offset(), m.payload().map(<[u8]>::to_vec)));
        }
    }
    let expected: Vec<(i64, Option<Vec<u8>>)> = (0..MESSAGES)
        .map(|i| (i as i64, Some(format!("m-{i}").into_bytes())))
        .collect();
    assert_eq!(read, expected);
}
