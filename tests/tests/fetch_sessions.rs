//! Incremental fetch sessions (KIP-227) against a real broker, over the wire: a full fetch with epoch 0 opens a
//! session; incremental fetches read every partition of it and answer only those that changed; a wrong epoch,
//! an unknown session and a closed one are refused with Kafka's errors; a long poll of a session wakes on any
//! of its partitions; `max.incremental.fetch.session.cache.slots=0` opens none. The Java consumer and franz-go
//! tests read through sessions end to end.

use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_storage::batch::BatchBuilder;
use kraftwerk_tests::broker::Broker;
use kraftwerk_tests::wire::{create_topics_request, produce_request, Connection};

/// How long a read waits for the broker.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const TOPIC: &str = "sessions";
/// Fetch by topic name.
const V_NAMES: i16 = 12;
/// Fetch by topic id.
const V_IDS: i16 = 16;
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

fn name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

/// Creates the topic with `partitions` partitions; returns its id.
fn create(conn: &mut Connection, partitions: i32) -> uuid::Uuid {
    let create = create_topics_request(TOPIC, partitions, 1, &[]);
    let resp = conn.request(7, &create).expect("create topics");
    assert_eq!(resp.topics[0].error_code, 0);
    resp.topics[0].topic_id
}

fn produce(conn: &mut Connection, partition: i32, records: usize) {
    let mut b = BatchBuilder::new(0, -1);
    for _ in 0..records {
        b.push(1_700_000_000_000, None, Some(b"value"), &[])
            .expect("record fits");
    }
    let req = produce_request(TOPIC, partition, 1, bytes::Bytes::from(b.build()));
    let resp = conn.request(9, &req).expect("produce");
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
}

fn part(partition: i32, offset: i64) -> FetchPartition {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.current_leader_epoch = -1;
    p.partition_max_bytes = 1 << 20;
    p
}

/// A fetch in session (`id`, `epoch`) naming `parts` (partition, offset) and forgetting `forget`.
fn fetch_req(
    id: i32,
    epoch: i32,
    parts: &[(i32, i64)],
    forget: &[i32],
    wait_ms: i32,
) -> FetchRequest {
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.min_bytes = if wait_ms > 0 { 1 } else { 0 };
    req.max_wait_ms = wait_ms;
    req.max_bytes = 1 << 20;
    req.session_id = id;
    req.session_epoch = epoch;
    if !parts.is_empty() {
        let mut t = FetchTopic::default();
        t.topic = name();
        t.partitions = parts.iter().map(|&(p, o)| part(p, o)).collect();
        req.topics = vec![t];
    }
    if !forget.is_empty() {
        let mut f = ForgottenTopic::default();
        f.topic = name();
        f.partitions = forget.to_vec();
        req.forgotten_topics_data = vec![f];
    }
    req
}

fn fetch(conn: &mut Connection, req: &FetchRequest) -> FetchResponse {
    conn.request(V_NAMES, req).expect("fetch")
}

/// (partition, high watermark, record bytes) of every partition in the answer.
fn answered(resp: &FetchResponse) -> Vec<(i32, i64, usize)> {
    assert_eq!(resp.error_code, 0, "{resp:?}");
    resp.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            assert_eq!(p.error_code, 0, "{p:?}");
            (
                p.partition_index,
                p.high_watermark,
                p.records.as_ref().map_or(0, |r| r.len()),
            )
        })
        .collect()
}

