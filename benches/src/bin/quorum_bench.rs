//! kraftwerk-quorum-bench: the controller quorum measured as separate processes on loopback.
//!
//! Starts three controllers (`process.roles=controller`) and one broker (`process.roles=broker`) and reports:
//! - metadata writes per second with three voters (each CreateTopics is one raft entry, fsynced on every voter),
//!   sent through the broker, which forwards them to the active controller, from `--clients` concurrent clients;
//! - failover: the time from kill -9 of the active controller until a CreateTopics sent to the broker succeeds,
//!   over `--kills` kills (the killed controller is restarted and given time to rejoin before the next);
//! - restart time of a controller whose image holds `--partitions` partitions: from spawn until it logs that it
//!   started. Run it with the default `--snapshot-bytes` (the controller loads its newest snapshot and replays
//!   only what follows) and with a huge one (no snapshot: the whole log is replayed) to compare.
//!
//! Every figure is printed as a table; nothing here asserts a speed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{CreateTopicsRequest, DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_tests::ports::free_ports;
use kraftwerk_tests::wire::Connection;

#[derive(Parser, Debug)]
#[command(about = "Controller quorum benchmark: writes/s, failover time, restart time")]
struct Args {
    /// The kraftwerk binary (build with `cargo build --release --bin kraftwerk`).
    #[arg(long, default_value = "target/release/kraftwerk")]
    bin: PathBuf,
    /// Concurrent clients creating topics.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// How long the write-throughput phase runs.
    #[arg(long, default_value_t = 10)]
    write_seconds: u64,
    /// Active-controller kills for the failover figure.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// Partitions in the image for the restart figure (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    partitions: i32,
    /// `controller.quorum.election.timeout.ms`.
    #[arg(long, default_value_t = 1000)]
    election_timeout_ms: u64,
    /// `metadata.log.max.record.bytes.between.snapshots` (a huge value measures a restart without snapshots).
    #[arg(long, default_value_t = 20_971_520)]
    snapshot_bytes: u64,
}

