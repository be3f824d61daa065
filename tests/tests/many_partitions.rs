//! Replication with many partitions per broker, with real processes (three controllers, three brokers, RF=3, so
//! every broker hosts every partition): a broker stopped with SIGTERM closes every log cleanly and, restarted,
//! comes back into every ISR, no live broker misses its session meanwhile, and after kill -9 of a broker every
//! partition it led has a new leader.
//!
//! At 10,000 partitions the partition-election benchmark found the opposite: every ISR change was its own
//! AlterPartition request and commit, sharing the controller connections with heartbeats, so heartbeats were
//! late, live brokers were fenced and unfenced in turn, and the restarted broker never rejoined every ISR. This
//! test runs the same scenario at a size a debug build on a shared CI machine handles (the benchmark,
//! `scripts/bench-elections.sh`, runs it at 10,000 and more with release builds).

use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataResponse;
use kraftwerk_tests::wire::create_topics_request;
use kraftwerk_tests::Cluster;

const TOPICS: usize = 4;
const PARTITIONS_PER_TOPIC: i32 = 500;
const RF: usize = 3;
/// Generous bound for each phase on a loaded 2-core machine with debug builds.
const WAIT: Duration = Duration::from_secs(180);
/// What the controller logs when it fences a broker for missed heartbeats.
const MISSED_SESSION: &str = "broker missed broker.session.timeout.ms of heartbeats";

fn topic(i: usize) -> String {
    format!("many-{i}")
}

/// Per partition of every test topic: (leader, ISR size).
type Partitions = Vec<(i32, usize)>;

/// The test topics' partitions and the listed (unfenced) brokers, as broker `via` reports them.
fn view(cluster: &Cluster, via: i32) -> Option<(Partitions, Vec<i32>)> {
    let md: MetadataResponse = cluster.node(via).metadata().ok()?;
    let brokers = md.brokers.iter().map(|b| b.node_id.0).collect();
    let mut parts = Vec::new();
    for t in &md.topics {
        if !t
            .name
            .as_ref()
            .is_some_and(|n| n.0.as_str().starts_with("many-"))
        {
            continue;
        }
        parts.extend(
            t.partitions
                .iter()
                .map(|p| (p.leader_id.0, p.isr_nodes.len())),
        );
    }
    Some((parts, brokers))
}

fn wait_until(
    cluster: &Cluster,
    via: i32,
    what: &str,
    done: impl Fn(&[(i32, usize)], &[i32]) -> bool,
) -> Duration {
    let start = Instant::now();
    let expected = TOPICS * usize::try_from(PARTITIONS_PER_TOPIC).unwrap_or(0);
    let mut last = None;
    while start.elapsed() < WAIT {
        if let Some((parts, brokers)) = view(cluster, via) {
            if parts.len() == expected && done(&parts, &brokers) {
                eprintln!("{what}: after {:?}", start.elapsed());
                return start.elapsed();
            }
            let full = parts.iter().filter(|(_, isr)| *isr == RF).count();
            let led = parts.iter().filter(|(l, _)| *l >= 0).count();
            last = Some(format!(
                "{} partitions listed, {led} led, {full} with a full ISR; brokers {brokers:?}",
                parts.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "{what}: not after {WAIT:?}; last view: {last:?}\n{}",
        cluster.log_tails(4000)
    );
}

/// How many times the controllers fenced a broker for missed heartbeats, over their whole logs.
fn missed_sessions(cluster: &Cluster, controllers: &[i32]) -> usize {
    controllers
        .iter()
        .map(|&c| {
            cluster
                .node(c)
                .log_contents()
                .matches(MISSED_SESSION)
                .count()
        })
        .sum()
}

#[test]
fn a_restarted_broker_rejoins_every_isr_of_thousands_of_partitions() {
    let mut cluster = Cluster::builder()
        .controllers(3)
        .brokers(3)
        .prop("auto.leader.rebalance.enable", "false")
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let brokers = cluster.broker_ids();
    let controllers: Vec<i32> = (1..=3).collect();
    let first = brokers[0];
    let mut conn = cluster
        .node(first)
        .connect(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connecting: {e}"));
    conn.set_read_timeout(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 0..TOPICS {
        let req = create_topics_request(&topic(i), PARTITIONS_PER_TOPIC, 3, &[]);
        let resp = conn
            .request(5, &req)
            .unwrap_or_else(|e| panic!("CreateTopics: {e}"));
        assert!(
            resp.topics.iter().all(|t| t.error_code == 0),
            "CreateTopics answered {resp:?}"
        );
    }
    wait_until(
        &cluster,
        first,
        "every partition led with a full ISR",
        |p, _| p.iter().all(|(l, isr)| *l >= 0 && *isr == RF),
    );
    let fenced_before = missed_sessions(&cluster, &controllers);

    // A controlled shutdown and a restart: the broker must come back into every ISR, and no live broker may
    // miss its session on the way (the leaders' ISR expansions for every partition come at once).
    let victim = brokers[1];
    let survivor = brokers[2];
    cluster
        .node_mut(victim)
        .stop()
        .unwrap_or_else(|e| panic!("stopping {victim}: {e}"));
    wait_until(
        &cluster,
        survivor,
        "the stopped broker left every ISR",
        |p, _| {
            p.iter()
                .all(|(l, isr)| *l >= 0 && *l != victim && *isr == RF - 1)
        },
    );
    cluster
        .node_mut(victim)
        .restart()
        .unwrap_or_else(|e| panic!("restarting {victim}: {e}"));
    wait_until(
        &cluster,
        survivor,
        "the restarted broker is back in every ISR",
        |p, brokers| brokers.len() == 3 && p.iter().all(|(_, isr)| *isr == RF),
    );
    // SIGTERM closed every log cleanly (nothing still fetching held a partition open), so the restart
    // recovered no segment.
    let restart_log = cluster.node(victim).log_since_spawn();
    assert!(
        !restart_log.contains("recovering segment"),
        "the restart after SIGTERM recovered segments, so the shutdown did not close every log cleanly:\n{}",
        cluster.node(victim).log_tail(30)
    );
    let fenced_after = missed_sessions(&cluster, &controllers);
    assert_eq!(
        fenced_after,
        fenced_before,
        "live brokers missed their sessions while the restarted broker rejoined the ISRs:\n{}",
        cluster.log_tails(4000)
    );

    // kill -9 of a broker: every partition it led gets a new leader.
    let killed = brokers[0];
    let led_by_killed = view(&cluster, survivor)
        .map(|(p, _)| p.iter().filter(|(l, _)| *l == killed).count())
        .unwrap_or(0);
    assert!(led_by_killed > 0, "{killed} led nothing");
    cluster
        .node_mut(killed)
        .kill9()
        .unwrap_or_else(|e| panic!("kill -9 of {killed}: {e}"));
    wait_until(
        &cluster,
        survivor,
        "every partition of the killed broker has a new leader",
        |p, brokers| !brokers.contains(&killed) && p.iter().all(|(l, _)| *l >= 0 && *l != killed),
    );
    eprintln!("{led_by_killed} leaderships moved off the killed broker");
}
