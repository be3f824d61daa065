//! The client side of the fault tests: an idempotent acks=all producer sending numbered messages, a
//! consumer reading every partition while the faults run, and (optionally) a consumer group committing
//! its position with another client watching the committed offsets. Each runs on its own thread and
//! records what it observed; [`Workload::finish`] stops them, reads the final log and checks everything
//! (`verify` and `observed` in the harness).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kraftwerk_tests::observed::{
    check_acked_commits_kept, check_commits_monotonic, check_reads_durable, count_outcomes,
    duplicated_values, longest_gaps, CommitObservation, Counts, Gap, Read,
};
use kraftwerk_tests::verify::{check_exact, summarize, StoredRecord};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{
    client_config, consume_all, flush, recording_producer, send, AckRecorder, RecordingProducer,
};

/// Pause between two sends: about 300 messages a second, spread over the partitions by key.
const SEND_INTERVAL: Duration = Duration::from_millis(3);
/// How often the group member commits and the watcher reads the committed offsets.
const COMMIT_INTERVAL: Duration = Duration::from_millis(300);
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How long the final read-back may take.
const READ_BACK: Duration = Duration::from_secs(90);
/// How long, after the faults, the group may take to commit again and the final offsets to be read.
const GROUP_RECOVERY: Duration = Duration::from_secs(60);

/// What the group member's commits did.
#[derive(Debug, Default, Clone)]
pub struct GroupStats {
    /// The highest offset per partition whose commit the coordinator acknowledged.
    pub acked: BTreeMap<i32, i64>,
    pub commits_ok: usize,
    pub commits_failed: usize,
    pub last_ok: Option<Instant>,
    pub first_errors: Vec<String>,
}

struct GroupClients {
    name: String,
    stats: Arc<Mutex<GroupStats>>,
    observations: Arc<Mutex<Vec<CommitObservation>>>,
    member: JoinHandle<()>,
    watcher: JoinHandle<()>,
}

/// The running clients.
pub struct Workload {
    topic: String,
    partitions: i32,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    producer: Arc<RecordingProducer>,
    recorder: AckRecorder,
    sent: Arc<AtomicU64>,
    sender: JoinHandle<()>,
    reader: JoinHandle<(Vec<Read>, usize)>,
    group: Option<GroupClients>,
}

/// What [`Workload::finish`] found.
pub struct Outcome {
    pub counts: Counts,
    pub sent: usize,
    pub failed_sends: usize,
    /// Acknowledgements that came without an offset (librdkafka's implicit acks after a failed request).
    pub acked_without_offset: usize,
    pub reads: usize,
    /// Longest time without an acknowledgement, per partition, while the producer was sending.
    pub longest_gap: BTreeMap<i32, Gap>,
    pub group: Option<GroupStats>,
    /// Every broken promise, readable; empty when the run was correct.
    pub violations: Vec<String>,
}

impl Outcome {
    /// Prints the figures the issue asks for.
    pub fn print(&self, label: &str) {
        eprintln!(
            "[{label}] sent {}, {} ({} acknowledged without an offset), failed sends {}, reads during \
             faults {}",
            self.sent, self.counts, self.acked_without_offset, self.failed_sends, self.reads
        );
        let gaps: Vec<String> = self
            .longest_gap
            .iter()
            .map(|(p, g)| {
                format!(
                    "p{p} {:.1}s (from t={:.1}s)",
                    g.longest.as_secs_f64(),
                    g.from.as_secs_f64()
                )
            })
            .collect();
        eprintln!(
            "[{label}] longest unavailability per partition: {}",
            gaps.join(", ")
        );
        if let Some(g) = &self.group {
            eprintln!(
                "[{label}] group commits ok {}, failed {}, highest acknowledged {:?}, first errors {:?}",
                g.commits_ok, g.commits_failed, g.acked, g.first_errors
            );
        }
    }
}

