//! The consume phase: read every partition from the beginning to the high watermark.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::Args;

/// What the consume phase measured.
pub struct Consumed {
    pub messages: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// The consumer both the consume phase and the end-to-end reader use: large fetches, and the prefetch
/// queue re-checked every `--fetch-queue-backoff-ms` (see [`Args::fetch_queue_backoff_ms`]).
pub fn consumer(args: &Args) -> Result<BaseConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap)
        // librdkafka refuses assign() without a group.id; the group is never joined.
        .set("group.id", "kraftwerk-loadgen")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set(
            "fetch.queue.backoff.ms",
            args.fetch_queue_backoff_ms.to_string(),
        );
    for (k, v) in &args.consumer_configs {
        config.set(k, v);
    }
    config.create().context("creating consumer")
}

/// Assigns every partition of the topic from its beginning; returns how many records they hold now.
pub fn assign_all(consumer: &BaseConsumer, args: &Args) -> Result<u64> {
    let timeout = Duration::from_secs(30);
    let metadata = consumer
        .fetch_metadata(Some(&args.topic), timeout)
        .context("metadata")?;
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == args.topic) else {
        bail!("topic {} not in metadata", args.topic);
    };
    let mut tpl = TopicPartitionList::new();
    let mut target = 0u64;
    for p in topic.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(&args.topic, p.id(), timeout)
            .context("watermarks")?;
        target += u64::try_from(high - low).unwrap_or(0);
        tpl.add_partition_offset(&args.topic, p.id(), Offset::Beginning)
            .context("assignment")?;
    }
    consumer.assign(&tpl).context("assign")?;
    Ok(target)
}

pub fn run(args: &Args) -> Result<Consumed> {
    let consumer = consumer(args)?;
    let target = assign_all(&consumer, args)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(600);
    let (mut messages, mut bytes) = (0u64, 0u64);
    while messages < target {
        if Instant::now() > deadline {
            bail!("consumed only {messages} of {target} messages in 600 s");
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                messages += 1;
                bytes += m.payload_len() as u64;
            }
            Some(Err(e)) => bail!("consume error: {e}"),
            None => {}
        }
    }
    Ok(Consumed {
        messages,
        bytes,
        elapsed: start.elapsed(),
    })
}
