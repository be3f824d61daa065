//! Partition leader elections with real processes (three controllers, brokers as separate processes):
//! - a broker killed with SIGKILL loses its leaderships; once restarted and back in sync, an ElectLeaders
//!   PREFERRED request (raw wire, v2) moves them back, with Kafka's per-partition codes;
//! - with `leader.imbalance.check.interval.seconds` short, the active controller does it unasked;
//! - an RF-2 partition whose only in-sync replica died stays leaderless while unclean elections are off, even
//!   with the other replica back, and gets that replica as leader once the topic enables
//!   `unclean.leader.election.enable` (IncrementalAlterConfigs).
//!
//! The tests run one after the other (each starts its own cluster; the machine is shared).

mod support;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ElectLeadersRequest, ElectLeadersResponse, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_tests::wire::Connection;
use kraftwerk_tests::Cluster;
use rdkafka::admin::{NewTopic, TopicReplication};
use support::{admin, admin_options, block_on};

/// Generous bound for anything that needs a session timeout, a restart and a catch-up.
const WAIT: Duration = Duration::from_secs(90);
const ELECTION_NOT_NEEDED: i16 = 84;
const PREFERRED: i8 = 0;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// One partition as Metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionView {
    partition: i32,
    leader: i32,
    preferred: i32,
    isr: Vec<i32>,
}

/// The partitions of `topic` and the listed (unfenced) brokers, as broker `via` reports them.
fn view(cluster: &Cluster, via: i32, topic: &str) -> Option<(Vec<PartitionView>, Vec<i32>)> {
    let md = cluster.node(via).metadata().ok()?;
    let brokers = md.brokers.iter().map(|b| b.node_id.0).collect();
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))?;
    let mut parts: Vec<PartitionView> = t
        .partitions
        .iter()
        .map(|p| {
            let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
            isr.sort_unstable();
            PartitionView {
                partition: p.partition_index,
                leader: p.leader_id.0,
                preferred: p.replica_nodes.first().map_or(-1, |b| b.0),
                isr,
            }
        })
        .collect();
    parts.sort_by_key(|p| p.partition);
    Some((parts, brokers))
}

/// Polls `view` until `done` holds; panics with the last view and the logs after `timeout`.
fn wait_until(
    cluster: &Cluster,
    via: i32,
    topic: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[PartitionView], &[i32]) -> bool,
) -> Vec<PartitionView> {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < timeout {
        if let Some((parts, brokers)) = view(cluster, via, topic) {
            if !parts.is_empty() && done(&parts, &brokers) {
                eprintln!("{what}: after {:?}", start.elapsed());
                return parts;
            }
            last = Some((parts, brokers));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "{what}: not after {timeout:?}; last view {last:?}\n{}",
        cluster.log_tails(3000)
    );
}

fn create_topic(cluster: &Cluster, name: &str, partitions: i32, rf: i32) {
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(rf));
    let created = block_on(admin(&cluster.bootstrap()).create_topics([&topic], &admin_options()))
        .unwrap_or_else(|e| panic!("CreateTopics: {e}"));
    assert!(
        matches!(created.as_slice(), [Ok(_)]),
        "CreateTopics answered {created:?}"
    );
}

fn connect(cluster: &Cluster, broker: i32) -> Connection {
    let addr: SocketAddr = cluster
        .node(broker)
        .broker_addr()
        .expect("a broker listener");
    let conn = Connection::connect(addr, Duration::from_secs(10)).expect("connecting");
    conn.set_read_timeout(Duration::from_secs(60))
        .expect("read timeout");
    conn
}

fn elect_preferred(
    cluster: &Cluster,
    via: i32,
    topic: Option<(&str, Vec<i32>)>,
) -> ElectLeadersResponse {
    let mut req = ElectLeadersRequest::default();
    req.election_type = PREFERRED;
    req.timeout_ms = 30_000;
    req.topic_partitions = topic.map(|(name, partitions)| {
        let mut tp = TopicPartitions::default();
        tp.topic = TopicName(StrBytes::from_string(name.to_owned()));
        tp.partitions = partitions;
        vec![tp]
    });
    connect(cluster, via)
        .request(2, &req)
        .unwrap_or_else(|e| panic!("ElectLeaders: {e}"))
}