#[test]
fn an_incremental_session_answers_only_what_changed() {
    let broker = Broker::start().expect("broker starts");
    let mut admin = broker.connect(READ_TIMEOUT).expect("connect");
    create(&mut admin, 3);
    produce(&mut admin, 0, 2);
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");

    // A full fetch (epoch 0) of all three: every partition is answered, and a session is opened.
    let resp = fetch(
        &mut conn,
        &fetch_req(0, 0, &[(0, 0), (1, 0), (2, 0)], &[], 0),
    );
    let id = resp.session_id;
    assert!(
        id > 0,
        "a full fetch with epoch 0 opens a session: {resp:?}"
    );
    let parts = answered(&resp);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].0, 0);
    assert_eq!(parts[0].1, 2);
    assert!(parts[0].2 > 0, "partition 0's records");

    // Epoch 1: partition 0 moves past its records; nothing changed anywhere, so nothing is answered.
    let resp = fetch(&mut conn, &fetch_req(id, 1, &[(0, 2)], &[], 0));
    assert_eq!(resp.session_id, id);
    assert_eq!(answered(&resp), vec![]);

    // Epoch 2: partition 1 gets records; only it is answered, though the request names none.
    produce(&mut admin, 1, 3);
    let resp = fetch(&mut conn, &fetch_req(id, 2, &[], &[], 0));
    let parts = answered(&resp);
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!((parts[0].0, parts[0].1), (1, 3));
    assert!(parts[0].2 > 0);

    // Epoch 3, still at offset 0 of partition 1 (not moved by the request): its records again, nothing else
    // (its high watermark was already sent).
    let resp = fetch(&mut conn, &fetch_req(id, 3, &[], &[], 0));
    let parts = answered(&resp);
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[0].0, 1);

    // Refusals: a replayed epoch, an unknown session, a request by topic id against a session by name.
    let resp = fetch(&mut conn, &fetch_req(id, 3, &[], &[], 0));
    assert_eq!(resp.error_code, INVALID_FETCH_SESSION_EPOCH);
    assert!(resp.responses.is_empty());
    let resp = fetch(
        &mut conn,
        &fetch_req(id.wrapping_add(1).max(1), 4, &[], &[], 0),
    );
    assert_eq!(resp.error_code, FETCH_SESSION_ID_NOT_FOUND);
    let resp: FetchResponse = conn
        .request(V_IDS, &fetch_req(id, 4, &[], &[], 0))
        .expect("fetch");
    assert_eq!(resp.error_code, FETCH_SESSION_TOPIC_ID_ERROR);

    // Epoch 4: partition 1 moves on and partition 2 is forgotten; a long poll then waits on partition 0 and 1
    // and wakes on an append to partition 0 long before max_wait_ms.
    let mut poller = broker.connect(READ_TIMEOUT).expect("connect");
    let req = fetch_req(id, 4, &[(1, 3)], &[2], 20_000);
    let started = Instant::now();
    let handle = std::thread::spawn(move || (fetch(&mut poller, &req), started.elapsed()));
    std::thread::sleep(Duration::from_millis(300));
    produce(&mut admin, 2, 1);
    std::thread::sleep(Duration::from_millis(300));
    produce(&mut admin, 0, 1);
    let (resp, elapsed) = handle.join().expect("poller");
    assert!(
        elapsed < Duration::from_secs(10),
        "answered after {elapsed:?}"
    );
    let parts = answered(&resp);
    assert_eq!(parts.len(), 1, "only partition 0 changed: {parts:?}");
    assert_eq!((parts[0].0, parts[0].1), (0, 3));

    // Epoch -1 closes the session: the request is answered whole and sessionless, and the id is gone.
    let resp = fetch(&mut conn, &fetch_req(id, -1, &[(2, 0)], &[], 0));
    assert_eq!(resp.session_id, 0);
    assert_eq!(answered(&resp).len(), 1);
    let resp = fetch(&mut conn, &fetch_req(id, 5, &[], &[], 0));
    assert_eq!(resp.error_code, FETCH_SESSION_ID_NOT_FOUND);
}

#[test]
fn sessions_by_topic_id_and_a_cache_without_slots() {
    let broker = Broker::start().expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    let topic_id = create(&mut conn, 2);
    produce(&mut conn, 1, 1);
    let by_id = |id: i32, epoch: i32, parts: &[(i32, i64)]| {
        let mut req = fetch_req(id, epoch, parts, &[], 0);
        for t in &mut req.topics {
            t.topic = TopicName::default();
            t.topic_id = topic_id;
        }
        req
    };
    let resp: FetchResponse = conn
        .request(V_IDS, &by_id(0, 0, &[(0, 0), (1, 0)]))
        .expect("fetch");
    let id = resp.session_id;
    assert!(id > 0);
    assert_eq!(resp.responses[0].topic_id, topic_id);
    assert_eq!(answered(&resp).len(), 2);
    let resp: FetchResponse = conn
        .request(V_IDS, &by_id(id, 1, &[(1, 1)]))
        .expect("fetch");
    assert_eq!(answered(&resp), vec![]);
    // A request by name against this session by id.
    let resp = fetch(&mut conn, &fetch_req(id, 2, &[], &[], 0));
    assert_eq!(resp.error_code, FETCH_SESSION_TOPIC_ID_ERROR);
    drop(broker);

    let broker = Broker::builder()
        .prop("max.incremental.fetch.session.cache.slots", "0")
        .start()
        .expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    create(&mut conn, 1);
    let resp = fetch(&mut conn, &fetch_req(0, 0, &[(0, 0)], &[], 0));
    assert_eq!(resp.session_id, 0, "no slots: no session");
    assert_eq!(answered(&resp).len(), 1);
}
