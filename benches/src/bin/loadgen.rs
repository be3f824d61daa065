//! `kraftwerk-loadgen`: produce N messages of S bytes with a real Kafka client (librdkafka), report
//! throughput and delivery latency, then consume them all back and report consume throughput.
//!
//! It speaks only the Kafka protocol, so the same run can be pointed at Apache Kafka for comparison. With
//! `--topics K` it spreads the run over K topics (loadgen/topics.rs), as the many-partition workloads need.

// The phases live in loadgen/ next to this file (the binary's path is fixed as src/bin/loadgen.rs).
#[path = "loadgen/consume.rs"]
mod consume;
#[path = "loadgen/e2e.rs"]
mod e2e;
#[path = "loadgen/prime.rs"]
mod prime;
#[path = "loadgen/produce.rs"]
mod produce;
#[path = "loadgen/report.rs"]
mod report;
#[path = "loadgen/served.rs"]
mod served;
#[path = "loadgen/topics.rs"]
mod topics;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "kraftwerk-loadgen",
    about = "Kafka produce/consume load generator"
)]
pub struct Args {
    /// Broker(s) to bootstrap from.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Topic to use; created with --partitions if it does not exist.
    #[arg(long, default_value = "loadgen")]
    pub topic: String,
    /// Use K topics, `<topic>-0` .. `<topic>-(K-1)`, instead of the one topic `--topic`: each is created
    /// with `--partitions` if it does not exist, record i goes to topic i mod K (the topics in turn; within
    /// a topic librdkafka's partitioner picks the partition, by key with `--keys`), and the consume phase
    /// assigns every partition of every topic.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub topics: Option<u32>,
    /// Number of messages to produce.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Producer acks: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = ["0", "1", "all", "-1"])]
    pub acks: String,
    /// Target rate in messages/s (0 = as fast as possible). At a fixed rate the latency figures
    /// show the broker's response time rather than client-side queueing.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Partitions when creating the topic.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Replication factor when creating the topic.
    #[arg(long, default_value_t = 1)]
    pub replication_factor: i32,
    /// The topic's `min.insync.replicas` when creating it (the broker default if not given).
    #[arg(long)]
    pub min_insync_replicas: Option<u32>,
    /// Producer compression codec (none, gzip, snappy, lz4, zstd).
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Skip the consume phase.
    #[arg(long)]
    pub no_consume: bool,
    /// Skip the produce phase: only consume what the topic holds (from the beginning to the high
    /// watermark), so several consumer runs can read one log produced once.
    #[arg(long, conflicts_with = "no_consume")]
    pub no_produce: bool,
    /// The consumer's `fetch.queue.backoff.ms`. When the broker answers faster than the application
    /// drains librdkafka's prefetch queue (`queued.max.messages.kbytes`, 64 MiB, or `queued.min.messages`,
    /// 100,000), librdkafka stops fetching the partition and looks again only after this long: with its
    /// default of 1000 ms a fast broker is paid with ~1 s stalls in which the queue runs dry and the
    /// application waits, so the consume figure measured the client's timer, not the broker. 10 ms re-checks
    /// before 64 MiB can drain at any rate this machine reaches.
    #[arg(long, default_value_t = 10)]
    pub fetch_queue_backoff_ms: u64,
    /// Measure end-to-end latency: a consumer reads the topic while it is produced and the RESULT line gets
    /// the send-to-receive percentiles (e2e_p50_ms, e2e_p99_ms, e2e_p999_ms, e2e_max_ms). Use with a new
    /// topic, `--rate` and `--no-consume`; each value starts with its 8-byte send time.
    #[arg(long, conflicts_with = "no_produce")]
    pub e2e: bool,
    /// Produce and consume nothing: wait until the broker serves every partition of `--topic` with
    /// `--messages` records in all (ListOffsets answered for each, their log end offsets adding up), e.g.
    /// while it restarts, and print `RESULT served_ms=... rounds=...`. The topic is not created.
    #[arg(long, conflicts_with_all = ["no_produce", "e2e", "topics"])]
    pub await_served: bool,
    /// Produce and consume nothing: create the topic(s), wait until every partition has a leader, and print
    /// `RESULT created_ms=...` (from the CreateTopics request until then), so a run that measures producing
    /// into them can start on topics that are ready.
    #[arg(long, conflicts_with_all = ["no_produce", "no_consume", "e2e", "await_served"])]
    pub create_only: bool,
    /// With `--create-only`: then write one 1-byte record (no key) to every partition, each acknowledged with
    /// `--acks`, and add `primed_ms=...` to the RESULT line (from the CreateTopics request until the last
    /// acknowledgement): the partitions a later run produces into have all taken a write, whenever the broker
    /// makes their files. Every partition holds one record more.
    #[arg(long, requires = "create_only")]
    pub prime: bool,
    /// How long `--await-served`, and the wait for every partition's leader after creating the topics,
    /// may take before the run fails.
    #[arg(long, default_value_t = 600)]
    pub await_timeout_s: u64,
    /// A librdkafka property for the consumer, as key=value (repeatable; applied last), e.g.
    /// `--consumer-config debug=fetch` to see its fetches, or `--consumer-config queued.min.messages=1000`.
    #[arg(long = "consumer-config", value_parser = parse_key_value)]
    pub consumer_configs: Vec<(String, String)>,
    /// Producer linger.ms (librdkafka's default is 5). Latency runs use 0 so the figures are the broker's
    /// round trip, not the client's batching delay.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Give each record one of this many keys, in turn (0 = no key). With a compacted topic this is the
    /// number of live keys, so the cleaner has `messages / keys` versions of each to remove.
    #[arg(long, default_value_t = 0)]
    pub keys: u64,
    /// A topic config for the topic when it is created, as key=value (repeatable), e.g.
    /// `--topic-config cleanup.policy=compact`.
    #[arg(long = "topic-config", value_parser = parse_key_value)]
    pub topic_configs: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.messages == 0 {
        bail!("--messages must be at least 1");
    }
    if args.await_served {
        let (waited, rounds) = served::run(&args)?;
        println!("RESULT served_ms={} rounds={rounds}", waited.as_millis());
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building tokio runtime")?;
    let created = runtime.block_on(topics::ensure(&args))?;
    if args.create_only {
        let primed = if args.prime {
            let took = prime::run(&args)?;
            format!(" primed_ms={}", (created + took).as_millis())
        } else {
            String::new()
        };
        println!(
            "RESULT created_ms={}{primed} topics={} partitions={}",
            created.as_millis(),
            topics::names(&args).len(),
            args.partitions
        );
        return Ok(());
    }
    if args.e2e && args.size < e2e::STAMP_LEN {
        bail!("--e2e needs --size of at least {} bytes", e2e::STAMP_LEN);
    }
    let reader = if args.e2e {
        // Generous: the producer's own time at --rate, plus a minute.
        let produce_secs = args
            .messages
            .checked_div(args.rate)
            .map_or(600, |secs| secs + 1);
        Some(e2e::Reader::start(
            &args,
            args.messages,
            Duration::from_secs(produce_secs + 60),
        )?)
    } else {
        None
    };
    let produced = if args.no_produce {
        None
    } else {
        Some(produce::run(&args, reader.as_ref())?)
    };
    let latency = reader.map(e2e::Reader::finish).transpose()?;
    let consumed = if args.no_consume {
        None
    } else {
        Some(consume::run(&args)?)
    };
    report::print(
        &args,
        produced.as_ref(),
        consumed.as_ref(),
        latency.as_ref(),
    );
    if let Some(p) = produced.as_ref().filter(|p| p.errors > 0) {
        bail!("{} deliveries failed", p.errors);
    }
    Ok(())
}
