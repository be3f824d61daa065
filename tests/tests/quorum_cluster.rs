//! A real multi-process cluster: a quorum of three controllers (combined with brokers, or separate), real
//! clients (rdkafka for admin, produce and consume; the harness's wire client for Metadata from each broker),
//! and real failures: kill -9 of brokers and of the active controller, SIGSTOP of a controller, a node from
//! another cluster, Kafka clients and garbage on the controller listener.
//!
//! The tests run one at a time (see [`serial`]): each starts 3-6 debug processes, and on a 2-core machine
//! running them side by side would make the timing assertions (fencing within the session timeout)
//! meaningless.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_tests::cluster::{
    another_cluster_id, broker_ids, topic_layout, ACTIVE_CONTROLLER_TIMEOUT, ELECTION_TIMEOUT_MS,
    HEARTBEAT_INTERVAL_MS, SESSION_TIMEOUT_MS,
};
use kraftwerk_tests::verify::{check_exact, summarize};
use kraftwerk_tests::wire::{encode_request, negotiate_version, Connection, ReadOutcome};
use kraftwerk_tests::{Cluster, HarnessError};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::producer::BaseRecord;
use support::{admin, block_on, consume_all, flush, recording_producer};

/// How long metadata may take to reach every broker after a change.
const PROPAGATION: Duration = Duration::from_secs(30);
/// Slack on top of `broker.session.timeout.ms` for a dead broker to drop out of every broker's Metadata:
/// the session check runs every heartbeat/2, the fence is a raft commit, and broker-only nodes learn it by
/// long-polling the metadata log, all on a busy 2-core machine.
const FENCE_SLACK: Duration = Duration::from_secs(7);
/// How long a broker or controller may take to close a connection it refuses.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Kafka's TOPIC_ALREADY_EXISTS error code.
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// Runs the tests of this file one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A poisoned lock only means an earlier test failed; the next one can still run.
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn start(builder: kraftwerk_tests::ClusterBuilder) -> Cluster {
    let started = Instant::now();
    let cluster = builder
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    eprintln!(
        "cluster {} ready in {:?}",
        cluster.cluster_id(),
        started.elapsed()
    );
    cluster
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// CreateTopics sent over the wire to one broker; returns the topic's error code.
fn wire_create(addr: SocketAddr, name: &str, partitions: i32) -> Result<i16, String> {
    let mut conn = Connection::connect(addr, Duration::from_secs(20)).map_err(|e| e.to_string())?;
    let versions = conn
        .request(0, &ApiVersionsRequest::default())
        .map_err(|e| format!("ApiVersions: {e}"))?;
    let version = negotiate_version::<CreateTopicsRequest>(&versions)
        .ok_or("no common CreateTopics version")?;
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(15_000);
    let response = conn
        .request(version, &request)
        .map_err(|e| format!("CreateTopics v{version}: {e}"))?;
    match response.topics.as_slice() {
        [t] => Ok(t.error_code),
        other => Err(format!("CreateTopics answered {} topics", other.len())),
    }
}

/// CreateTopics over the wire to one broker, retried (a new controller may still be taking over) until the
/// topic is created; panics after `timeout`.
fn wire_create_retrying(addr: SocketAddr, name: &str, partitions: i32, timeout: Duration) {
    let start = Instant::now();
    let mut attempts = Vec::new();
    loop {
        match wire_create(addr, name, partitions) {
            Ok(0) => return,
            // An earlier attempt committed but its answer was lost.
            Ok(TOPIC_ALREADY_EXISTS) if !attempts.is_empty() => return,
            Ok(code) => attempts.push(format!("error code {code}")),
            Err(e) => attempts.push(e),
        }
        assert!(
            start.elapsed() < timeout,
            "creating {name} through {addr} failed for {timeout:?}: {attempts:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A Metadata request for `name` with allow_auto_topic_creation, sent to one broker: Kafka's
/// auto-creation path (the broker forwards the creation to the active controller).
fn wire_auto_create(addr: SocketAddr, name: &str) -> Result<i16, String> {
    let mut conn = Connection::connect(addr, Duration::from_secs(20)).map_err(|e| e.to_string())?;
    let versions = conn
        .request(0, &ApiVersionsRequest::default())
        .map_err(|e| format!("ApiVersions: {e}"))?;
    let version =
        negotiate_version::<MetadataRequest>(&versions).ok_or("no common Metadata version")?;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(name)))
        ]))
        .with_allow_auto_topic_creation(true);
    let response = conn
        .request(version, &request)
        .map_err(|e| format!("Metadata v{version}: {e}"))?;
    match response.topics.as_slice() {
        [t] => Ok(t.error_code),
        other => Err(format!("Metadata answered {} topics", other.len())),
    }
}

/// Waits until every live broker lists every topic in `expected` with that many partitions, each with a
/// leader, and all live brokers list identical topic layouts (names, partitions, leaders). Returns the
/// common layout.
fn wait_topics_everywhere(
    cluster: &mut Cluster,
    expected: &BTreeMap<String, usize>,
    timeout: Duration,
) -> BTreeMap<String, Vec<(i32, i32)>> {
    let mut agreed = BTreeMap::new();
    let waited = cluster.wait_until(
        &format!(
            "every live broker lists the same layout of {} topics",
            expected.len()
        ),
        timeout,
        |c| {
            let mut layouts = BTreeMap::new();
            for (id, md) in c.metadata_by_broker() {
                let md = md.map_err(|e| format!("broker {id}: {e}"))?;
                layouts.insert(id, topic_layout(&md));
            }
            for (id, layout) in &layouts {
                for (topic, partitions) in expected {
                    match layout.get(topic) {
                        None => return Err(format!("broker {id} does not list {topic}")),
                        Some(p) if p.len() != *partitions => {
                            return Err(format!("broker {id} lists {topic} with {p:?}"))
                        }
                        Some(p) if p.iter().any(|(_, leader)| *leader < 0) => {
                            return Err(format!("broker {id}: {topic} has leaderless {p:?}"))
                        }
                        Some(_) => {}
                    }
                }
            }
            let mut distinct = layouts.values();
            let first = distinct.next().ok_or("no live broker")?;
            if let Some((id, other)) = layouts.iter().find(|(_, l)| *l != first) {
                return Err(format!(
                    "brokers disagree: broker {id} lists {other:?}, another lists {first:?}"
                ));
            }
            agreed = first.clone();
            Ok(())
        },
    );
    if let Err(e) = waited {
        panic!("{e}");
    }
    agreed
}

