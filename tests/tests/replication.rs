//! Replication under real failures: three controllers and three brokers (real processes), a topic with
//! replication factor 3 and `min.insync.replicas=2`, an idempotent rdkafka producer with acks=all sending
//! numbered messages while the broker leading most partitions is killed with SIGKILL and restarted, twice.
//! Afterwards every partition is read from the start: every acknowledged message must be there exactly once,
//! at the offset it was acknowledged at, with contiguous offsets (`verify::check_exact`).
//!
//! This fails without follower replication: the killed leader's acknowledged data would exist on no other
//! replica (lost), or the new leader's log would not hold it at the acknowledged offsets.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kraftwerk_tests::verify::{check_exact, summarize, Violation};
use kraftwerk_tests::Cluster;
use rdkafka::admin::{NewTopic, TopicReplication};
use support::{admin, admin_options, block_on, consume_all, flush, recording_producer, send};

const TOPIC: &str = "replicated";
const PARTITIONS: i32 = 6;
const ROUNDS: usize = 2;
/// `replica.lag.time.max.ms` for the test cluster: short, so ISR changes happen within the test.
const LAG_MAX_MS: &str = "4000";
/// How long a restarted broker may take to rejoin every ISR.
const REJOIN: Duration = Duration::from_secs(60);

/// (partition, leader, ISR) of every partition of `TOPIC`, as broker `via` reports it.
fn partitions(cluster: &Cluster, via: i32) -> Option<Vec<(i32, i32, Vec<i32>)>> {
    let md = cluster.node(via).metadata().ok()?;
    let topic = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == TOPIC))?;
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

#[test]
fn acked_messages_survive_kill9_of_the_leader_exactly_once() {
    let mut cluster = Cluster::builder()
        .controllers(3)
        .brokers(3)
        .prop("replica.lag.time.max.ms", LAG_MAX_MS)
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let brokers = cluster.broker_ids();
    let bootstrap = cluster.bootstrap();

    let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(3))
        .set("min.insync.replicas", "2");
    let created = block_on(admin(&bootstrap).create_topics([&topic], &admin_options()))
        .unwrap_or_else(|e| panic!("CreateTopics: {e}"));
    assert!(
        matches!(created.as_slice(), [Ok(_)]),
        "CreateTopics answered {created:?}"
    );
    wait_full_isr(&cluster, brokers[0], REJOIN);

    let (producer, recorder) = recording_producer(
        &bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "180000"),
            ("request.timeout.ms", "20000"),
            ("linger.ms", "2"),
        ],
    );
    let producer = Arc::new(producer);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (producer, stop, sent) = (producer.clone(), stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("k{}", seq % 64);
                let value = format!("message-{seq}");
                if let Err(e) = send(
                    &producer,
                    TOPIC,
                    seq,
                    key.as_bytes(),
                    value.as_bytes(),
                    None,
                ) {
                    panic!("enqueueing message {seq}: {e}");
                }
                seq += 1;
                sent.store(seq, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(3));
            }
        })
    };

    std::thread::sleep(Duration::from_secs(3));
    for round in 1..=ROUNDS {
        let survivor_view = partitions(&cluster, brokers[0])
            .or_else(|| partitions(&cluster, brokers[1]))
            .unwrap_or_else(|| panic!("round {round}: no metadata"));
        let mut led: BTreeMap<i32, usize> = BTreeMap::new();
        for (_, leader, _) in &survivor_view {
            *led.entry(*leader).or_default() += 1;
        }
        let (&victim, &count) = led
            .iter()
            .max_by_key(|(_, c)| **c)
            .unwrap_or_else(|| panic!("round {round}: no leaders in {survivor_view:?}"));
        let acked_before = recorder.acked_count();
        eprintln!("round {round}: kill -9 broker {victim} (leads {count} of {PARTITIONS}); {acked_before} acked so far");
        cluster
            .node_mut(victim)
            .kill9()
            .unwrap_or_else(|e| panic!("killing {victim}: {e}"));
        std::thread::sleep(Duration::from_secs(8));
        let other = *brokers.iter().find(|&&b| b != victim).unwrap_or(&victim);
        // Fenced after the session timeout: it leads nothing and is in no ISR, yet produces go on (ISR 2).
        let down_view = partitions(&cluster, other)
            .unwrap_or_else(|| panic!("round {round}: no metadata from {other}"));
        assert!(
            down_view
                .iter()
                .all(|(_, l, isr)| *l != victim && !isr.contains(&victim) && isr.len() == 2),
            "round {round}: broker {victim} still leads or is in an ISR while dead: {down_view:?}"
        );
        let acked_while_down = recorder.acked_count() - acked_before;
        assert!(
            acked_while_down > 0,
            "round {round}: nothing acknowledged while broker {victim} was down"
        );
        eprintln!("round {round}: {acked_while_down} acked while broker {victim} was down");
        cluster
            .node_mut(victim)
            .restart()
            .unwrap_or_else(|e| panic!("restarting {victim}: {e}"));
        let rejoined = wait_full_isr(&cluster, other, REJOIN);
        eprintln!("round {round}: broker {victim} back in every ISR {rejoined:?} after restart");
        std::thread::sleep(Duration::from_secs(2));
    }
    stop.store(true, Ordering::Relaxed);
    sender
        .join()
        .unwrap_or_else(|_| panic!("the sending thread panicked"));
    flush(&producer).unwrap_or_else(|e| panic!("{e}"));
    let sent = usize::try_from(sent.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
    let (acked, failed) = recorder.snapshot();

    let log = consume_all(&cluster.bootstrap(), TOPIC, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("reading back: {e}"));
    let violations = check_exact(sent, &acked, &log);
    let lost = violations
        .iter()
        .filter(|v| matches!(v, Violation::Missing { .. } | Violation::Different { .. }))
        .count();
    let mut copies: BTreeMap<&[u8], usize> = BTreeMap::new();
    for r in log.values() {
        if let Some(v) = r.value.as_deref() {
            *copies.entry(v).or_default() += 1;
        }
    }
    let duplicated = copies.values().filter(|&&n| n > 1).count();
    eprintln!(
        "sent {sent}, acknowledged {}, failed {}, present {}, lost {lost}, duplicated {duplicated}",
        acked.len(),
        failed.len(),
        log.len(),
    );
    assert!(
        acked.len() > 1000,
        "too few messages acknowledged to mean anything"
    );
    assert_eq!(duplicated, 0, "messages stored more than once");
    assert!(
        violations.is_empty(),
        "{}\nfirst failures: {:?}",
        summarize(&violations, 10),
        failed.iter().take(5).collect::<Vec<_>>()
    );
}
