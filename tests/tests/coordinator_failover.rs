//! Group coordinator failover with real processes: three controllers and three brokers,
//! `__consumer_offsets` with replication factor 3. A subscribed rdkafka consumer commits increasing offsets;
//! the broker coordinating its group is killed with SIGKILL. The group must find the new coordinator (the
//! new leader of its `__consumer_offsets` partition, which loads the group from its replica), and no offset
//! the old coordinator acknowledged may be missing or go backwards.
//!
//! This fails if group records were only appended locally (the acknowledged commit died with the broker), or
//! if the new leader never took the group over (NOT_COORDINATOR or an empty group forever).

mod support;

use std::time::{Duration, Instant};

use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_tests::wire::Connection;
use kraftwerk_tests::Cluster;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use support::{client_config, create_topic};

const TOPIC: &str = "tracked";
const PARTITIONS: i32 = 3;
const GROUP: &str = "failover-group";
/// Every commit must be acknowledged within this, failover included.
const COMMIT_DEADLINE: Duration = Duration::from_secs(60);

/// FindCoordinator for `GROUP` asked of broker `via`: `Ok(node id)`, or the error code.
fn find_coordinator(cluster: &Cluster, via: i32) -> Result<i32, String> {
    let addr = cluster
        .node(via)
        .broker_addr()
        .ok_or_else(|| format!("{via} is not a broker"))?;
    let mut conn = Connection::connect(addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_static_str(GROUP))
        .with_key_type(0);
    let response: FindCoordinatorResponse = conn.request(3, &request).map_err(|e| e.to_string())?;
    if response.error_code != 0 {
        return Err(format!("error {}", response.error_code));
    }
    Ok(response.node_id.0)
}

fn wait_for_coordinator(cluster: &Cluster, via: i32, not: Option<i32>) -> i32 {
    let start = Instant::now();
    let mut last = Err(String::from("not asked"));
    while start.elapsed() < Duration::from_secs(60) {
        last = find_coordinator(cluster, via);
        if let Ok(id) = last {
            if Some(id) != not {
                return id;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "no coordinator (other than {not:?}) for {GROUP} after 60 s: {last:?}\n{}",
        cluster.log_tails(3000)
    );
}

fn group_consumer(bootstrap: &str) -> BaseConsumer {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "45000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .unwrap_or_else(|e| panic!("creating consumer: {e}"));
    consumer
        .subscribe(&[TOPIC])
        .unwrap_or_else(|e| panic!("subscribing: {e}"));
    consumer
}

/// Polls until the consumer holds all partitions of `TOPIC`.
fn wait_for_assignment(consumer: &BaseConsumer, cluster: &Cluster) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        let _ = consumer.poll(Duration::from_millis(100));
        if consumer
            .assignment()
            .is_ok_and(|a| a.count() == PARTITIONS as usize)
        {
            return;
        }
    }
    panic!(
        "consumer never got its assignment\n{}",
        cluster.log_tails(3000)
    );
}

/// Commits `offset` on every partition, retrying through coordinator moves; the time it took.
fn commit_all(consumer: &BaseConsumer, offset: i64, cluster: &Cluster) -> Duration {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Offset(offset))
            .unwrap_or_else(|e| panic!("building the commit: {e}"));
    }
    let start = Instant::now();
    loop {
        let _ = consumer.poll(Duration::from_millis(10));
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => return start.elapsed(),
            Err(e) if start.elapsed() < COMMIT_DEADLINE => {
                eprintln!("commit of {offset} not acknowledged yet: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!(
                "commit of {offset} failed for {COMMIT_DEADLINE:?}: {e}\n{}",
                cluster.log_tails(4000)
            ),
        }
    }
}

/// The group's committed offsets as the current coordinator reports them.
fn committed(consumer: &BaseConsumer) -> Result<Vec<i64>, String> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    (0..PARTITIONS)
        .map(|p| match got.find_partition(TOPIC, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Ok(o),
            other => Err(format!("partition {p}: {other:?}")),
        })
        .collect()
}