/// CreateTopics through rdkafka's admin client bootstrapped at broker `via` only.
fn admin_create(cluster: &Cluster, via: i32, name: &str, partitions: i32) {
    let admin_client = admin(&cluster.node(via).bootstrap());
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = block_on(admin_client.create_topics([&topic], &support::admin_options()))
        .unwrap_or_else(|e| panic!("CreateTopics {name} through broker {via}: {e}"));
    assert!(
        matches!(results.as_slice(), [Ok(_)]),
        "CreateTopics {name} through broker {via} answered {results:?}"
    );
}

/// Produces to one partition through a producer bootstrapped only at `producer_broker` and reads it back
/// through a consumer bootstrapped only at `consumer_broker`; the partition's leader is a third broker.
fn produce_consume_via_other_brokers(cluster: &mut Cluster, topic: &str) {
    let layout = wait_topics_everywhere(
        cluster,
        &BTreeMap::from([(topic.to_string(), 3)]),
        PROPAGATION,
    );
    let (partition, leader) = layout
        .get(topic)
        .and_then(|p| p.first().copied())
        .unwrap_or_else(|| panic!("{topic} has no partition 0 in {layout:?}"));
    let others: Vec<i32> = cluster
        .broker_ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let [producer_broker, consumer_broker, ..] = others.as_slice() else {
        panic!("need two brokers besides the leader {leader}, have {others:?}");
    };
    eprintln!(
        "{topic}/{partition} is led by broker {leader}; producing via {producer_broker}, consuming via {consumer_broker}"
    );
    let (producer, recorder) = recording_producer(&cluster.node(*producer_broker).bootstrap(), &[]);
    const COUNT: u64 = 200;
    for seq in 0..COUNT {
        let key = format!("k{seq}");
        let value = format!("v{seq}-via-{producer_broker}");
        let record = BaseRecord::with_opaque_to(topic, Box::new(seq))
            .partition(partition)
            .key(key.as_bytes())
            .payload(value.as_bytes());
        if let Err((e, _)) = producer.send(record) {
            panic!("enqueue #{seq}: {e}");
        }
    }
    flush(&producer).unwrap_or_else(|e| panic!("producing through {producer_broker}: {e}"));
    let (acked, failed) = recorder.snapshot();
    assert!(
        failed.is_empty(),
        "deliveries failed: {:?}",
        failed.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        acked.iter().all(|a| a.partition == partition),
        "records acknowledged on other partitions"
    );
    drop(producer);
    let log = consume_all(
        &cluster.node(*consumer_broker).bootstrap(),
        topic,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("consuming through {consumer_broker}: {e}"));
    let violations = check_exact(COUNT as usize, &acked, &log);
    assert!(
        violations.is_empty(),
        "read back through {consumer_broker} differs from what {producer_broker} had acknowledged: {}",
        summarize(&violations, 10)
    );
}

/// Creates topics through different brokers (rdkafka's admin client if `with_admin`, else CreateTopics
/// over the wire; CreateTopics over the wire; auto-creation) and checks every broker lists all of them
/// identically, then produces and consumes across brokers.
fn topics_through_every_broker_agree(cluster: &mut Cluster, with_admin: bool) {
    let brokers = cluster.broker_ids();
    let [first, second, third, ..] = brokers.as_slice() else {
        panic!("need three brokers, have {brokers:?}");
    };
    let mut expected = BTreeMap::new();

    if with_admin {
        admin_create(cluster, *first, "via-admin", 3);
    } else {
        let addr = cluster
            .node(*first)
            .broker_addr()
            .expect("a broker address");
        assert_eq!(
            wire_create(addr, "via-admin", 3),
            Ok(0),
            "CreateTopics via-admin through broker {first}"
        );
    }
    expected.insert("via-admin".to_string(), 3);

    // CreateTopics over the wire to exactly one broker each.
    for (id, name) in [(*second, "via-wire-second"), (*third, "via-wire-third")] {
        let addr = cluster.node(id).broker_addr().expect("a broker address");
        assert_eq!(
            wire_create(addr, name, 2),
            Ok(0),
            "CreateTopics {name} through broker {id}"
        );
        expected.insert(name.to_string(), 2);
    }

    // Auto-creation through a Metadata request to yet another broker.
    let addr = cluster
        .node(*third)
        .broker_addr()
        .expect("a broker address");
    match wire_auto_create(addr, "auto-created") {
        // 0, or LEADER_NOT_AVAILABLE (5) / UNKNOWN_TOPIC_OR_PARTITION (3) while the creation propagates.
        Ok(0 | 3 | 5) => {}
        other => panic!("auto-creating through broker {third} answered {other:?}"),
    }
    expected.insert("auto-created".to_string(), 1);

    // The same names again are refused through any broker: the controller has them.
    let addr = cluster
        .node(*first)
        .broker_addr()
        .expect("a broker address");
    assert_eq!(
        wire_create(addr, "via-wire-third", 2),
        Ok(TOPIC_ALREADY_EXISTS),
        "re-creating via-wire-third through broker {first}"
    );

    let layout = wait_topics_everywhere(cluster, &expected, PROPAGATION);
    eprintln!("every broker lists {layout:?}");
    produce_consume_via_other_brokers(cluster, "via-admin");
}

#[test]
fn combined_nodes_list_topics_created_through_any_broker_and_route_to_leaders() {
    let _serial = serial();
    let test_start = Instant::now();
    let mut cluster = start(Cluster::builder().combined(3));
    let active = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("active controller: {active}");
    topics_through_every_broker_agree(&mut cluster, true);
    eprintln!("test took {:?}", test_start.elapsed());
}

