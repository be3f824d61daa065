//! `--prime`: after creating the topics, one small record to every partition, acknowledged, before anything is
//! measured. A broker may make a new partition's files at creation (Kafka) or after it, in the background or at
//! the first write (Kraftwerk): a produce run started at once would time that work in one system and not in the
//! other. Primed, every partition has taken a write in both, the produce rows measure partitions in use (where
//! real clusters live), and the time until every partition took a write is reported beside creation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::produce;
use crate::topics;
use crate::Args;

/// The primer's value: one byte, so consumers that read the partitions later read almost nothing extra.
const VALUE: &[u8] = b"p";

#[derive(Clone, Default)]
struct Acks {
    delivered: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                if self.errors.load(Ordering::Relaxed) == 0 {
                    eprintln!("first priming delivery error: {e}");
                }
                self.errors.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Writes one record to each partition of every topic of the run and waits until all are acknowledged (with
/// `--acks`). Returns how long that took.
pub fn run(args: &Args) -> Result<Duration> {
    let acks = Acks::default();
    let producer: ThreadedProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("acks", &args.acks)
        .set("linger.ms", args.linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set(
            "message.timeout.ms",
            (args.await_timeout_s * 1000).to_string(),
        )
        .create_with_context(acks.clone())
        .context("creating the priming producer")?;
    let start = Instant::now();
    let names = topics::names(args);
    let mut sent = 0u64;
    for name in &names {
        for partition in 0..args.partitions {
            let record = BaseRecord::<[u8], [u8]>::to(name)
                .partition(partition)
                .payload(VALUE);
            produce::send_waiting(&producer, record)
                .with_context(|| format!("priming {name}/{partition}"))?;
            sent += 1;
        }
    }
    producer
        .flush(Duration::from_secs(args.await_timeout_s))
        .context("flushing the priming records")?;
    let (delivered, errors) = (
        acks.delivered.load(Ordering::Relaxed),
        acks.errors.load(Ordering::Relaxed),
    );
    if delivered != sent {
        bail!("priming: {delivered} of {sent} records acknowledged, {errors} failed");
    }
    Ok(start.elapsed())
}
