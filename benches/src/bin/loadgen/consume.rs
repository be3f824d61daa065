//! The consume phase: read every partition from the beginning to the high watermark.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::topics;
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

/// Assigns every partition of every topic of the run from its beginning; returns how many records they hold
/// now.
pub fn assign_all(consumer: &BaseConsumer, args: &Args) -> Result<u64> {
    let timeout = Duration::from_secs(30);
    let names = topics::names(args);
    let one = match names.as_slice() {
        [name] => Some(name.as_str()),
        _ => None,
    };
    let metadata = consumer.fetch_metadata(one, timeout).context("metadata")?;
    let mut tpl = TopicPartitionList::new();
    for name in &names {
        let Some(topic) = metadata.topics().iter().find(|t| t.name() == name) else {
            bail!("topic {name} not in metadata");
        };
        for p in topic.partitions() {
            tpl.add_partition_offset(name, p.id(), Offset::Beginning)
                .context("assignment")?;
        }
    }
    // The earliest and latest offsets of all partitions in two ListOffsets rounds (one request per
    // broker each; -2 and -1 are the protocol's "earliest" and "latest"), not two round trips per
    // partition: at 10,000 partitions those would be most of the broker's work in the measured run.
    let earliest = consumer
        .offsets_for_times(tpl.clone(), timeout)
        .context("ListOffsets (earliest)")?;
    let mut latest = tpl.clone();
    latest
        .set_all_offsets(Offset::End)
        .context("latest offsets query")?;
    let latest = consumer
        .offsets_for_times(latest, timeout)
        .context("ListOffsets (latest)")?;
    let target = records_between(&earliest, &latest)?;
    // Assigned at the offsets just answered rather than at `Offset::Beginning`, which librdkafka would look
    // up again partition by partition, each partition starting to fetch once its own answer is in (a fetch
    // already waiting at the end of the first ones holds the later ones back by up to fetch.wait.max.ms).
    consumer.assign(&earliest).context("assign")?;
    Ok(target)
}

/// The records between each partition's earliest and latest offset, added up.
pub fn records_between(earliest: &TopicPartitionList, latest: &TopicPartitionList) -> Result<u64> {
    let mut total = 0u64;
    for high in latest.elements() {
        let (topic, partition) = (high.topic(), high.partition());
        let Some(low) = earliest.find_partition(topic, partition) else {
            bail!("{topic}/{partition}: no earliest offset answered");
        };
        match (low.offset(), high.offset()) {
            (Offset::Offset(low), Offset::Offset(high)) if 0 <= low && low <= high => {
                total += u64::try_from(high - low).unwrap_or(0);
            }
            (low_offset, high_offset) => bail!(
                "{topic}/{partition}: offsets {low_offset:?} to {high_offset:?} ({:?}, {:?})",
                low.error(),
                high.error()
            ),
        }
    }
    Ok(total)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn list(offsets: &[(&str, i32, Offset)]) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            tpl.add_partition_offset(t, *p, *o).unwrap();
        }
        tpl
    }

    #[test]
    fn the_records_of_every_partition_add_up() {
        let low = list(&[
            ("a", 0, Offset::Offset(0)),
            ("a", 1, Offset::Offset(5)),
            ("b", 0, Offset::Offset(0)),
        ]);
        let high = list(&[
            ("a", 0, Offset::Offset(10)),
            ("a", 1, Offset::Offset(7)),
            ("b", 0, Offset::Offset(0)),
        ]);
        assert_eq!(records_between(&low, &high).unwrap(), 12);
    }

    #[test]
    fn a_partition_without_an_answer_is_an_error() {
        let low = list(&[("a", 0, Offset::Offset(0))]);
        let high = list(&[("a", 0, Offset::Offset(3)), ("a", 1, Offset::Offset(3))]);
        let err = records_between(&low, &high).unwrap_err().to_string();
        assert!(err.contains("a/1"), "{err}");
        let unanswered = list(&[("a", 0, Offset::End)]);
        assert!(records_between(&low, &unanswered).is_err());
    }
}
