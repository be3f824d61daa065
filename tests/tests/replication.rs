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
//! printed. A third test runs the same faults with a consumer group committing throughout: no committed
//! offset may go backwards and every acknowledged commit must survive.
//!
//! These fail without follower replication (the killed leader's acknowledged data would exist nowhere
//! else), without fencing (a frozen leader coming back would keep serving), and without truncation to the
//! new leader's log (a resumed replica would keep a divergent suffix and offsets would collide).

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kraftwerk_tests::cluster::SESSION_TIMEOUT_MS;
use kraftwerk_tests::nemesis::{aim, group_offsets_partition, plan_round, Rng, SEED_ENV};
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
            "[{label}] round {round}: kill -9 {} (leads {}), SIGSTOP {} (leads {}) for {FREEZE:?}; \
             {acked_before} acked so far; leaders {led:?}",
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
            "[{label}] round {round}: {} serving {restarted:?} after restart, every ISR full {rejoined:?} \
             later; {} acked in the round",
            plan.kill,
            workload.acked_count() - acked_before
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let healed = Instant::now();
    let acked = workload.acked_count();
    let deadline = healed + REJOIN;
    while workload.acked_count() == acked {
        assert!(
            Instant::now() < deadline,
            "[{label}] nothing acknowledged within {REJOIN:?} after the faults healed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    healed
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

/// Ignored until group coordinator failover lands: a broker that becomes the leader of a
/// `__consumer_offsets` partition after it started does not load that partition's groups (it serves what
/// it loaded at start), so after the coordinator moves OffsetFetch answers stale offsets and commits fail
/// with UNKNOWN_MEMBER_ID. Seen here: a committed offset observed as 142 read back as 129 once the
/// coordinator moved to a broker restarted earlier in the run.
#[test]
#[ignore = "needs group coordinator failover: loading a __consumer_offsets partition's groups when a \
            broker becomes its leader after start (committed offsets go back without it)"]
fn group_commits_never_go_back_through_kill_and_freeze() {
    nemesis_test(
        Cluster::builder().controllers(3).brokers(3),
        "group, 3 controllers + 3 brokers",
        Some("fault-group"),
    );
}