/// Kills `victim` (SIGKILL), waits until it leads nothing, restarts it and waits until every partition has a
/// full ISR again (seen from `via`). Returns the partitions whose preferred replica is `victim`.
fn bounce(cluster: &mut Cluster, victim: i32, via: i32, topic: &str, rf: usize) -> Vec<i32> {
    cluster.node_mut(victim).kill9().expect("kill -9");
    let parts = wait_until(
        cluster,
        via,
        topic,
        "leaderships moved off the killed broker",
        WAIT,
        |parts, brokers| {
            !brokers.contains(&victim) && parts.iter().all(|p| p.leader >= 0 && p.leader != victim)
        },
    );
    let preferred_by_victim: Vec<i32> = parts
        .iter()
        .filter(|p| p.preferred == victim)
        .map(|p| p.partition)
        .collect();
    assert!(!preferred_by_victim.is_empty(), "{parts:?}");
    cluster.node_mut(victim).restart().expect("restart");
    let parts = wait_until(
        cluster,
        via,
        topic,
        "the restarted broker is back in every ISR",
        WAIT,
        |parts, _| parts.iter().all(|p| p.isr.len() == rf),
    );
    // Nothing moved leadership back by itself.
    assert!(
        parts.iter().all(|p| p.leader != victim),
        "leadership went back before it was asked to: {parts:?}"
    );
    preferred_by_victim
}

#[test]
fn elect_leaders_preferred_moves_leadership_back_after_a_restart() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const TOPIC: &str = "elect-preferred";
    let mut cluster = Cluster::builder()
        .controllers(3)
        .brokers(3)
        .prop("auto.leader.rebalance.enable", "false")
        .prop("replica.lag.time.max.ms", "4000")
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let brokers = cluster.broker_ids();
    let (victim, via) = (brokers[0], brokers[1]);
    create_topic(&cluster, TOPIC, 6, 3);
    wait_until(&cluster, via, TOPIC, "full ISRs", WAIT, |parts, _| {
        parts
            .iter()
            .all(|p| p.isr.len() == 3 && p.leader == p.preferred)
    });
    let moved = bounce(&mut cluster, victim, via, TOPIC, 3);

    let resp = elect_preferred(&cluster, via, Some((TOPIC, (0..6).collect())));
    assert_eq!(resp.error_code, 0, "{resp:?}");
    let [result] = resp.replica_election_results.as_slice() else {
        panic!("{resp:?}")
    };
    for p in &result.partition_result {
        let want = if moved.contains(&p.partition_id) {
            0
        } else {
            ELECTION_NOT_NEEDED
        };
        assert_eq!(p.error_code, want, "partition {}: {resp:?}", p.partition_id);
    }
    wait_until(
        &cluster,
        via,
        TOPIC,
        "ElectLeaders moved leadership back",
        WAIT,
        |parts, _| parts.iter().all(|p| p.leader == p.preferred),
    );
    // All partitions of all topics: __consumer_offsets moved too and is moved back; only the partitions
    // elected are reported, every one with success. A second time nothing is left, so nothing is reported.
    let resp = elect_preferred(&cluster, brokers[2], None);
    let reported: Vec<_> = resp
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result
                .iter()
                .map(move |p| (t.topic.0.as_str(), p))
        })
        .collect();
    assert!(
        reported
            .iter()
            .all(|(topic, p)| *topic != TOPIC && p.error_code == 0),
        "{resp:?}"
    );
    let resp = elect_preferred(&cluster, brokers[2], None);
    assert!(
        resp.replica_election_results
            .iter()
            .all(|t| t.partition_result.is_empty()),
        "{resp:?}"
    );
}

