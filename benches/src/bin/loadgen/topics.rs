//! The topics a run uses: `--topic` alone, or with `--topics K` the K topics `<topic>-0` .. `<topic>-(K-1)`.
//! They are created (each with `--partitions`) before anything is produced, and the run waits until Metadata
//! shows a leader for every partition: a broker answers CreateTopics once the controller has committed the
//! topic, before its brokers lead the partitions (Apache Kafka takes ~15 s for 10,000), and records sent in
//! that window wait in the producer, so the produce figures would time the creation.
//!
//! Apache Kafka's controller writes at most 10,000 records for one request and refuses a larger one whole
//! (POLICY_VIOLATION; Kraftwerk does the same), so the creation is planned in requests within that bound: topics
//! batched while they fit, and a topic of 10,000 partitions or more created with as many as fit and grown by
//! CreatePartitions. Both brokers get the same requests.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kraftwerk_controller::MAX_RECORDS_PER_USER_OP;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
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

/// One request of a creation plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// CreateTopics of these topics (name, partitions to create it with).
    Create(Vec<(String, usize)>),
    /// CreatePartitions of a topic created earlier in the plan, up to this many partitions.
    Grow(String, usize),
}

/// The requests that create `names` with `partitions` each and `configs` config records each, none of them
/// past `bound` records (a topic is one record, plus one per partition and per config; a new partition one).
pub fn plan(names: &[String], partitions: usize, configs: usize, bound: usize) -> Vec<Step> {
    // What a topic can be created with in one request; at least one partition.
    let first = partitions.min(bound.saturating_sub(1 + configs)).max(1);
    let cost = 1 + first + configs;
    let mut steps = Vec::new();
    let mut batch: Vec<(String, usize)> = Vec::new();
    let mut used = 0;
    for name in names {
        if !batch.is_empty() && used + cost > bound {
            steps.push(Step::Create(std::mem::take(&mut batch)));
            used = 0;
        }
        batch.push((name.clone(), first));
        used += cost;
    }
    if !batch.is_empty() {
        steps.push(Step::Create(batch));
    }
    for name in names {
        let mut have = first;
        while have < partitions {
            have = partitions.min(have + bound.max(1));
            steps.push(Step::Grow(name.clone(), have));
        }
    }
    steps
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
    let partitions = usize::try_from(args.partitions).context("--partitions")?;
    let configs = args.topic_configs.len() + usize::from(min_isr.is_some());
    let wait = Duration::from_secs(args.await_timeout_s);
    let opts = AdminOptions::new()
        .operation_timeout(Some(wait))
        .request_timeout(Some(wait));
    let start = Instant::now();
    let mut created = HashSet::new();
    for step in plan(&names, partitions, configs, MAX_RECORDS_PER_USER_OP) {
        match step {
            Step::Create(batch) => {
                let mut new_topics = Vec::with_capacity(batch.len());
                for (name, count) in &batch {
                    let count = i32::try_from(*count).context("partitions")?;
                    let mut topic = NewTopic::new(
                        name,
                        count,
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
                let results = admin
                    .create_topics(&new_topics, &opts)
                    .await
                    .context("CreateTopics")?;
                for result in results {
                    match result {
                        Ok(name) => {
                            created.insert(name);
                        }
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((name, code)) => bail!("creating topic {name}: {code}"),
                    }
                }
            }
            // Only a topic this run created grows; an existing one is used as it is.
            Step::Grow(name, count) if created.contains(&name) => {
                let grow = [NewPartitions::new(&name, count)];
                for result in admin
                    .create_partitions(&grow, &opts)
                    .await
                    .context("CreatePartitions")?
                {
                    if let Err((name, code)) = result {
                        bail!("adding partitions to {name}: {code}");
                    }
                }
            }
            Step::Grow(..) => {}
        }
    }
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

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("t-{i}")).collect()
    }

    #[test]
    fn creation_requests_stay_within_the_record_bound() {
        // 100 topics of 100 partitions: 101 records each, 99 topics per request.
        let steps = plan(&names(100), 100, 0, 10_000);
        let sizes: Vec<usize> = steps
            .iter()
            .map(|s| match s {
                Step::Create(b) => b.len(),
                Step::Grow(..) => 0,
            })
            .collect();
        assert_eq!(sizes, [99, 1]);
        // One topic of 10,000: created with 9,999 (10,000 records), grown by one.
        assert_eq!(
            plan(&names(1), 10_000, 0, 10_000),
            [
                Step::Create(vec![("t-0".into(), 9_999)]),
                Step::Grow("t-0".into(), 10_000)
            ]
        );
        // Configs count; growth goes in requests of at most the bound.
        assert_eq!(
            plan(&names(1), 25_000, 2, 10_000),
            [
                Step::Create(vec![("t-0".into(), 9_997)]),
                Step::Grow("t-0".into(), 19_997),
                Step::Grow("t-0".into(), 25_000)
            ]
        );
        // Small topics in one request, nothing to grow.
        assert_eq!(
            plan(&names(2), 3, 0, 10_000),
            [Step::Create(vec![("t-0".into(), 3), ("t-1".into(), 3)])]
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
