//! Topic configs change behaviour, not just what DescribeConfigs prints: max.message.bytes refuses larger
//! batches, message.timestamp.type=LogAppendTime replaces producer timestamps, min.insync.replicas above the
//! ISR refuses acks=all, and retention.bytes with a small segment.bytes deletes old segments.

use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_storage::batch::{BatchBuilder, BatchHeader, TimestampType};
use kraftwerk_tests::broker::Broker;
use kraftwerk_tests::wire::Connection;

const MESSAGE_TOO_LARGE: i16 = 10;
const NOT_ENOUGH_REPLICAS: i16 = 19;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create(conn: &mut Connection, topic: &str, configs: &[(&str, &str)]) {
    let req = kraftwerk_tests::wire::create_one_topic_request(topic, configs);
    let resp = conn.request(5, &req).expect("create topics");
    assert_eq!(
        resp.topics[0].error_code, 0,
        "create {topic}: {:?}",
        resp.topics[0].error_message
    );
}

fn batch(timestamp: i64, value_len: usize) -> bytes::Bytes {
    let value = vec![b'x'; value_len];
    let mut b = BatchBuilder::new(0, -1);
    b.push(timestamp, None, Some(&value), &[])
        .expect("record fits");
    bytes::Bytes::from(b.build())
}

fn produce(conn: &mut Connection, topic: &str, acks: i16, records: bytes::Bytes) -> i16 {
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = name(topic);
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.transactional_id = None;
    req.acks = acks;
    req.timeout_ms = 30_000;
    req.topic_data = vec![td];
    let resp = conn.request(9, &req).expect("produce");
    resp.responses[0].partition_responses[0].error_code
}

fn first_batch_header(conn: &mut Connection, topic: &str) -> BatchHeader {
    let req = kraftwerk_tests::wire::fetch_request(topic, 0, 1 << 20);
    let resp = conn.request(11, &req).expect("fetch");
    let part = &resp.responses[0].partitions[0];
    assert_eq!(part.error_code, 0);
    let records = part.records.clone().unwrap_or_default();
    BatchHeader::parse(&records).expect("a whole batch")
}

fn earliest_offset(conn: &mut Connection, topic: &str) -> i64 {
    let req = kraftwerk_tests::wire::list_offsets_request(topic, -2);
    let resp = conn.request(7, &req).expect("list offsets");
    resp.topics[0].partitions[0].offset
}

#[test]
fn topic_configs_change_broker_behaviour() {
    let broker = Broker::builder()
        .prop("log.retention.check.interval.ms", "200")
        .start()
        .expect("broker starts");
    let mut conn = Connection::connect(broker.addr(), Duration::from_secs(10)).expect("connect");
    conn.set_read_timeout(Duration::from_secs(30))
        .expect("timeout");

    create(
        &mut conn,
        "small-messages",
        &[("max.message.bytes", "2000")],
    );
    assert_eq!(produce(&mut conn, "small-messages", 1, batch(1, 100)), 0);
    assert_eq!(
        produce(&mut conn, "small-messages", 1, batch(1, 5000)),
        MESSAGE_TOO_LARGE
    );

    create(
        &mut conn,
        "append-time",
        &[("message.timestamp.type", "LogAppendTime")],
    );
    assert_eq!(produce(&mut conn, "append-time", 1, batch(1_000, 10)), 0);
    let header = first_batch_header(&mut conn, "append-time");
    assert_eq!(
        TimestampType::from_attributes(header.attributes),
        TimestampType::LogAppendTime
    );
    assert!(
        header.max_timestamp > 1_600_000_000_000,
        "broker time, not the producer's 1000"
    );

    create(&mut conn, "needs-two", &[("min.insync.replicas", "2")]);
    assert_eq!(
        produce(&mut conn, "needs-two", -1, batch(1, 10)),
        NOT_ENOUGH_REPLICAS
    );
    assert_eq!(
        produce(&mut conn, "needs-two", 1, batch(1, 10)),
        0,
        "acks=1 does not need the ISR"
    );

    create(
        &mut conn,
        "retained",
        &[
            ("segment.bytes", "1024"),
            ("retention.bytes", "2048"),
            ("segment.ms", "3600000"),
        ],
    );
    for _ in 0..20 {
        assert_eq!(produce(&mut conn, "retained", 1, batch(1, 400)), 0);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while earliest_offset(&mut conn, "retained") == 0 {
        assert!(
            Instant::now() < deadline,
            "retention.bytes never deleted a segment"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
