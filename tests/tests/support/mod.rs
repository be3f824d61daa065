//! rdkafka helpers shared by the integration tests.
//!
//! Each file in `tests/tests/` is its own crate and uses only some of these helpers, hence the
//! `dead_code` allowance. rdkafka is a dev-dependency, so these live here rather than in the harness lib.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kraftwerk_tests::verify::{Acked, ConsumedLog, StoredRecord};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

pub mod workload;

/// Generous per-call timeout: debug broker builds on a busy 2-core machine.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a future (rdkafka admin calls) to completion on a fresh current-thread runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(future),
        Err(e) => panic!("cannot build tokio runtime: {e}"),
    }
}

/// Base client config for `bootstrap`.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    client_config_with(bootstrap, &[])
}

/// Base client config for `bootstrap` plus `props` (a secured listener's `security.protocol`, `ssl.*` and
/// `sasl.*`: `Cluster::client_props`, `ClientSecurity::rdkafka_props`).
pub fn client_config_with(bootstrap: &str, props: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "30000")
        .set("api.version.request.timeout.ms", "10000");
    for (k, v) in props {
        c.set(k.as_str(), v.as_str());
    }
    c
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    admin_with(bootstrap, &[])
}

/// [`admin`] with extra client settings.
pub fn admin_with(
    bootstrap: &str,
    props: &[(String, String)],
) -> AdminClient<DefaultClientContext> {
    client_config_with(bootstrap, props)
        .create()
        .unwrap_or_else(|e| panic!("creating admin client: {e}"))
}

pub fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT))
}

/// Creates one topic; `Err` carries the per-topic error code the broker answered.
pub fn try_create_topic(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Result<(), RDKafkaErrorCode> {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = block_on(admin.create_topics([&topic], &admin_options()))
        .unwrap_or_else(|e| panic!("CreateTopics request for {name} failed: {e}"));
    match results.as_slice() {
        [Ok(_)] => Ok(()),
        [Err((_, code))] => Err(*code),
        other => panic!("CreateTopics for {name}: expected one result, got {other:?}"),
    }
}

/// Creates one topic and waits until its metadata shows every partition with a leader.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin = admin(bootstrap);
    if let Err(code) = try_create_topic(&admin, name, partitions, configs) {
        panic!("creating topic {name}: broker answered {code:?}");
    }
    wait_for_partitions(bootstrap, name, partitions);
}

/// Polls metadata until `topic` has `partitions` partitions, each with a leader.
pub fn wait_for_partitions(bootstrap: &str, topic: &str, partitions: i32) {
    let consumer = consumer(bootstrap);
    let deadline = Instant::now() + TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(md) => {
                if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                    let ready = t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0);
                    if ready {
                        return;
                    }
                    last = format!(
                        "error {:?}, {} partitions, leaders {:?}",
                        t.error(),
                        t.partitions().len(),
                        t.partitions()
                            .iter()
                            .map(|p| p.leader())
                            .collect::<Vec<_>>()
                    );
                }
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("topic {topic} never showed {partitions} led partitions; last metadata: {last}");
}

/// Number of partitions the broker reports for `topic` (None if absent or in error).
pub fn partition_count(bootstrap: &str, topic: &str) -> Option<usize> {
    let md = consumer(bootstrap)
        .fetch_metadata(Some(topic), TIMEOUT)
        .ok()?;
    md.topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
}

/// A consumer for manual assignment. librdkafka refuses `assign` without a group.id ("Unknown
/// group"), so it gets one, but it never joins the group or commits offsets.
pub fn consumer(bootstrap: &str) -> BaseConsumer {
    consumer_with(bootstrap, &[])
}

