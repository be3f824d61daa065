//! Partition leadership as clients see it, with real processes (three controllers, three brokers, a topic
//! with replication factor 3):
//! - KIP-951: Produce (v11) and a replica's Fetch (v16) sent to a broker that does not lead the partition are
//!   answered NOT_LEADER_OR_FOLLOWER naming the current leader and epoch, with that leader's endpoint.
//! - Idempotent producer state survives a failover: a batch acknowledged by the leader is sent again (same
//!   producer id, epoch and sequence) to the new leader after the old one is killed with SIGKILL; the new
//!   leader, which built producer state from the batches it replicated, answers it as a duplicate with its
//!   original offset and writes nothing.

use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, InitProducerIdRequest, ProduceRequest, ProduceResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_storage::batch::BatchBuilder;
use kraftwerk_tests::wire::Connection;
use kraftwerk_tests::Cluster;
use uuid::Uuid;

const TOPIC: &str = "led";
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

fn connect(cluster: &Cluster, broker: i32) -> Connection {
    let addr = cluster
        .node(broker)
        .broker_addr()
        .unwrap_or_else(|| panic!("{broker} is not a broker"));
    let conn = Connection::connect(addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connecting to {broker}: {e}"));
    conn.set_read_timeout(Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));
    conn
}

fn batch(producer_id: i64, epoch: i16, first_seq: i32, records: usize) -> bytes::Bytes {
    let mut b = BatchBuilder::new(0, -1).producer(producer_id, epoch, first_seq);
    for i in 0..records {
        let value = format!("seq-{}", first_seq as usize + i);
        b.push(0, None, Some(value.as_bytes()), &[])
            .unwrap_or_else(|e| panic!("record does not fit: {e}"));
    }
    bytes::Bytes::from(b.build())
}

fn produce(conn: &mut Connection, version: i16, records: bytes::Bytes) -> ProduceResponse {
    let pd = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(records));
    let td = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partition_data(vec![pd]);
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![td]);
    conn.request(version, &req)
        .unwrap_or_else(|e| panic!("produce: {e}"))
}

/// Produces (v11) until the broker stops answering NOT_LEADER_OR_FOLLOWER (it is taking the leadership
/// over), for up to a minute.
fn produce_while_not_leader(conn: &mut Connection, records: bytes::Bytes) -> ProduceResponse {
    let start = Instant::now();
    loop {
        let resp = produce(conn, 11, records.clone());
        let code = partition_answer(&resp).error_code;
        if code != NOT_LEADER_OR_FOLLOWER || start.elapsed() > Duration::from_secs(60) {
            return resp;
        }
        eprintln!("produce answered NOT_LEADER_OR_FOLLOWER; trying again");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn partition_answer(resp: &ProduceResponse) -> &PartitionProduceResponse {
    &resp.responses[0].partition_responses[0]
}

/// (leader, leader epoch, ISR size, topic id) of partition 0 as broker `via` reports it.
fn leadership(cluster: &Cluster, via: i32) -> Option<(i32, i32, usize, Uuid)> {
    let md = cluster.node(via).metadata().ok()?;
    let topic = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == TOPIC))?;
    let p = topic.partitions.iter().find(|p| p.partition_index == 0)?;
    Some((
        p.leader_id.0,
        p.leader_epoch,
        p.isr_nodes.len(),
        topic.topic_id,
    ))
}

fn wait_leadership(
    cluster: &Cluster,
    via: i32,
    ok: impl Fn(&(i32, i32, usize, Uuid)) -> bool,
) -> (i32, i32, usize, Uuid) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(60) {
        last = leadership(cluster, via);
        if let Some(l) = last.filter(|l| ok(l)) {
            return l;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "partition 0 of {TOPIC} never reached the expected leadership: {last:?}\n{}",
        cluster.log_tails(3000)
    );
}

fn create_topic(cluster: &Cluster, via: i32) {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::CreateTopicsRequest;
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_num_partitions(1)
        .with_replication_factor(3)
        .with_configs(vec![CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("min.insync.replicas"))
            .with_value(Some(StrBytes::from_static_str("2")))]);
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(30_000);
    let resp = connect(cluster, via)
        .request(5, &req)
        .unwrap_or_else(|e| panic!("create topic: {e}"));
    assert_eq!(resp.topics[0].error_code, 0, "create topic: {resp:?}");
}

/// A Fetch v16 from replica `replica_id`. (A consumer's v11+ fetch is served by any replica, KIP-392, so the
/// not-the-leader answer is checked with a replica's fetch.)
fn fetch_v16(conn: &mut Connection, topic_id: Uuid, replica_id: i32) -> FetchResponse {
    let partition = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(0)
        .with_current_leader_epoch(-1)
        .with_last_fetched_epoch(-1)
        .with_log_start_offset(-1)
        .with_partition_max_bytes(1 << 20);
    let mut req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic_id)
            .with_partitions(vec![partition])]);
    req.replica_state.replica_id = BrokerId(replica_id);
    req.replica_state.replica_epoch = -1;
    conn.request(16, &req)
        .unwrap_or_else(|e| panic!("fetch: {e}"))
}

