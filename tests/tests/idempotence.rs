//! Idempotent produce over the raw wire (no client library hiding retries): a retried batch is acknowledged
//! with its original offset and not written twice, a sequence gap is refused with
//! OUT_OF_ORDER_SEQUENCE_NUMBER, and both still hold after a restart (producer state is rebuilt from the log).

use std::time::Duration;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, InitProducerIdRequest, ListOffsetsRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_storage::batch::BatchBuilder;
use kraftwerk_tests::broker::Broker;
use kraftwerk_tests::wire::Connection;

/// How long a read waits for the broker.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const TOPIC: &str = "idempotence";
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;

fn batch(producer_id: i64, epoch: i16, first_seq: i32, records: usize) -> bytes::Bytes {
    let mut b = BatchBuilder::new(0, -1).producer(producer_id, epoch, first_seq);
    // Timestamped now, as a producer's records are: a producer whose newest batch is older than
    // producer.id.expiration.ms (a day) is not loaded again after a restart, as in Kafka.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    for i in 0..records {
        let value = format!("seq-{}", first_seq as usize + i);
        b.push(now_ms, None, Some(value.as_bytes()), &[])
            .expect("record fits");
    }
    bytes::Bytes::from(b.build())
}

/// Produces one batch with acks=all; returns (error code, base offset).
fn produce(conn: &mut Connection, records: bytes::Bytes) -> (i16, i64) {
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_static_str(TOPIC));
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![td];
    let resp = conn.request(9, &req).expect("produce");
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn latest_offset(conn: &mut Connection) -> i64 {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_static_str(TOPIC));
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    req.topics = vec![t];
    let resp = conn.request(7, &req).expect("list offsets");
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "list offsets error");
    p.offset
}

#[test]
fn retried_batches_are_written_once_and_gaps_refused_across_restart() {
    let mut broker = Broker::start().expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");

    let mut topic = CreatableTopic::default();
    topic.name = TopicName(StrBytes::from_static_str(TOPIC));
    topic.num_partitions = 1;
    topic.replication_factor = 1;
    let mut create = CreateTopicsRequest::default();
    create.topics = vec![topic];
    create.timeout_ms = 30_000;
    let created = conn.request(5, &create).expect("create topic");
    assert_eq!(created.topics[0].error_code, 0);

    let mut init = InitProducerIdRequest::default();
    init.transactional_id = None; // an idempotent, non-transactional producer
    init.transaction_timeout_ms = 60_000;
    let ids = conn.request(4, &init).expect("init producer id");
    assert_eq!(ids.error_code, 0);
    let (pid, epoch) = (ids.producer_id.0, ids.producer_epoch);
    assert!(pid >= 0);

    assert_eq!(produce(&mut conn, batch(pid, epoch, 0, 3)), (0, 0));
    // The same batch again (a retry after a lost response): acknowledged at its first offset, not rewritten.
    assert_eq!(produce(&mut conn, batch(pid, epoch, 0, 3)), (0, 0));
    assert_eq!(latest_offset(&mut conn), 3);
    // A gap in the sequence is refused and writes nothing.
    assert_eq!(
        produce(&mut conn, batch(pid, epoch, 5, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(latest_offset(&mut conn), 3);
    assert_eq!(produce(&mut conn, batch(pid, epoch, 3, 2)), (0, 3));

    broker.kill9().expect("kill -9");
    broker.restart().expect("restart");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    // Producer state came back from the log: the last batch is still recognised as a duplicate.
    assert_eq!(produce(&mut conn, batch(pid, epoch, 3, 2)), (0, 3));
    assert_eq!(
        produce(&mut conn, batch(pid, epoch, 9, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(produce(&mut conn, batch(pid, epoch, 5, 1)), (0, 5));
    assert_eq!(latest_offset(&mut conn), 6);

    // A new producer id never repeats one handed out before the restart.
    let again = conn.request(4, &init).expect("init producer id");
    assert_eq!(again.error_code, 0);
    assert_ne!(again.producer_id.0, pid);
}