impl Workload {
    /// Starts the producer and the reader, and the group clients when `group` names one.
    pub fn start(bootstrap: &str, topic: &str, partitions: i32, group: Option<&str>) -> Self {
        let epoch = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let (producer, recorder) = recording_producer(
            bootstrap,
            &[
                ("enable.idempotence", "true"),
                // One request in flight per connection. With more, librdkafka (2.12) can store a record
                // twice against Apache Kafka too (confluentinc/librdkafka#4953, fix open in #4972): the head
                // request is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND (written, retried as possibly
                // persisted), the next NOT_ENOUGH_REPLICAS, the one after OUT_OF_ORDER_SEQUENCE_NUMBER; the
                // client then takes a new producer id and resends the written head under it as new. Seen
                // here as message-953 at 2@163 and 2@164. The duplicate check below is about the broker's
                // retry detection, which a single request in flight still exercises on every retry.
                ("max.in.flight.requests.per.connection", "1"),
                ("message.timeout.ms", "180000"),
                ("request.timeout.ms", "15000"),
                ("linger.ms", "2"),
            ],
        );
        let producer = Arc::new(producer);
        let sent = Arc::new(AtomicU64::new(0));
        let sender = {
            let (producer, stop, sent, topic) = (
                producer.clone(),
                stop.clone(),
                sent.clone(),
                topic.to_string(),
            );
            std::thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("k{}", seq % 64);
                    let value = format!("message-{seq}");
                    if let Err(e) = send(
                        &producer,
                        &topic,
                        seq,
                        key.as_bytes(),
                        value.as_bytes(),
                        None,
                    ) {
                        panic!("enqueueing message {seq}: {e}");
                    }
                    seq += 1;
                    sent.store(seq, Ordering::Relaxed);
                    std::thread::sleep(SEND_INTERVAL);
                }
            })
        };
        let reader = spawn_reader(bootstrap, topic, partitions, stop.clone());
        let group = group.map(|name| {
            let stats = Arc::new(Mutex::new(GroupStats::default()));
            let observations = Arc::new(Mutex::new(Vec::new()));
            GroupClients {
                name: name.to_string(),
                member: spawn_member(bootstrap, topic, name, stop.clone(), stats.clone()),
                watcher: spawn_watcher(
                    bootstrap,
                    topic,
                    partitions,
                    name,
                    epoch,
                    stop.clone(),
                    observations.clone(),
                ),
                stats,
                observations,
            }
        });
        Workload {
            topic: topic.to_string(),
            partitions,
            epoch,
            stop,
            producer,
            recorder,
            sent,
            sender,
            reader,
            group,
        }
    }

    /// Time since the workload started: the clock of the printed gaps.
    pub fn elapsed(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub fn acked_count(&self) -> usize {
        self.recorder.acked_count()
    }

    /// How many acknowledgements so far were for one of `partitions`.
    pub fn acked_in(&self, partitions: &[i32]) -> usize {
        self.recorder
            .lock()
            .acked_at
            .iter()
            .filter(|(p, _)| partitions.contains(p))
            .count()
    }

    /// Stops the clients (after the group, if any, has committed since `healed`), flushes the producer,
    /// reads every partition from the start and checks it all.
    pub fn finish(self, bootstrap: &str, healed: Instant) -> Outcome {
        let mut violations = Vec::new();
        if let Some(g) = &self.group {
            let deadline = Instant::now() + GROUP_RECOVERY;
            while lock(&g.stats).last_ok.is_none_or(|t| t < healed) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
            if lock(&g.stats).last_ok.is_none_or(|t| t < healed) {
                violations.push(format!(
                    "group {}: no commit succeeded within {GROUP_RECOVERY:?} after the faults healed",
                    g.name
                ));
            }
        }
        let sending_stopped = Instant::now();
        self.stop.store(true, Ordering::Relaxed);
        self.sender
            .join()
            .unwrap_or_else(|_| panic!("the sending thread panicked"));
        flush(&self.producer).unwrap_or_else(|e| panic!("{e}"));
        let (reads, read_errors) = self
            .reader
            .join()
            .unwrap_or_else(|_| panic!("the reading thread panicked"));
        let sent = usize::try_from(self.sent.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        let (acked, failed) = self.recorder.snapshot();
        let ack_times: Vec<(i32, Duration)> = self
            .recorder
            .lock()
            .acked_at
            .iter()
            .map(|(p, t)| (*p, t.saturating_duration_since(self.epoch)))
            .collect();

        let log = consume_all(bootstrap, &self.topic, READ_BACK)
            .unwrap_or_else(|e| panic!("reading back: {e}"));
        let exact = check_exact(sent, &acked, &log);
        if !exact.is_empty() {
            violations.push(format!(
                "{}\nfirst failed sends: {:?}",
                summarize(&exact, 10),
                failed.iter().take(5).collect::<Vec<_>>()
            ));
        }
        let lost_reads = check_reads_durable(&reads, &log);
        violations.extend(lost_reads.iter().take(10).map(|v| v.to_string()));
        if read_errors > 0 {
            eprintln!("the reader saw {read_errors} transient errors during the faults");
        }

        let group = self.group.map(|g| {
            g.member
                .join()
                .unwrap_or_else(|_| panic!("the group member panicked"));
            g.watcher
                .join()
                .unwrap_or_else(|_| panic!("the commit watcher panicked"));
            let observations = lock(&g.observations).clone();
            violations.extend(
                check_commits_monotonic(&observations)
                    .iter()
                    .take(10)
                    .map(|v| v.to_string()),
            );
            let stats = lock(&g.stats).clone();
            match final_commits(bootstrap, &self.topic, self.partitions, &g.name) {
                Ok(finally) => violations.extend(
                    check_acked_commits_kept(&stats.acked, &finally)
                        .iter()
                        .map(|v| v.to_string()),
                ),
                Err(e) => violations.push(format!("group {}: {e}", g.name)),
            }
            eprintln!(
                "group {}: {} committed-offset observations",
                g.name,
                observations.len()
            );
            stats
        });

        let duplicates = duplicated_values(&log);
        violations.extend(
            duplicates
                .iter()
                .take(10)
                .map(|(value, at)| format!("{value} stored at {at:?} (partition, offset)")),
        );
        let partitions: BTreeSet<i32> = (0..self.partitions).collect();
        Outcome {
            counts: count_outcomes(&acked, &log),
            sent,
            failed_sends: failed.len(),
            acked_without_offset: acked.iter().filter(|a| a.offset < 0).count(),
            reads: reads.len(),
            longest_gap: longest_gaps(
                &partitions,
                &ack_times,
                Duration::ZERO,
                sending_stopped.saturating_duration_since(self.epoch),
            ),
            group,
            violations,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn all_partitions(topic: &str, partitions: i32, offset: Offset) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, offset)
            .unwrap_or_else(|e| panic!("building a partition list: {e}"));
    }
    tpl
}

/// A consumer assigned every partition from the beginning, recording what it is served until `stop`.
fn spawn_reader(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    stop: Arc<AtomicBool>,
) -> JoinHandle<(Vec<Read>, usize)> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "kraftwerk-fault-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "200")
        .create()
        .unwrap_or_else(|e| panic!("creating the reader: {e}"));
    consumer
        .assign(&all_partitions(topic, partitions, Offset::Beginning))
        .unwrap_or_else(|e| panic!("assigning the reader: {e}"));
    std::thread::spawn(move || {
        let mut reads = Vec::new();
        let mut errors = 0usize;
        while !stop.load(Ordering::Relaxed) {
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Ok(m)) => reads.push(Read {
                    partition: m.partition(),
                    offset: m.offset(),
                    record: StoredRecord {
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    },
                }),
                Some(Err(_)) => errors += 1,
            }
        }
        (reads, errors)
    })
}

