//! OffsetForLeaderEpoch (API 23) over the raw wire, the way Kafka's Java consumer uses it after a leader change
//! (KIP-320): it fetches records, remembers the leader epoch stamped on the last batch it consumed, and on a new
//! leader epoch asks "where did that epoch end?"; an end offset below its position means the log was truncated.
//!
//! A single node gets a new leader epoch across a controlled restart: SIGTERM fences the broker and moves its
//! leaderships away (epoch + 1), and unfencing on the next start elects it again (epoch + 1).

use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::EpochEndOffset;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, MetadataRequest, OffsetForLeaderEpochRequest,
    ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_storage::batch::{BatchBuilder, BatchHeader};
use kraftwerk_tests::broker::Broker;
use kraftwerk_tests::wire::Connection;

/// How long a read waits for the broker.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const TOPIC: &str = "epochs";
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Produces one batch of `records` records; returns its base offset.
fn produce(conn: &mut Connection, records: usize) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut b = BatchBuilder::new(0, -1);
    for i in 0..records {
        b.push(now, None, Some(format!("v{i}").as_bytes()), &[])
            .expect("record fits");
    }
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(bytes::Bytes::from(b.build()));
    let mut td = TopicProduceData::default();
    td.name = name(TOPIC);
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![td];
    let resp = conn.request(9, &req).expect("produce");
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, NONE, "produce error");
    p.base_offset
}

/// The partition's (leader, leader epoch) from Metadata v9.
fn leader_and_epoch(conn: &mut Connection) -> (i32, i32) {
    let mut t = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    t.name = Some(name(TOPIC));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    let resp = conn.request(9, &req).expect("metadata");
    let p = &resp.topics[0].partitions[0];
    (p.leader_id.0, p.leader_epoch)
}

/// Every batch header from offset 0 to the high watermark, as a consumer sees them (the Java consumer keeps the
/// epoch of the batch it consumed last). A fetch answers from one segment, so this fetches until it is done.
fn fetch_headers(conn: &mut Connection, leader_epoch: i32) -> Vec<BatchHeader> {
    let mut out: Vec<BatchHeader> = Vec::new();
    loop {
        let mut p = FetchPartition::default();
        p.partition = 0;
        p.fetch_offset = out.last().map_or(0, BatchHeader::next_offset);
        p.current_leader_epoch = leader_epoch;
        p.partition_max_bytes = 1 << 20;
        let mut t = FetchTopic::default();
        t.topic = name(TOPIC);
        t.partitions = vec![p];
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.max_wait_ms = 0;
        req.max_bytes = 1 << 20;
        req.topics = vec![t];
        let resp = conn.request(11, &req).expect("fetch");
        let pd = &resp.responses[0].partitions[0];
        assert_eq!(pd.error_code, NONE, "fetch error");
        let records = pd.records.clone().unwrap_or_default();
        if records.is_empty() {
            assert_eq!(
                out.last().map_or(0, BatchHeader::next_offset),
                pd.high_watermark,
                "fetch stopped before the high watermark"
            );
            return out;
        }
        let mut pos = 0;
        while let Some(rest) = records.get(pos..).filter(|r| !r.is_empty()) {
            let h = BatchHeader::parse(rest).expect("batch header");
            pos += h.total_size().expect("size");
            out.push(h);
        }
    }
}