#[test]
fn separate_roles_fence_a_killed_broker_and_list_it_again_after_restart() {
    let _serial = serial();
    let test_start = Instant::now();
    let mut cluster = start(Cluster::builder().controllers(3).brokers(3));
    let active = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("active controller: {active}");
    // rdkafka's admin client cannot create topics here (see the ignored test below), so this test creates
    // every topic over the wire.
    topics_through_every_broker_agree(&mut cluster, false);

    let all: BTreeSet<i32> = cluster.broker_ids().into_iter().collect();
    let victim = *all.iter().nth(1).expect("three brokers");
    let survivors: BTreeSet<i32> = all.iter().copied().filter(|id| *id != victim).collect();
    cluster
        .node_mut(victim)
        .kill9()
        .unwrap_or_else(|e| panic!("kill -9 broker {victim}: {e}"));
    let killed_at = Instant::now();
    let dropped_after = cluster
        .wait_brokers_listed(&survivors, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("killed broker {victim} never dropped out of Metadata: {e}"));
    let session = Duration::from_millis(SESSION_TIMEOUT_MS);
    eprintln!(
        "broker {victim} dropped out of every broker's Metadata {:?} after kill -9 (session timeout {session:?})",
        killed_at.elapsed()
    );
    assert!(
        dropped_after <= session + FENCE_SLACK,
        "broker {victim} was still listed {dropped_after:?} after kill -9; expected within the session timeout \
         {session:?} + {FENCE_SLACK:?}"
    );
    // Not before the session could have expired: its last heartbeat was at most one interval before the kill.
    let earliest = session.saturating_sub(Duration::from_millis(HEARTBEAT_INTERVAL_MS + 100));
    assert!(
        dropped_after >= earliest,
        "broker {victim} dropped out {dropped_after:?} after kill -9, before its session of {session:?} could \
         have expired"
    );
    let fence_line = format!("fencing it broker={victim}");
    assert!(
        cluster
            .controller_ids()
            .iter()
            .any(|id| cluster.node(*id).log_contents().contains(&fence_line)),
        "no controller logged `{fence_line}`"
    );

    let restart_took = cluster
        .node_mut(victim)
        .restart()
        .unwrap_or_else(|e| panic!("restarting broker {victim}: {e}"));
    let relisted_after = cluster
        .wait_brokers_listed(&all, PROPAGATION)
        .unwrap_or_else(|e| panic!("restarted broker {victim} not listed again: {e}"));
    eprintln!(
        "broker {victim} served {restart_took:?} after restart and was listed everywhere {relisted_after:?} later"
    );
    // Its partitions are served again: every topic has a leader on every broker.
    let expected = BTreeMap::from([
        ("via-admin".to_string(), 3),
        ("via-wire-second".to_string(), 2),
        ("via-wire-third".to_string(), 2),
    ]);
    wait_topics_everywhere(&mut cluster, &expected, PROPAGATION);
    eprintln!("test took {:?}", test_start.elapsed());
}

#[test]
fn separate_roles_admin_clients_create_topics_through_any_broker() {
    let _serial = serial();
    let mut cluster = start(Cluster::builder().controllers(3).brokers(3));
    let active = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    // Admin clients send controller requests to the broker named as controller: it must be one they can
    // reach. (KRaft brokers forward those requests, so Kafka names a live broker here.)
    for (id, md) in cluster.metadata_by_broker() {
        let md = md.unwrap_or_else(|e| panic!("Metadata from broker {id}: {e}"));
        let listed = broker_ids(&md);
        assert!(
            listed.contains(&md.controller_id.0),
            "broker {id} names controller_id {} (the active controller is {active}), which is not among \
             the brokers it lists, {listed:?}",
            md.controller_id.0
        );
    }
    topics_through_every_broker_agree(&mut cluster, true);
}

/// What the topic-creating client thread saw.
#[derive(Default)]
struct Creations {
    /// Topics whose creation was acknowledged (or found to exist on a retry).
    acked: Vec<String>,
    /// Topics whose creation was attempted but never acknowledged.
    unknown: Vec<String>,
    /// Errors along the way (expected while a controller dies), for the report.
    errors: Vec<String>,
    /// Names whose very first CreateTopics was answered TOPIC_ALREADY_EXISTS: nobody else creates them, so
    /// the broker's forwarding must have retried a creation that had already committed. The topic exists
    /// (the controller said so), so these count as acknowledged; the test reports them.
    exists_on_first_try: Vec<String>,
}

/// Creates topics `churn-0000`, `churn-0001`, ... until `stop`, each through the next broker in turn
/// (CreateTopics over the wire, as the admin clients would send it), retrying a name on errors through the
/// next broker.
fn create_in_a_loop(
    brokers: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<Creations>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
        let mut i = 0usize;
        let mut sends = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let name = format!("churn-{i:04}");
            i += 1;
            let mut attempt = 0u32;
            let acked = loop {
                if stop.load(Ordering::Relaxed) && attempt > 0 {
                    break false;
                }
                attempt += 1;
                let addr = brokers[sends % brokers.len()];
                sends += 1;
                let started = Instant::now();
                match wire_create(addr, &name, 1) {
                    Ok(0) => break true,
                    // An earlier attempt committed but its answer was lost.
                    Ok(TOPIC_ALREADY_EXISTS) if attempt > 1 => break true,
                    Ok(TOPIC_ALREADY_EXISTS) => {
                        lock().exists_on_first_try.push(name.clone());
                        break true;
                    }
                    Ok(code) => lock().errors.push(format!(
                        "{name} attempt {attempt} via {addr} ({:?}): error code {code}",
                        started.elapsed()
                    )),
                    Err(e) => lock().errors.push(format!(
                        "{name} attempt {attempt} via {addr} ({:?}): {e}",
                        started.elapsed()
                    )),
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            let mut s = lock();
            if acked {
                s.acked.push(name);
            } else {
                s.unknown.push(name);
            }
        }
    })
}

fn acked_count(state: &Mutex<Creations>) -> usize {
    state.lock().unwrap_or_else(|p| p.into_inner()).acked.len()
}

/// Waits until at least `target` creations are acknowledged.
/// Waits until two more creations are acknowledged: the quorum makes progress in the state just reached.
fn wait_progress(state: &Mutex<Creations>, what: &str) {
    let acked = acked_count(state);
    wait_acked(state, acked + 2, Duration::from_secs(45), what);
}

