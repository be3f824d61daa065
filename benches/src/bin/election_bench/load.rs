//! Metadata load of a large image, Kraftwerk and Apache Kafka side by side (issue 11: "metadata load of a
//! 100,000-partition image ≤ 1/10 of Kafka's").
//!
//! N = 100,000 with RF=3 cannot be hosted by real brokers here (a log per replica, 20,000 open files per
//! process), so for each system: three controllers as processes, three phantom brokers (`phantom.rs`, ids
//! 101-103) that hold every replica, and ONE real broker process (id 100) that hosts none. The topics are
//! created through the real broker's CreateTopics with manual assignments naming only the phantoms, as a
//! client would (`kafka-topics.sh --replica-assignment`). Then:
//! - creation: every CreateTopics acknowledged (both systems answer once the controller committed), and the
//!   real broker's Metadata showing all N partitions with a leader;
//! - broker load: SIGTERM the real broker, start it again, time from the spawn until it lists itself among
//!   the live brokers (registered and unfenced) and until its Metadata shows all N partitions with a leader;
//! - controller load: kill -9 a controller that is not the active one, start it again, time from the spawn
//!   until it has logged its started line and DescribeQuorum (through the real broker) shows its log end
//!   offset at the high watermark taken before the restart;
//! - RSS of the broker and the controllers after creation and after their restarts, and the metadata log
//!   and snapshots on the restarted controller's disk.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::client::{Client, TOPIC_PREFIX};
use crate::phantom::Phantoms;
use crate::procs::{Flavor, ProcCluster, Timeouts};
use crate::report::{Better, Metric, Results};
use crate::scenarios::{create_retrying, poll, respawn_controller_caught_up, secs, Figures};

/// The phantom brokers' ids; the real broker is 100 (`ProcCluster`'s first broker id).
const PHANTOMS: [i32; 3] = [101, 102, 103];

/// The rows of the load table.
pub const METRICS: &[Metric] = &[
    (
        "create_acked_s",
        "creation: every CreateTopics acknowledged (committed by the controller)",
        "s",
        Better::Lower,
    ),
    (
        "create_led_s",
        "creation: the real broker's Metadata shows every partition with a leader",
        "s",
        Better::Lower,
    ),
    (
        "broker_exit_s",
        "broker SIGTERM → process exited",
        "s",
        Better::Lower,
    ),
    (
        "broker_unfenced_s",
        "metadata load: broker restart → lists itself (registered, unfenced)",
        "s",
        Better::Lower,
    ),
    (
        "broker_load_s",
        "metadata load: broker restart → Metadata shows all N partitions with leaders",
        "s",
        Better::Lower,
    ),
    (
        "controller_load_s",
        "metadata load: controller restart after kill -9 → started and caught up",
        "s",
        Better::Lower,
    ),
    (
        "broker_rss_mib",
        "broker RSS after creation",
        "MiB",
        Better::Lower,
    ),
    (
        "broker_rss_restart_mib",
        "broker RSS after its restart (image loaded)",
        "MiB",
        Better::Lower,
    ),
    (
        "controller_rss_mib",
        "largest controller RSS after creation",
        "MiB",
        Better::Lower,
    ),
    (
        "controller_rss_restart_mib",
        "restarted controller RSS once caught up",
        "MiB",
        Better::Lower,
    ),
    (
        "metadata_disk_mib",
        "metadata log segments + snapshots on the restarted controller's disk",
        "MiB",
        Better::Lower,
    ),
];

/// Settings of one load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub partitions: usize,
    pub per_topic: usize,
    pub timeouts: Timeouts,
    pub wait: Duration,
}

