//! Partition reassignment with real processes: three controllers and three brokers, a topic with one
//! partition on brokers {a, b} holding acknowledged data, moved to {c, b} with AlterPartitionReassignments
//! sent over the wire to broker c (a broker-only node, so the request is forwarded to the active controller).
//!
//! Checked: ListPartitionReassignments shows the move in progress (replicas c, b, a; adding c; removing a)
//! or nothing once it is done; while broker a is still a replica the new one is caught up before a leaves
//! (every Metadata seen without a lists c in the ISR); afterwards every broker's Metadata shows replicas
//! {c, b} with the ISR {c, b}, the new replica c leads (it is first in the target, so this reads everything
//! from the replica that was created by the move), every acknowledged message is there at its acknowledged
//! offset, and broker a's log directory for the partition is gone. Then a follower leaves ({c, b} -> {c, a}):
//! b's directory is deleted, a gets a fresh replica, and after c stops a leads with every record.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_tests::verify::{check_exact, summarize};
use kraftwerk_tests::wire::Connection;
use kraftwerk_tests::Cluster;
use rdkafka::admin::{NewTopic, TopicReplication};
use support::{admin, admin_options, block_on, consume_all, flush, recording_producer, send};

const TOPIC: &str = "moved";
const MESSAGES: u64 = 3000;
const SETTLE: Duration = Duration::from_secs(90);

/// (replicas, sorted ISR, leader) of partition 0 as broker `via` reports it.
fn state(cluster: &Cluster, via: i32) -> Option<(Vec<i32>, Vec<i32>, i32)> {
    let md = cluster.node(via).metadata().ok()?;
    let topic = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == TOPIC))?;
    let p = topic.partitions.iter().find(|p| p.partition_index == 0)?;
    let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort_unstable();
    Some((
        p.replica_nodes.iter().map(|b| b.0).collect(),
        isr,
        p.leader_id.0,
    ))
}

fn wait_for(
    cluster: &Cluster,
    what: &str,
    mut ok: impl FnMut() -> bool,
    seen: impl Fn() -> String,
) {
    let start = Instant::now();
    while start.elapsed() < SETTLE {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "{what} not reached in {SETTLE:?}; last seen {}\n{}",
        seen(),
        cluster.log_tails(3000)
    );
}