#[test]
fn auto_rebalance_moves_leadership_back_without_a_request() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const TOPIC: &str = "auto-rebalance";
    let mut cluster = Cluster::builder()
        .controllers(3)
        .brokers(3)
        .prop("leader.imbalance.check.interval.seconds", "2")
        // Any imbalance counts: with the default 10%, whether the victim's two partitions of this topic are
        // above the threshold depends on how many __consumer_offsets partitions it leads (the threshold
        // itself is unit-tested in the controller's ops).
        .prop("leader.imbalance.per.broker.percentage", "0")
        .prop("replica.lag.time.max.ms", "4000")
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let brokers = cluster.broker_ids();
    let (victim, via) = (brokers[0], brokers[1]);
    create_topic(&cluster, TOPIC, 6, 3);
    wait_until(&cluster, via, TOPIC, "full ISRs", WAIT, |parts, _| {
        parts
            .iter()
            .all(|p| p.isr.len() == 3 && p.leader == p.preferred)
    });
    cluster.node_mut(victim).kill9().expect("kill -9");
    wait_until(
        &cluster,
        via,
        TOPIC,
        "leaderships moved off the killed broker",
        WAIT,
        |parts, brokers| {
            !brokers.contains(&victim) && parts.iter().all(|p| p.leader >= 0 && p.leader != victim)
        },
    );
    cluster.node_mut(victim).restart().expect("restart");
    wait_until(
        &cluster,
        via,
        TOPIC,
        "the rebalance check moved leadership back",
        WAIT,
        |parts, _| {
            parts
                .iter()
                .all(|p| p.leader == p.preferred && p.isr.len() == 3)
        },
    );
}

fn enable_unclean(cluster: &Cluster, via: i32, topic: &str) {
    let mut config = AlterableConfig::default();
    config.name = StrBytes::from_static_str("unclean.leader.election.enable");
    config.config_operation = 0; // SET
    config.value = Some(StrBytes::from_static_str("true"));
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = 2; // TOPIC
    resource.resource_name = StrBytes::from_string(topic.to_owned());
    resource.configs = vec![config];
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![resource];
    let resp = connect(cluster, via)
        .request(1, &req)
        .unwrap_or_else(|e| panic!("IncrementalAlterConfigs: {e}"));
    assert!(resp.responses.iter().all(|r| r.error_code == 0), "{resp:?}");
}

#[test]
fn unclean_election_only_once_the_topic_allows_it() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const TOPIC: &str = "unclean";
    let mut cluster = Cluster::builder()
        .controllers(3)
        .brokers(2)
        .prop("auto.leader.rebalance.enable", "false")
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let brokers = cluster.broker_ids();
    create_topic(&cluster, TOPIC, 1, 2);
    let parts = wait_until(&cluster, brokers[0], TOPIC, "full ISR", WAIT, |parts, _| {
        parts[0].isr.len() == 2 && parts[0].leader >= 0
    });
    let leader = parts[0].leader;
    let follower = *brokers.iter().find(|&&b| b != leader).expect("two brokers");

    // The follower stops (controlled shutdown takes it out of the ISR), then the leader dies.
    cluster
        .node_mut(follower)
        .stop()
        .expect("stopping the follower");
    wait_until(
        &cluster,
        leader,
        TOPIC,
        "ISR shrank to the leader",
        WAIT,
        |parts, _| parts[0].isr == [leader] && parts[0].leader == leader,
    );
    cluster
        .node_mut(leader)
        .kill9()
        .expect("kill -9 of the leader");
    cluster
        .node_mut(follower)
        .restart()
        .expect("restarting the ex-follower");
    wait_until(
        &cluster,
        follower,
        TOPIC,
        "the dead leader fenced, the partition leaderless",
        WAIT,
        |parts, brokers| brokers == [follower] && parts[0].leader == -1 && parts[0].isr == [leader],
    );
    // It stays so: the ex-follower is live but was not in sync, and unclean elections are off.
    std::thread::sleep(Duration::from_secs(3));
    let (parts, _) = view(&cluster, follower, TOPIC).expect("metadata");
    assert_eq!(parts[0].leader, -1, "{parts:?}");

    enable_unclean(&cluster, follower, TOPIC);
    wait_until(
        &cluster,
        follower,
        TOPIC,
        "unclean election of the ex-follower",
        WAIT,
        |parts, _| parts[0].leader == follower && parts[0].isr == [follower],
    );
    // The new leader reports itself recovered (KIP-704) right after the election, and the controller accepts.
    let start = Instant::now();
    while !cluster
        .node(follower)
        .log_since_spawn()
        .contains("AlterPartition accepted")
    {
        assert!(
            start.elapsed() < WAIT,
            "the new leader never sent AlterPartition:\n{}",
            cluster.node(follower).log_tail(50)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
