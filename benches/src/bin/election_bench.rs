//! kraftwerk-election-bench: partition-election throughput of Kraftwerk and Apache Kafka, side by side.
//!
//! For each N in `--partitions` and each system in `--systems`, `--runs` times (systems interleaved, one
//! cluster at a time), it starts three controllers and three brokers as processes, creates N partitions
//! with RF=3 and measures (see `election_bench/scenarios.rs`): topic creation, a controlled shutdown of the
//! broker leading the most partitions, kill -9 of a broker, kill -9 of the active controller, and how long
//! a restarted broker and controller take to load the image of N partitions. Both systems get the same
//! server.properties (session, heartbeat and election timeouts included). With `--load-partitions`, each
//! system also loads an image of that many partitions held by phantom brokers (`election_bench/load.rs`):
//! creation, a restarted broker's and a restarted controller's metadata load, RSS. With
//! `--image-partitions`, one Kraftwerk controller is filled with that many partitions for its memory and
//! snapshot restart time.
//!
//! Prints Markdown tables (median, min–max, Kraftwerk's advantage) and, with `--out`, writes them and an SVG
//! plot. Nothing here asserts a speed.

// The parts live in election_bench/ next to this file (the binary's path is fixed as src/bin/election_bench.rs).
#[path = "election_bench/client.rs"]
mod client;
#[path = "election_bench/image.rs"]
mod image;
#[path = "election_bench/load.rs"]
mod load;
#[path = "election_bench/phantom.rs"]
mod phantom;
#[path = "election_bench/procs.rs"]
mod procs;
#[path = "election_bench/report.rs"]
mod report;
#[path = "election_bench/scenarios.rs"]
mod scenarios;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;

use procs::{Flavor, Timeouts};
use report::Results;
use scenarios::RunSpec;