struct Node {
    id: i32,
    dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn spawn(&mut self, bin: &Path) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning node {}", self.id))?;
        self.child = Some(child);
        Ok(())
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Cluster {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    controllers: Vec<Node>,
    broker: Node,
    broker_addr: SocketAddr,
}

impl Cluster {
    fn start(args: &Args) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("kraftwerk-quorum-bench-")
            .tempdir()?;
        let ports = free_ports(4).map_err(|e| anyhow::anyhow!("{e}"))?;
        let voters = (0..3)
            .map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[i]))
            .collect::<Vec<_>>()
            .join(",");
        let bin = std::fs::canonicalize(&args.bin)
            .with_context(|| format!("no kraftwerk binary at {}", args.bin.display()))?;
        let out = Command::new(&bin).arg("random-uuid").output()?;
        let cluster_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let common = format!(
            "controller.quorum.voters={voters}\ncontroller.listener.names=CONTROLLER\n\
             controller.quorum.election.timeout.ms={}\nbroker.session.timeout.ms=6000\n\
             broker.heartbeat.interval.ms=1000\noffsets.topic.replication.factor=1\n\
             metadata.log.max.record.bytes.between.snapshots={}\n",
            args.election_timeout_ms, args.snapshot_bytes
        );
        let make = |id: i32, extra: String| -> Result<Node> {
            let node_dir = dir.path().join(format!("node{id}"));
            std::fs::create_dir_all(&node_dir)?;
            let config = node_dir.join("server.properties");
            std::fs::write(
                &config,
                format!(
                    "node.id={id}\nlog.dirs={}\n{common}{extra}",
                    node_dir.join("data").display()
                ),
            )?;
            let status = Command::new(&bin)
                .arg("format")
                .arg("--config")
                .arg(&config)
                .arg(format!("--cluster-id={cluster_id}"))
                .stdout(Stdio::null())
                .status()?;
            if !status.success() {
                bail!("format of node {id} failed");
            }
            Ok(Node {
                id,
                log: node_dir.join("kraftwerk.log"),
                dir: node_dir,
                config,
                child: None,
            })
        };
        let mut controllers = Vec::new();
        for (id, port) in (1..=3).zip(&ports) {
            controllers.push(make(
                id,
                format!("process.roles=controller\nlisteners=CONTROLLER://127.0.0.1:{port}\n"),
            )?);
        }
        let broker = make(
            100,
            format!(
                "process.roles=broker\nlisteners=PLAINTEXT://127.0.0.1:{}\n",
                ports[3]
            ),
        )?;
        let mut cluster = Cluster {
            _dir: dir,
            bin,
            controllers,
            broker,
            broker_addr: SocketAddr::from(([127, 0, 0, 1], ports[3])),
        };
        for c in &mut cluster.controllers {
            c.spawn(&cluster.bin)?;
        }
        cluster.broker.spawn(&cluster.bin)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Connection::connect(cluster.broker_addr, Duration::from_secs(1)).is_err() {
            if Instant::now() > deadline {
                bail!("broker did not start:\n{}", cluster.broker.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(cluster)
    }

    /// The active controller, from DescribeQuorum through the broker.
    fn leader(&self) -> Result<i32> {
        let mut conn = Connection::connect(self.broker_addr, Duration::from_secs(10))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut partition = PartitionData::default();
        partition.partition_index = 0;
        let mut topic = TopicData::default();
        topic.topic_name = TopicName(StrBytes::from_static_str("__cluster_metadata"));
        topic.partitions = vec![partition];
        let mut req = DescribeQuorumRequest::default();
        req.topics = vec![topic];
        let resp = conn
            .request(1, &req)
            .map_err(|e| anyhow::anyhow!("DescribeQuorum: {e}"))?;
        let p = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .context("empty DescribeQuorum answer")?;
        if p.error_code != 0 {
            bail!("DescribeQuorum error {}", p.error_code);
        }
        Ok(p.leader_id.0)
    }
}

/// One CreateTopics of `names` (each `partitions` partitions, replication factor 1); true if all succeeded.
/// With `exists_ok`, TOPIC_ALREADY_EXISTS counts as success (a retry of a creation that did commit).
fn create_topics(
    conn: &mut Connection,
    names: &[String],
    partitions: i32,
    exists_ok: bool,
) -> Result<bool> {
    let mut req = CreateTopicsRequest::default();
    req.timeout_ms = 30_000;
    req.topics = names
        .iter()
        .map(|n| {
            let mut t = CreatableTopic::default();
            t.name = TopicName(StrBytes::from_string(n.clone()));
            t.num_partitions = partitions;
            t.replication_factor = 1;
            t
        })
        .collect();
    let resp = conn
        .request(5, &req)
        .map_err(|e| anyhow::anyhow!("CreateTopics: {e}"))?;
    for t in resp.topics.iter().filter(|t| t.error_code != 0) {
        eprintln!(
            "CreateTopics {}: error {} {:?}",
            t.name.0.as_str(),
            t.error_code,
            t.error_message.as_ref().map(|m| m.as_str())
        );
    }
    Ok(resp
        .topics
        .iter()
        .all(|t| t.error_code == 0 || (exists_ok && t.error_code == 36)))
}

fn writes_per_second(cluster: &Cluster, args: &Args) -> Result<(u64, f64)> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..args.clients)
        .map(|c| {
            let (done, stop, addr) = (done.clone(), stop.clone(), cluster.broker_addr);
            std::thread::spawn(move || -> Result<()> {
                let mut conn = Connection::connect(addr, Duration::from_secs(30))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if create_topics(&mut conn, &[format!("w-{c}-{i}")], 1, false)? {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(args.write_seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
    }
    let n = done.load(Ordering::Relaxed);
    Ok((n, n as f64 / started.elapsed().as_secs_f64()))
}

fn failover_times(cluster: &mut Cluster, args: &Args) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    for k in 0..args.kills {
        let leader = cluster.leader()?;
        let idx = usize::try_from(leader - 1).context("leader id")?;
        let killed_at = Instant::now();
        cluster.controllers[idx].kill9();
        let mut conn = Connection::connect(cluster.broker_addr, Duration::from_secs(30))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if create_topics(&mut conn, &[format!("failover-{k}-{attempt}")], 1, false)? {
                break;
            }
            if killed_at.elapsed() > Duration::from_secs(60) {
                bail!("no write accepted within 60 s of killing controller {leader}");
            }
        }
        let took = killed_at.elapsed();
        println!("kill {k}: controller {leader} killed, write accepted after {took:?}");
        times.push(took);
        let c = &mut cluster.controllers[idx];
        c.spawn(&cluster.bin)?;
        // Let it rejoin and catch up before the next kill.
        std::thread::sleep(Duration::from_secs(3));
    }
    Ok(times)
}

/// Restart time of a follower controller, and the bytes of its metadata log segments and snapshots then.
fn restart_time(cluster: &mut Cluster, args: &Args) -> Result<(Duration, u64, u64)> {
    let mut conn = Connection::connect(cluster.broker_addr, Duration::from_secs(60))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let per_topic = 1000.min(args.partitions);
    let topics = args.partitions / per_topic;
    for t in 0..topics {
        // Retried: a topic whose first attempt timed out in the client may already exist (error 36).
        let name = format!("big-{t}");
        let started = Instant::now();
        let mut attempts = 0;
        while !create_topics(
            &mut conn,
            std::slice::from_ref(&name),
            per_topic,
            attempts > 0,
        )? {
            attempts += 1;
            if attempts >= 5 {
                bail!("creating {name} failed 5 times");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if t % 10 == 0 {
            eprintln!(
                "created {name} ({per_topic} partitions) in {:?}",
                started.elapsed()
            );
        }
    }
    let leader = cluster.leader()?;
    let idx = (0..3)
        .find(|&i| i as i32 + 1 != leader)
        .context("a follower")?;
    let node = &mut cluster.controllers[idx];
    if let Some(child) = node.child.as_mut() {
        // SIGTERM for a clean close, then restart.
        sigterm(child.id());
        let _ = child.wait();
    }
    node.child = None;
    let before = node.log_text().matches("kraftwerk started").count();
    let log_bytes = dir_size(&node.dir.join("data").join("__cluster_metadata-0"), ".log");
    let snapshot_bytes = dir_size(
        &node.dir.join("data").join("__cluster_metadata-0"),
        ".checkpoint",
    );
    let spawned = Instant::now();
    node.spawn(&cluster.bin)?;
    loop {
        if node.log_text().matches("kraftwerk started").count() > before {
            return Ok((spawned.elapsed(), log_bytes, snapshot_bytes));
        }
        if spawned.elapsed() > Duration::from_secs(300) {
            bail!("controller did not restart within 300 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

/// Total size of the files in `dir` whose name ends with `suffix`.
fn dir_size(dir: &Path, suffix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut cluster = Cluster::start(&args)?;
    println!(
        "3 controllers + 1 broker up; active controller {}",
        cluster.leader()?
    );
    let (writes, rate) = writes_per_second(&cluster, &args)?;
    println!(
        "writes: {writes} CreateTopics in {} s from {} clients",
        args.write_seconds, args.clients
    );
    let times = failover_times(&mut cluster, &args)?;
    let restart = if args.partitions > 0 {
        Some(restart_time(&mut cluster, &args)?)
    } else {
        None
    };
    println!("\n| measure | value |\n|---|---|");
    println!(
        "| metadata writes/s (3 voters, fsync each, via a broker, {} clients) | {rate:.0} |",
        args.clients
    );
    if !times.is_empty() {
        let min = times.iter().min().copied().unwrap_or_default();
        let max = times.iter().max().copied().unwrap_or_default();
        println!(
            "| failover: kill -9 of the active controller to the next accepted write (median of {}) | {:?} (min {:?}, max {:?}) |",
            times.len(),
            median(times.clone()),
            min,
            max
        );
    }
    if let Some((took, log, snapshots)) = restart {
        println!(
            "| restart of a controller with {} partitions (metadata log segments {:.1} MiB, snapshots {:.1} MiB, snapshot every {} bytes) | {took:?} |",
            args.partitions,
            log as f64 / (1 << 20) as f64,
            snapshots as f64 / (1 << 20) as f64,
            args.snapshot_bytes
        );
    }
    Ok(())
}