/// Runs the load scenario once on a fresh cluster of `flavor`.
pub fn run(flavor: Flavor, spec: &LoadSpec, work_dir: &Path) -> Result<Figures> {
    let name = flavor.name();
    let started = Instant::now();
    let mut cluster = ProcCluster::start_with(flavor, spec.timeouts, work_dir, spec.wait, 1)?;
    eprintln!(
        "[{name} load N={}] 3 controllers + 1 broker up in {:.1} s",
        spec.partitions,
        secs(started.elapsed())
    );
    let mut f = Figures::new();
    let result = measure(&mut cluster, spec, &mut f);
    if let Err(e) = &result {
        for n in &cluster.nodes {
            eprintln!(
                "===== {name} node {} log tail =====\n{}",
                n.id,
                n.log_tail()
            );
        }
        eprintln!("[{name} load] run failed: {e:#}");
    }
    result.map(|()| f)
}

fn measure(cluster: &mut ProcCluster, spec: &LoadSpec, f: &mut Figures) -> Result<()> {
    let name = cluster.flavor.name();
    let n = spec.partitions;
    let broker = cluster.brokers().next().context("no broker")?;
    let (bid, addr) = (broker.id, broker.addr());
    let controllers: Vec<(i32, SocketAddr)> =
        cluster.controllers().map(|c| (c.id, c.addr())).collect();
    let heartbeat = Duration::from_millis(spec.timeouts.heartbeat_ms);
    let phantoms = match &cluster.flavor {
        Flavor::Kafka { .. } => {
            Phantoms::start_kafka(&cluster.cluster_id, &controllers, &PHANTOMS, heartbeat)?
        }
        Flavor::Kraftwerk { .. } => {
            Phantoms::start_kraftwerk(&cluster.cluster_id, &controllers, &PHANTOMS, heartbeat)?
        }
    };
    let took = phantoms
        .wait_unfenced(Duration::from_secs(120))
        .context("the phantom brokers")?;
    let want: Vec<i32> = std::iter::once(bid).chain(PHANTOMS).collect();
    poll(
        "the real broker lists itself and the phantoms",
        spec.wait,
        || {
            let ids = Client::connect(addr)?.broker_ids()?;
            Ok(want.iter().all(|id| ids.contains(id)).then_some(()))
        },
    )?;
    eprintln!("[{name} load] phantom brokers {PHANTOMS:?} unfenced in {took:?}");

    // --- creation, through the real broker ------------------------------------------------------
    let per_topic = spec.per_topic.min(n).max(1);
    let topics = n.div_ceil(per_topic);
    let mut admin = Client::connect(addr)?;
    let t0 = Instant::now();
    for t in 0..topics {
        let count = per_topic.min(n - t * per_topic);
        // Leaders rotate over the phantoms, each partition on all three.
        let replicas: Vec<Vec<i32>> = (0..count)
            .map(|p| (0..3).map(|r| PHANTOMS[(t + p + r) % 3]).collect())
            .collect();
        let topic = format!("{TOPIC_PREFIX}load-{t}");
        create_retrying(name, &topic, addr, &mut admin, |admin, retry| {
            let (code, msg) = admin.create_topic_assigned(&topic, &replicas, 60_000, retry)?;
            Ok((code != 0).then(|| format!("error {code} {msg}")))
        })?;
    }
    let acked = t0.elapsed();
    let led = poll(
        "the real broker shows every partition with a leader",
        spec.wait,
        || Ok((Client::connect(addr)?.layout()?.led() >= n).then(|| t0.elapsed())),
    )?;
    f.insert("create_acked_s", secs(acked));
    f.insert("create_led_s", secs(led));
    f.insert("broker_rss_mib", mib(cluster.node(bid).rss_kib()));
    f.insert(
        "controller_rss_mib",
        mib(cluster
            .controllers()
            .map(|c| c.rss_kib())
            .max()
            .unwrap_or(0)),
    );
    eprintln!("[{name} load] {n} partitions acked in {acked:?}, led on the broker in {led:?}");
    if !phantoms.all_unfenced() {
        bail!("a phantom broker was fenced during creation");
    }

    // --- broker restart after SIGTERM ----------------------------------------------------------
    let t0 = Instant::now();
    cluster.node_mut(bid).sigterm()?;
    cluster.node_mut(bid).wait_exit(spec.wait)?;
    f.insert("broker_exit_s", secs(t0.elapsed()));
    let t0 = Instant::now();
    cluster.respawn(bid)?;
    let mut unfenced = None;
    let loaded = poll("the restarted broker serves the image", spec.wait, || {
        if cluster.node_mut(bid).has_exited() {
            bail!("broker {bid} exited:\n{}", cluster.node(bid).log_tail());
        }
        let mut c = Client::connect_with_timeout(addr, Duration::from_secs(2))?;
        if unfenced.is_none() {
            if !c.broker_ids()?.contains(&bid) {
                return Ok(None);
            }
            unfenced = Some(t0.elapsed());
        }
        Ok((c.layout()?.led() >= n).then(|| t0.elapsed()))
    })?;
    let unfenced = unfenced.unwrap_or(loaded);
    f.insert("broker_unfenced_s", secs(unfenced));
    f.insert("broker_load_s", secs(loaded));
    f.insert("broker_rss_restart_mib", mib(cluster.node(bid).rss_kib()));
    eprintln!(
        "[{name} load] broker restarted: lists itself after {unfenced:?}, all {n} partitions led after {loaded:?}"
    );

    // --- controller restart after kill -9 ------------------------------------------------------
    let leader = Client::connect(addr)?.quorum()?.leader;
    let victim = controllers
        .iter()
        .map(|(id, _)| *id)
        .find(|id| *id != leader)
        .context("no follower controller")?;
    cluster.node_mut(victim).kill9()?;
    let target = Client::connect(addr)?.quorum()?.high_watermark;
    let loaded = respawn_controller_caught_up(cluster, victim, addr, target, spec.wait)?;
    f.insert("controller_load_s", secs(loaded));
    f.insert(
        "controller_rss_restart_mib",
        mib(cluster.node(victim).rss_kib()),
    );
    let meta = cluster
        .node(victim)
        .dir
        .join("data")
        .join("__cluster_metadata-0");
    f.insert("metadata_disk_mib", dir_bytes(&meta) as f64 / 1048576.0);
    eprintln!("[{name} load] controller {victim} (leader {leader}) restarted and caught up to {target} in {loaded:?}");
    if !phantoms.all_unfenced() {
        bail!("a phantom broker was fenced during the restarts");
    }
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok())
                // Segments and snapshots; Kafka's index files are preallocated, not data.
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.ends_with(".log") || name.ends_with(".checkpoint")
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The load section of the report: one table per N.
pub fn markdown(results: &Results, sizes: &[usize], per_topic: usize) -> String {
    let mut out = String::new();
    for &n in sizes {
        let kw = results.get(&("kraftwerk".to_string(), n));
        let ka = results.get(&("kafka".to_string(), n));
        if kw.is_none() && ka.is_none() {
            continue;
        }
        let runs = |r: Option<&Vec<Figures>>| r.map(Vec::len).unwrap_or(0);
        let _ = writeln!(
            out,
            "\n### Metadata load of an image of N = {n} partitions, RF=3 ({} Kraftwerk run(s), {} Kafka run(s))\n\n\
             Three controllers and ONE real broker (id 100) as processes; three phantom brokers (ids 101-103, \
             registered and heartbeating over each system's controller channel: BrokerRegistration and \
             BrokerHeartbeat for Kafka) hold every replica. Topics of {per_topic} partitions, created through \
             the real broker's CreateTopics with manual assignments naming only the phantoms. The broker is \
             restarted after SIGTERM, a non-active controller after kill -9; \"caught up\" is its log end \
             offset in DescribeQuorum at the high watermark taken before its restart. Metadata is polled \
             (a full Metadata request) every 20 ms after the previous answer.\n",
            runs(kw),
            runs(ka)
        );
        out.push_str(&crate::report::table(kw, ka, METRICS));
    }
    out
}