#[test]
fn non_leaders_name_the_leader_and_a_new_leader_deduplicates_retries() {
    let mut cluster = Cluster::builder()
        .controllers(3)
        .brokers(3)
        .prop("replica.lag.time.max.ms", "4000")
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let brokers = cluster.broker_ids();
    create_topic(&cluster, brokers[0]);
    let (leader, epoch, _, topic_id) =
        wait_leadership(&cluster, brokers[0], |l| l.0 >= 0 && l.2 == 3);
    let follower = *brokers
        .iter()
        .find(|&&b| b != leader)
        .unwrap_or_else(|| panic!("no follower"));
    let leader_port = i32::from(
        cluster
            .node(leader)
            .broker_addr()
            .unwrap_or_else(|| panic!("no leader address"))
            .port(),
    );

    // KIP-951 from a follower: Produce v11 and Fetch v16 name the leader and its endpoint.
    let mut conn = connect(&cluster, follower);
    let resp = produce(&mut conn, 11, batch(-1, -1, -1, 1));
    let p = partition_answer(&resp);
    assert_eq!(p.error_code, NOT_LEADER_OR_FOLLOWER, "{resp:?}");
    assert_eq!(
        (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
        (leader, epoch),
        "{resp:?}"
    );
    assert!(
        resp.node_endpoints.iter().any(|e| e.node_id.0 == leader
            && e.port == leader_port
            && e.host.as_str() == "127.0.0.1"),
        "produce: no endpoint for leader {leader}: {resp:?}"
    );
    let third = *brokers
        .iter()
        .find(|&&b| b != leader && b != follower)
        .unwrap_or_else(|| panic!("no third broker in {brokers:?}"));
    let fetched = fetch_v16(&mut conn, topic_id, third);
    let fp = &fetched.responses[0].partitions[0];
    assert_eq!(fp.error_code, NOT_LEADER_OR_FOLLOWER, "{fetched:?}");
    assert_eq!(
        (
            fp.current_leader.leader_id.0,
            fp.current_leader.leader_epoch
        ),
        (leader, epoch)
    );
    assert!(
        fetched
            .node_endpoints
            .iter()
            .any(|e| e.node_id.0 == leader && e.port == leader_port),
        "fetch: no endpoint for leader {leader}: {fetched:?}"
    );

    // An idempotent producer's batch, acknowledged with acks=all (on every ISR member).
    let mut to_leader = connect(&cluster, leader);
    let ids = to_leader
        .request(
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000),
        )
        .unwrap_or_else(|e| panic!("init producer id: {e}"));
    assert_eq!(ids.error_code, 0);
    let (pid, pepoch) = (ids.producer_id.0, ids.producer_epoch);
    // The leader may not have applied the metadata the other broker reported yet.
    let first = produce_while_not_leader(&mut to_leader, batch(pid, pepoch, 0, 3));
    assert_eq!(partition_answer(&first).error_code, 0, "{first:?}");
    let second = produce(&mut to_leader, 11, batch(pid, pepoch, 3, 2));
    assert_eq!(partition_answer(&second).error_code, 0, "{second:?}");
    let second_offset = partition_answer(&second).base_offset;

    cluster
        .node_mut(leader)
        .kill9()
        .unwrap_or_else(|e| panic!("killing {leader}: {e}"));
    let (new_leader, new_epoch, _, _) = wait_leadership(&cluster, follower, |l| {
        l.0 >= 0 && l.0 != leader && l.1 > epoch
    });
    eprintln!("leader {leader} killed; new leader {new_leader} in epoch {new_epoch}");

    // The retry of the acknowledged batch (its response "lost") goes to the new leader: same offset, not
    // written again. Retried until the new leader has taken over (it may answer NOT_LEADER briefly).
    let mut to_new = connect(&cluster, new_leader);
    let retried = produce_while_not_leader(&mut to_new, batch(pid, pepoch, 3, 2));
    let p = partition_answer(&retried);
    assert_eq!(
        (p.error_code, p.base_offset),
        (0, second_offset),
        "the retried batch was not recognised as a duplicate: {retried:?}"
    );
    // The next sequence follows right after: nothing was written twice.
    let next = produce(&mut to_new, 11, batch(pid, pepoch, 5, 1));
    assert_eq!(
        (
            partition_answer(&next).error_code,
            partition_answer(&next).base_offset
        ),
        (0, second_offset + 2),
        "{next:?}"
    );
}
