//! One controller holding a very large image (1,000,000 partitions, RF=3 by default): its resident memory
//! and the time it takes to restart from its snapshot. Kraftwerk only.
//!
//! Three real broker processes would each have to host every partition (RF=3 on three brokers), which this
//! machine cannot do (20,000 open files per process). So the three brokers are phantoms (`phantom.rs`)
//! registered by the harness over Kraftwerk's controller channel: they register, heartbeat with the
//! controller's committed offset until unfenced, and keep heartbeating while the topics are created through
//! the same forwarded CreateTopics a broker sends. What the controller holds, writes, snapshots and reloads is exactly what it
//! would with real brokers.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kraftwerk_broker::quorum::controller_client::ControllerClient;
use kraftwerk_broker::quorum::peer_transport::PeerAddr;
use kraftwerk_broker::tls::PeerConnector;
use kraftwerk_controller::rpc::{ControllerReply, ControllerRequest};
use kraftwerk_controller::CreateTopicSpec;
use kraftwerk_tests::ports::free_ports;

use crate::phantom::Phantoms;
use crate::procs::Timeouts;

/// What the large-image run measured.
#[derive(Debug, Clone)]
pub struct ImageFigures {
    pub partitions: usize,
    pub create_s: f64,
    pub rss_mib: f64,
    pub hwm_mib: f64,
    pub snapshot_mib: f64,
    pub log_mib: f64,
    pub restart_s: f64,
    pub rss_after_restart_mib: f64,
}

struct Proc {
    child: Option<Child>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path, suffix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn spawn(bin: &Path, config: &Path, log: &Path) -> Result<(Child, u64)> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let offset = file.metadata()?.len();
    let child = Command::new(bin)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()?;
    Ok((child, offset))
}

