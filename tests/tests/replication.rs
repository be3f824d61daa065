//! Replication under real failures (real processes): a topic with replication factor 3 and
//! `min.insync.replicas=2`, an idempotent acks=all producer sending numbered messages, a consumer reading
//! while the faults run, and a nemesis that, for a few rounds, kills one broker with SIGKILL (most often
//! the one leading the most partitions) and freezes another with SIGSTOP for longer than the broker
//! session timeout, then resumes the frozen one and restarts the killed one (`kraftwerk_tests::nemesis`).
//! Run on three controllers + three brokers and on three combined nodes (where a round also takes the
//! controller quorum away until it heals).
//!
//! Afterwards every partition is read from the start: every acknowledged message must be there exactly
//! once, at the offset it was acknowledged at, with contiguous offsets (`verify::check_exact`), and
//! everything the consumer read during the faults must still be there at the same offset
//! (`observed::check_reads_durable`). The counts and the longest unavailability per partition are
//! printed. Another test runs the same faults with a consumer group committing throughout: no committed
//! offset may go backwards and every acknowledged commit must survive.
//!
//! Network partitions (each node in its own Linux network namespace, `kraftwerk_tests::netns`; skipped
//! with a message where namespaces cannot be made): a leader cut off from every other node must
//! acknowledge no acks=all write while the quorum fences it (on 3 + 3, and on 3 combined nodes with the
//! active controller cut off), and a follower cut off from its leader only must leave that leader's ISRs
//! so writes go on. Each test runs its own cluster, one at a time (`SERIAL`).
//!
//! These fail without follower replication (the killed leader's acknowledged data would exist nowhere
//! else), without fencing (a frozen leader coming back would keep serving), and without truncation to the
//! new leader's log (a resumed replica would keep a divergent suffix and offsets would collide).

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_storage::batch::BatchBuilder;
use kraftwerk_tests::cluster::{ACTIVE_CONTROLLER_TIMEOUT, SESSION_TIMEOUT_MS};
use kraftwerk_tests::nemesis::{aim, group_offsets_partition, plan_round, Rng, SEED_ENV};
use kraftwerk_tests::netns::NetLab;
use kraftwerk_tests::wire::Connection;
use kraftwerk_tests::{Cluster, ClusterBuilder};
use rdkafka::admin::{NewTopic, TopicReplication};
use support::workload::Workload;
use support::{admin, admin_options, block_on};

const TOPIC: &str = "replicated";
const PARTITIONS: i32 = 6;
const ROUNDS: usize = 3;
const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// `offsets.topic.num.partitions` for the test cluster (fewer than Kafka's 50: a lighter start).
const OFFSETS_PARTITIONS: i32 = 3;
/// `replica.lag.time.max.ms` for the test cluster: short, so ISR changes happen within the test.
const LAG_MAX_MS: &str = "4000";
/// How long a frozen broker stays frozen: past the session timeout, so the controller fences it.
const FREEZE: Duration = Duration::from_millis(SESSION_TIMEOUT_MS + 3000);
/// How long a restarted broker may take to rejoin every ISR.
const REJOIN: Duration = Duration::from_secs(60);
/// How long the controller may take to move leaderships off the killed and frozen brokers.
const FENCE: Duration = Duration::from_secs(20);

/// The tests each start a cluster of six (or three) processes: one at a time on a 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// (partition, leader, ISR) of every partition of `TOPIC`, as broker `via` reports it.
fn partitions(cluster: &Cluster, via: i32) -> Option<Vec<(i32, i32, Vec<i32>)>> {
    partitions_of(cluster, via, TOPIC)
}