/// A member of `group` subscribed to `topic`, committing its position synchronously every
/// [`COMMIT_INTERVAL`] and recording which commits were acknowledged.
fn spawn_member(
    bootstrap: &str,
    topic: &str,
    group: &str,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<GroupStats>>,
) -> JoinHandle<()> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "200")
        .create()
        .unwrap_or_else(|e| panic!("creating the group member: {e}"));
    consumer
        .subscribe(&[topic])
        .unwrap_or_else(|e| panic!("subscribing: {e}"));
    std::thread::spawn(move || {
        let mut last_commit = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let _ = consumer.poll(Duration::from_millis(100));
            if last_commit.elapsed() < COMMIT_INTERVAL {
                continue;
            }
            last_commit = Instant::now();
            let Ok(position) = consumer.position() else {
                continue;
            };
            let positions: Vec<(i32, i64)> = position
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some((e.partition(), o)),
                    _ => None,
                })
                .collect();
            if positions.is_empty() {
                continue;
            }
            let result = consumer.commit(&position, CommitMode::Sync);
            let mut s = lock(&stats);
            match result {
                Ok(()) => {
                    s.commits_ok += 1;
                    s.last_ok = Some(Instant::now());
                    for (p, o) in positions {
                        let e = s.acked.entry(p).or_insert(o);
                        *e = (*e).max(o);
                    }
                }
                Err(e) => {
                    s.commits_failed += 1;
                    if s.first_errors.len() < 5 {
                        s.first_errors.push(e.to_string());
                    }
                }
            }
        }
    })
}

/// A client of `group` that never joins it, reading its committed offsets (OffsetFetch) every
/// [`WATCH_INTERVAL`].
fn spawn_watcher(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    group: &str,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    observations: Arc<Mutex<Vec<CommitObservation>>>,
) -> JoinHandle<()> {
    let watcher = group_client(bootstrap, group);
    let tpl = all_partitions(topic, partitions, Offset::Invalid);
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            // The time of the request, not of the answer: an answer may describe any moment in between.
            let at = epoch.elapsed();
            if let Ok(committed) = watcher.committed_offsets(tpl.clone(), Duration::from_secs(5)) {
                let mut obs = lock(&observations);
                for e in committed.elements() {
                    if e.error().is_err() {
                        continue;
                    }
                    let offset = match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    };
                    obs.push(CommitObservation {
                        at,
                        partition: e.partition(),
                        offset,
                    });
                }
            }
            std::thread::sleep(WATCH_INTERVAL);
        }
    })
}

fn group_client(bootstrap: &str, group: &str) -> BaseConsumer {
    client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap_or_else(|e| panic!("creating a client of group {group}: {e}"))
}

/// The group's committed offsets once the coordinator answers, retried through [`GROUP_RECOVERY`].
fn final_commits(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    group: &str,
) -> Result<BTreeMap<i32, i64>, String> {
    let client = group_client(bootstrap, group);
    let tpl = all_partitions(topic, partitions, Offset::Invalid);
    let deadline = Instant::now() + GROUP_RECOVERY;
    loop {
        match client.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(c) if c.elements().iter().all(|e| e.error().is_ok()) => {
                return Ok(c
                    .elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some((e.partition(), o)),
                        _ => None,
                    })
                    .collect())
            }
            Ok(c) if Instant::now() > deadline => {
                return Err(format!("committed offsets answered errors: {c:?}"))
            }
            Err(e) if Instant::now() > deadline => return Err(format!("OffsetFetch: {e}")),
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}