fn connect(cluster: &Cluster, id: i32) -> Connection {
    let addr = cluster
        .node(id)
        .broker_addr()
        .unwrap_or_else(|| panic!("{id} is not a broker"));
    Connection::connect(addr, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"))
}

/// ListPartitionReassignments for partition 0: `None` when nothing is in progress, else (replicas, adding,
/// removing).
fn listed(conn: &mut Connection) -> Option<(Vec<i32>, Vec<i32>, Vec<i32>)> {
    let mut topic = ListPartitionReassignmentsTopics::default();
    topic.name = TopicName(StrBytes::from_static_str(TOPIC));
    topic.partition_indexes = vec![0];
    let mut req = ListPartitionReassignmentsRequest::default();
    req.topics = Some(vec![topic]);
    let resp = conn
        .request(0, &req)
        .unwrap_or_else(|e| panic!("ListPartitionReassignments: {e}"));
    assert_eq!(resp.error_code, 0, "{resp:?}");
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    match resp.topics.as_slice() {
        [] => None,
        [t] => {
            assert_eq!(t.name.0.as_str(), TOPIC);
            match t.partitions.as_slice() {
                [p] => Some((
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )),
                other => panic!("unexpected partitions {other:?}"),
            }
        }
        other => panic!("unexpected topics {other:?}"),
    }
}

#[test]
fn a_partition_moves_to_new_brokers_with_its_data() {
    let mut cluster = Cluster::builder()
        .controllers(3)
        .brokers(3)
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let (a, b, c) = match cluster.broker_ids().as_slice() {
        [a, b, c] => (*a, *b, *c),
        other => panic!("expected three brokers, got {other:?}"),
    };
    let bootstrap = cluster.bootstrap();
    let assignment: &[&[i32]] = &[&[a, b]];
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Variable(assignment));
    let created = block_on(admin(&bootstrap).create_topics([&topic], &admin_options()))
        .unwrap_or_else(|e| panic!("CreateTopics: {e}"));
    assert!(matches!(created.as_slice(), [Ok(_)]), "{created:?}");
    wait_for(
        &cluster,
        "ISR {a, b}",
        || state(&cluster, c).is_some_and(|(_, isr, _)| isr.len() == 2),
        || format!("{:?}", state(&cluster, c)),
    );

    let (producer, recorder) = recording_producer(
        &bootstrap,
        &[("enable.idempotence", "true"), ("linger.ms", "5")],
    );
    for seq in 0..MESSAGES {
        let value = format!("message-{seq}-{}", "x".repeat(200));
        send(&producer, TOPIC, seq, b"k", value.as_bytes(), None)
            .unwrap_or_else(|e| panic!("sending {seq}: {e}"));
    }
    flush(&producer).unwrap_or_else(|e| panic!("{e}"));
    let (acked, failed) = recorder.snapshot();
    assert!(failed.is_empty(), "failed sends: {:?}", &failed[..1]);
    assert!(
        state(&cluster, c).is_some_and(|s| s.0 == vec![a, b]),
        "not yet moved"
    );

    // Move {a, b} -> {c, b}, asking broker c (it forwards to the active controller).
    let mut conn = connect(&cluster, c);
    reassign(&mut conn, &[c, b]);

    match listed(&mut conn) {
        None => eprintln!("the move had already completed when listed"),
        Some(ongoing) => {
            eprintln!("in progress: {ongoing:?}");
            assert_eq!(ongoing, (vec![c, b, a], vec![c], vec![a]));
        }
    }

    // Until it is done, every state seen keeps a as a replica unless c is in the ISR.
    let mut seen = BTreeSet::new();
    wait_for(
        &cluster,
        "replicas {c, b}",
        || {
            let Some(s) = state(&cluster, b) else {
                return false;
            };
            seen.insert(s.clone());
            s.0 == vec![c, b] && s.1 == vec![b.min(c), b.max(c)]
        },
        || format!("{:?}", state(&cluster, b)),
    );
    eprintln!("states seen: {seen:?}");
    for (replicas, isr, _) in &seen {
        assert!(
            replicas.contains(&a) || isr.contains(&c),
            "broker {a} left before {c} was in sync: replicas {replicas:?}, ISR {isr:?}"
        );
    }
    assert_eq!(listed(&mut conn), None, "still listed after completion");
    for id in [a, b, c] {
        wait_for(
            &cluster,
            "every broker sees the move",
            || state(&cluster, id).is_some_and(|s| s.0 == vec![c, b] && s.2 == c),
            || format!("broker {id}: {:?}", state(&cluster, id)),
        );
    }

    // Everything, at its offsets, from the new leader c.
    let log = consume_all(&cluster.bootstrap_of(&[c]), TOPIC, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("reading back: {e}"));
    let sent = usize::try_from(MESSAGES).unwrap_or(usize::MAX);
    let violations = check_exact(sent, &acked, &log);
    assert!(violations.is_empty(), "{}", summarize(&violations, 10));

    let old_dir = cluster
        .node(a)
        .dir()
        .join("data")
        .join(format!("{TOPIC}-0"));
    wait_for(
        &cluster,
        "broker a's partition directory deleted",
        || !old_dir.exists(),
        || format!("{} exists", old_dir.display()),
    );
    let new_dir = cluster
        .node(c)
        .dir()
        .join("data")
        .join(format!("{TOPIC}-0"));
    assert!(new_dir.exists(), "{} missing", new_dir.display());

    // Then a follower leaves: {c, b} -> {c, a}. Broker a starts again from an empty log; c keeps leading.
    reassign(&mut conn, &[c, a]);
    wait_for(
        &cluster,
        "replicas {c, a}",
        || {
            [a, b, c].iter().all(|&id| {
                state(&cluster, id).is_some_and(|s| {
                    s.0 == vec![c, a] && s.1 == vec![a.min(c), a.max(c)] && s.2 == c
                })
            })
        },
        || format!("{:?}", state(&cluster, b)),
    );
    let follower_dir = cluster
        .node(b)
        .dir()
        .join("data")
        .join(format!("{TOPIC}-0"));
    wait_for(
        &cluster,
        "broker b's partition directory deleted",
        || !follower_dir.exists(),
        || format!("{} exists", follower_dir.display()),
    );
    assert!(old_dir.exists(), "broker a did not recreate its replica");
    // Broker a holds everything again: stop c (a controlled shutdown moves the leadership to a) and read it
    // all from a.
    cluster
        .node_mut(c)
        .stop()
        .unwrap_or_else(|e| panic!("stopping {c}: {e}"));
    wait_for(
        &cluster,
        "broker a leads",
        || state(&cluster, a).is_some_and(|s| s.2 == a),
        || format!("{:?}", state(&cluster, a)),
    );
    let log = consume_all(&cluster.bootstrap_of(&[a]), TOPIC, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("reading back from {a}: {e}"));
    let violations = check_exact(sent, &acked, &log);
    assert!(violations.is_empty(), "{}", summarize(&violations, 10));
}

/// AlterPartitionReassignments of partition 0 to `target`; every code must be 0.
fn reassign(conn: &mut Connection, target: &[i32]) {
    let mut partition = ReassignablePartition::default();
    partition.partition_index = 0;
    partition.replicas = Some(target.iter().copied().map(BrokerId).collect());
    let mut topic = ReassignableTopic::default();
    topic.name = TopicName(StrBytes::from_static_str(TOPIC));
    topic.partitions = vec![partition];
    let mut req = AlterPartitionReassignmentsRequest::default();
    req.topics = vec![topic];
    let resp = conn
        .request(0, &req)
        .unwrap_or_else(|e| panic!("AlterPartitionReassignments: {e}"));
    assert_eq!(resp.error_code, 0, "{resp:?}");
    let codes: Vec<i16> = resp
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect();
    assert_eq!(codes, vec![0], "{resp:?}");
}