#[derive(Parser, Debug)]
#[command(
    about = "Partition-election benchmark: Kraftwerk vs Apache Kafka, 3 controllers + 3 brokers"
)]
struct Args {
    /// The kraftwerk binary (default: $KRAFTWERK_BIN or the target dir, as the tests find it).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Systems to run: kraftwerk, kafka.
    #[arg(long, value_delimiter = ',', default_value = "kraftwerk,kafka")]
    systems: Vec<String>,
    /// Partition counts (RF=3).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    partitions: Vec<usize>,
    /// Runs per system and N (a fresh cluster each time); one value per N in `--partitions`, the last one
    /// repeating (`3,1`: three runs at the first N, one at the others).
    #[arg(long, value_delimiter = ',', default_value = "3")]
    runs: Vec<usize>,
    /// Partitions per topic (one CreateTopics request per topic).
    #[arg(long, default_value_t = 1000)]
    per_topic: usize,
    /// Stop each run after topic creation (to profile creation alone; the other metrics are n/a).
    #[arg(long)]
    creation_only: bool,
    /// Leave the partitions empty after creation (by default one record goes to each, so that both systems
    /// restart with a log with data on disk per replica, made before the measurements start: Kraftwerk makes a
    /// partition's directory in the background after creation, or at its first write if that comes sooner).
    #[arg(long)]
    no_fill: bool,
    /// `broker.session.timeout.ms` for both systems.
    #[arg(long, default_value_t = 3000)]
    session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms` for both systems.
    #[arg(long, default_value_t = 500)]
    heartbeat_interval_ms: u64,
    /// `controller.quorum.election.timeout.ms` for both systems.
    #[arg(long, default_value_t = 1000)]
    election_timeout_ms: u64,
    /// Heap of each Kafka JVM (-Xms and -Xmx).
    #[arg(long, default_value = "512m")]
    kafka_heap: String,
    /// Longest any single wait may take, in seconds.
    #[arg(long, default_value_t = 900)]
    wait_s: u64,
    /// Where the clusters' temporary directories go.
    #[arg(long, default_value = "/tmp")]
    work_dir: PathBuf,
    /// Write `<out>.md` and `<out>.svg` (e.g. benches/results/2026-12-04-elections).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the election runs (`--partitions`): only the load scenario and the image test run.
    #[arg(long)]
    no_elections: bool,
    /// Partition counts of the metadata-load scenario (three controllers, one real broker hosting no
    /// replica, three phantom brokers holding every replica); none by default.
    #[arg(long, value_delimiter = ',')]
    load_partitions: Vec<usize>,
    /// Runs of the load scenario per system and N (systems interleaved).
    #[arg(long, default_value_t = 1)]
    load_runs: usize,
    /// Partitions in the one-controller image test (0: skip).
    #[arg(long, default_value_t = 0)]
    image_partitions: usize,
    /// Start each cluster without the filesystem pause (for the smoke tests: a run's figures then depend on
    /// what the previous run removed).
    #[arg(long)]
    no_settle: bool,
    /// Free text for the report header (machine load, what else ran).
    #[arg(long, default_value = "")]
    note: String,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = match &args.bin {
        Some(b) => std::fs::canonicalize(b)?,
        None => kraftwerk_tests::binary::kraftwerk_binary().map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let timeouts = Timeouts {
        session_ms: args.session_timeout_ms,
        heartbeat_ms: args.heartbeat_interval_ms,
        election_ms: args.election_timeout_ms,
    };
    let mut flavors = Vec::new();
    let mut kafka_version = String::new();
    for s in &args.systems {
        match s.as_str() {
            "kraftwerk" => flavors.push(Flavor::Kraftwerk { bin: bin.clone() }),
            "kafka" => {
                let classpath = kraftwerk_tests::apache_kafka::ensure_classpath()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                kafka_version = kraftwerk_tests::apache_kafka::kafka_version()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                flavors.push(Flavor::Kafka {
                    classpath,
                    heap: args.kafka_heap.clone(),
                });
            }
            other => bail!("unknown system {other:?} (kraftwerk or kafka)"),
        }
    }
    let load_before = load_average();
    let started = chrono_like_now();
    let mut results: Results = BTreeMap::new();
    let mut failures = Vec::new();
    settle_filesystem(args.no_settle);
    let sizes: &[usize] = if args.no_elections {
        &[]
    } else {
        &args.partitions
    };
    for (i, &n) in sizes.iter().enumerate() {
        let runs = args.runs.get(i).or(args.runs.last()).copied().unwrap_or(1);
        let spec = RunSpec {
            partitions: n,
            per_topic: args.per_topic,
            creation_only: args.creation_only,
            fill: !args.no_fill,
            timeouts,
            wait: Duration::from_secs(args.wait_s),
        };
        for run in 0..runs {
            for flavor in &flavors {
                let name = flavor.name();
                eprintln!("==> {name}, N={n}, run {}/{runs}", run + 1);
                match scenarios::run(flavor.clone(), &spec, &args.work_dir, &format!("r{run}")) {
                    Ok(f) => results.entry((name.to_string(), n)).or_default().push(f),
                    Err(e) => failures.push(format!("{name} N={n} run {}: {e:#}", run + 1)),
                }
                settle_filesystem(args.no_settle);
            }
        }
    }
    let mut load_results: Results = BTreeMap::new();
    for &n in &args.load_partitions {
        let spec = load::LoadSpec {
            partitions: n,
            per_topic: args.per_topic,
            timeouts,
            wait: Duration::from_secs(args.wait_s),
        };
        for run in 0..args.load_runs {
            for flavor in &flavors {
                let name = flavor.name();
                eprintln!("==> {name}, load N={n}, run {}/{}", run + 1, args.load_runs);
                match load::run(flavor.clone(), &spec, &args.work_dir) {
                    Ok(f) => load_results
                        .entry((name.to_string(), n))
                        .or_default()
                        .push(f),
                    Err(e) => failures.push(format!("{name} load N={n} run {}: {e:#}", run + 1)),
                }
                settle_filesystem(args.no_settle);
            }
        }
    }
    let image = if args.image_partitions > 0 {
        match image::run(
            &bin,
            args.image_partitions,
            args.per_topic,
            timeouts,
            &args.work_dir,
        ) {
            Ok(f) => Some(f),
            Err(e) => {
                failures.push(format!("image test: {e:#}"));
                None
            }
        }
    } else {
        None
    };

    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Partition elections: Kraftwerk vs Apache Kafka {kafka_version}, {started}\n"
    );
    let _ = writeln!(
        md,
        "{} as separate processes on loopback, for each system in turn \
         (runs interleaved, one cluster at a time{}), on {} cores; kraftwerk {}; Kafka JVMs with \
         -Xms{h} -Xmx{h} (G1, kafka-server-start.sh flags). Both get broker.session.timeout.ms={}, \
         broker.heartbeat.interval.ms={}, controller.quorum.election.timeout.ms={}, \
         auto.leader.rebalance.enable=false; topics of {} partitions, one CreateTopics per topic. \
         Load average before {load_before}, after {}.{}",
        if args.no_elections {
            "Three controllers and one broker (the metadata-load scenario only)"
        } else {
            "Three controllers and three brokers"
        },
        if args.no_settle {
            ""
        } else {
            ", each removed cluster followed by a sync and a pause of vm.dirty_expire_centisecs + 5 s \
             so the next one starts on a settled filesystem"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        bin.display(),
        args.session_timeout_ms,
        args.heartbeat_interval_ms,
        args.election_timeout_ms,
        args.per_topic,
        load_average(),
        if args.note.is_empty() {
            String::new()
        } else {
            format!(" {}", args.note)
        },
        h = args.kafka_heap,
    );
    let _ = writeln!(
        md,
        "\nKraftwerk advantage: Kraftwerk / Kafka for rates, Kafka / Kraftwerk for times and memory \
         (above 1: Kraftwerk better). Each figure is the median over the runs with the min–max."
    );
    md.push_str(&report::markdown(&results, sizes));
    md.push_str(&load::markdown(
        &load_results,
        &args.load_partitions,
        args.per_topic,
    ));
    if let Some(img) = &image {
        let _ = writeln!(
            md,
            "\n### One Kraftwerk controller holding {} partitions (RF=3)\n\n\
             | metric | value |\n|---|---|\n\
             | partitions created (10 topics of {} per CreateTopics) | {:.1} s ({:.0} partitions/s) |\n\
             | controller RSS with the image | {:.0} MiB (peak {:.0} MiB) |\n\
             | snapshots / metadata log on disk | {:.1} MiB / {:.1} MiB |\n\
             | restart (SIGTERM, spawn → `kraftwerk started`) | {:.2} s |\n\
             | RSS right after the restart | {:.0} MiB |",
            img.partitions,
            args.per_topic,
            img.create_s,
            img.partitions as f64 / img.create_s,
            img.rss_mib,
            img.hwm_mib,
            img.snapshot_mib,
            img.log_mib,
            img.restart_s,
            img.rss_after_restart_mib
        );
    }
    if !failures.is_empty() {
        let _ = writeln!(md, "\n### Runs that failed\n");
        for f in &failures {
            let first = f.lines().next().unwrap_or_default();
            let _ = writeln!(md, "- {first}");
        }
    }
    println!("{md}");
    if let Some(out) = &args.out {
        let md_path = out.with_extension("md");
        std::fs::write(&md_path, &md)?;
        if results.is_empty() {
            eprintln!("written {}", md_path.display());
        } else {
            let svg = out.with_extension("svg");
            report::plot(&results, sizes, &svg)?;
            eprintln!("written {} and {}", md_path.display(), svg.display());
        }
    }
    if !failures.is_empty() {
        bail!("{} run(s) failed:\n{}", failures.len(), failures.join("\n"));
    }
    Ok(())
}

/// UTC date and time from the system clock, without a date crate.
fn chrono_like_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Lets the filesystem settle after a cluster's directory was removed, before the next cluster starts: every
/// run removes tens of thousands of files, and on ext4 the next run's file creations pay for them (its inode
/// allocator skips, and re-reads, inodes deleted within the last `vm.dirty_expire_centisecs`, and without a
/// journal the freed blocks are discarded meanwhile). Without this pause each system's creation figure depended
/// on how many files the other system's previous run had just removed. So: `sync`, then wait out that window.
fn settle_filesystem(skip: bool) {
    if skip {
        return;
    }
    let expire_s = std::fs::read_to_string("/proc/sys/vm/dirty_expire_centisecs")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(30, |cs| cs.div_ceil(100));
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let pause = Duration::from_secs(expire_s + 5);
    eprintln!("(letting the filesystem settle for {} s)", pause.as_secs());
    std::thread::sleep(pause);
}