fn wait_acked(state: &Mutex<Creations>, target: usize, timeout: Duration, what: &str) {
    let start = Instant::now();
    while acked_count(state) < target {
        if start.elapsed() > timeout {
            let s = state.lock().unwrap_or_else(|p| p.into_inner());
            panic!(
                "{what}: only {} of {target} creations acknowledged after {timeout:?}; last errors: {:?}",
                s.acked.len(),
                s.errors.iter().rev().take(5).collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn acknowledged_topics_survive_repeated_kill9_of_the_active_controller() {
    let _serial = serial();
    let test_start = Instant::now();
    let mut cluster = start(Cluster::builder().controllers(3).brokers(2));
    let stop = Arc::new(AtomicBool::new(false));
    let state = Arc::new(Mutex::new(Creations::default()));
    let brokers: Vec<SocketAddr> = cluster
        .broker_ids()
        .iter()
        .filter_map(|id| cluster.node(*id).broker_addr())
        .collect();
    let creator = create_in_a_loop(brokers, Arc::clone(&stop), Arc::clone(&state));
    wait_acked(&state, 3, Duration::from_secs(30), "before any failure");

    const KILLS: usize = 4;
    for round in 1..=KILLS {
        let leader = cluster
            .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        cluster
            .node_mut(leader)
            .kill9()
            .unwrap_or_else(|e| panic!("round {round}: kill -9 controller {leader}: {e}"));
        let killed_at = Instant::now();
        let acked_at_kill = acked_count(&state);
        let new_leader = cluster
            .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
            .unwrap_or_else(|e| panic!("round {round}: no new leader after killing {leader}: {e}"));
        let elected_after = killed_at.elapsed();
        // Topics are created while only two voters are up.
        wait_acked(
            &state,
            acked_at_kill + 2,
            Duration::from_secs(45),
            &format!("round {round}, controller {leader} dead, {new_leader} active"),
        );
        let available_after = killed_at.elapsed();
        cluster
            .node_mut(leader)
            .restart()
            .unwrap_or_else(|e| panic!("round {round}: restarting controller {leader}: {e}"));
        eprintln!(
            "round {round}: killed active controller {leader}; {new_leader} active after {elected_after:?}, \
             creations acknowledged again after {available_after:?}; {leader} restarted after {:?}",
            killed_at.elapsed()
        );
    }
    wait_acked(
        &state,
        acked_count(&state) + 2,
        Duration::from_secs(45),
        "after the last restart",
    );
    stop.store(true, Ordering::Relaxed);
    if creator.join().is_err() {
        panic!("the topic-creating thread panicked");
    }
    let (acked, unknown, errors, exists_on_first_try) = {
        let s = state.lock().unwrap_or_else(|p| p.into_inner());
        (
            s.acked.clone(),
            s.unknown.clone(),
            s.errors.clone(),
            s.exists_on_first_try.clone(),
        )
    };
    eprintln!(
        "{} creations acknowledged, {} unknown, {} errors on the way (first: {:?})",
        acked.len(),
        unknown.len(),
        errors.len(),
        errors.iter().take(5).collect::<Vec<_>>()
    );
    for name in &exists_on_first_try {
        eprintln!("{name}: its first CreateTopics was answered TOPIC_ALREADY_EXISTS; log lines naming it:");
        for node in cluster.nodes() {
            for line in node
                .log_contents()
                .lines()
                .filter(|l| l.contains(name.as_str()))
            {
                eprintln!("  node {}: {line}", node.node_id());
            }
        }
    }
    let expected: BTreeMap<String, usize> = acked.iter().map(|t| (t.clone(), 1)).collect();
    wait_topics_everywhere(&mut cluster, &expected, PROPAGATION);

    // A full controlled restart of every node keeps the metadata.
    let statuses = cluster
        .stop_all()
        .unwrap_or_else(|e| panic!("SIGTERM to every node: {e}"));
    let unclean: Vec<_> = statuses.iter().filter(|(_, s)| !s.success()).collect();
    assert!(
        unclean.is_empty(),
        "nodes exited uncleanly on SIGTERM: {unclean:?}"
    );
    let restarted_in = cluster
        .start_all()
        .unwrap_or_else(|e| panic!("restarting every node: {e}"));
    eprintln!("whole cluster restarted in {restarted_in:?}");
    let layout = wait_topics_everywhere(&mut cluster, &expected, PROPAGATION);
    let stray: Vec<&String> = layout
        .keys()
        .filter(|t| t.starts_with("churn-") && !expected.contains_key(*t) && !unknown.contains(t))
        .collect();
    assert!(stray.is_empty(), "topics nobody tried to create: {stray:?}");
    eprintln!("test took {:?}", test_start.elapsed());
}

/// Pauses `victim` (SIGSTOP) for longer than the election timeout while topics are created through the
/// other brokers, resumes it, and checks it rejoins: it stops claiming leadership, its broker lists the
/// topics created during the pause, and a topic created through it reaches everyone.
fn pause_and_rejoin(cluster: &mut Cluster, victim: i32, prefix: &str) -> Vec<String> {
    let others: Vec<i32> = cluster
        .broker_ids()
        .into_iter()
        .filter(|id| *id != victim)
        .collect();
    cluster
        .node_mut(victim)
        .sigstop()
        .unwrap_or_else(|e| panic!("SIGSTOP node {victim}: {e}"));
    let paused_at = Instant::now();
    let leader = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("no active controller while {victim} is paused: {e}"));
    eprintln!(
        "node {victim} paused; {leader} active after {:?}",
        paused_at.elapsed()
    );
    let mut created = Vec::new();
    for (i, id) in others.iter().cycle().take(4).enumerate() {
        let name = format!("{prefix}-{i}");
        let addr = cluster.node(*id).broker_addr().expect("a broker address");
        wire_create_retrying(addr, &name, 1, Duration::from_secs(45));
        created.push(name);
    }
    // Stay paused well past the election timeout (and past the session timeout: its broker is fenced).
    let min_pause = Duration::from_millis(SESSION_TIMEOUT_MS + 4 * ELECTION_TIMEOUT_MS);
    if let Some(rest) = min_pause.checked_sub(paused_at.elapsed()) {
        std::thread::sleep(rest);
    }
    cluster
        .node_mut(victim)
        .sigcont()
        .unwrap_or_else(|e| panic!("SIGCONT node {victim}: {e}"));
    eprintln!("node {victim} resumed after {:?}", paused_at.elapsed());

    let resumed_at = Instant::now();
    cluster
        .wait_until(
            &format!("node {victim} stops claiming leadership"),
            PROPAGATION,
            |c| match c.node(victim).latest_role().as_deref() {
                Some("Leader") => Err(format!("node {victim} still says Leader")),
                _ => Ok(()),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let active = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("after resuming {victim}: {e}"));
    let all: BTreeSet<i32> = cluster.broker_ids().into_iter().collect();
    cluster
        .wait_brokers_listed(&all, PROPAGATION)
        .unwrap_or_else(|e| panic!("node {victim}'s broker not listed again after SIGCONT: {e}"));
    let mut expected: BTreeMap<String, usize> = created.iter().map(|t| (t.clone(), 1)).collect();
    wait_topics_everywhere(cluster, &expected, PROPAGATION);
    eprintln!(
        "node {victim} rejoined {:?} after SIGCONT (active controller {active}) and lists the topics created while it was paused",
        resumed_at.elapsed()
    );
    // And it serves writes again.
    let name = format!("{prefix}-after");
    let addr = cluster
        .node(victim)
        .broker_addr()
        .expect("a broker address");
    wire_create_retrying(addr, &name, 1, Duration::from_secs(45));
    expected.insert(name.clone(), 1);
    wait_topics_everywhere(cluster, &expected, PROPAGATION);
    created.push(name);
    created
}

#[test]
fn a_paused_controller_rejoins_and_catches_up() {
    let _serial = serial();
    let test_start = Instant::now();
    let mut cluster = start(Cluster::builder().combined(3));
    let leader = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let follower = cluster
        .controller_ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("three voters");
    let mut all_created = pause_and_rejoin(&mut cluster, follower, "paused-follower");
    let leader = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    all_created.extend(pause_and_rejoin(&mut cluster, leader, "paused-leader"));
    let expected: BTreeMap<String, usize> = all_created.iter().map(|t| (t.clone(), 1)).collect();
    wait_topics_everywhere(&mut cluster, &expected, PROPAGATION);
    eprintln!("test took {:?}", test_start.elapsed());
}

#[test]
fn a_broker_formatted_for_another_cluster_is_refused_and_the_quorum_keeps_serving() {
    let _serial = serial();
    let test_start = Instant::now();
    let mut cluster = start(Cluster::builder().controllers(3).brokers(1));
    let good: BTreeSet<i32> = cluster.broker_ids().into_iter().collect();
    let other_id = another_cluster_id().unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(other_id, cluster.cluster_id());
    const STRANGER: i32 = 200;
    let node = cluster
        .add_broker(STRANGER, &other_id)
        .unwrap_or_else(|e| panic!("adding broker {STRANGER}: {e}"));
    node.spawn()
        .unwrap_or_else(|e| panic!("spawning broker {STRANGER}: {e}"));
    let spawned = Instant::now();
    // It must exit, or at least never register; either way it says why.
    let mut exit = None;
    while spawned.elapsed() < Duration::from_secs(30) {
        let node = cluster.node_mut(STRANGER);
        if let Some(status) = node.try_exit_status() {
            exit = Some(status);
            break;
        }
        if node.log_contents().contains("cluster id mismatch")
            && spawned.elapsed() > Duration::from_secs(10)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = cluster.node(STRANGER).log_contents();
    eprintln!(
        "broker {STRANGER} from cluster {other_id}: exit {exit:?} after {:?}",
        spawned.elapsed()
    );
    assert!(
        log.contains("cluster id mismatch"),
        "broker {STRANGER}'s log does not say `cluster id mismatch`:\n{log}"
    );
    assert!(
        !log.contains("registered with the active controller"),
        "broker {STRANGER} from another cluster registered:\n{log}"
    );
    if let Some(status) = exit {
        assert!(!status.success(), "refused broker exited with {status}");
    } else {
        assert!(
            cluster.node(STRANGER).broker_addr().is_some_and(|a| {
                std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_err()
            }),
            "broker {STRANGER} from another cluster is still running and serves clients"
        );
    }
    let refused_by: Vec<i32> = cluster
        .controller_ids()
        .into_iter()
        .filter(|id| {
            cluster
                .node(*id)
                .log_contents()
                .contains("cluster id mismatch")
        })
        .collect();
    assert!(
        !refused_by.is_empty(),
        "no controller logged `cluster id mismatch`"
    );
    eprintln!("refused by controllers {refused_by:?}");

    // The quorum and the good broker keep serving, and never list the stranger.
    if exit.is_none() {
        let _ = cluster.node_mut(STRANGER).kill9();
    }
    cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = cluster.node(100).broker_addr().expect("a broker address");
    wire_create_retrying(addr, "after-stranger", 2, Duration::from_secs(30));
    wait_topics_everywhere(
        &mut cluster,
        &BTreeMap::from([("after-stranger".to_string(), 2)]),
        PROPAGATION,
    );
    cluster
        .wait_brokers_listed(&good, PROPAGATION)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("test took {:?}", test_start.elapsed());
}

/// Reads until the peer closes; fails if it leaves the connection open for [`CLOSE_TIMEOUT`]. Returns the
/// frames it sent first (a refusal ack, say).
fn expect_closed(conn: &mut Connection, what: &str) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    conn.set_read_timeout(CLOSE_TIMEOUT)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    loop {
        match conn.read_frame() {
            Ok(ReadOutcome::Closed) => return frames,
            Ok(ReadOutcome::Frame(f)) => {
                frames.push(f.to_vec());
                assert!(frames.len() < 10, "{what}: endless answers");
            }
            Ok(ReadOutcome::TimedOut) => {
                panic!("{what}: connection still open after {CLOSE_TIMEOUT:?}")
            }
            // A reset or an unreadable answer is a close too.
            Err(HarnessError::Protocol(_)) => return frames,
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// A quorum-channel hello (see `kraftwerk_protocol::quorum_channel`), framed: magic, version 1, kind,
/// cluster id, from, to.
fn hello(kind: u8, cluster_id: &str, from: i32, to: i32) -> Vec<u8> {
    let mut body = b"KWQC".to_vec();
    body.extend_from_slice(&1u16.to_be_bytes());
    body.push(kind);
    body.extend_from_slice(&u16::try_from(cluster_id.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(cluster_id.as_bytes());
    body.extend_from_slice(&from.to_be_bytes());
    body.extend_from_slice(&to.to_be_bytes());
    framed(&body)
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len())
        .unwrap_or(0)
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out
}

#[test]
fn kafka_clients_and_garbage_on_the_controller_listener_are_closed_and_the_quorum_keeps_working() {
    let _serial = serial();
    let test_start = Instant::now();
    let mut cluster = start(Cluster::builder().controllers(3).brokers(1));
    let controllers = cluster.controller_ids();
    let cluster_id = cluster.cluster_id().to_string();
    for id in &controllers {
        let addr = cluster
            .node(*id)
            .controller_addr()
            .expect("a controller address");
        let connect = || {
            Connection::connect(addr, CLOSE_TIMEOUT)
                .unwrap_or_else(|e| panic!("connecting to controller {id}'s listener: {e}"))
        };

        // A Kafka client on the controller listener: as on Apache Kafka's controllers, ApiVersions is answered
        // with the controller APIs only (ApiVersions, DescribeQuorum, DescribeCluster, and KIP-853's
        // AddRaftVoter, RemoveRaftVoter, UpdateRaftVoter); a client API such as
        // Metadata is refused by closing the connection, with a log line naming the mistake.
        let mut conn = connect();
        let versions = conn
            .request(0, &ApiVersionsRequest::default())
            .unwrap_or_else(|e| panic!("ApiVersions to controller {id}: {e}"));
        let mut keys: Vec<i16> = versions.api_keys.iter().map(|k| k.api_key).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            vec![18, 55, 60, 80, 81, 82],
            "controller {id} should advertise only ApiVersions, DescribeQuorum, DescribeCluster and the voter APIs"
        );
        let frame = encode_request(2, 4, &MetadataRequest::default().with_topics(None))
            .unwrap_or_else(|e| panic!("{e}"));
        conn.send_raw(&frame).unwrap_or_else(|e| panic!("{e}"));
        let answers = expect_closed(&mut conn, &format!("Metadata to controller {id}"));
        assert!(answers.is_empty(), "controller {id} answered Metadata");
        cluster
            .wait_until(
                &format!("controller {id} logs the Kafka client on its controller listener"),
                Duration::from_secs(10),
                |c| {
                    let log = c.node(*id).log_contents();
                    let lines = log
                        .lines()
                        .filter(|l| {
                            l.contains("WARN")
                                && l.contains("to controller listener")
                                && l.contains("carries only the controller quorum's traffic")
                        })
                        .count();
                    if lines >= 1 {
                        Ok(())
                    } else {
                        Err(format!("{lines} such WARN lines"))
                    }
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));

        // Garbage: none of it may crash the node or leave the connection open.
        let other_voter = controllers
            .iter()
            .copied()
            .find(|v| v != id)
            .expect("three voters");
        let mut hello_then_junk = hello(1, &cluster_id, other_voter, *id);
        hello_then_junk.extend(framed(&[0xff; 40]));
        let mut controller_hello_then_junk = hello(2, &cluster_id, 100, *id);
        controller_hello_then_junk.extend(framed(&[0xff; 40]));
        let mut truncated_hello = hello(1, &cluster_id, other_voter, *id);
        truncated_hello.truncate(14);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "random bytes in a frame",
                framed(&[0x5a, 0x00, 0xff, 0x13, 0x37, 0x42, 0x99, 0x01, 0x02, 0x03]),
            ),
            (
                "a 2 GiB size prefix",
                vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4],
            ),
            (
                "a negative size prefix",
                vec![0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4],
            ),
            ("an empty frame", framed(&[])),
            ("a hello with a bad version", {
                let mut h = hello(1, &cluster_id, other_voter, *id);
                h[8] = 0x7f;
                h
            }),
            (
                "a hello of unknown kind",
                hello(9, &cluster_id, other_voter, *id),
            ),
            (
                "a hello from another cluster",
                hello(1, "not-this-cluster", other_voter, *id),
            ),
            (
                "a raft hello from a non-voter",
                hello(1, &cluster_id, 77, *id),
            ),
            (
                "a hello for another node id",
                hello(1, &cluster_id, other_voter, 999),
            ),
            (
                "a raft hello then an undecodable raft message",
                hello_then_junk,
            ),
            (
                "a controller hello then an undecodable request",
                controller_hello_then_junk,
            ),
        ];
        for (what, bytes) in cases {
            let mut conn = connect();
            conn.send_raw(&bytes)
                .unwrap_or_else(|e| panic!("{what} to controller {id}: {e}"));
            expect_closed(&mut conn, &format!("{what} to controller {id}"));
        }
        // A truncated hello, then our side closes: the node must notice the EOF.
        let mut conn = connect();
        conn.send_raw(&truncated_hello)
            .unwrap_or_else(|e| panic!("{e}"));
        conn.shutdown_write().unwrap_or_else(|e| panic!("{e}"));
        expect_closed(&mut conn, &format!("a truncated hello to controller {id}"));
        assert!(
            cluster.node_mut(*id).is_running(),
            "controller {id} died from bad input on its controller listener"
        );
    }

    // The quorum keeps working.
    let ids: Vec<i32> = cluster.nodes().iter().map(|n| n.node_id()).collect();
    let dead: Vec<i32> = ids
        .into_iter()
        .filter(|id| !cluster.node_mut(*id).is_running())
        .collect();
    assert!(dead.is_empty(), "nodes died: {dead:?}");
    cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = cluster.node(100).broker_addr().expect("a broker address");
    wire_create_retrying(addr, "after-garbage", 2, Duration::from_secs(30));
    wait_topics_everywhere(
        &mut cluster,
        &BTreeMap::from([("after-garbage".to_string(), 2)]),
        PROPAGATION,
    );
    let all: BTreeSet<i32> = cluster.broker_ids().into_iter().collect();
    cluster
        .wait_brokers_listed(&all, PROPAGATION)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("test took {:?}", test_start.elapsed());
}

// --- dynamic voters (KIP-853) ---------------------------------------------------------------------------

/// Kafka's `Uuid.toString()` form (URL-safe base64, no padding) of a `directory.id`, as a UUID.
fn parse_directory_id(text: &str) -> uuid::Uuid {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            other => panic!("{text:?} is not base64 (byte {other})"),
        }
    };
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut bytes = Vec::with_capacity(16);
    for c in text.trim_end_matches('=').bytes() {
        bits = (bits << 6) | value(c);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push(u8::try_from((bits >> nbits) & 0xff).unwrap_or(0));
        }
    }
    let array: [u8; 16] = bytes
        .try_into()
        .unwrap_or_else(|b| panic!("directory id {text:?} decodes to {b:?}, not 16 bytes"));
    uuid::Uuid::from_bytes(array)
}

/// One request on a controller listener (a fresh connection).
fn controller_call<R: kafka_protocol::protocol::Request>(
    addr: SocketAddr,
    version: i16,
    request: &R,
) -> Result<R::Response, String> {
    let mut conn = Connection::connect(addr, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Duration::from_secs(90))
        .map_err(|e| e.to_string())?;
    conn.request(version, request).map_err(|e| e.to_string())
}

/// The voters and leader as the active controller's DescribeQuorum (v2) reports them.
fn describe_voters(cluster: &mut Cluster) -> Result<(i32, Vec<i32>), String> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::DescribeQuorumRequest;
    let leader = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let addr = cluster
        .node(leader)
        .controller_addr()
        .ok_or("leader has no controller listener")?;
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(topic_name("__cluster_metadata"))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let response = controller_call(addr, 2, &request)?;
    let partition = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or("DescribeQuorum without a partition")?;
    if partition.error_code != 0 {
        return Err(format!("DescribeQuorum error {}", partition.error_code));
    }
    let mut voters: Vec<i32> = partition
        .current_voters
        .iter()
        .map(|v| v.replica_id.0)
        .collect();
    voters.sort_unstable();
    // Every voter is listed with its endpoints (v2 nodes), so a client can reach an added one.
    for id in &voters {
        if !response.nodes.iter().any(|n| n.node_id.0 == *id) {
            return Err(format!("voter {id} has no endpoints in DescribeQuorum"));
        }
    }
    Ok((partition.leader_id.0, voters))
}

