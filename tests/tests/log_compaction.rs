//! Log compaction with a real broker: a compacted topic with small segments and a low dirty ratio gets many
//! overwrites, and a consumer reading from the start sees the latest value of every key with offsets
//! increasing; `__consumer_offsets` keeps one record per key for a group committing the same offsets again
//! and again; a keyless record sent to a compacted topic is refused with INVALID_RECORD while the other
//! partition of the same request is written; an idle group keeps its offsets past `retention.ms` and a restart.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kraftwerk_tests::Broker;
use rdkafka::admin::{AlterConfig, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use support::{
    admin, admin_options, block_on, client_config, consumer, create_topic, flush,
    recording_producer, send, wait_for_partitions, watermarks,
};

const KEYS: usize = 50;
const ROUNDS: usize = 40;
const WAIT: Duration = Duration::from_secs(100);

fn start_broker() -> Broker {
    Broker::builder()
        .prop("log.cleaner.backoff.ms", "100")
        .prop("log.cleaner.threads", "1")
        .start()
        .expect("broker starts")
}

/// The broker's `cleaner-offset-checkpoint` entry for a partition, if written yet.
fn cleaned_to(broker: &Broker, topic: &str, partition: i32) -> Option<i64> {
    let text = std::fs::read_to_string(broker.dir().join("data").join("cleaner-offset-checkpoint"))
        .ok()?;
    text.lines().skip(2).find_map(|line| {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            [t, p, o] if *t == topic && p.parse() == Ok(partition) => o.parse().ok(),
            _ => None,
        }
    })
}

/// Waits until the cleaner has cleaned the partition up to at least `min_offset`.
fn wait_cleaned(broker: &Broker, topic: &str, partition: i32, min_offset: i64) -> i64 {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(o) = cleaned_to(broker, topic, partition).filter(|&o| o >= min_offset) {
            return o;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}-{partition} never cleaned past {min_offset}; cleaner log:\n{}",
            broker
                .log_contents()
                .lines()
                .filter(|l| (l.contains("clean") && l.contains(topic))
                    || l.contains("ERROR")
                    || l.contains("WARN"))
                .take(200)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A record as read back: (offset, key, value).
type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Every record of one partition from offset 0 to the high watermark: (offset, key, value).
fn read_partition(bootstrap: &str, topic: &str, partition: i32) -> Vec<Rec> {
    let c: BaseConsumer = consumer(bootstrap);
    let (_, high) = watermarks(&c, topic, partition).expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out: Vec<Rec> = Vec::new();
    let deadline = Instant::now() + WAIT;
    while out.last().map_or(0, |r| r.0 + 1) < high {
        assert!(
            Instant::now() < deadline,
            "timed out reading {topic}-{partition}"
        );
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => out.push((
                m.offset(),
                m.key().map(<[u8]>::to_vec),
                m.payload().map(<[u8]>::to_vec),
            )),
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {}
        }
    }
    out
}

fn value(k: usize, round: usize) -> String {
    format!("key{k:03}-round{round:03}-{}", "v".repeat(60))
}

#[test]
fn a_compacted_topic_keeps_the_latest_value_of_every_key() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let topic = "compacted";
    create_topic(
        &bootstrap,
        topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "4096"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    wait_for_partitions(&bootstrap, topic, 1);
    // Small batches, so the small segments roll between them.
    let (producer, recorder) = recording_producer(
        &bootstrap,
        &[
            ("compression.type", "lz4"),
            ("batch.num.messages", "25"),
            ("linger.ms", "0"),
        ],
    );
    for round in 0..ROUNDS {
        for k in 0..KEYS {
            let seq = (round * KEYS + k) as u64;
            send(
                &producer,
                topic,
                seq,
                format!("key{k:03}").as_bytes(),
                value(k, round).as_bytes(),
                None,
            )
            .unwrap();
        }
    }
    flush(&producer).unwrap();
    let (acked, failed) = recorder.snapshot();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(acked.len(), KEYS * ROUNDS);
    let written = (KEYS * ROUNDS) as i64;
    // Everything but the active segment gets cleaned.
    let cleaned = wait_cleaned(&broker, topic, 0, written / 2);
    let records = read_partition(&bootstrap, topic, 0);
    assert!(
        records.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets increase"
    );
    assert_eq!(records.last().map(|r| r.0), Some(written - 1));
    let mut latest = BTreeMap::new();
    for (_, k, v) in &records {
        latest.insert(k.clone().expect("keyed"), v.clone().expect("value"));
    }
    assert_eq!(latest.len(), KEYS);
    for k in 0..KEYS {
        assert_eq!(
            latest[format!("key{k:03}").as_bytes()],
            value(k, ROUNDS - 1).into_bytes(),
            "latest value of key{k:03}"
        );
    }
    // Below the cleaned-to offset each key appears at most once.
    let below: Vec<_> = records.iter().filter(|r| r.0 < cleaned).collect();
    let mut keys: Vec<_> = below.iter().map(|r| r.1.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), below.len(), "a key repeated below {cleaned}");
    assert!(
        records.len() < KEYS * ROUNDS / 2,
        "{} records left",
        records.len()
    );
}