#[test]
fn committed_offsets_survive_kill9_of_the_group_coordinator() {
    let mut cluster = Cluster::builder()
        .controllers(3)
        .brokers(3)
        .prop("offsets.topic.replication.factor", "3")
        .prop("offsets.topic.num.partitions", "5")
        .prop("replica.lag.time.max.ms", "4000")
        .prop("group.initial.rebalance.delay.ms", "0")
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let brokers = cluster.broker_ids();
    let bootstrap = cluster.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS, &[]);

    let consumer = group_consumer(&bootstrap);
    wait_for_assignment(&consumer, &cluster);
    let coordinator = wait_for_coordinator(&cluster, brokers[0], None);
    eprintln!("group coordinator: broker {coordinator}");

    let mut acked = 0;
    for offset in 1..=20 {
        commit_all(&consumer, offset, &cluster);
        acked = offset;
    }
    assert_eq!(
        committed(&consumer).unwrap_or_else(|e| panic!("{e}")),
        vec![acked; PARTITIONS as usize]
    );

    cluster
        .node_mut(coordinator)
        .kill9()
        .unwrap_or_else(|e| panic!("killing {coordinator}: {e}"));
    let survivor = *brokers
        .iter()
        .find(|&&b| b != coordinator)
        .unwrap_or_else(|| panic!("no other broker"));
    let started = Instant::now();
    let new_coordinator = wait_for_coordinator(&cluster, survivor, Some(coordinator));
    eprintln!(
        "new coordinator: broker {new_coordinator} after {:?}",
        started.elapsed()
    );

    // Nothing acknowledged before the kill is lost, and the group commits on at the new coordinator.
    let read_back = {
        let start = Instant::now();
        loop {
            let _ = consumer.poll(Duration::from_millis(10));
            match committed(&consumer) {
                Ok(offsets) => break offsets,
                Err(e) if start.elapsed() < COMMIT_DEADLINE => {
                    eprintln!("offsets not readable yet: {e}");
                    std::thread::sleep(Duration::from_millis(300));
                }
                Err(e) => panic!("offsets unreadable after failover: {e}"),
            }
        }
    };
    assert!(
        read_back.iter().all(|&o| o >= acked),
        "committed offsets went backwards over the failover: acknowledged {acked}, now {read_back:?}"
    );
    let took = commit_all(&consumer, acked + 1, &cluster);
    eprintln!("first commit after the failover took {took:?}");
    for offset in acked + 2..=acked + 10 {
        commit_all(&consumer, offset, &cluster);
    }
    assert_eq!(
        committed(&consumer).unwrap_or_else(|e| panic!("{e}")),
        vec![acked + 10; PARTITIONS as usize]
    );
    assert_eq!(
        wait_for_coordinator(&cluster, survivor, Some(coordinator)),
        new_coordinator,
        "the coordinator moved again with no failure"
    );
}

/// One combined node with `offsets.topic.replication.factor=1`: the group works, and its offsets come back
/// after `kill -9` and a restart (the restarted broker leads the partition again and loads it).
#[test]
fn a_single_node_coordinates_and_reloads_its_groups_after_kill9() {
    let mut broker = kraftwerk_tests::broker::Broker::start()
        .unwrap_or_else(|e| panic!("starting the broker: {e}"));
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS, &[]);
    {
        let consumer = group_consumer(&bootstrap);
        wait_for_assignment_alone(&consumer);
        for offset in 1..=5 {
            commit_alone(&consumer, offset);
        }
    }
    broker.kill9().unwrap_or_else(|e| panic!("kill -9: {e}"));
    broker.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    let consumer = group_consumer(&bootstrap);
    let start = Instant::now();
    loop {
        let _ = consumer.poll(Duration::from_millis(10));
        match committed(&consumer) {
            Ok(offsets) => {
                assert_eq!(offsets, vec![5; PARTITIONS as usize]);
                break;
            }
            Err(e) if start.elapsed() < COMMIT_DEADLINE => {
                eprintln!("offsets not readable yet: {e}");
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => panic!(
                "offsets unreadable after restart: {e}\n{}",
                broker.log_tail()
            ),
        }
    }
}

fn wait_for_assignment_alone(consumer: &BaseConsumer) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        let _ = consumer.poll(Duration::from_millis(100));
        if consumer
            .assignment()
            .is_ok_and(|a| a.count() == PARTITIONS as usize)
        {
            return;
        }
    }
    panic!("consumer never got its assignment");
}

fn commit_alone(consumer: &BaseConsumer, offset: i64) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Offset(offset))
            .unwrap_or_else(|e| panic!("building the commit: {e}"));
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("commit of {offset}: {e}"));
}
