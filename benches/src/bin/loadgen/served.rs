//! `--await-served`: wait until the broker serves every partition of the topic again with all its records, e.g.
//! after a restart. A partition counts as served once ListOffsets (latest) is answered for it without error;
//! the topic is served once every partition is and their log end offsets add up to `--messages`, so a broker
//! that answers before its logs are loaded (an empty or short log) does not count.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::Args;

/// How long one round's Metadata and ListOffsets may take before the round is tried again.
const ROUND_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause between rounds that found a partition not served yet.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// What one round found.
#[derive(Debug, PartialEq, Eq)]
pub enum Round {
    /// Every partition answered; their latest offsets add up to this.
    Answered(u64),
    /// Not served yet, and why (the last reason is reported on a timeout).
    NotYet(String),
}

/// Waits until the topic is served; returns the time waited and the number of rounds it took.
pub fn run(args: &Args) -> Result<(Duration, u64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", "kraftwerk-loadgen")
        .set("enable.auto.commit", "false")
        // The broker may still be down: reconnect quickly rather than with librdkafka's backoff of up to 10 s,
        // which would be measured as the broker's restart time.
        .set("reconnect.backoff.ms", "10")
        .set("reconnect.backoff.max.ms", "50")
        .set("socket.connection.setup.timeout.ms", "2000")
        .create()
        .context("creating client")?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.await_timeout_s);
    let mut rounds = 0u64;
    loop {
        rounds += 1;
        let why = match round(&consumer, &args.topic) {
            Round::Answered(total) if total == args.messages => {
                return Ok((start.elapsed(), rounds))
            }
            Round::Answered(total) => {
                format!(
                    "the partitions hold {total} records, {} expected",
                    args.messages
                )
            }
            Round::NotYet(why) => why,
        };
        if Instant::now() > deadline {
            bail!(
                "topic {} not served after {} s ({rounds} rounds): {why}",
                args.topic,
                args.await_timeout_s
            );
        }
        std::thread::sleep(RETRY_PAUSE);
    }
}

/// One Metadata request for the topic, then one ListOffsets (latest) for all its partitions.
fn round(consumer: &BaseConsumer, topic: &str) -> Round {
    let metadata = match consumer.fetch_metadata(Some(topic), ROUND_TIMEOUT) {
        Ok(m) => m,
        Err(e) => return Round::NotYet(format!("metadata: {e}")),
    };
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Round::NotYet("topic not in metadata".into());
    };
    if let Some(e) = t.error() {
        return Round::NotYet(format!("topic error in metadata: {e:?}"));
    }
    if t.partitions().is_empty() {
        return Round::NotYet("no partitions in metadata".into());
    }
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        if let Some(e) = p.error() {
            return Round::NotYet(format!("partition {} in metadata: {e:?}", p.id()));
        }
        if p.leader() < 0 {
            return Round::NotYet(format!("partition {} has no leader", p.id()));
        }
        if tpl
            .add_partition_offset(topic, p.id(), Offset::End)
            .is_err()
        {
            return Round::NotYet(format!("partition {} not addable to a query", p.id()));
        }
    }
    let answered = match consumer.offsets_for_times(tpl, ROUND_TIMEOUT) {
        Ok(list) => list,
        Err(e) => return Round::NotYet(format!("ListOffsets: {e}")),
    };
    total_of(&answered)
}

/// The latest offsets' sum, or the first partition without an answer.
pub fn total_of(answered: &TopicPartitionList) -> Round {
    let mut total = 0u64;
    for e in answered.elements() {
        if let Err(err) = e.error() {
            return Round::NotYet(format!("partition {}: {err}", e.partition()));
        }
        match e.offset() {
            Offset::Offset(o) if o >= 0 => total += o as u64,
            other => {
                return Round::NotYet(format!(
                    "partition {}: no offset ({other:?})",
                    e.partition()
                ))
            }
        }
    }
    Round::Answered(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_without_an_offset_is_not_served() {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("t", 0, Offset::Offset(10))
            .unwrap();
        tpl.add_partition_offset("t", 1, Offset::End).unwrap();
        assert!(matches!(total_of(&tpl), Round::NotYet(why) if why.contains("partition 1")));
    }

    #[test]
    fn answered_offsets_add_up() {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("t", 0, Offset::Offset(10))
            .unwrap();
        tpl.add_partition_offset("t", 1, Offset::Offset(32))
            .unwrap();
        assert_eq!(total_of(&tpl), Round::Answered(42));
    }
}