#[test]
fn a_keyless_record_to_a_compacted_topic_is_refused_and_the_other_partition_written() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    create_topic(
        &bootstrap,
        "keys-required",
        1,
        &[("cleanup.policy", "compact")],
    );
    create_topic(&bootstrap, "anything-goes", 1, &[]);
    wait_for_partitions(&bootstrap, "keys-required", 1);
    wait_for_partitions(&bootstrap, "anything-goes", 1);
    // A long linger so both land in one produce request; retries off so the refusal is final.
    let (producer, recorder) = recording_producer(
        &bootstrap,
        &[
            ("linger.ms", "500"),
            ("retries", "0"),
            ("enable.idempotence", "false"),
        ],
    );
    let keyless = rdkafka::producer::BaseRecord::<(), [u8], Box<u64>>::with_opaque_to(
        "keys-required",
        Box::new(1),
    )
    .payload(b"no key".as_slice());
    producer.send(keyless).map_err(|(e, _)| e).unwrap();
    send(&producer, "anything-goes", 2, b"k", b"v", None).unwrap();
    // The flush reports the refused delivery too; the recorder says which one it was.
    let _ = flush(&producer);
    let (acked, failed) = recorder.snapshot();
    assert_eq!(acked.len(), 1, "{acked:?}");
    assert_eq!(acked[0].seq, 2);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, 1);
    assert!(failed[0].1.contains("InvalidRecord"), "{}", failed[0].1);
}

/// Kafka's partition of a group in `__consumer_offsets`: `Utils.abs(groupId.hashCode()) % 50`.
fn offsets_partition(group: &str) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    if h == i32::MIN {
        0
    } else {
        h.abs() % 50
    }
}

