//! The produce phase: send as fast as allowed (or at `--rate`), timing each delivery report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::e2e;
use crate::topics;
use crate::Args;

/// What the produce phase measured.
pub struct Produced {
    pub delivered: u64,
    pub errors: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Send-to-delivery-report latency in microseconds.
    pub latency_us: Histogram<u64>,
}

/// Records send-to-acknowledgement latency per message; the opaque is the send instant.
#[derive(Clone)]
struct LatencyRecorder {
    histogram: Arc<Mutex<Histogram<u64>>>,
    delivered: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

impl LatencyRecorder {
    /// Forgets what was recorded so far (the end-to-end marker record).
    fn reset(&self) -> Result<()> {
        self.histogram
            .lock()
            .map_err(|_| anyhow::anyhow!("latency histogram lock poisoned"))?
            .reset();
        self.delivered.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        Ok(())
    }
}

impl ClientContext for LatencyRecorder {}

impl ProducerContext for LatencyRecorder {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        match result {
            Ok(_) => {
                let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                if let Ok(mut h) = self.histogram.lock() {
                    h.saturating_record(us);
                }
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("first delivery error: {e}");
                }
            }
        }
    }
}

/// Enqueues `record`, waiting while librdkafka's queue is full.
pub fn send_waiting<C, K, P>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'_, K, P, C::DeliveryOpaque>,
) -> Result<(), KafkaError>
where
    C: ProducerContext + 'static,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Incompressible payload bytes (xorshift), so `--compression` measures codec cost honestly.
fn payload(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Produces `--messages` records. With `reader` (`--e2e`), a marker record goes first and the measured
/// records start once the reader has received it; each value then carries its send time.
pub fn run(args: &Args, reader: Option<&e2e::Reader>) -> Result<Produced> {
    let recorder = LatencyRecorder {
        histogram: Arc::new(Mutex::new(
            Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")?,
        )),
        delivered: Arc::new(AtomicU64::new(0)),
        errors: Arc::new(AtomicU64::new(0)),
    };
    let producer: ThreadedProducer<LatencyRecorder> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("acks", &args.acks)
        .set("compression.type", &args.compression)
        .set("linger.ms", args.linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "120000")
        .create_with_context(recorder.clone())
        .context("creating producer")?;
    let mut value = payload(args.size);
    let key_of = |i: u64| (args.keys > 0).then(|| format!("key-{:08}", i % args.keys));
    let names = topics::names(args);
    if let Some(reader) = reader {
        e2e::stamp(&mut value, 0);
        // The reader has every partition of every topic assigned; the first topic's will do.
        let marker = BaseRecord::<str, [u8], Box<Instant>>::with_opaque_to(
            topics::of_record(&names, 0),
            Box::new(Instant::now()),
        )
        .payload(&value);
        producer
            .send(marker)
            .map_err(|(e, _)| e)
            .context("sending the marker record")?;
        producer
            .flush(Duration::from_secs(60))
            .context("flushing the marker record")?;
        reader.wait_ready(Duration::from_secs(60))?;
        recorder.reset()?;
    }
    let start = Instant::now();
    for i in 0..args.messages {
        if args.rate > 0 {
            let due = start + Duration::from_secs_f64(i as f64 / args.rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let key = key_of(i);
        if reader.is_some() {
            e2e::stamp(&mut value, e2e::now_us());
        }
        let mut record = BaseRecord::<str, [u8], Box<Instant>>::with_opaque_to(
            topics::of_record(&names, i),
            Box::new(Instant::now()),
        )
        .payload(&value);
        if let Some(key) = key.as_deref() {
            record = record.key(key);
        }
        send_waiting(&producer, record).context(format!("enqueue #{i}"))?;
    }
    producer
        .flush(Duration::from_secs(300))
        .context("flushing producer")?;
    let elapsed = start.elapsed();
    let delivered = recorder.delivered.load(Ordering::Relaxed);
    let latency_us = recorder
        .histogram
        .lock()
        .map(|h| h.clone())
        .map_err(|_| anyhow::anyhow!("latency histogram lock poisoned"))?;
    Ok(Produced {
        delivered,
        errors: recorder.errors.load(Ordering::Relaxed),
        bytes: delivered * args.size as u64,
        elapsed,
        latency_us,
    })
}
