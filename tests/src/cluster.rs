//! Running a multi-process Kraftwerk cluster: several `kraftwerk` processes, each with its own temp dir,
//! ports, server.properties and log, formatted with one shared cluster id and joined into one controller
//! quorum (`controller.quorum.voters`).
//!
//! Nodes are either combined (`process.roles=broker,controller`, ids 1..=n) or separate controllers (ids
//! 1..=n) and brokers (ids 100, 101, ...). The harness starts every process before waiting for any of them,
//! since a broker cannot register (and so does not open its client listener) until the quorum has an active
//! controller. Readiness is the wire protocol (every broker answers Metadata listing every broker); the
//! active controller is found from the `controller role changed` log lines, the only place a controller-only
//! node tells it.
//!
//! Every wait is bounded. Dropping a [`Cluster`] kills its processes, and if the thread is panicking (a
//! failed test) prints the tail of every node's log first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataResponse;

use crate::binary::kraftwerk_binary;
use crate::broker::{strip_ansi, STOP_TIMEOUT};
use crate::error::HarnessError;
use crate::netns::NodeHost;
use crate::ports::free_ports;
use crate::properties::ServerProperties;
use crate::security::ClientSecurity;
use crate::wire::{probe_metadata, probe_metadata_on, Connection};

/// `controller.quorum.election.timeout.ms` the harness sets (Kafka's default is 1000).
pub const ELECTION_TIMEOUT_MS: u64 = 500;
/// `broker.session.timeout.ms` the harness sets (Kafka's default is 9000).
pub const SESSION_TIMEOUT_MS: u64 = 3000;
/// `broker.heartbeat.interval.ms` the harness sets (Kafka's default is 2000).
pub const HEARTBEAT_INTERVAL_MS: u64 = 500;
/// How long starting (or restarting) the whole cluster may take on a busy 2-core machine.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one node may take from spawn to serving.
pub const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long finding the one active controller may take (an election after a crash included).
pub const ACTIVE_CONTROLLER_TIMEOUT: Duration = Duration::from_secs(30);
/// The first broker id in a cluster with separate roles.
pub const FIRST_BROKER_ID: i32 = 100;
/// How much of each node's log a failed test prints.
const LOG_ON_PANIC_BYTES: usize = 24 * 1024;
/// How much of a node's log an error message quotes.
const LOG_TAIL_BYTES: usize = 4 * 1024;
/// The log line a controller writes when its raft role changes.
pub const ROLE_LINE: &str = "controller role changed";
/// The log line every node writes once it serves.
pub const STARTED_LINE: &str = "kraftwerk started";

/// What a node runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `process.roles=broker,controller`.
    Combined,
    /// `process.roles=controller`: only the CONTROLLER listener.
    Controller,
    /// `process.roles=broker`: only the client listener (PLAINTEXT unless `ClusterBuilder::client_listener` says otherwise).
    Broker,
}

impl Role {
    fn process_roles(self) -> &'static str {
        match self {
            Role::Combined => "broker,controller",
            Role::Controller => "controller",
            Role::Broker => "broker",
        }
    }

    /// Whether the node serves Kafka clients.
    pub fn is_broker(self) -> bool {
        matches!(self, Role::Combined | Role::Broker)
    }

    /// Whether the node is a quorum voter.
    pub fn is_controller(self) -> bool {
        matches!(self, Role::Combined | Role::Controller)
    }
}

/// Configures a cluster before starting it.
#[derive(Debug, Clone, Default)]
pub struct ClusterBuilder {
    combined: usize,
    controllers: usize,
    brokers: usize,
    props: Vec<(String, String)>,
    rust_log: Option<String>,
    ready_timeout: Option<Duration>,
    hosts: Vec<NodeHost>,
    format_args: Vec<String>,
    broker_listener: Option<String>,
    client_listener: Option<(String, ClientSecurity)>,
}

impl ClusterBuilder {
    /// `n` combined broker+controller nodes, ids 1..=n.
    pub fn combined(mut self, n: usize) -> Self {
        self.combined = n;
        self
    }

    /// `n` controller-only nodes, ids 1..=n.
    pub fn controllers(mut self, n: usize) -> Self {
        self.controllers = n;
        self
    }

    /// `m` broker-only nodes, ids 100, 101, ...
    pub fn brokers(mut self, m: usize) -> Self {
        self.brokers = m;
        self
    }

    /// Sets a server.properties key on every node (replacing the harness default, if any). `{id}` in the value
    /// becomes the node's id (`broker.rack=rack-{id}` gives each node a rack of its own).
    pub fn prop(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.props.push((key.into(), value.into()));
        self
    }

