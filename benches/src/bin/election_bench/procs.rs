//! Three controllers and three brokers as separate processes, for Kraftwerk or for Apache Kafka: the same
//! server.properties keys (Kraftwerk reads Kafka's), the same ports layout and session timeouts, each node in
//! its own directory with its own log. Only formatting, the command line and the "started" log line differ.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kraftwerk_tests::ports::free_ports;

/// Which broker implementation runs.
#[derive(Debug, Clone)]
pub enum Flavor {
    /// The `kraftwerk` binary.
    Kraftwerk { bin: PathBuf },
    /// `java kafka.Kafka` from the Maven Central jars, with a fixed heap.
    Kafka { classpath: String, heap: String },
}

impl Flavor {
    pub fn name(&self) -> &'static str {
        match self {
            Flavor::Kraftwerk { .. } => "kraftwerk",
            Flavor::Kafka { .. } => "kafka",
        }
    }

    /// The line a node logs once it has started (Kafka's `KafkaBroker.STARTED_MESSAGE`, logged by
    /// KafkaRaftServer at INFO, which the JVM flags below let through).
    fn started_line(&self) -> &'static str {
        match self {
            Flavor::Kraftwerk { .. } => "kraftwerk started",
            Flavor::Kafka { .. } => "Kafka Server started",
        }
    }

    fn random_uuid(&self) -> Result<String> {
        let out = match self {
            Flavor::Kraftwerk { bin } => Command::new(bin).arg("random-uuid").output()?,
            Flavor::Kafka { classpath, .. } => Command::new("java")
                .args([
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                    "-cp",
                    classpath,
                ])
                .args(["kafka.tools.StorageTool", "random-uuid"])
                .output()?,
        };
        if !out.status.success() {
            bail!(
                "random-uuid failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn format(&self, config: &Path, cluster_id: &str) -> Result<()> {
        let out = match self {
            Flavor::Kraftwerk { bin } => Command::new(bin)
                .arg("format")
                .arg("--config")
                .arg(config)
                .arg(format!("--cluster-id={cluster_id}"))
                .env("RUST_LOG", "warn")
                .output()?,
            Flavor::Kafka { classpath, .. } => Command::new("java")
                .args([
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                    "-cp",
                    classpath,
                ])
                .args(["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c"])
                .arg(config)
                .output()?,
        };
        if !out.status.success() {
            bail!(
                "format of {} failed: {}{}",
                config.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn command(&self, config: &Path) -> Command {
        match self {
            Flavor::Kraftwerk { bin } => {
                let mut c = Command::new(bin);
                // `ELECTION_BENCH_RUST_LOG` (e.g. `info,kraftwerk_broker::replica=debug`) is for finding where
                // a run's time goes from the node logs; the figures are taken at the default `info`.
                let filter =
                    std::env::var("ELECTION_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into());
                c.arg("--config")
                    .arg(config)
                    .env("RUST_LOG", filter)
                    .env("NO_COLOR", "1");
                c
            }
            Flavor::Kafka { classpath, heap } => {
                let mut c = Command::new("java");
                // kafka-server-start.sh's JVM flags, with the heap given.
                c.arg(format!("-Xms{heap}"))
                    .arg(format!("-Xmx{heap}"))
                    .args([
                        "-server",
                        "-XX:+UseG1GC",
                        "-XX:MaxGCPauseMillis=20",
                        "-XX:InitiatingHeapOccupancyPercent=35",
                        "-XX:+ExplicitGCInvokesConcurrent",
                        "-Djava.awt.headless=true",
                        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                        "-Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info",
                        "-Dorg.slf4j.simpleLogger.showDateTime=true",
                        "-cp",
                        classpath,
                        "kafka.Kafka",
                    ])
                    .arg(config);
                c
            }
        }
    }
}

/// Timeouts and settings both systems get.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub session_ms: u64,
    pub heartbeat_ms: u64,
    pub election_ms: u64,
}

/// One node process.
pub struct Node {
    pub id: i32,
    pub is_broker: bool,
    pub port: u16,
    pub dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    log_offset: u64,
    pub spawned_at: Option<Instant>,
}

impl Node {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process has exited (reaping it); `true` if there is no process.
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => false,
            Some(Ok(Some(_))) | Some(Err(_)) | None => true,
        }
    }

    fn spawn(&mut self, flavor: &Flavor) -> Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        self.log_offset = log.metadata()?.len();
        let child = flavor
            .command(&self.config)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning node {}", self.id))?;
        self.child = Some(child);
        self.spawned_at = Some(Instant::now());
        Ok(())
    }

    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    pub fn sigterm(&mut self) -> Result<()> {
        let pid = self.pid().context("node not running")?;
        let pid = libc::pid_t::try_from(pid)?;
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            bail!(
                "SIGTERM to node {}: {}",
                self.id,
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit after a signal.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while !self.has_exited() {
            if start.elapsed() > timeout {
                bail!("node {} did not exit within {timeout:?}", self.id);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.child = None;
        Ok(())
    }

    /// What the current process logged.
    pub fn log_since_spawn(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let from = usize::try_from(self.log_offset).unwrap_or(0);
        String::from_utf8_lossy(bytes.get(from..).unwrap_or_default()).into_owned()
    }

    pub fn log_tail(&self) -> String {
        let log = self.log_since_spawn();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Resident memory of the process in KiB (VmRSS), 0 if unknown.
    pub fn rss_kib(&self) -> u64 {
        self.pid()
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// Three controllers (ids 1-3) and brokers (ids 100, 101, ...) of one flavor.
pub struct ProcCluster {
    pub flavor: Flavor,
    /// The id every node was formatted with (stand-in brokers register with it).
    pub cluster_id: String,
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl ProcCluster {
    /// Three controllers and three brokers: returns once every broker answers Metadata listing all three.
    pub fn start(flavor: Flavor, t: Timeouts, work_dir: &Path, ready: Duration) -> Result<Self> {
        Self::start_with(flavor, t, work_dir, ready, 3)
    }

    /// Writes, formats and starts three controllers and `brokers` brokers (ids from 100); returns once every
    /// broker answers Metadata listing all of them.
    pub fn start_with(
        flavor: Flavor,
        t: Timeouts,
        work_dir: &Path,
        ready: Duration,
        brokers: usize,
    ) -> Result<Self> {
        let mut dir = tempfile::Builder::new()
            .prefix(&format!("election-bench-{}-", flavor.name()))
            .tempdir_in(work_dir)?;
        // `ELECTION_BENCH_KEEP=1` leaves the nodes' directories and logs behind, for reading afterwards.
        if std::env::var_os("ELECTION_BENCH_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping {}", dir.path().display());
        }
        let ports = free_ports(3 + brokers).map_err(|e| anyhow::anyhow!("{e}"))?;
        let voters = (0..3)
            .map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[i]))
            .collect::<Vec<_>>()
            .join(",");
        let cluster_id = flavor.random_uuid()?;
        let mut nodes = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let is_broker = i >= 3;
            let id = if is_broker {
                100 + i as i32 - 3
            } else {
                i as i32 + 1
            };
            let node_dir = dir.path().join(format!("node{id}"));
            std::fs::create_dir_all(&node_dir)?;
            let config = node_dir.join("server.properties");
            let role = if is_broker {
                format!(
                    "process.roles=broker\nlisteners=PLAINTEXT://127.0.0.1:{port}\n\
                     advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                     inter.broker.listener.name=PLAINTEXT\n"
                )
            } else {
                format!("process.roles=controller\nlisteners=CONTROLLER://127.0.0.1:{port}\n")
            };
            std::fs::write(
                &config,
                format!(
                    "node.id={id}\n{role}controller.quorum.voters={voters}\n\
                     controller.listener.names=CONTROLLER\n\
                     listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                     log.dirs={}\n\
                     broker.session.timeout.ms={}\nbroker.heartbeat.interval.ms={}\n\
                     controller.quorum.election.timeout.ms={}\n\
                     auto.create.topics.enable=false\nauto.leader.rebalance.enable=false\n\
                     num.partitions=1\ndefault.replication.factor=3\n\
                     offsets.topic.replication.factor=3\n",
                    node_dir.join("data").display(),
                    t.session_ms,
                    t.heartbeat_ms,
                    t.election_ms
                ),
            )?;
            flavor.format(&config, &cluster_id)?;
            nodes.push(Node {
                id,
                is_broker,
                port: *port,
                log: node_dir.join("node.log"),
                dir: node_dir,
                config,
                child: None,
                log_offset: 0,
                spawned_at: None,
            });
        }
        let mut cluster = ProcCluster {
            flavor,
            cluster_id,
            nodes,
            _dir: dir,
        };
        for i in 0..cluster.nodes.len() {
            let flavor = cluster.flavor.clone();
            cluster.nodes[i].spawn(&flavor)?;
        }
        let start = Instant::now();
        loop {
            let mut missing = Vec::new();
            for b in cluster.brokers() {
                match crate::client::Client::connect(b.addr()).and_then(|mut c| c.broker_ids()) {
                    Ok(ids) if ids.len() == brokers => {}
                    Ok(ids) => missing.push(format!("broker {} lists {ids:?}", b.id)),
                    Err(e) => missing.push(format!("broker {}: {e}", b.id)),
                }
            }
            if missing.is_empty() {
                break;
            }
            for n in &mut cluster.nodes {
                if n.has_exited() {
                    bail!("node {} exited at start:\n{}", n.id, n.log_tail());
                }
            }
            if start.elapsed() > ready {
                bail!("cluster not ready after {ready:?}: {}", missing.join("; "));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(cluster)
    }

    pub fn controllers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| !n.is_broker)
    }

    pub fn brokers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_broker)
    }

    pub fn node(&self, id: i32) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn node_mut(&mut self, id: i32) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Spawns node `id` again on its directory.
    pub fn respawn(&mut self, id: i32) -> Result<()> {
        let flavor = self.flavor.clone();
        self.node_mut(id).spawn(&flavor)
    }

    /// Whether node `id` has logged its started line since it was spawned.
    pub fn logged_started(&self, id: i32) -> bool {
        self.node(id)
            .log_since_spawn()
            .contains(self.flavor.started_line())
    }
}