/// [`consumer`] with extra client settings.
pub fn consumer_with(bootstrap: &str, props: &[(String, String)]) -> BaseConsumer {
    client_config_with(bootstrap, props)
        .set("group.id", "kraftwerk-tests-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap_or_else(|e| panic!("creating consumer: {e}"))
}

/// Reads every partition of `topic` from the beginning up to the high watermark found at the start.
/// Errors if the low watermark is not 0 or the data does not arrive within `timeout`.
pub fn consume_all(bootstrap: &str, topic: &str, timeout: Duration) -> Result<ConsumedLog, String> {
    consume_all_with(bootstrap, &[], topic, timeout)
}

/// [`consume_all`] with extra client settings.
pub fn consume_all_with(
    bootstrap: &str,
    props: &[(String, String)],
    topic: &str,
    timeout: Duration,
) -> Result<ConsumedLog, String> {
    let consumer = consumer_with(bootstrap, props);
    let md = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|e| format!("metadata for {topic}: {e}"))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| format!("topic {topic} missing from metadata"))?;
    let mut highs = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        let (low, high) = watermarks(&consumer, topic, p.id())?;
        if low != 0 {
            return Err(format!(
                "{topic}/{}: low watermark {low}, expected 0",
                p.id()
            ));
        }
        highs.insert(p.id(), high);
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .map_err(|e| format!("building assignment: {e}"))?;
    }
    consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    let mut log = ConsumedLog::new();
    let mut next: BTreeMap<i32, i64> = highs.keys().map(|p| (*p, 0)).collect();
    let deadline = Instant::now() + timeout;
    while highs
        .iter()
        .any(|(p, h)| next.get(p).copied().unwrap_or(0) < *h)
    {
        if Instant::now() > deadline {
            return Err(format!(
                "timed out consuming {topic}: read up to {next:?}, high watermarks {highs:?}"
            ));
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Ok(m)) => {
                log.insert(
                    (m.partition(), m.offset()),
                    StoredRecord {
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    },
                );
                next.insert(m.partition(), m.offset() + 1);
            }
            Some(Err(e)) => return Err(format!("consuming {topic}: {e}")),
        }
    }
    Ok(log)
}

/// ListOffsets earliest/latest, retried for a while: right after a (re)start a partition can briefly
/// answer NOT_LEADER / LEADER_NOT_AVAILABLE, which real clients retry too.
pub fn watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok(w) => return Ok(w),
            Err(e) if Instant::now() < deadline => {
                eprintln!("watermarks of {topic}/{partition}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => return Err(format!("watermarks of {topic}/{partition}: {e}")),
        }
    }
}

/// Shared record of delivery reports.
#[derive(Default)]
pub struct Deliveries {
    pub acked: Vec<Acked>,
    /// (partition, when) of each entry of `acked`, in the same order.
    pub acked_at: Vec<(i32, Instant)>,
    pub failed: Vec<(u64, String)>,
}

/// A producer context that records every delivery report, keyed by the send sequence number passed
/// as the per-message opaque.
#[derive(Clone, Default)]
pub struct AckRecorder {
    deliveries: Arc<Mutex<Deliveries>>,
}

impl AckRecorder {
    pub fn lock(&self) -> MutexGuard<'_, Deliveries> {
        // A poisoned lock only means another test thread panicked; the data is still usable.
        self.deliveries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn acked_count(&self) -> usize {
        self.lock().acked.len()
    }

    pub fn snapshot(&self) -> (Vec<Acked>, Vec<(u64, String)>) {
        let d = self.lock();
        (d.acked.clone(), d.failed.clone())
    }
}

impl ClientContext for AckRecorder {}

impl ProducerContext for AckRecorder {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: Box<u64>) {
        let mut d = self.lock();
        match result {
            Ok(m) => {
                d.acked.push(Acked {
                    seq: *seq,
                    partition: m.partition(),
                    offset: m.offset(),
                    record: StoredRecord {
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    },
                });
                d.acked_at.push((m.partition(), Instant::now()));
            }
            Err((e, _)) => d.failed.push((*seq, e.to_string())),
        }
    }
}

pub type RecordingProducer = ThreadedProducer<AckRecorder>;

/// A producer (acks=all unless `extra` says otherwise) whose deliveries go to the returned recorder.
pub fn recording_producer(
    bootstrap: &str,
    extra: &[(&str, &str)],
) -> (RecordingProducer, AckRecorder) {
    let recorder = AckRecorder::default();
    let mut config = client_config(bootstrap);
    config
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "5");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer = config
        .create_with_context(recorder.clone())
        .unwrap_or_else(|e| panic!("creating producer: {e}"));
    (producer, recorder)
}

/// Enqueues one record, waiting while librdkafka's local queue is full.
pub fn send(
    producer: &RecordingProducer,
    topic: &str,
    seq: u64,
    key: &[u8],
    value: &[u8],
    timestamp: Option<i64>,
) -> Result<(), KafkaError> {
    let mut record = BaseRecord::with_opaque_to(topic, Box::new(seq))
        .key(key)
        .payload(value);
    if let Some(ts) = timestamp {
        record = record.timestamp(ts);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Flushes and fails with the first delivery errors if any send was not acknowledged.
pub fn flush(producer: &RecordingProducer) -> Result<(), String> {
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| format!("flush: {e}"))
}