    /// An extra argument to `kraftwerk format` for every node (`--add-scram`, then its value).
    pub fn format_arg(mut self, arg: impl Into<String>) -> Self {
        self.format_args.push(arg.into());
        self
    }

    /// Every broker also listens (and advertises) `name` on a port of its own, besides the client listener
    /// the harness and tests use; its protocol is whatever `listener.security.protocol.map` (set with
    /// [`Self::prop`]) gives it — e.g. a SASL inter-broker listener (`inter.broker.listener.name`).
    pub fn second_broker_listener(mut self, name: impl Into<String>) -> Self {
        self.broker_listener = Some(name.into());
        self
    }

    /// The brokers' client listener (the one the harness probes and [`Cluster::bootstrap`] names) is called
    /// `name` and reached with `security` instead of the default `PLAINTEXT` listener: the harness's wire
    /// client does the TLS handshake and SASL/PLAIN login, and tests give [`Cluster::client_props`] to their
    /// clients. The listener's settings (`listener.name.<name>....`, the protocol map) are set with
    /// [`Self::prop`]; by default the map names `name` with `security`'s protocol.
    pub fn client_listener(mut self, name: impl Into<String>, security: ClientSecurity) -> Self {
        self.client_listener = Some((name.into(), security));
        self
    }

    /// `RUST_LOG` for every node (default `info`: the harness reads info-level lines).
    pub fn rust_log(mut self, filter: impl Into<String>) -> Self {
        self.rust_log = Some(filter.into());
        self
    }

    /// Overrides [`DEFAULT_READY_TIMEOUT`].
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = Some(timeout);
        self
    }

    /// Where each node runs, in id order (voters, then brokers): its address (listeners bind and advertise
    /// it) and the network namespace to spawn it in (see [`crate::netns::NetLab`]). Default: loopback.
    pub fn hosts(mut self, hosts: Vec<NodeHost>) -> Self {
        self.hosts = hosts;
        self
    }

    /// Writes and formats every node, starts them all and waits until every broker answers Metadata listing
    /// every broker.
    pub fn start(self) -> Result<Cluster, HarnessError> {
        if self.combined > 0 && self.controllers > 0 {
            return Err(HarnessError::Cluster(
                "combined(n) and controllers(n) both give ids 1..=n; use one of them".into(),
            ));
        }
        let voter_count = self.combined + self.controllers;
        if voter_count == 0 {
            return Err(HarnessError::Cluster("a cluster needs controllers".into()));
        }
        if self.combined + self.brokers == 0 {
            return Err(HarnessError::Cluster("a cluster needs brokers".into()));
        }
        let voter_role = if self.combined > 0 {
            Role::Combined
        } else {
            Role::Controller
        };
        let mut specs: Vec<(i32, Role)> = (1..=voter_count)
            .map(|i| (i32::try_from(i).unwrap_or(i32::MAX), voter_role))
            .collect();
        specs.extend((0..self.brokers).map(|i| {
            (
                FIRST_BROKER_ID + i32::try_from(i).unwrap_or(0),
                Role::Broker,
            )
        }));
        if !self.hosts.is_empty() && self.hosts.len() != specs.len() {
            return Err(HarnessError::Cluster(format!(
                "{} hosts for {} nodes",
                self.hosts.len(),
                specs.len()
            )));
        }
        let per_node = if self.broker_listener.is_some() { 3 } else { 2 };
        let ports = free_ports(per_node * specs.len())?;
        let extra_ports: BTreeMap<i32, u16> = specs
            .iter()
            .zip(ports.chunks_exact(per_node))
            .filter_map(|((id, _), c)| c.get(2).map(|p| (*id, *p)))
            .collect();
        let binary = kraftwerk_binary()?;
        // KRAFTWERK_TEST_RUST_LOG raises (or lowers) every cluster's log level when diagnosing a failure.
        let rust_log = self
            .rust_log
            .or_else(|| std::env::var("KRAFTWERK_TEST_RUST_LOG").ok())
            .unwrap_or_else(|| "info".to_string());
        let cluster_id = random_uuid(&binary)?;
        let mut port_pairs = ports.chunks_exact(per_node).map(|c| (c[0], c[1]));
        let mut planned = Vec::with_capacity(specs.len());
        for (i, (id, role)) in specs.iter().enumerate() {
            let (broker_port, controller_port) = port_pairs
                .next()
                .ok_or_else(|| HarnessError::Cluster("free_ports returned too few ports".into()))?;
            let host = self
                .hosts
                .get(i)
                .cloned()
                .unwrap_or_else(NodeHost::loopback);
            planned.push((*id, *role, broker_port, controller_port, host));
        }
        let voters = planned
            .iter()
            .filter(|(_, role, _, _, _)| role.is_controller())
            .map(|(id, _, _, cport, host)| format!("{id}@{}:{cport}", host.addr))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            cluster_id,
            voters,
            props: self.props,
            binary,
            rust_log,
            ready_timeout: self.ready_timeout.unwrap_or(DEFAULT_READY_TIMEOUT),
            format_args: self.format_args,
            broker_listener: self.broker_listener.map(|name| (name, extra_ports)),
            client_listener: self.client_listener,
        };
        for (id, role, broker_port, controller_port, host) in planned {
            let cluster_id = cluster.cluster_id.clone();
            let ports = (broker_port, controller_port);
            let node = cluster.new_node(id, role, ports, host, &cluster_id)?;
            cluster.nodes.push(node);
        }
        cluster.start_all()?;
        Ok(cluster)
    }
}