#[test]
fn consumer_offsets_keeps_one_record_per_key_for_repeated_commits() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "tracked", 1, &[]);
    wait_for_partitions(&bootstrap, "tracked", 1);
    let group = "compaction-group";
    let committer: BaseConsumer = client_config(&bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("tracked", 0, Offset::Offset(0))
        .unwrap();
    // The first commit creates __consumer_offsets; then make its segments small so commits roll them.
    let deadline = Instant::now() + WAIT;
    while committer.commit(&tpl, CommitMode::Sync).is_err() {
        assert!(Instant::now() < deadline, "first commit never succeeded");
        std::thread::sleep(Duration::from_millis(500));
    }
    // AlterConfigs replaces the whole set, so the policy is named again.
    let config = AlterConfig::new(ResourceSpecifier::Topic("__consumer_offsets"))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "1024")
        .set("min.cleanable.dirty.ratio", "0.01");
    let results = block_on(admin(&bootstrap).alter_configs([&config], &admin_options())).unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let partition = offsets_partition(group);
    let commits = 300;
    let deadline = Instant::now() + WAIT;
    while watermarks(&committer, "__consumer_offsets", partition)
        .unwrap()
        .1
        < commits
    {
        assert!(Instant::now() < deadline, "commits never reached {commits}");
        // The coordinator may briefly reload the partition (its config changed): clients retry.
        if let Err(e) = committer.commit(&tpl, CommitMode::Sync) {
            eprintln!("commit: {e}; retrying");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Everything but the last (1 KiB) segment gets cleaned.
    let cleaned = wait_cleaned(&broker, "__consumer_offsets", partition, commits - 50);
    let records = read_partition(&bootstrap, "__consumer_offsets", partition);
    assert!(
        records.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets increase"
    );
    let below: Vec<_> = records.iter().filter(|r| r.0 < cleaned).collect();
    let mut keys: Vec<_> = below.iter().map(|r| r.1.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        below.len(),
        "one record per key below {cleaned}"
    );
    assert!(
        records.len() < (commits / 4) as usize,
        "{} records left of {commits}",
        records.len()
    );
    // The group's committed offset is still there.
    let committed = committer
        .committed_offsets(tpl.clone(), Duration::from_secs(30))
        .unwrap();
    assert_eq!(
        committed.find_partition("tracked", 0).unwrap().offset(),
        Offset::Offset(0)
    );
}

/// The bug this issue began with: `__consumer_offsets` used to be deleted by retention, so a quiet group lost
/// its committed offsets once `retention.ms` passed and the broker restarted. Here the offsets topic gets a
/// one-second `retention.ms` and tiny segments, another group's commits roll the idle group's partition many
/// times, the broker is killed -9 past the retention time and restarted: the idle group's offsets are still
/// there, because a compact-only topic is cleaned, never deleted by retention.
#[test]
fn an_idle_groups_offsets_survive_retention_and_a_restart() {
    let mut broker = Broker::builder()
        .prop("log.cleaner.backoff.ms", "100")
        .prop("log.cleaner.threads", "1")
        .prop("log.retention.check.interval.ms", "200")
        .start()
        .expect("broker starts");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "idle-src", 1, &[]);
    wait_for_partitions(&bootstrap, "idle-src", 1);
    let idle = "idle-group";
    let partition = offsets_partition(idle);
    // A busy group whose commits land in the same __consumer_offsets partition as the idle group's.
    let busy = (0..10_000)
        .map(|i| format!("busy-{i}"))
        .find(|g| offsets_partition(g) == partition)
        .expect("some group name hashes to the same partition");
    let commit_with = |group: &str, offset: i64| -> BaseConsumer {
        let c: BaseConsumer = client_config(&bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("idle-src", 0, Offset::Offset(offset))
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while let Err(e) = c.commit(&tpl, CommitMode::Sync) {
            assert!(
                Instant::now() < deadline,
                "commit of {group} never succeeded: {e}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        c
    };
    drop(commit_with(idle, 7));
    let config = AlterConfig::new(ResourceSpecifier::Topic("__consumer_offsets"))
        .set("cleanup.policy", "compact")
        .set("retention.ms", "1000")
        .set("segment.bytes", "1024")
        .set("segment.ms", "1000")
        .set("min.cleanable.dirty.ratio", "0.01");
    let results = block_on(admin(&bootstrap).alter_configs([&config], &admin_options())).unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let busy_consumer = commit_with(&busy, 0);
    for round in 1..=150 {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("idle-src", 0, Offset::Offset(round))
            .unwrap();
        if let Err(e) = busy_consumer.commit(&tpl, CommitMode::Sync) {
            eprintln!("busy commit: {e}; retrying");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    drop(busy_consumer);
    let (_, end) = watermarks(&consumer(&bootstrap), "__consumer_offsets", partition).unwrap();
    assert!(end > 100, "the busy group's commits reached offset {end}");
    // Past retention.ms, with retention checks every 200 ms and segments rolled by size and by age.
    std::thread::sleep(Duration::from_secs(3));
    broker.kill9().unwrap();
    broker.restart().expect("broker restarts");
    let c: BaseConsumer = client_config(&bootstrap)
        .set("group.id", idle)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("idle-src", 0);
    let deadline = Instant::now() + WAIT;
    loop {
        match c.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(committed) => {
                assert_eq!(
                    committed.find_partition("idle-src", 0).unwrap().offset(),
                    Offset::Offset(7),
                    "the idle group's committed offset after retention and a restart"
                );
                break;
            }
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "committed offsets never answered: {e}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}
