//! Long-polling fetches wait on the partitions they read: an append elsewhere leaves them waiting, an append
//! to one of theirs answers them at once, long before `max_wait_ms`. A fetch that reads no partition has
//! nothing to wait for and is answered at once, as Kafka answers it. A long poll with another request of the
//! client queued behind it on its connection answers then, with what it has (Kafka would hold both until
//! `max_wait_ms`), and the answers keep their order.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, FetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_storage::batch::BatchBuilder;
use kraftwerk_tests::broker::Broker;
use kraftwerk_tests::wire::{encode_request, produce_request, Connection};

/// How long a read waits for the broker.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const TOPIC: &str = "long-poll";
const MAX_WAIT_MS: i32 = 20_000;

fn name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

fn produce(conn: &mut Connection, partition: i32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut b = BatchBuilder::new(0, -1);
    b.push(now, None, Some(b"v"), &[]).expect("record fits");
    let req = produce_request(TOPIC, partition, 1, bytes::Bytes::from(b.build()));
    let resp = conn.request(9, &req).expect("produce");
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
}

/// A fetch of partition 0 from offset 0 that waits for one byte.
fn long_poll(conn: &mut Connection) -> FetchResponse {
    conn.request(11, &long_poll_request()).expect("fetch")
}

fn long_poll_request() -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = 0;
    p.current_leader_epoch = -1;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = name();
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.min_bytes = 1;
    req.max_wait_ms = MAX_WAIT_MS;
    req.max_bytes = 1 << 20;
    req.topics = vec![t];
    req
}

#[test]
fn a_waiting_fetch_is_woken_by_its_own_partition_only() {
    let broker = Broker::start().expect("broker starts");
    create_topic(&broker, 2);
    let mut admin = broker.connect(READ_TIMEOUT).expect("connect");

    let mut fetcher = broker.connect(READ_TIMEOUT).expect("connect");
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let handle = std::thread::spawn(move || {
        let resp = long_poll(&mut fetcher);
        tx.send(started.elapsed()).expect("report");
        resp
    });
    // Let the fetch register, then write to the other partition: it must keep waiting.
    std::thread::sleep(Duration::from_millis(300));
    produce(&mut admin, 1);
    assert!(
        rx.recv_timeout(Duration::from_millis(700)).is_err(),
        "an append to partition 1 answered a fetch of partition 0"
    );
    produce(&mut admin, 0);
    let elapsed = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the append to partition 0 answers the fetch");
    assert!(
        elapsed < Duration::from_millis(MAX_WAIT_MS as u64 / 2),
        "answered only after {elapsed:?}"
    );
    let resp = handle.join().expect("fetch thread");
    let pd = &resp.responses[0].partitions[0];
    assert_eq!(pd.error_code, 0);
    assert_eq!(pd.high_watermark, 1);
    assert!(!pd.records.as_ref().expect("records").is_empty());
}

/// The Java consumer closes with a sessionless Fetch naming no partition (session epoch -1, min_bytes 1,
/// max_wait_ms 500 in its defaults). Kafka answers it at once (`ReplicaManager.fetchMessages`: `fetchInfos.isEmpty`);
/// waiting for max_wait_ms held every closing consumer for half a second (the data-path harness's
/// ConsumerPerformance runs, benches/results/2026-12-04-data-path-rf3.md).
#[test]
fn a_fetch_of_no_partition_is_answered_at_once() {
    let broker = Broker::start().expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    for (version, session_epoch) in [(11, -1), (11, 0), (16, -1)] {
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.min_bytes = 1;
        req.max_wait_ms = MAX_WAIT_MS;
        req.max_bytes = 1 << 20;
        req.session_id = 0;
        req.session_epoch = session_epoch;
        let started = Instant::now();
        let resp: FetchResponse = conn.request(version, &req).expect("fetch");
        let elapsed = started.elapsed();
        assert_eq!(resp.error_code, 0, "v{version} epoch {session_epoch}");
        assert!(resp.responses.is_empty(), "v{version}: {resp:?}");
        // The broker may answer slowly on a loaded machine, but not by waiting max_wait_ms (20 s).
        assert!(
            elapsed < Duration::from_millis(MAX_WAIT_MS as u64 / 2),
            "v{version} epoch {session_epoch}: an empty fetch answered only after {elapsed:?}"
        );
    }
}

fn create_topic(broker: &Broker, partitions: i32) {
    let mut admin = broker.connect(READ_TIMEOUT).expect("connect");
    let mut topic = CreatableTopic::default();
    topic.name = name();
    topic.num_partitions = partitions;
    topic.replication_factor = 1;
    let mut create = CreateTopicsRequest::default();
    create.topics = vec![topic];
    create.timeout_ms = 30_000;
    let resp = admin.request(7, &create).expect("create topics");
    assert_eq!(resp.topics[0].error_code, 0);
}

/// librdkafka sends its ListOffsets and OffsetForLeaderEpoch requests on the connection it fetches on. A long
/// poll answers as soon as another request is queued behind it, whether that request came with it or while it
/// waited, so the request behind does not wait out `max_wait_ms`; both answers come in request order.
#[test]
fn a_long_poll_answers_when_the_client_sends_another_request_behind_it() {
    let broker = Broker::start().expect("broker starts");
    create_topic(&broker, 1);
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    let mut no_wait = long_poll_request();
    no_wait.max_wait_ms = 0;
    for (case, pause) in [
        ("sent together", None),
        ("sent while it waits", Some(Duration::from_millis(500))),
    ] {
        let first = encode_request(1, 11, &long_poll_request()).expect("encode");
        let second = encode_request(2, 11, &no_wait).expect("encode");
        let started = Instant::now();
        match pause {
            None => conn.send_raw(&[first, second].concat()).expect("send"),
            Some(pause) => {
                conn.send_raw(&first).expect("send");
                std::thread::sleep(pause);
                conn.send_raw(&second).expect("send");
            }
        }
        let (id, resp) = conn
            .read_response::<FetchRequest>(11)
            .expect("fetch answer");
        let elapsed = started.elapsed();
        assert_eq!(id, 1, "{case}: answers in request order");
        let pd = &resp.responses[0].partitions[0];
        assert_eq!(pd.error_code, 0, "{case}");
        assert!(
            pd.records.as_ref().is_none_or(|r| r.is_empty()),
            "{case}: nothing to read"
        );
        // On a loaded machine the answer may be slow, but not by waiting out max_wait_ms (20 s).
        assert!(
            elapsed < Duration::from_millis(MAX_WAIT_MS as u64 / 2),
            "{case}: the long poll held the request behind it for {elapsed:?}"
        );
        let (id, _) = conn
            .read_response::<FetchRequest>(11)
            .expect("fetch answer");
        assert_eq!(id, 2, "{case}");
    }
    // With nothing behind it a long poll still waits for data, and data answers it.
    let mut admin = broker.connect(READ_TIMEOUT).expect("connect");
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let resp = long_poll(&mut conn);
        tx.send(()).expect("report");
        resp
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(700)).is_err(),
        "a long poll with nothing behind it answered before data or max_wait_ms"
    );
    produce(&mut admin, 0);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the append answers the fetch");
    let resp = handle.join().expect("fetch thread");
    assert!(!resp.responses[0].partitions[0]
        .records
        .as_ref()
        .expect("records")
        .is_empty());
}