/// One `kraftwerk` process of a [`Cluster`] (running, paused, or stopped).
pub struct ClusterNode {
    node_id: i32,
    role: Role,
    binary: PathBuf,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    log_path: PathBuf,
    broker_port: Option<u16>,
    controller_port: Option<u16>,
    host: NodeHost,
    rust_log: String,
    child: Option<Child>,
    paused: bool,
    /// Length of the log file when the current process was spawned: what it logged starts here.
    log_offset: usize,
    /// How the client listener is reached, when it is not PLAINTEXT.
    security: Option<ClientSecurity>,
}

impl ClusterNode {
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The client listener, for broker roles.
    pub fn broker_addr(&self) -> Option<SocketAddr> {
        self.broker_port
            .map(|p| SocketAddr::from((self.host.addr, p)))
    }

    /// `address:port` of the client listener; panics on a controller-only node (a test bug).
    pub fn bootstrap(&self) -> String {
        match self.broker_port {
            Some(p) => format!("{}:{p}", self.host.addr),
            None => panic!("node {} is not a broker", self.node_id),
        }
    }

    /// The CONTROLLER listener, for controller roles.
    pub fn controller_addr(&self) -> Option<SocketAddr> {
        self.controller_port
            .map(|p| SocketAddr::from((self.host.addr, p)))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// `directory.id` from the metadata directory's `meta.properties` (Kafka's base64 form), as
    /// `kafka-metadata-quorum add-controller` reads it.
    pub fn directory_id(&self) -> Result<String, HarnessError> {
        let path = self.dir.path().join("data").join("meta.properties");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| HarnessError::io(format!("reading {}", path.display()), e))?;
        text.lines()
            .find_map(|l| l.strip_prefix("directory.id="))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| HarnessError::Cluster(format!("{} has no directory.id", path.display())))
    }

    /// Combined stdout/stderr of every run of this node (appended across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Where the node runs (address and namespace).
    pub fn host(&self) -> &NodeHost {
        &self.host
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is stopped with SIGSTOP.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The whole log of every run (lossy UTF-8, ANSI colour codes removed).
    pub fn log_contents(&self) -> String {
        self.log_from(0)
    }

    /// What the current (or last) process logged since it was spawned.
    pub fn log_since_spawn(&self) -> String {
        self.log_from(self.log_offset)
    }

    fn log_from(&self, offset: usize) -> String {
        std::fs::read(&self.log_path)
            .map(|b| {
                strip_ansi(&String::from_utf8_lossy(
                    b.get(offset..).unwrap_or_default(),
                ))
            })
            .unwrap_or_default()
    }

    /// The last `n` bytes of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log_contents();
        let mut start = log.len().saturating_sub(n);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        log.get(start..).unwrap_or_default().to_string()
    }

    /// The role named by the current process's latest `controller role changed` line (`Leader`,
    /// `Follower`, `Candidate`, ...), if it logged one.
    pub fn latest_role(&self) -> Option<String> {
        latest_role_in(&self.log_since_spawn())
    }

    /// True if the process is running or paused (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_))) | Some(Err(_)) | None => false,
        }
    }

    /// Running and not paused: it can answer.
    pub fn is_live(&mut self) -> bool {
        !self.paused && self.is_running()
    }

    /// The exit status, if the process has exited (without waiting).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// One Metadata round trip to this broker over the harness's wire client.
    pub fn metadata(&self) -> Result<MetadataResponse, HarnessError> {
        match &self.security {
            None => {
                let addr = self.broker_addr().ok_or_else(|| {
                    HarnessError::Cluster(format!("node {} has no broker listener", self.node_id))
                })?;
                probe_metadata(addr, Duration::from_secs(10))
            }
            Some(_) => probe_metadata_on(self.connect(Duration::from_secs(10))?),
        }
    }

    /// A wire connection to the client listener, through TLS and the SASL login when it is secured.
    pub fn connect(&self, timeout: Duration) -> Result<Connection, HarnessError> {
        let addr = self.broker_addr().ok_or_else(|| {
            HarnessError::Cluster(format!("node {} has no broker listener", self.node_id))
        })?;
        match &self.security {
            None => Connection::connect(addr, timeout),
            Some(security) => security.connect(addr, timeout),
        }
    }

    fn open_log(&self) -> Result<File, HarnessError> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| HarnessError::io(format!("opening node {} log", self.node_id), e))
    }

    /// Spawns the process without waiting for it to serve.
    pub fn spawn(&mut self) -> Result<(), HarnessError> {
        if self.is_running() {
            return Err(HarnessError::Cluster(format!(
                "node {} is already running",
                self.node_id
            )));
        }
        let stdout = self.open_log()?;
        let stderr = self.open_log()?;
        self.log_offset = std::fs::metadata(&self.log_path)
            .map(|m| usize::try_from(m.len()).unwrap_or(usize::MAX))
            .unwrap_or(0);
        // In a namespace, `ip netns exec` enters it and execs the binary (same pid, so signals reach it).
        let mut command = match &self.host.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.as_str()]).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        let child = command
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .env("RUST_LOG", &self.rust_log)
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| HarnessError::io(format!("spawning node {}", self.node_id), e))?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// Whether the current process serves: a broker answers Metadata; a controller-only node has logged
    /// that it started.
    fn serves(&self) -> Result<(), String> {
        if self.role.is_broker() {
            self.metadata().map(|_| ()).map_err(|e| e.to_string())
        } else if self.log_since_spawn().contains(STARTED_LINE) {
            Ok(())
        } else {
            Err(format!("no `{STARTED_LINE}` line yet"))
        }
    }

    /// Polls until the node serves, failing fast if the process exits.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<Duration, HarnessError> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_exit_status() {
                self.child = None;
                return Err(HarnessError::Cluster(format!(
                    "node {} exited with {status} before serving; log tail:\n{}",
                    self.node_id,
                    self.log_tail(LOG_TAIL_BYTES)
                )));
            }
            let last_error = match self.serves() {
                Ok(()) => return Ok(start.elapsed()),
                Err(e) => e,
            };
            if start.elapsed() > timeout {
                return Err(HarnessError::Cluster(format!(
                    "node {} not serving after {timeout:?} (last: {last_error}); log tail:\n{}",
                    self.node_id,
                    self.log_tail(LOG_TAIL_BYTES)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, signal: libc::c_int, what: &str) -> Result<(), HarnessError> {
        let child = self.child.as_ref().ok_or(HarnessError::NotRunning)?;
        let pid = libc::pid_t::try_from(child.id())
            .map_err(|_| HarnessError::Protocol("pid out of range".into()))?;
        // SAFETY: kill(2) with a pid we spawned and have not reaped has no memory effects.
        let rc = unsafe { libc::kill(pid, signal) };
        if rc == 0 {
            Ok(())
        } else {
            Err(HarnessError::io(
                format!("sending {what} to node {}", self.node_id),
                std::io::Error::last_os_error(),
            ))
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) -> Result<(), HarnessError> {
        let mut child = self.child.take().ok_or(HarnessError::NotRunning)?;
        self.paused = false;
        child
            .kill()
            .map_err(|e| HarnessError::io(format!("SIGKILL to node {}", self.node_id), e))?;
        child
            .wait()
            .map_err(|e| HarnessError::io(format!("reaping node {}", self.node_id), e))?;
        Ok(())
    }

    /// SIGSTOP: the process stays alive but does nothing (a long GC pause, a frozen VM).
    pub fn sigstop(&mut self) -> Result<(), HarnessError> {
        self.signal(libc::SIGSTOP, "SIGSTOP")?;
        self.paused = true;
        Ok(())
    }

    /// SIGCONT after [`ClusterNode::sigstop`].
    pub fn sigcont(&mut self) -> Result<(), HarnessError> {
        self.signal(libc::SIGCONT, "SIGCONT")?;
        self.paused = false;
        Ok(())
    }

    /// SIGTERM (a controlled shutdown) and wait for the exit; kills -9 and errors after [`STOP_TIMEOUT`].
    pub fn stop(&mut self) -> Result<ExitStatus, HarnessError> {
        if self.paused {
            self.sigcont()?;
        }
        self.signal(libc::SIGTERM, "SIGTERM")?;
        let child = self.child.take().ok_or(HarnessError::NotRunning)?;
        match crate::broker::wait_or_kill(child, STOP_TIMEOUT) {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err(HarnessError::Cluster(format!(
                "node {} did not exit within {STOP_TIMEOUT:?} of SIGTERM; log tail:\n{}",
                self.node_id,
                self.log_tail(LOG_TAIL_BYTES)
            ))),
            Err(e) => Err(HarnessError::io(
                format!("waiting for node {} to exit", self.node_id),
                e,
            )),
        }
    }

    /// Starts the process again on the same dir and ports (SIGTERM first if it still runs) and waits until
    /// it serves.
    pub fn restart(&mut self) -> Result<Duration, HarnessError> {
        if self.is_running() {
            self.stop()?;
        }
        self.child = None;
        self.spawn()?;
        self.wait_ready(NODE_READY_TIMEOUT)
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL also ends a SIGSTOPped process.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running multi-process cluster.
pub struct Cluster {
    nodes: Vec<ClusterNode>,
    cluster_id: String,
    voters: String,
    props: Vec<(String, String)>,
    binary: PathBuf,
    rust_log: String,
    ready_timeout: Duration,
    /// Extra `kraftwerk format` arguments ([`ClusterBuilder::format_arg`]).
    format_args: Vec<String>,
    /// [`ClusterBuilder::second_broker_listener`] and the port each broker was given for it.
    broker_listener: Option<(String, BTreeMap<i32, u16>)>,
    /// [`ClusterBuilder::client_listener`].
    client_listener: Option<(String, ClientSecurity)>,
}

impl Cluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// The cluster id every node was formatted with.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// `controller.quorum.voters` of every node.
    pub fn voters(&self) -> &str {
        &self.voters
    }

    pub fn nodes(&self) -> &[ClusterNode] {
        &self.nodes
    }

    /// The node with `id`; panics on an unknown id (a test bug).
    pub fn node(&self, id: i32) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.node_id == id)
            .unwrap_or_else(|| panic!("no node {id} in the cluster"))
    }

    /// The node with `id`; panics on an unknown id (a test bug).
    pub fn node_mut(&mut self, id: i32) -> &mut ClusterNode {
        self.nodes
            .iter_mut()
            .find(|n| n.node_id == id)
            .unwrap_or_else(|| panic!("no node {id} in the cluster"))
    }

    /// Ids of every node with the broker role (running or not).
    pub fn broker_ids(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|n| n.role.is_broker())
            .map(|n| n.node_id)
            .collect()
    }

    /// Ids of every voter.
    pub fn controller_ids(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|n| n.role.is_controller())
            .map(|n| n.node_id)
            .collect()
    }

    /// Ids of the brokers that are running and not paused.
    pub fn live_broker_ids(&mut self) -> Vec<i32> {
        self.nodes
            .iter_mut()
            .filter(|n| n.role.is_broker())
            .filter_map(|n| n.is_live().then_some(n.node_id))
            .collect()
    }

    /// How clients reach the client listener (None: PLAINTEXT).
    pub fn client_security(&self) -> Option<&ClientSecurity> {
        self.client_listener.as_ref().map(|(_, s)| s)
    }

    /// The rdkafka settings (`security.protocol`, `ssl.ca.location`, `sasl.*`) for the client listener, as the
    /// harness's own login; empty for PLAINTEXT.
    pub fn client_props(&self) -> Vec<(String, String)> {
        self.client_security()
            .map(ClientSecurity::rdkafka_props)
            .unwrap_or_default()
    }

    /// `bootstrap.servers` naming every broker listener.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter_map(|n| n.broker_port.map(|p| format!("{}:{p}", n.host.addr)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `bootstrap.servers` naming the listeners of the brokers in `ids`.
    pub fn bootstrap_of(&self, ids: &[i32]) -> String {
        ids.iter()
            .map(|id| self.node(*id).bootstrap())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Writes server.properties for a node and formats it with `cluster_id`.
    fn new_node(
        &self,
        node_id: i32,
        role: Role,
        (broker_port, controller_port): (u16, u16),
        host: NodeHost,
        cluster_id: &str,
    ) -> Result<ClusterNode, HarnessError> {
        let addr = host.addr;
        let dir = tempfile::Builder::new()
            .prefix(&format!("kraftwerk-cluster-{node_id}-"))
            .tempdir()
            .map_err(|e| HarnessError::io("creating temp dir", e))?;
        let mut props = ServerProperties::empty();
        props.set("process.roles", role.process_roles());
        props.set("node.id", node_id.to_string());
        props.set("controller.quorum.voters", self.voters.clone());
        props.set("controller.listener.names", "CONTROLLER");
        let mut listeners = Vec::new();
        let (client_name, client_protocol) = match &self.client_listener {
            Some((name, security)) => (name.as_str(), security.protocol.name()),
            None => ("PLAINTEXT", "PLAINTEXT"),
        };
        if role.is_broker() {
            let mut advertised = vec![format!("{client_name}://{addr}:{broker_port}")];
            if let Some((name, ports)) = &self.broker_listener {
                let port = match ports.get(&node_id) {
                    Some(p) => *p,
                    None => crate::ports::free_port()?,
                };
                advertised.push(format!("{name}://{addr}:{port}"));
            }
            listeners.extend(advertised.iter().cloned());
            props.set("advertised.listeners", advertised.join(","));
        }
        if role.is_controller() {
            listeners.push(format!("CONTROLLER://{addr}:{controller_port}"));
        }
        props.set("listeners", listeners.join(","));
        props.set(
            "listener.security.protocol.map",
            format!("{client_name}:{client_protocol},CONTROLLER:PLAINTEXT"),
        );
        props.set("log.dirs", dir.path().join("data").display().to_string());
        props.set("num.partitions", "1");
        props.set("default.replication.factor", "1");
        props.set("auto.create.topics.enable", "true");
        props.set(
            "controller.quorum.election.timeout.ms",
            ELECTION_TIMEOUT_MS.to_string(),
        );
        props.set("broker.session.timeout.ms", SESSION_TIMEOUT_MS.to_string());
        props.set(
            "broker.heartbeat.interval.ms",
            HEARTBEAT_INTERVAL_MS.to_string(),
        );
        for (k, v) in &self.props {
            props.set(k.clone(), v.replace("{id}", &node_id.to_string()));
        }
        let config_path = dir.path().join("server.properties");
        std::fs::write(&config_path, props.render())
            .map_err(|e| HarnessError::io("writing server.properties", e))?;
        let config_arg = config_path.display().to_string();
        let mut format = vec![
            "format",
            "--config",
            config_arg.as_str(),
            "--cluster-id",
            cluster_id,
        ];
        format.extend(self.format_args.iter().map(String::as_str));
        run_helper(&self.binary, dir.path(), &format)?;
        Ok(ClusterNode {
            node_id,
            role,
            binary: self.binary.clone(),
            log_path: dir.path().join("kraftwerk.log"),
            dir,
            config_path,
            broker_port: role.is_broker().then_some(broker_port),
            controller_port: role.is_controller().then_some(controller_port),
            host,
            rust_log: self.rust_log.clone(),
            child: None,
            paused: false,
            log_offset: 0,
            security: self.client_listener.as_ref().map(|(_, s)| s.clone()),
        })
    }

    /// Adds a broker-only node (not started) formatted with `cluster_id` (another cluster's id to test the
    /// refusal), pointed at this cluster's voters.
    pub fn add_broker(
        &mut self,
        node_id: i32,
        cluster_id: &str,
    ) -> Result<&mut ClusterNode, HarnessError> {
        if self.nodes.iter().any(|n| n.node_id == node_id) {
            return Err(HarnessError::Cluster(format!("node {node_id} exists")));
        }
        let ports = free_ports(1)?;
        let port = ports
            .first()
            .copied()
            .ok_or_else(|| HarnessError::Cluster("free_ports returned no port".into()))?;
        let node = self.new_node(
            node_id,
            Role::Broker,
            (port, 0),
            NodeHost::loopback(),
            cluster_id,
        )?;
        self.nodes.push(node);
        Ok(self.node_mut(node_id))
    }

    /// Adds a controller-only node (not started) that is not one of the voters: configured with the cluster's
    /// initial `controller.quorum.voters`, it starts as an observer until `AddRaftVoter` adds it (KIP-853).
    pub fn add_controller(&mut self, node_id: i32) -> Result<&mut ClusterNode, HarnessError> {
        if self.nodes.iter().any(|n| n.node_id == node_id) {
            return Err(HarnessError::Cluster(format!("node {node_id} exists")));
        }
        let ports = free_ports(1)?;
        let port = ports
            .first()
            .copied()
            .ok_or_else(|| HarnessError::Cluster("free_ports returned no port".into()))?;
        let cluster_id = self.cluster_id.clone();
        let node = self.new_node(
            node_id,
            Role::Controller,
            (0, port),
            NodeHost::loopback(),
            &cluster_id,
        )?;
        self.nodes.push(node);
        Ok(self.node_mut(node_id))
    }

    /// Spawns every node that is not running (voters first), then waits until each serves and every live
    /// broker lists every live broker.
    pub fn start_all(&mut self) -> Result<Duration, HarnessError> {
        let start = Instant::now();
        for node in self.nodes.iter_mut().filter(|n| n.role.is_controller()) {
            if !node.is_running() {
                node.spawn()?;
            }
        }
        for node in self.nodes.iter_mut().filter(|n| !n.role.is_controller()) {
            if !node.is_running() {
                node.spawn()?;
            }
        }
        let timeout = self.ready_timeout;
        for node in &mut self.nodes {
            let left = timeout.saturating_sub(start.elapsed());
            node.wait_ready(left)?;
        }
        let expected: BTreeSet<i32> = self.live_broker_ids().into_iter().collect();
        self.wait_brokers_listed(&expected, timeout.saturating_sub(start.elapsed()))?;
        Ok(start.elapsed())
    }

    /// SIGTERM every running node, brokers first (their controlled shutdown needs an active controller),
    /// and returns each exit status.
    pub fn stop_all(&mut self) -> Result<Vec<(i32, ExitStatus)>, HarnessError> {
        let mut statuses = Vec::new();
        for pass in [Role::Broker, Role::Combined, Role::Controller] {
            for node in self.nodes.iter_mut().filter(|n| n.role == pass) {
                if node.is_running() {
                    statuses.push((node.node_id, node.stop()?));
                }
            }
        }
        Ok(statuses)
    }

    /// The id of the active controller: the one live voter whose current process last logged
    /// `role=Leader`. Waits (up to `timeout`) until exactly one live voter claims it.
    pub fn active_controller(&mut self, timeout: Duration) -> Result<i32, HarnessError> {
        let start = Instant::now();
        loop {
            let mut roles = BTreeMap::new();
            for node in self.nodes.iter_mut().filter(|n| n.role.is_controller()) {
                let role = if node.is_live() {
                    node.latest_role().unwrap_or_else(|| "(none yet)".into())
                } else if node.is_paused() {
                    "(paused)".into()
                } else {
                    "(not running)".into()
                };
                roles.insert(node.node_id, role);
            }
            let leaders: Vec<i32> = roles
                .iter()
                .filter(|(_, r)| r.as_str() == "Leader")
                .map(|(id, _)| *id)
                .collect();
            if let [one] = leaders.as_slice() {
                return Ok(*one);
            }
            if start.elapsed() > timeout {
                return Err(HarnessError::Cluster(format!(
                    "no single active controller after {timeout:?}; latest roles: {roles:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Metadata from every live broker.
    pub fn metadata_by_broker(&mut self) -> BTreeMap<i32, Result<MetadataResponse, HarnessError>> {
        let ids = self.live_broker_ids();
        ids.into_iter()
            .map(|id| (id, self.node(id).metadata()))
            .collect()
    }

    /// Waits until Metadata from every live broker lists exactly the brokers in `expected`; returns how long
    /// it took.
    pub fn wait_brokers_listed(
        &mut self,
        expected: &BTreeSet<i32>,
        timeout: Duration,
    ) -> Result<Duration, HarnessError> {
        let expected = expected.clone();
        self.wait_until(
            &format!("every live broker lists exactly brokers {expected:?}"),
            timeout,
            |c| {
                let mut wrong = Vec::new();
                for (id, md) in c.metadata_by_broker() {
                    match md {
                        Ok(md) if broker_ids(&md) == expected => {}
                        Ok(md) => wrong.push(format!("broker {id} lists {:?}", broker_ids(&md))),
                        Err(e) => wrong.push(format!("broker {id}: {e}")),
                    }
                }
                if wrong.is_empty() {
                    Ok(())
                } else {
                    Err(wrong.join("; "))
                }
            },
        )
    }

    /// Polls `check` every 100 ms until it succeeds or `timeout` passes; the error names `what` and the
    /// last failure.
    pub fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&mut Cluster) -> Result<(), String>,
    ) -> Result<Duration, HarnessError> {
        let start = Instant::now();
        loop {
            let last = match check(self) {
                Ok(()) => return Ok(start.elapsed()),
                Err(e) => e,
            };
            if start.elapsed() > timeout {
                return Err(HarnessError::Cluster(format!(
                    "timed out after {timeout:?} waiting until {what}; last: {last}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The tail of every node's log, for failure messages.
    pub fn log_tails(&self, bytes_per_node: usize) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let _ = writeln!(
                out,
                "===== node {} ({:?}) log {} (last {} KiB) =====\n{}",
                node.node_id,
                node.role,
                node.log_path.display(),
                bytes_per_node / 1024,
                node.log_tail(bytes_per_node)
            );
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "{}===== end of cluster logs =====",
                self.log_tails(LOG_ON_PANIC_BYTES)
            );
            // The tails rarely reach back to the fault a checker caught; the whole logs can be kept.
            if let Some(keep) = std::env::var_os("KRAFTWERK_TEST_KEEP_LOGS") {
                let keep = PathBuf::from(keep);
                let _ = std::fs::create_dir_all(&keep);
                for node in &self.nodes {
                    let to = keep.join(format!("node-{}.log", node.node_id));
                    match std::fs::copy(&node.log_path, &to) {
                        Ok(_) => eprintln!("kept {}", to.display()),
                        Err(e) => eprintln!("cannot keep {}: {e}", to.display()),
                    }
                    // And its data directory, to read the partitions' batches.
                    let data = keep.join(format!("node-{}.dir", node.node_id));
                    let copied = std::process::Command::new("cp")
                        .arg("-a")
                        .arg(node.dir.path())
                        .arg(&data)
                        .status();
                    if !copied.is_ok_and(|s| s.success()) {
                        eprintln!("cannot keep {}", data.display());
                    }
                }
            }
        }
    }
}

/// Runs `kraftwerk random-uuid`.
fn random_uuid(binary: &Path) -> Result<String, HarnessError> {
    let dir = std::env::temp_dir();
    Ok(run_helper(binary, &dir, &["random-uuid"])?
        .trim()
        .to_string())
}

/// Another cluster id, for tests of the refusal.
pub fn another_cluster_id() -> Result<String, HarnessError> {
    random_uuid(&kraftwerk_binary()?)
}

fn run_helper(binary: &Path, dir: &Path, args: &[&str]) -> Result<String, HarnessError> {
    crate::broker::run_subcommand(binary, dir, "warn", args)
}

/// The role in the last `controller role changed ... role=X ...` line of `log`.
fn latest_role_in(log: &str) -> Option<String> {
    let line = log.lines().rev().find(|l| l.contains(ROLE_LINE))?;
    let role = line.split_once(" role=")?.1;
    role.split_whitespace().next().map(str::to_string)
}

/// The broker ids a Metadata response lists.
pub fn broker_ids(md: &MetadataResponse) -> BTreeSet<i32> {
    md.brokers.iter().map(|b| b.node_id.0).collect()
}

/// Each topic without a topic-level error, with its partitions' (index, leader) sorted by index.
pub fn topic_layout(md: &MetadataResponse) -> BTreeMap<String, Vec<(i32, i32)>> {
    md.topics
        .iter()
        .filter(|t| t.error_code == 0)
        .filter_map(|t| {
            let name = t.name.as_ref()?.0.to_string();
            let mut parts: Vec<(i32, i32)> = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0))
                .collect();
            parts.sort_unstable();
            Some((name, parts))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_map_to_process_roles() {
        assert_eq!(Role::Combined.process_roles(), "broker,controller");
        assert!(Role::Combined.is_broker() && Role::Combined.is_controller());
        assert!(!Role::Controller.is_broker() && Role::Controller.is_controller());
        assert!(Role::Broker.is_broker() && !Role::Broker.is_controller());
    }

    #[test]
    fn latest_role_reads_the_last_role_line() {
        let log = "2026 INFO controller role changed role=Leader leader=Some(1)\n\
                   2026 INFO something else role=Bogus\n\
                   2026 INFO controller role changed role=Follower leader=Some(2)\n\
                   2026 INFO kraftwerk started node_id=1\n";
        assert_eq!(latest_role_in(log).as_deref(), Some("Follower"));
        assert_eq!(latest_role_in("kraftwerk started node_id=1"), None);
    }

    #[test]
    fn builder_rejects_impossible_layouts() {
        assert!(matches!(
            Cluster::builder().combined(3).controllers(3).start(),
            Err(HarnessError::Cluster(_))
        ));
        assert!(matches!(
            Cluster::builder().brokers(3).start(),
            Err(HarnessError::Cluster(_))
        ));
        assert!(matches!(
            Cluster::builder().controllers(3).start(),
            Err(HarnessError::Cluster(_))
        ));
    }
}
