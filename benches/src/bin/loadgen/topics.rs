//! The topics a run uses: `--topic` alone, or with `--topics K` the K topics `<topic>-0` .. `<topic>-(K-1)`.
//! They are created (each with `--partitions`) before anything is produced, and the run waits until Metadata
//! shows a leader for every partition: a broker answers CreateTopics once the controller has committed the
//! topic, before its brokers lead the partitions (Apache Kafka takes ~15 s for 10,000), and records sent in
//! that window wait in the producer, so the produce figures would time the creation.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;

use crate::Args;

/// How long one Metadata request of the wait for leaders may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause between Metadata requests while a partition has no leader yet.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The names of the run's topics, in the order records go to them.
pub fn names(args: &Args) -> Vec<String> {
    match args.topics {
        None => vec![args.topic.clone()],
        Some(k) => (0..k).map(|i| format!("{}-{i}", args.topic)).collect(),
    }
}

/// The topic of record `i`: the topics in turn.
pub fn of_record(names: &[String], i: u64) -> &str {
    // `names` is never empty (`--topics` is at least 1), and the index is below its length.
    let at = usize::try_from(i % names.len() as u64).unwrap_or(0);
    &names[at]
}

/// A topic the run waits for, and how many partitions it must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    /// `--partitions` for a topic this run created; `None` for one that existed (it keeps its own count).
    pub partitions: Option<usize>,
}

/// One topic as a Metadata answer showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub name: String,
    pub error: Option<String>,
    /// Partition id, leader id (negative: none), error.
    pub partitions: Vec<(i32, i32, Option<String>)>,
}

impl Shown {
    fn all(metadata: &Metadata) -> Vec<Self> {
        metadata
            .topics()
            .iter()
            .map(|t| Self {
                name: t.name().to_string(),
                error: t.error().map(|e| format!("{e:?}")),
                partitions: t
                    .partitions()
                    .iter()
                    .map(|p| (p.id(), p.leader(), p.error().map(|e| format!("{e:?}"))))
                    .collect(),
            })
            .collect()
    }
}

/// Creates the topics that do not exist yet (an existing one is used as it is, its data consumed too), then
/// waits until every partition of every topic has a leader. Returns the time from the CreateTopics request
/// until then.
pub async fn ensure(args: &Args) -> Result<Duration> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .create()
        .context("creating admin client")?;
    let names = names(args);
    let min_isr = args.min_insync_replicas.map(|n| n.to_string());
    let mut new_topics = Vec::with_capacity(names.len());
    for name in &names {
        let mut topic = NewTopic::new(
            name,
            args.partitions,
            TopicReplication::Fixed(args.replication_factor),
        );
        if let Some(n) = &min_isr {
            topic = topic.set("min.insync.replicas", n);
        }
        for (k, v) in &args.topic_configs {
            topic = topic.set(k, v);
        }
        new_topics.push(topic);
    }
    let wait = Duration::from_secs(args.await_timeout_s);
    let opts = AdminOptions::new()
        .operation_timeout(Some(wait))
        .request_timeout(Some(wait));
    let start = Instant::now();
    let results = admin
        .create_topics(&new_topics, &opts)
        .await
        .context("CreateTopics")?;
    let mut created = HashSet::new();
    for result in results {
        match result {
            Ok(name) => {
                created.insert(name);
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    let partitions = usize::try_from(args.partitions).context("--partitions")?;
    let expected: Vec<Expected> = names
        .into_iter()
        .map(|name| Expected {
            partitions: created.contains(&name).then_some(partitions),
            name,
        })
        .collect();
    let deadline = start + wait;
    loop {
        let why = match admin.inner().fetch_metadata(None, METADATA_TIMEOUT) {
            Ok(metadata) => match first_unready(&expected, &Shown::all(&metadata)) {
                None => return Ok(start.elapsed()),
                Some(why) => why,
            },
            Err(e) => format!("metadata: {e}"),
        };
        if Instant::now() > deadline {
            bail!(
                "not every partition has a leader {} s after CreateTopics: {why}",
                args.await_timeout_s
            );
        }
        std::thread::sleep(RETRY_PAUSE);
    }
}

/// Why the topics are not ready yet (the first topic or partition found lacking), or `None` once every
/// expected topic is shown without error, with its partition count, each partition with a leader.
pub fn first_unready(expected: &[Expected], shown: &[Shown]) -> Option<String> {
    for e in expected {
        let Some(topic) = shown.iter().find(|t| t.name == e.name) else {
            return Some(format!("topic {} not in metadata", e.name));
        };
        if let Some(err) = &topic.error {
            return Some(format!("topic {}: {err}", e.name));
        }
        if topic.partitions.is_empty() {
            return Some(format!("topic {} has no partitions in metadata", e.name));
        }
        if let Some(n) = e.partitions.filter(|n| *n != topic.partitions.len()) {
            return Some(format!(
                "topic {} shows {} of its {n} partitions",
                e.name,
                topic.partitions.len()
            ));
        }
        for (id, leader, err) in &topic.partitions {
            if let Some(err) = err {
                return Some(format!("{}/{id}: {err}", e.name));
            }
            if *leader < 0 {
                return Some(format!("{}/{id} has no leader", e.name));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(name: &str, leaders: &[i32]) -> Shown {
        Shown {
            name: name.into(),
            error: None,
            partitions: leaders
                .iter()
                .enumerate()
                .map(|(i, l)| (i32::try_from(i).unwrap(), *l, None))
                .collect(),
        }
    }

    fn expected(name: &str, partitions: Option<usize>) -> Expected {
        Expected {
            name: name.into(),
            partitions,
        }
    }

    #[test]
    fn every_partition_of_every_topic_needs_a_leader() {
        let want = [expected("t-0", Some(2)), expected("t-1", Some(2))];
        let all_led = [shown("t-0", &[1, 1]), shown("t-1", &[1, 1])];
        assert_eq!(first_unready(&want, &all_led), None);
        let one_unled = [shown("t-0", &[1, 1]), shown("t-1", &[1, -1])];
        assert_eq!(
            first_unready(&want, &one_unled),
            Some("t-1/1 has no leader".into())
        );
        assert_eq!(
            first_unready(&want, &all_led[..1]),
            Some("topic t-1 not in metadata".into())
        );
    }

    #[test]
    fn a_created_topic_must_show_all_its_partitions_an_existing_one_its_own() {
        let short = [shown("t", &[1, 1])];
        assert_eq!(
            first_unready(&[expected("t", Some(3))], &short),
            Some("topic t shows 2 of its 3 partitions".into())
        );
        assert_eq!(first_unready(&[expected("t", None)], &short), None);
    }

    #[test]
    fn errors_in_metadata_are_not_ready() {
        let mut t = shown("t", &[1]);
        t.partitions[0].2 = Some("LeaderNotAvailable".into());
        assert_eq!(
            first_unready(&[expected("t", None)], &[t.clone()]),
            Some("t/0: LeaderNotAvailable".into())
        );
        t.error = Some("UnknownTopicOrPartition".into());
        assert_eq!(
            first_unready(&[expected("t", None)], &[t]),
            Some("topic t: UnknownTopicOrPartition".into())
        );
    }

    #[test]
    fn records_go_to_the_topics_in_turn() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let picked: Vec<&str> = (0..5).map(|i| of_record(&names, i)).collect();
        assert_eq!(picked, ["a", "b", "c", "a", "b"]);
        assert_eq!(of_record(&names[..1], 7), "a");
    }
}