/// (partition, leader, ISR) of every partition of `topic`, as broker `via` reports it.
fn partitions_of(cluster: &Cluster, via: i32, topic: &str) -> Option<Vec<(i32, i32, Vec<i32>)>> {
    let md = cluster.node(via).metadata().ok()?;
    let topic = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))?;
    let mut out: Vec<(i32, i32, Vec<i32>)> = topic
        .partitions
        .iter()
        .map(|p| {
            let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
            isr.sort_unstable();
            (p.partition_index, p.leader_id.0, isr)
        })
        .collect();
    out.sort_unstable();
    Some(out)
}

/// Waits until every partition has a leader and a full ISR (as seen by broker `via`); returns how long.
fn wait_full_isr(cluster: &Cluster, via: i32, timeout: Duration) -> Duration {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < timeout {
        let state = partitions(cluster, via);
        if let Some(parts) = &state {
            if parts.len() == PARTITIONS as usize
                && parts.iter().all(|(_, l, isr)| *l >= 0 && isr.len() == 3)
            {
                return start.elapsed();
            }
        }
        last = state;
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "ISRs not full after {timeout:?}: {last:?}\n{}",
        cluster.log_tails(3000)
    );
}

/// Starts the cluster and creates `TOPIC` with every ISR full.
fn start(builder: ClusterBuilder) -> Cluster {
    let cluster = builder
        .prop("replica.lag.time.max.ms", LAG_MAX_MS)
        .prop("group.initial.rebalance.delay.ms", "0")
        .prop(
            "offsets.topic.num.partitions",
            OFFSETS_PARTITIONS.to_string(),
        )
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(3))
        .set("min.insync.replicas", "2");
    let created = block_on(admin(&cluster.bootstrap()).create_topics([&topic], &admin_options()))
        .unwrap_or_else(|e| panic!("CreateTopics: {e}"));
    assert!(
        matches!(created.as_slice(), [Ok(_)]),
        "CreateTopics answered {created:?}"
    );
    let first = cluster.broker_ids()[0];
    wait_full_isr(&cluster, first, REJOIN);
    cluster
}

/// The leader of `__consumer_offsets` partition `partition` (the coordinator of the groups it holds).
fn coordinator(cluster: &Cluster, brokers: &[i32], partition: i32) -> Option<i32> {
    brokers.iter().find_map(|b| {
        partitions_of(cluster, *b, OFFSETS_TOPIC)?
            .into_iter()
            .find(|(p, l, _)| *p == partition && *l >= 0)
            .map(|(_, l, _)| l)
    })
}