/// Asks OffsetForLeaderEpoch at `version` for one partition.
fn epoch_end(
    conn: &mut Connection,
    version: i16,
    replica_id: i32,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> EpochEndOffset {
    let mut p = OffsetForLeaderPartition::default();
    p.partition = partition;
    p.current_leader_epoch = current_leader_epoch;
    p.leader_epoch = leader_epoch;
    let mut t = OffsetForLeaderTopic::default();
    t.topic = name(topic);
    t.partitions = vec![p];
    let mut req = OffsetForLeaderEpochRequest::default();
    req.replica_id = BrokerId(replica_id);
    req.topics = vec![t];
    let resp = conn
        .request(version, &req)
        .expect("offset for leader epoch");
    assert_eq!(resp.topics.len(), 1);
    assert_eq!(resp.topics[0].topic.0.as_str(), topic);
    let p = resp.topics[0].partitions[0].clone();
    assert_eq!(p.partition, partition);
    p
}

fn ok(leader_epoch: i32, end_offset: i64) -> (i16, i32, i64) {
    (NONE, leader_epoch, end_offset)
}

fn triple(e: &EpochEndOffset) -> (i16, i32, i64) {
    (e.error_code, e.leader_epoch, e.end_offset)
}

#[test]
fn consumer_validation_across_a_leader_change() {
    let mut broker = Broker::start().expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    let mut topic = CreatableTopic::default();
    topic.name = name(TOPIC);
    topic.num_partitions = 1;
    topic.replication_factor = 1;
    let mut create = CreateTopicsRequest::default();
    create.topics = vec![topic];
    create.timeout_ms = 30_000;
    let resp = conn.request(7, &create).expect("create topics");
    assert_eq!(resp.topics[0].error_code, NONE);

    let (leader, first_epoch) = leader_and_epoch(&mut conn);
    assert!(leader >= 0);
    assert_eq!(produce(&mut conn, 3), 0);
    assert_eq!(produce(&mut conn, 2), 3);
    // Every batch carries the epoch it was written under.
    let headers = fetch_headers(&mut conn, first_epoch);
    assert_eq!(headers.len(), 2, "{headers:?}");
    assert!(headers
        .iter()
        .all(|h| h.partition_leader_epoch == first_epoch));
    // The current epoch ends at the log end.
    for version in 2..=4 {
        let e = epoch_end(&mut conn, version, -1, TOPIC, 0, first_epoch, first_epoch);
        assert_eq!(triple(&e), ok(first_epoch, 5), "v{version}");
    }

    // A leader change: controlled shutdown and restart.
    broker.restart().expect("restart");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_epoch = loop {
        let (leader_now, epoch) = leader_and_epoch(&mut conn);
        if leader_now == leader && epoch > first_epoch {
            break epoch;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader epoch: leader {leader_now}, epoch {epoch}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // Before anything is written under the new epoch, the new leader already names it (Kafka's makeLeader).
    let e = epoch_end(&mut conn, 4, -1, TOPIC, 0, new_epoch, new_epoch);
    assert_eq!(triple(&e), ok(new_epoch, 5));

    assert_eq!(produce(&mut conn, 4), 5);
    let headers = fetch_headers(&mut conn, new_epoch);
    assert_eq!(headers.len(), 3);
    assert_eq!(headers[2].partition_leader_epoch, new_epoch);

    // The Java consumer's check: its last record (offset 4) came from a batch of `first_epoch`; that epoch ended
    // at 5, not below its position 5, so nothing it read was truncated.
    let consumed_epoch = headers[1].partition_leader_epoch;
    let e = epoch_end(&mut conn, 4, -1, TOPIC, 0, new_epoch, consumed_epoch);
    assert_eq!(triple(&e), ok(first_epoch, 5));
    // The current epoch ends at the log end; an epoch that never wrote (the leaderless one in between) answers
    // with the largest epoch below it that did.
    let e = epoch_end(&mut conn, 4, -1, TOPIC, 0, new_epoch, new_epoch);
    assert_eq!(triple(&e), ok(new_epoch, 9));
    if new_epoch - first_epoch > 1 {
        let e = epoch_end(&mut conn, 3, -1, TOPIC, 0, new_epoch, new_epoch - 1);
        assert_eq!(triple(&e), ok(first_epoch, 5));
    }
    // An epoch above any the leader knows: UNDEFINED.
    let e = epoch_end(&mut conn, 4, -1, TOPIC, 0, -1, new_epoch + 5);
    assert_eq!(triple(&e), ok(-1, -1));
    // A follower (replica_id >= 0) gets the same answers; v2 has no replica_id on the wire.
    let e = epoch_end(&mut conn, 3, 7, TOPIC, 0, new_epoch, first_epoch);
    assert_eq!(triple(&e), ok(first_epoch, 5));
    let e = epoch_end(&mut conn, 2, -1, TOPIC, 0, -1, first_epoch);
    assert_eq!(triple(&e), ok(first_epoch, 5));

    // Leader-epoch fencing of the asker's view of the partition.
    let e = epoch_end(&mut conn, 4, -1, TOPIC, 0, new_epoch - 1, first_epoch);
    assert_eq!(e.error_code, FENCED_LEADER_EPOCH);
    assert_eq!((e.leader_epoch, e.end_offset), (-1, -1));
    let e = epoch_end(&mut conn, 4, -1, TOPIC, 0, new_epoch + 1, first_epoch);
    assert_eq!(e.error_code, UNKNOWN_LEADER_EPOCH);
    // Partitions that do not exist.
    let e = epoch_end(&mut conn, 4, -1, TOPIC, 3, -1, 0);
    assert_eq!(e.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    let e = epoch_end(&mut conn, 4, -1, "no-such-topic", 0, -1, 0);
    assert_eq!(e.error_code, UNKNOWN_TOPIC_OR_PARTITION);

    // The cache survives another restart (read back from leader-epoch-checkpoint).
    broker.restart().expect("second restart");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    let deadline = Instant::now() + Duration::from_secs(30);
    let third_epoch = loop {
        let (leader_now, epoch) = leader_and_epoch(&mut conn);
        if leader_now == leader && epoch > new_epoch {
            break epoch;
        }
        assert!(Instant::now() < deadline, "no third leader epoch");
        std::thread::sleep(Duration::from_millis(100));
    };
    let e = epoch_end(&mut conn, 4, -1, TOPIC, 0, third_epoch, first_epoch);
    assert_eq!(triple(&e), ok(first_epoch, 5));
    let e = epoch_end(&mut conn, 4, -1, TOPIC, 0, third_epoch, new_epoch);
    assert_eq!(triple(&e), ok(new_epoch, 9));
    // Kafka's file format, one line per epoch that wrote or led: the third was recorded when it became leader,
    // and written to the file at the latest when the log closed.
    broker.stop().expect("clean stop");
    let path = broker
        .dir()
        .join("data")
        .join(format!("{TOPIC}-0"))
        .join("leader-epoch-checkpoint");
    let text = std::fs::read_to_string(&path).expect("leader-epoch-checkpoint");
    assert_eq!(
        text,
        format!("0\n3\n{first_epoch} 0\n{new_epoch} 5\n{third_epoch} 9\n")
    );
}