/// Sends a voter change to the active controller until it answers NONE; NOT_LEADER_OR_FOLLOWER and
/// REQUEST_TIMED_OUT (an election, another change in progress, a voter still catching up) are retried.
fn change_voters(
    cluster: &mut Cluster,
    what: &str,
    mut send: impl FnMut(SocketAddr) -> Result<(i16, Option<String>), String>,
) {
    let start = Instant::now();
    let mut answers = Vec::new();
    loop {
        let leader = cluster
            .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let addr = cluster
            .node(leader)
            .controller_addr()
            .unwrap_or_else(|| panic!("{what}: controller {leader} has no listener"));
        match send(addr) {
            Ok((0, _)) => {
                eprintln!(
                    "{what}: done through controller {leader} after {:?}",
                    start.elapsed()
                );
                return;
            }
            Ok((code @ (6 | 7), message)) => answers.push(format!("{leader}: {code} {message:?}")),
            Ok((code, message)) => {
                panic!("{what}: controller {leader} answered {code} {message:?}")
            }
            Err(e) => answers.push(format!("{leader}: {e}")),
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{what}: not done after 90s: {answers:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `kafka-features upgrade --feature kraft.version=1` (UpdateFeatures v1 through a broker). A quorum started from
/// `controller.quorum.voters` is at kraft.version 0, where its voters cannot change, as in Kafka: first a
/// RemoveRaftVoter is checked to be UNSUPPORTED_VERSION, then the level is raised.
fn upgrade_kraft_version(cluster: &mut Cluster) {
    use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
    use kafka_protocol::messages::{RemoveRaftVoterRequest, UpdateFeaturesRequest};
    let leader = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let controller = cluster
        .node(leader)
        .controller_addr()
        .unwrap_or_else(|| panic!("controller {leader} has no listener"));
    let refused = controller_call(
        controller,
        0,
        &RemoveRaftVoterRequest::default()
            .with_cluster_id(None)
            .with_voter_id(leader),
    )
    .unwrap_or_else(|e| panic!("RemoveRaftVoter at kraft.version 0: {e}"));
    assert_eq!(
        (refused.error_code, refused.error_message.as_deref()),
        (
            35,
            Some("Cluster doesn't support removing voter because the kraft.version feature is 0")
        )
    );
    let broker = cluster.broker_ids()[0];
    let addr = cluster
        .node(broker)
        .broker_addr()
        .unwrap_or_else(|| panic!("broker {broker} has no listener"));
    let request = UpdateFeaturesRequest::default()
        .with_timeout_ms(30_000)
        .with_feature_updates(vec![FeatureUpdateKey::default()
            .with_feature(StrBytes::from_static_str("kraft.version"))
            .with_max_version_level(1)
            .with_upgrade_type(1)]);
    let mut conn =
        Connection::connect(addr, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
    let response = conn
        .request(1, &request)
        .unwrap_or_else(|e| panic!("UpdateFeatures kraft.version=1: {e}"));
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    assert!(
        response.results.iter().all(|r| r.error_code == 0),
        "{:?}",
        response.results
    );
}

fn wait_voters(cluster: &mut Cluster, expected: &[i32], what: &str) -> i32 {
    let start = Instant::now();
    loop {
        match describe_voters(cluster) {
            Ok((leader, voters)) if voters == expected => return leader,
            other if start.elapsed() > Duration::from_secs(60) => {
                // The lines that explain a quorum that does not settle (the log tails may be full of noise).
                for node in cluster.nodes() {
                    for line in node.log_contents().lines().filter(|l| {
                        l.contains("panicked")
                            || l.contains("ERROR")
                            || l.contains("membership")
                            || l.contains("leadership")
                            || l.contains("role changed")
                    }) {
                        eprintln!("  node {}: {line}", node.node_id());
                    }
                }
                panic!("{what}: voters never became {expected:?}; last {other:?}");
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// KIP-853 on real processes: while topics are being created, a fourth controller (not in any node's
/// `controller.quorum.voters`) is added with AddRaftVoter, the active controller is removed with
/// RemoveRaftVoter and stopped, then another original voter is killed and restarted (its static configuration
/// still names the old voters; its log says otherwise). The quorum keeps a leader throughout, the brokers
/// (configured with the old voters) keep reaching it, and every acknowledged topic exists on every broker.
#[test]
fn controllers_are_added_and_removed_while_topics_are_created() {
    use kafka_protocol::messages::add_raft_voter_request::Listener;
    use kafka_protocol::messages::{AddRaftVoterRequest, RemoveRaftVoterRequest};
    let _serial = serial();
    let mut cluster = start(Cluster::builder().controllers(3).brokers(2));
    let stop = Arc::new(AtomicBool::new(false));
    let state = Arc::new(Mutex::new(Creations::default()));
    let brokers: Vec<SocketAddr> = cluster
        .broker_ids()
        .iter()
        .filter_map(|id| cluster.node(*id).broker_addr())
        .collect();
    let creator = create_in_a_loop(brokers, Arc::clone(&stop), Arc::clone(&state));
    wait_acked(&state, 3, Duration::from_secs(30), "before any change");
    wait_voters(&mut cluster, &[1, 2, 3], "at start");
    upgrade_kraft_version(&mut cluster);

    // Controller 4 starts as an observer.
    let node = cluster
        .add_controller(4)
        .unwrap_or_else(|e| panic!("adding node 4: {e}"));
    node.spawn()
        .unwrap_or_else(|e| panic!("starting node 4: {e}"));
    node.wait_ready(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("node 4: {e}"));
    let directory_id = parse_directory_id(
        &cluster
            .node(4)
            .directory_id()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let port = cluster
        .node(4)
        .controller_addr()
        .map(|a| a.port())
        .unwrap_or_else(|| panic!("node 4 has no controller listener"));
    let cluster_id = cluster.cluster_id().to_string();
    change_voters(&mut cluster, "AddRaftVoter 4", |addr| {
        let request = AddRaftVoterRequest::default()
            .with_cluster_id(Some(StrBytes::from_string(cluster_id.clone())))
            .with_timeout_ms(30_000)
            .with_voter_id(4)
            .with_voter_directory_id(directory_id)
            .with_listeners(vec![Listener::default()
                .with_name(StrBytes::from_static_str("CONTROLLER"))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(port)]);
        // v1 with AckWhenCommitted (its default): answered once the new voter set has committed.
        let r = controller_call(addr, 1, &request)?;
        Ok((r.error_code, r.error_message.map(|m| m.to_string())))
    });
    wait_voters(&mut cluster, &[1, 2, 3, 4], "after adding 4");
    // Adding it again is DUPLICATE_VOTER.
    let leader = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let again = controller_call(
        cluster
            .node(leader)
            .controller_addr()
            .unwrap_or_else(|| panic!("no listener")),
        0,
        &AddRaftVoterRequest::default()
            // No cluster id: accepted, as Kafka does.
            .with_cluster_id(None)
            .with_voter_id(4)
            .with_voter_directory_id(directory_id)
            .with_listeners(vec![Listener::default()
                .with_name(StrBytes::from_static_str("CONTROLLER"))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(port)]),
    )
    .unwrap_or_else(|e| panic!("second AddRaftVoter: {e}"));
    assert_eq!(again.error_code, 126, "{:?}", again.error_message);
    wait_progress(&state, "with four voters");

    // Remove the active controller itself, then stop it.
    let removed = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let removed_dir = parse_directory_id(
        &cluster
            .node(removed)
            .directory_id()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    change_voters(
        &mut cluster,
        &format!("RemoveRaftVoter {removed}"),
        |addr| {
            let request = RemoveRaftVoterRequest::default()
                .with_cluster_id(Some(StrBytes::from_string(cluster_id.clone())))
                .with_voter_id(removed)
                .with_voter_directory_id(removed_dir);
            let r = controller_call(addr, 0, &request)?;
            Ok((r.error_code, r.error_message.map(|m| m.to_string())))
        },
    );
    let remaining: Vec<i32> = [1, 2, 3, 4]
        .into_iter()
        .filter(|&id| id != removed)
        .collect();
    wait_voters(
        &mut cluster,
        &remaining,
        &format!("after removing {removed}"),
    );
    cluster
        .node_mut(removed)
        .stop()
        .unwrap_or_else(|e| panic!("stopping controller {removed}: {e}"));
    wait_progress(&state, "after the removal");

    // Kill another original voter: the quorum {remaining} still has a majority; restart it with its static
    // configuration (which names the removed controller and not 4).
    let victim = remaining
        .iter()
        .copied()
        .find(|&id| id != 4)
        .unwrap_or_else(|| panic!("no original voter left"));
    cluster
        .node_mut(victim)
        .kill9()
        .unwrap_or_else(|e| panic!("kill -9 {victim}: {e}"));
    let leader = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("no leader with {victim} dead: {e}"));
    assert!(
        remaining.contains(&leader) && leader != victim,
        "leader {leader}"
    );
    wait_progress(&state, &format!("{victim} dead, {leader} leads"));
    cluster
        .node_mut(victim)
        .restart()
        .unwrap_or_else(|e| panic!("restarting {victim}: {e}"));
    wait_progress(&state, "after the restart");
    wait_voters(&mut cluster, &remaining, "after the restart");

    stop.store(true, Ordering::Relaxed);
    if creator.join().is_err() {
        panic!("the topic-creating thread panicked");
    }
    let acked = state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .acked
        .clone();
    eprintln!("{} creations acknowledged", acked.len());
    let expected: BTreeMap<String, usize> = acked.iter().map(|t| (t.clone(), 1)).collect();
    wait_topics_everywhere(&mut cluster, &expected, PROPAGATION);
    // The restarted voter's log holds every acknowledged topic's records too: it answers as a voter.
    assert!(
        !cluster
            .node(victim)
            .log_since_spawn()
            .contains("refused our raft connection"),
        "controller {victim} was refused after its restart:\n{}",
        cluster.node(victim).log_tail(4000)
    );
}

/// A broker and a controller that were down while the quorum snapshotted and trimmed its log come back
/// through a snapshot: the controller gets raft's snapshot, the broker gets it in its metadata fetch, and both
/// then list every topic.
#[test]
fn nodes_behind_a_trimmed_log_catch_up_from_a_snapshot() {
    let _serial = serial();
    let test_start = Instant::now();
    let mut cluster = start(
        Cluster::builder()
            .controllers(3)
            .brokers(2)
            .prop("metadata.log.max.record.bytes.between.snapshots", "2000"),
    );
    let brokers = cluster.broker_ids();
    let (live, down) = (brokers[0], brokers[1]);
    let leader = cluster
        .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let follower = cluster
        .controller_ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("three voters");
    cluster
        .node_mut(down)
        .kill9()
        .unwrap_or_else(|e| panic!("{e}"));
    cluster
        .node_mut(follower)
        .kill9()
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = cluster.node(live).broker_addr().expect("a broker address");
    let mut expected = BTreeMap::new();
    for i in 0..40 {
        let name = format!("trimmed-{i:02}");
        wire_create_retrying(addr, &name, 2, Duration::from_secs(45));
        expected.insert(name, 2);
    }
    // The remaining voters snapshotted (every 2000 bytes) and trimmed their logs behind the older snapshot.
    let snapshots = cluster
        .controller_ids()
        .into_iter()
        .filter(|id| *id != follower)
        .map(|id| {
            cluster
                .node(id)
                .log_contents()
                .matches("wrote a metadata snapshot")
                .count()
        })
        .min()
        .unwrap_or(0);
    assert!(
        snapshots >= 2,
        "expected snapshots on the live voters, saw {snapshots}"
    );
    for id in [follower, down] {
        cluster
            .node_mut(id)
            .restart()
            .unwrap_or_else(|e| panic!("restarting node {id}: {e}"));
    }
    wait_topics_everywhere(&mut cluster, &expected, PROPAGATION);
    let broker_log = cluster.node(down).log_since_spawn();
    assert!(
        broker_log.contains("loading a metadata snapshot from the controller"),
        "broker {down} should have caught up from a snapshot"
    );
    cluster
        .wait_until(
            &format!("controller {follower} installs a snapshot from the leader"),
            Duration::from_secs(30),
            |c| {
                if c.node(follower)
                    .log_since_spawn()
                    .contains("installing a metadata snapshot from the leader")
                {
                    Ok(())
                } else {
                    Err("not yet".to_string())
                }
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    // The quorum keeps committing with the restarted voter back in it.
    wire_create_retrying(addr, "after-catch-up", 1, Duration::from_secs(45));
    expected.insert("after-catch-up".into(), 1);
    wait_topics_everywhere(&mut cluster, &expected, PROPAGATION);
    eprintln!("test took {:?}", test_start.elapsed());
}