/// Runs the nemesis rounds against a running workload; returns when the last round has healed. With
/// `coordinated`, the `__consumer_offsets` partition of a group, the faults aim at its leader: killed in
/// odd rounds, frozen in even ones.
fn run_nemesis(
    cluster: &mut Cluster,
    workload: &Workload,
    label: &str,
    coordinated: Option<i32>,
) -> Instant {
    let seed = Rng::seed_from_env_or_clock();
    eprintln!("[{label}] nemesis seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = Rng::new(seed);
    let brokers = cluster.broker_ids();
    // The controllers stay up in a cluster with separate roles, so fencing must happen there.
    let controllers_survive = cluster
        .controller_ids()
        .iter()
        .all(|c| !brokers.contains(c));
    std::thread::sleep(Duration::from_secs(3));
    for round in 1..=ROUNDS {
        let view = brokers
            .iter()
            .find_map(|b| partitions(cluster, *b))
            .unwrap_or_else(|| panic!("[{label}] round {round}: no metadata"));
        let mut led: BTreeMap<i32, usize> = BTreeMap::new();
        for (_, leader, _) in &view {
            *led.entry(*leader).or_default() += 1;
        }
        let mut plan = plan_round(&mut rng, &brokers, &led, round == 1)
            .unwrap_or_else(|| panic!("[{label}] fewer than two brokers"));
        if let Some(partition) = coordinated {
            let coordinator = coordinator(cluster, &brokers, partition)
                .unwrap_or_else(|| panic!("[{label}] no leader for {OFFSETS_TOPIC}-{partition}"));
            plan = aim(plan, coordinator, round % 2 == 0, &brokers);
            eprintln!("[{label}] round {round}: the group coordinator is {coordinator}");
        }
        let live = *brokers
            .iter()
            .find(|b| **b != plan.kill && **b != plan.pause)
            .unwrap_or_else(|| panic!("[{label}] no third broker"));
        let acked_before = workload.acked_count();
        eprintln!(
            "[{label}] t={:.1}s round {round}: kill -9 {} (leads {}), SIGSTOP {} (leads {}) for \
             {FREEZE:?}; {acked_before} acked so far; leaders {led:?}",
            workload.elapsed().as_secs_f64(),
            plan.kill,
            led.get(&plan.kill).copied().unwrap_or(0),
            plan.pause,
            led.get(&plan.pause).copied().unwrap_or(0),
        );
        cluster
            .node_mut(plan.kill)
            .kill9()
            .unwrap_or_else(|e| panic!("killing {}: {e}", plan.kill));
        cluster
            .node_mut(plan.pause)
            .sigstop()
            .unwrap_or_else(|e| panic!("stopping {}: {e}", plan.pause));
        let frozen_at = Instant::now();
        if controllers_survive {
            // Both are fenced after the session timeout: neither may lead anything.
            let start = Instant::now();
            loop {
                let view = partitions(cluster, live);
                if view.as_ref().is_some_and(|v| {
                    v.iter()
                        .all(|(_, l, _)| *l != plan.kill && *l != plan.pause)
                }) {
                    eprintln!(
                        "[{label}] round {round}: leaderships moved off {} and {} after {:?}: {view:?}",
                        plan.kill,
                        plan.pause,
                        start.elapsed()
                    );
                    break;
                }
                assert!(
                    start.elapsed() < FENCE,
                    "[{label}] round {round}: {} or {} still leads {FENCE:?} after being killed/frozen: \
                     {view:?}",
                    plan.kill,
                    plan.pause
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        std::thread::sleep(FREEZE.saturating_sub(frozen_at.elapsed()));
        cluster
            .node_mut(plan.pause)
            .sigcont()
            .unwrap_or_else(|e| panic!("resuming {}: {e}", plan.pause));
        let restarted = cluster
            .node_mut(plan.kill)
            .restart()
            .unwrap_or_else(|e| panic!("restarting {}: {e}", plan.kill));
        let rejoined = wait_full_isr(cluster, live, REJOIN);
        eprintln!(
            "[{label}] t={:.1}s round {round}: {} serving {restarted:?} after restart, every ISR full \
             {rejoined:?} later; {} acked in the round",
            workload.elapsed().as_secs_f64(),
            plan.kill,
            workload.acked_count() - acked_before
        );
        let recovered = wait_every_partition_acked(workload, label);
        eprintln!(
            "[{label}] t={:.1}s round {round}: every partition acknowledged again {recovered:?} after \
             the ISRs were full",
            workload.elapsed().as_secs_f64()
        );
    }
    Instant::now()
}

/// Waits until every partition has had a new acknowledgement (liveness after a round heals); returns
/// how long that took.
fn wait_every_partition_acked(workload: &Workload, label: &str) -> Duration {
    let start = Instant::now();
    let before: Vec<usize> = (0..PARTITIONS).map(|p| workload.acked_in(&[p])).collect();
    loop {
        let stuck: Vec<i32> = (0..PARTITIONS)
            .filter(|p| workload.acked_in(&[*p]) == before[*p as usize])
            .collect();
        if stuck.is_empty() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < REJOIN,
            "[{label}] partitions {stuck:?} acknowledged nothing within {REJOIN:?} after the faults healed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One whole run: cluster, workload, nemesis, checks.
fn nemesis_test(builder: ClusterBuilder, label: &str, group: Option<&str>) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let started = Instant::now();
    let mut cluster = start(builder);
    let workload = Workload::start(&cluster.bootstrap(), TOPIC, PARTITIONS, group);
    let coordinated = group.map(|g| group_offsets_partition(g, OFFSETS_PARTITIONS));
    let healed = run_nemesis(&mut cluster, &workload, label, coordinated);
    let outcome = workload.finish(&cluster.bootstrap(), healed);
    outcome.print(label);
    eprintln!("[{label}] whole run {:?}", started.elapsed());
    assert!(
        outcome.counts.acknowledged > 1000,
        "[{label}] too few messages acknowledged to mean anything"
    );
    assert!(outcome.reads > 0, "[{label}] the reader read nothing");
    assert!(
        outcome.violations.is_empty(),
        "[{label}] {} broken promise(s):\n{}",
        outcome.violations.len(),
        outcome.violations.join("\n")
    );
    assert_eq!(outcome.counts.lost, 0);
    assert_eq!(outcome.counts.duplicated, 0);
}

#[test]
fn acked_writes_survive_kill_and_freeze_with_separate_controllers() {
    nemesis_test(
        Cluster::builder().controllers(3).brokers(3),
        "3 controllers + 3 brokers",
        None,
    );
}

#[test]
fn acked_writes_survive_kill_and_freeze_on_combined_nodes() {
    nemesis_test(Cluster::builder().combined(3), "3 combined nodes", None);
}

/// The faults aim at the group's coordinator (killed in odd rounds, frozen in even ones), so the
/// coordinator moves every round: the new one must serve the offsets committed through the old one (it
/// loads the `__consumer_offsets` partition when it becomes its leader). Without that, a committed offset
/// seen as 142 read back as 129 once the coordinator moved.
#[test]
fn group_commits_never_go_back_through_kill_and_freeze() {
    nemesis_test(
        Cluster::builder().controllers(3).brokers(3),
        "group, 3 controllers + 3 brokers",
        Some("fault-group"),
    );
}

/// A cluster whose nodes each run in their own network namespace. The
/// fields drop in order: the processes die before their namespaces go.
struct LabCluster {
    cluster: Cluster,
    lab: NetLab,
}

impl LabCluster {
    /// Three controllers and three brokers, or (`combined`) three combined nodes.
    fn start(combined: bool) -> Self {
        let nodes = if combined { 3 } else { 6 };
        let lab = NetLab::create(nodes).unwrap_or_else(|e| panic!("creating the network lab: {e}"));
        let builder = if combined {
            Cluster::builder().combined(3)
        } else {
            Cluster::builder().controllers(3).brokers(3)
        };
        let cluster = start(builder.hosts(lab.hosts()));
        LabCluster { cluster, lab }
    }
}

/// The lab index of node `id`: nodes are placed in the cluster's order.
fn lab_index(cluster: &Cluster, id: i32) -> usize {
    cluster
        .nodes()
        .iter()
        .position(|n| n.node_id() == id)
        .unwrap_or_else(|| panic!("node {id} not in the cluster"))
}

/// Prints why and returns true where network namespaces cannot be made (not root, no `ip`).
fn skip_without_namespaces() -> bool {
    match NetLab::unavailable() {
        Some(why) => {
            eprintln!("SKIPPED: the network partition tests need network namespaces: {why}");
            true
        }
        None => false,
    }
}

/// The broker leading the most partitions of `TOPIC` and the partitions it leads.
fn top_leader(cluster: &Cluster, via: i32) -> (i32, Vec<i32>) {
    let view = partitions(cluster, via).unwrap_or_else(|| panic!("no metadata from {via}"));
    let mut led: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (p, leader, _) in &view {
        led.entry(*leader).or_default().push(*p);
    }
    led.into_iter()
        .max_by_key(|(_, ps)| ps.len())
        .unwrap_or_else(|| panic!("no leaders in {view:?}"))
}

/// How long the leader stays cut off: past the session timeout (so it is fenced) and past
/// `replica.lag.time.max.ms` (so it tries to shrink its ISR, which the controller it cannot reach must
/// refuse).
const ISOLATION: Duration = Duration::from_secs(12);
/// The acks=all timeout of each produce sent straight to the isolated leader.
const STALE_PRODUCE_TIMEOUT_MS: i32 = 2000;
const REQUEST_TIMED_OUT: i16 = 7;

/// One acks=all produce of one record straight to `conn`; the partition's error code and base offset.
fn produce_one(conn: &mut Connection, partition: i32, value: &str) -> Result<(i16, i64), String> {
    let mut b = BatchBuilder::new(0, -1);
    b.push(0, Some(b"stale"), Some(value.as_bytes()), &[])
        .map_err(|e| format!("building a batch: {e}"))?;
    let mut pd = PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(bytes::Bytes::from(b.build()));
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_static_str(TOPIC));
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = STALE_PRODUCE_TIMEOUT_MS;
    req.topic_data = vec![td];
    let resp = conn.request(9, &req).map_err(|e| e.to_string())?;
    let p = resp
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or("an empty produce response")?;
    Ok((p.error_code, p.base_offset))
}

/// Split brain, each node in its own network namespace. The broker leading the most partitions is cut
/// off from every other node (the clients in the root namespace still reach it) while the workload runs.
/// The controller quorum must fence it and move its leaderships; the cut-off leader, which still believes
/// it leads, must not acknowledge one acks=all write (its ISR shrink needs the controller it cannot reach,
/// and min.insync.replicas=2); after healing it must rejoin every ISR, and no acknowledged write may be
/// lost or duplicated.
#[test]
fn an_isolated_leader_acknowledges_nothing_and_no_acked_write_is_lost() {
    isolated_leader_test(false);
}

/// The same on three combined nodes: the cut-off node may also be the active controller, which then
/// cannot commit anything while the other two elect a new one and fence it.
#[test]
fn an_isolated_combined_node_acknowledges_nothing_and_no_acked_write_is_lost() {
    isolated_leader_test(true);
}

fn isolated_leader_test(combined: bool) {
    if skip_without_namespaces() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let label = if combined {
        "split brain, 3 combined nodes"
    } else {
        "split brain, 3 controllers + 3 brokers"
    };
    let started = Instant::now();
    let LabCluster { mut cluster, lab } = LabCluster::start(combined);
    let brokers = cluster.broker_ids();
    let workload = Workload::start(&cluster.bootstrap(), TOPIC, PARTITIONS, None);
    std::thread::sleep(Duration::from_secs(3));
    // On combined nodes the active controller is cut off, if it leads partitions (it leads two of six when
    // leaderships are spread): the quorum must move on without it.
    let (isolated, its_partitions) = match combined {
        true => {
            let active = cluster
                .active_controller(ACTIVE_CONTROLLER_TIMEOUT)
                .unwrap_or_else(|e| panic!("[{label}] {e}"));
            let led: Vec<i32> = partitions(&cluster, brokers[0])
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, l, _)| *l == active)
                .map(|(p, _, _)| p)
                .collect();
            if led.is_empty() {
                top_leader(&cluster, brokers[0])
            } else {
                (active, led)
            }
        }
        false => top_leader(&cluster, brokers[0]),
    };
    let others: Vec<usize> = cluster
        .nodes()
        .iter()
        .filter(|n| n.node_id() != isolated)
        .map(|n| n.node_id())
        .map(|id| lab_index(&cluster, id))
        .collect();
    let mut conn = Connection::connect(
        cluster
            .node(isolated)
            .broker_addr()
            .unwrap_or_else(|| panic!("{isolated} has no listener")),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("connecting to {isolated}: {e}"));
    conn.set_read_timeout(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let acked_before = workload.acked_count();
    eprintln!(
        "[{label}] cutting broker {isolated} ({}) off from every other node; it leads \
         partitions {its_partitions:?}; {acked_before} acked so far",
        cluster.node(isolated).host().addr
    );
    if combined {
        let active = cluster.active_controller(ACTIVE_CONTROLLER_TIMEOUT);
        eprintln!("[{label}] the active controller before the cut: {active:?}");
    }
    let log_at_cut = cluster.node(isolated).log_contents().len();
    lab.cut(lab_index(&cluster, isolated), &others)
        .unwrap_or_else(|e| panic!("cutting: {e}"));
    let cut_at = Instant::now();

    // Produce straight to the cut-off leader for as long as it is cut off: it must acknowledge nothing.
    let survivor = *brokers
        .iter()
        .find(|b| **b != isolated)
        .unwrap_or_else(|| panic!("one broker"));
    let mut codes: BTreeMap<i16, usize> = BTreeMap::new();
    let mut stale_acks = Vec::new();
    let mut moved_after = None;
    let mut n = 0;
    while cut_at.elapsed() < ISOLATION || moved_after.is_none() {
        assert!(
            cut_at.elapsed() < ISOLATION + FENCE,
            "[{label}] the controller did not move {isolated}'s leaderships within {FENCE:?} of the cut: \
             {:?}",
            partitions(&cluster, survivor)
        );
        let partition = its_partitions[n % its_partitions.len()];
        let value = format!("stale-{n}");
        n += 1;
        match produce_one(&mut conn, partition, &value) {
            Ok((0, offset)) => stale_acks.push((partition, offset, value)),
            Ok((code, _)) => *codes.entry(code).or_default() += 1,
            Err(e) => panic!("[{label}] produce to the cut-off leader {isolated}: {e}"),
        }
        if moved_after.is_none()
            && partitions(&cluster, survivor)
                .is_some_and(|v| v.iter().all(|(_, l, _)| *l != isolated))
        {
            moved_after = Some(cut_at.elapsed());
        }
    }
    let acked_while_cut = workload.acked_count() - acked_before;
    eprintln!(
        "[{label}] while cut off: {n} produces to {isolated} answered {codes:?} (error code: count), \
         {} acknowledged; leaderships moved off it after {moved_after:?}; the workload got {acked_while_cut} \
         acks from the other leaders; view from {survivor}: {:?}",
        stale_acks.len(),
        partitions(&cluster, survivor)
    );
    // What the cut-off leader tried meanwhile (for the record: its ISR shrink needs the controller).
    let log = cluster.node(isolated).log_contents();
    let while_cut = log.get(log_at_cut..).unwrap_or_default();
    eprintln!(
        "[{label}] {isolated} while cut off logged {} AlterPartition requests, {} with refusals",
        while_cut
            .matches("sending ISR changes to the controller")
            .count(),
        while_cut
            .matches("ISR changes refused by the controller")
            .count()
    );
    lab.heal().unwrap_or_else(|e| panic!("healing: {e}"));
    let rejoined = wait_full_isr(&cluster, survivor, REJOIN);
    eprintln!("[{label}] healed; {isolated} back in every ISR after {rejoined:?}");
    std::thread::sleep(Duration::from_secs(2));
    let healed = Instant::now();
    let outcome = workload.finish(&cluster.bootstrap(), healed);
    outcome.print(label);
    eprintln!("[{label}] whole run {:?}", started.elapsed());

    assert!(
        stale_acks.is_empty(),
        "[{label}] the cut-off leader {isolated} acknowledged acks=all writes it could not replicate: \
         {stale_acks:?}"
    );
    assert!(
        codes.get(&REQUEST_TIMED_OUT).copied().unwrap_or(0) > 0,
        "[{label}] expected the cut-off leader to time out acks=all produces, it answered {codes:?}"
    );
    assert!(
        acked_while_cut > 0,
        "[{label}] nothing acknowledged by the other brokers while {isolated} was cut off"
    );
    assert!(
        outcome.violations.is_empty(),
        "[{label}] {} broken promise(s):\n{}",
        outcome.violations.len(),
        outcome.violations.join("\n")
    );
    assert_eq!(outcome.counts.lost, 0);
    assert_eq!(outcome.counts.duplicated, 0);
}

/// A follower cut off from one leader only (both still reach the controllers, so neither is fenced):
/// the leader must drop it from the ISR of the partitions it leads (after `replica.lag.time.max.ms`,
/// through the controller) and go on acknowledging acks=all writes with the remaining two; after healing
/// the follower must rejoin every ISR, and no acknowledged write may be lost or duplicated.
#[test]
fn a_follower_cut_off_from_its_leader_leaves_the_isr_and_writes_go_on() {
    if skip_without_namespaces() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let label = "follower cut off, 3 controllers + 3 brokers";
    let started = Instant::now();
    let LabCluster { cluster, lab } = LabCluster::start(false);
    let brokers = cluster.broker_ids();
    let workload = Workload::start(&cluster.bootstrap(), TOPIC, PARTITIONS, None);
    std::thread::sleep(Duration::from_secs(3));
    let (leader, led) = top_leader(&cluster, brokers[0]);
    let mut rest = brokers.iter().copied().filter(|b| *b != leader);
    let (follower, witness) = match (rest.next(), rest.next()) {
        (Some(f), Some(w)) => (f, w),
        _ => panic!("three brokers expected, got {brokers:?}"),
    };
    eprintln!(
        "[{label}] cutting follower {follower} off from leader {leader} (leads {led:?}) only; {} acked so far",
        workload.acked_count()
    );
    lab.cut(
        lab_index(&cluster, follower),
        &[lab_index(&cluster, leader)],
    )
    .unwrap_or_else(|e| panic!("cutting: {e}"));
    let cut_at = Instant::now();
    let shrunk = loop {
        let view = partitions(&cluster, witness);
        let out = view.as_ref().is_some_and(|v| {
            v.iter()
                .filter(|(p, _, _)| led.contains(p))
                .all(|(_, l, isr)| *l == leader && !isr.contains(&follower) && isr.len() == 2)
        });
        if out {
            break cut_at.elapsed();
        }
        assert!(
            cut_at.elapsed() < FENCE,
            "[{label}] {leader} did not drop {follower} from the ISR of {led:?} within {FENCE:?}: {view:?}\n{}",
            cluster.log_tails(3000)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "[{label}] {leader} dropped {follower} from the ISR of {led:?} after {shrunk:?}: {:?}",
        partitions(&cluster, witness)
    );
    // Writes to the leader's partitions go on with the ISR of two.
    let before = workload.acked_in(&led);
    let wait_start = Instant::now();
    while workload.acked_in(&led) == before {
        assert!(
            wait_start.elapsed() < REJOIN,
            "[{label}] no write to {led:?} acknowledged within {REJOIN:?} of the ISR shrink"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    eprintln!(
        "[{label}] {} writes to {led:?} acknowledged since the shrink; healing",
        workload.acked_in(&led) - before
    );
    lab.heal().unwrap_or_else(|e| panic!("healing: {e}"));
    let rejoined = wait_full_isr(&cluster, witness, REJOIN);
    eprintln!("[{label}] healed; {follower} back in every ISR after {rejoined:?}");
    std::thread::sleep(Duration::from_secs(2));
    let outcome = workload.finish(&cluster.bootstrap(), Instant::now());
    outcome.print(label);
    eprintln!("[{label}] whole run {:?}", started.elapsed());
    assert!(
        outcome.violations.is_empty(),
        "[{label}] {} broken promise(s):\n{}",
        outcome.violations.len(),
        outcome.violations.join("\n")
    );
    assert_eq!(outcome.counts.lost, 0);
    assert_eq!(outcome.counts.duplicated, 0);
}