fn wait_started(log: &Path, offset: u64, child: &mut Child, timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let text = std::fs::read(log).unwrap_or_default();
        let from = usize::try_from(offset).unwrap_or(0);
        if String::from_utf8_lossy(text.get(from..).unwrap_or_default())
            .contains("kraftwerk started")
        {
            return Ok(start.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            bail!("controller exited with {status}");
        }
        if start.elapsed() > timeout {
            bail!("controller not started after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs the large-image measurement.
pub fn run(
    bin: &Path,
    partitions: usize,
    per_topic: usize,
    t: Timeouts,
    work_dir: &Path,
) -> Result<ImageFigures> {
    let dir = tempfile::Builder::new()
        .prefix("election-bench-image-")
        .tempdir_in(work_dir)?;
    let port = *free_ports(1)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .first()
        .context("no port")?;
    let cluster_id =
        String::from_utf8_lossy(&Command::new(bin).arg("random-uuid").output()?.stdout)
            .trim()
            .to_string();
    let config = dir.path().join("server.properties");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "process.roles=controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:{port}\n\
             controller.listener.names=CONTROLLER\nlisteners=CONTROLLER://127.0.0.1:{port}\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT\nlog.dirs={}\n\
             broker.session.timeout.ms={}\nbroker.heartbeat.interval.ms={}\n\
             controller.quorum.election.timeout.ms={}\nauto.leader.rebalance.enable=false\n",
            data.display(),
            t.session_ms,
            t.heartbeat_ms,
            t.election_ms
        ),
    )?;
    let out = Command::new(bin)
        .arg("format")
        .arg("--config")
        .arg(&config)
        .arg(format!("--cluster-id={cluster_id}"))
        .output()?;
    if !out.status.success() {
        bail!("format failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let log = dir.path().join("controller.log");
    let (child, offset) = spawn(bin, &config, &log)?;
    let mut proc = Proc { child: Some(child) };
    let child = proc.child.as_mut().context("no child")?;
    wait_started(&log, offset, child, Duration::from_secs(60))?;
    let pid = child.id();

    // Three stand-in brokers (phantom.rs) hold the replicas; they stop heartbeating once the topics exist.
    let phantoms = Phantoms::start_kraftwerk(
        &cluster_id,
        &[(1, SocketAddr::from(([127, 0, 0, 1], port)))],
        &[100, 101, 102],
        Duration::from_millis(t.heartbeat_ms),
    )?;
    phantoms
        .wait_unfenced(Duration::from_secs(60))
        .context("the stand-in brokers")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let create_s = rt.block_on(fill(cluster_id, port, partitions, per_topic))?;
    drop(rt);
    drop(phantoms);

    let rss_mib = status_kib(pid, "VmRSS:") as f64 / 1024.0;
    let hwm_mib = status_kib(pid, "VmHWM:") as f64 / 1024.0;
    let meta = data.join("__cluster_metadata-0");
    let snapshot_mib = dir_bytes(&meta, ".checkpoint") as f64 / 1048576.0;
    let log_mib = dir_bytes(&meta, ".log") as f64 / 1048576.0;
    eprintln!(
        "[image] {partitions} partitions in {create_s:.1} s; controller RSS {rss_mib:.0} MiB (peak {hwm_mib:.0}); \
         snapshots {snapshot_mib:.1} MiB, log {log_mib:.1} MiB"
    );

    // SIGTERM, then restart from the snapshot.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(libc::pid_t::try_from(pid)?, libc::SIGTERM) };
    let status = proc.child.take().context("no child")?.wait()?;
    eprintln!("[image] controller stopped ({status})");
    let (child, offset) = spawn(bin, &config, &log)?;
    proc.child = Some(child);
    let child = proc.child.as_mut().context("no child")?;
    let restart = wait_started(&log, offset, child, Duration::from_secs(300))?;
    let rss_after_restart_mib = status_kib(child.id(), "VmRSS:") as f64 / 1024.0;
    eprintln!(
        "[image] restart from snapshot: {restart:?}, RSS then {rss_after_restart_mib:.0} MiB"
    );
    Ok(ImageFigures {
        partitions,
        create_s,
        rss_mib,
        hwm_mib,
        snapshot_mib,
        log_mib,
        restart_s: restart.as_secs_f64(),
        rss_after_restart_mib,
    })
}

/// Creates the topics over the controller channel, as a broker forwards CreateTopics; returns the
/// creation time.
async fn fill(cluster_id: String, port: u16, partitions: usize, per_topic: usize) -> Result<f64> {
    let voters = vec![PeerAddr {
        node_id: 1,
        host: "127.0.0.1".into(),
        port,
    }];
    let deadline = Duration::from_secs(120);
    let admin = ControllerClient::new(
        cluster_id,
        99,
        voters,
        "CONTROLLER".into(),
        PeerConnector::plaintext(),
        None,
    );
    let per_topic = per_topic.min(partitions).max(1);
    let topics = partitions.div_ceil(per_topic);
    // Ten topics per request: a request is one raft entry, so this is 10 × per_topic records per commit.
    let t0 = Instant::now();
    for chunk in (0..topics).collect::<Vec<_>>().chunks(10) {
        let specs: Vec<CreateTopicSpec> = chunk
            .iter()
            .map(|i| {
                let count = per_topic.min(partitions - i * per_topic);
                CreateTopicSpec::new(
                    format!("img-{i}"),
                    i32::try_from(count).unwrap_or(i32::MAX),
                    3,
                )
            })
            .collect();
        let frame = admin
            .call(
                &ControllerRequest::CreateTopics {
                    topics: specs,
                    validate_only: false,
                },
                deadline,
                deadline,
            )
            .await
            .map_err(|e| anyhow::anyhow!("CreateTopics: {e}"))?;
        match frame.reply {
            ControllerReply::CreatedTopics(results) => {
                if let Some(bad) = results.iter().find(|r| r.result.is_err()) {
                    bail!("CreateTopics {:?}: {:?}", bad.name, bad.result);
                }
            }
            other => bail!("CreateTopics answered {other:?}"),
        }
        if chunk[0] % 100 == 0 {
            eprintln!(
                "[image] {} partitions after {:.1} s",
                (chunk[0] + chunk.len()) * per_topic,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    Ok(t0.elapsed().as_secs_f64())
}
