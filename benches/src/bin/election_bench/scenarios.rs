//! One measured run: start the six processes, create N partitions, then controlled shutdown, uncontrolled
//! failover, controller failover and the restarts that measure metadata load. Every figure comes from what
//! the brokers answer on the wire (Metadata, DescribeQuorum, CreateTopics), polled every few milliseconds;
//! the controllers' `started` log lines are the only other signal (a controller-only node serves no Kafka
//! API to the harness).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::client::{Client, Layout, TOPIC_PREFIX};
use crate::procs::{Flavor, ProcCluster, Timeouts};

/// How often the harness polls while it times something.
const POLL: Duration = Duration::from_millis(20);

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub partitions: usize,
    pub per_topic: usize,
    /// Stop after topic creation.
    pub creation_only: bool,
    /// After creation, write one record to every partition, so every replica has a log on disk in both
    /// systems before anything is measured (Kraftwerk makes a partition's directory in the background after
    /// creation, Kafka during it): the restarts then open N logs in each.
    pub fill: bool,
    pub timeouts: Timeouts,
    pub wait: Duration,
}

/// Figures of one run, by metric key (see `report::METRICS`).
pub type Figures = BTreeMap<&'static str, f64>;

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// One reused connection per broker; reconnects after an error.
struct Pollers {
    conns: HashMap<i32, (SocketAddr, Option<Client>)>,
}

impl Pollers {
    fn new(brokers: &[(i32, SocketAddr)]) -> Self {
        Pollers {
            conns: brokers.iter().map(|(id, a)| (*id, (*a, None))).collect(),
        }
    }

    /// Each broker's layout; a broker that cannot answer is missing from the map. The brokers are asked at
    /// once, one thread each, so a round takes as long as the slowest answer rather than the sum of them: at
    /// 10,000 partitions one Metadata answer takes 5-15 ms, which asked in turn delayed the last broker's reading
    /// by the others' (a third of Kraftwerk's 0.1 s controlled shutdown).
    fn layouts(&mut self) -> HashMap<i32, Layout> {
        std::thread::scope(|scope| {
            let asked: Vec<_> = self
                .conns
                .iter_mut()
                .map(|(id, (addr, conn))| {
                    scope.spawn(move || {
                        if conn.is_none() {
                            *conn =
                                Client::connect_with_timeout(*addr, Duration::from_secs(5)).ok();
                        }
                        let c = conn.as_mut()?;
                        match c.layout() {
                            Ok(l) => Some((*id, l)),
                            Err(_) => {
                                *conn = None;
                                None
                            }
                        }
                    })
                })
                .collect();
            asked
                .into_iter()
                .filter_map(|h| h.join().ok().flatten())
                .collect()
        })
    }
}

/// One record (acks=all) to each partition of a set, sent to its leader as a layout names it: one Produce per
/// topic and leader, each over its own reused connection.
struct OneEach {
    addrs: HashMap<i32, SocketAddr>,
    clients: HashMap<(i32, String), Client>,
    /// Send a round's Produce requests at once (one thread each) rather than one after another, so a round
    /// takes one acks=all wait, not one per topic.
    concurrent: bool,
}

impl OneEach {
    fn new(brokers: &[(i32, SocketAddr)], concurrent: bool) -> Self {
        OneEach {
            addrs: brokers.iter().copied().collect(),
            clients: HashMap::new(),
            concurrent,
        }
    }

    /// Sends one round and removes from `todo` the partitions that took their record; those refused (e.g. a
    /// leader still taking the partition over) or without a known leader stay for the next round.
    fn round(&mut self, layout: &Layout, todo: &mut HashSet<(String, i32)>) -> Result<()> {
        let mut by_leader: BTreeMap<(i32, String), Vec<i32>> = BTreeMap::new();
        for (topic, partition) in todo.iter() {
            if let Some(&leader) = layout.leaders.get(&(topic.clone(), *partition)) {
                by_leader
                    .entry((leader, topic.clone()))
                    .or_default()
                    .push(*partition);
            }
        }
        let mut sends = Vec::new();
        for (key, partitions) in by_leader {
            let Some(addr) = self.addrs.get(&key.0) else {
                continue;
            };
            let client = match self.clients.remove(&key) {
                Some(client) => client,
                None => Client::connect(*addr)?,
            };
            sends.push((key, partitions, client));
        }
        let send = |(key, partitions, mut client): ((i32, String), Vec<i32>, Client)| {
            let refused = client.produce_one_each(&key.1, &partitions);
            (key, partitions, client, refused)
        };
        let answers: Vec<_> = if self.concurrent {
            std::thread::scope(|scope| {
                let handles: Vec<_> = sends
                    .into_iter()
                    .map(|s| scope.spawn(move || send(s)))
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            })
        } else {
            sends.into_iter().map(send).collect()
        };
        for ((leader, topic), partitions, client, refused) in answers {
            let refused = match refused {
                Ok(refused) => refused,
                Err(e) => {
                    // The connection is dropped with its client; the next round opens a new one.
                    eprintln!("[produce] Produce to broker {leader}: {e}");
                    continue;
                }
            };
            let refused: HashSet<i32> = refused.into_iter().map(|(p, _)| p).collect();
            for p in partitions.into_iter().filter(|p| !refused.contains(p)) {
                todo.remove(&(topic.clone(), p));
            }
            self.clients.insert((leader, topic), client);
        }
        Ok(())
    }
}

/// Writes one record (acks=all) to each of the `n` harness partitions and waits until every one is in
/// (retrying those refused, e.g. while a leader is still opening).
fn fill(brokers: &[(i32, SocketAddr)], n: usize, wait: Duration) -> Result<()> {
    let first = brokers
        .first()
        .map(|b| b.1)
        .ok_or_else(|| anyhow::anyhow!("no broker"))?;
    let mut todo: HashSet<(String, i32)> = Client::connect(first)?
        .layout()?
        .leaders
        .into_keys()
        .collect();
    if todo.len() != n {
        bail!("{} partitions listed, {n} created", todo.len());
    }
    // One after another, as every fill so far measured it.
    let mut writer = OneEach::new(brokers, false);
    let deadline = Instant::now() + wait;
    while !todo.is_empty() {
        if Instant::now() > deadline {
            bail!("{} partitions still refuse a record", todo.len());
        }
        let layout = Client::connect(first)?.layout()?;
        writer.round(&layout, &mut todo)?;
        if !todo.is_empty() {
            std::thread::sleep(POLL);
        }
    }
    Ok(())
}

/// Polls `check` until it returns `Some`, failing after `timeout` with `what`.
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    let mut last_err = String::new();
    loop {
        match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = e.to_string(),
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting until {what} (last error: {last_err})");
        }
        std::thread::sleep(POLL);
    }
}

/// Runs every scenario once on a fresh cluster of `flavor`.
pub fn run(flavor: Flavor, spec: &RunSpec, work_dir: &Path, tag: &str) -> Result<Figures> {
    let name = flavor.name();
    let mut f = Figures::new();
    let started = Instant::now();
    let mut cluster = ProcCluster::start(flavor, spec.timeouts, work_dir, spec.wait)?;
    f.insert("cluster_start_s", secs(started.elapsed()));
    eprintln!(
        "[{name} N={} {tag}] cluster up in {:.1} s",
        spec.partitions,
        secs(started.elapsed())
    );
    let result = scenarios(&mut cluster, spec, &mut f, tag);
    if let Err(e) = &result {
        for n in &cluster.nodes {
            eprintln!(
                "===== {name} node {} log tail =====\n{}",
                n.id,
                n.log_tail()
            );
        }
        eprintln!("[{name}] run failed: {e:#}");
    }
    result.map(|()| f)
}

fn scenarios(cluster: &mut ProcCluster, spec: &RunSpec, f: &mut Figures, tag: &str) -> Result<()> {
    let name = cluster.flavor.name();
    let n = spec.partitions;
    let brokers: Vec<(i32, SocketAddr)> = cluster.brokers().map(|b| (b.id, b.addr())).collect();
    let first = brokers[0].1;

    // --- topic creation -------------------------------------------------------------------------
    let per_topic = spec.per_topic.min(n).max(1);
    let topics = n.div_ceil(per_topic);
    let mut admin = Client::connect(first)?;
    let t0 = Instant::now();
    let mut per_request = Vec::with_capacity(topics);
    for t in 0..topics {
        let sent = Instant::now();
        let count = per_topic.min(n - t * per_topic);
        let topic = format!("{TOPIC_PREFIX}{tag}-{t}");
        create_retrying(name, &topic, first, &mut admin, |admin, retry| {
            let failed = admin.create_topics(
                std::slice::from_ref(&topic),
                i32::try_from(count)?,
                60_000,
                retry,
            )?;
            Ok((!failed.is_empty()).then(|| format!("{failed:?}")))
        })?;
        per_request.push(format!("{:.0}", sent.elapsed().as_secs_f64() * 1000.0));
    }
    let acked = t0.elapsed();
    eprintln!("[{name}] each CreateTopics, ms: {}", per_request.join(" "));
    let mut pollers = Pollers::new(&brokers);
    poll(
        "every broker shows every partition with a leader",
        spec.wait,
        || {
            let layouts = pollers.layouts();
            Ok(
                (layouts.len() == brokers.len() && layouts.values().all(|l| l.led() == n))
                    .then_some(()),
            )
        },
    )?;
    let led = t0.elapsed();
    f.insert("create_acked_s", secs(acked));
    f.insert("create_led_s", secs(led));
    f.insert("create_rate", n as f64 / secs(led));
    eprintln!("[{name}] {n} partitions acked in {acked:?}, led everywhere in {led:?}");
    f.insert("broker_rss_mib", max_rss_mib(cluster, true));
    f.insert("controller_rss_mib", max_rss_mib(cluster, false));
    if spec.creation_only {
        return Ok(());
    }
    if spec.fill {
        let started = Instant::now();
        fill(&brokers, n, spec.wait)?;
        f.insert("fill_s", secs(started.elapsed()));
        eprintln!(
            "[{name}] one record in each partition in {:?}",
            started.elapsed()
        );
    }

    // --- controlled shutdown --------------------------------------------------------------------
    settle_writes();
    let layout = Client::connect(first)?.layout()?;
    let victim = busiest(&layout);
    let mut unwritten = layout.partitions_led_by(victim);
    let moved = unwritten.len();
    let survivors: Vec<(i32, SocketAddr)> = brokers
        .iter()
        .copied()
        .filter(|(id, _)| *id != victim)
        .collect();
    let mut pollers = Pollers::new(&survivors);
    let t0 = Instant::now();
    cluster.node_mut(victim).sigterm()?;
    let mut leads_nothing = None;
    // When the last poll that still saw a leadership on the victim was sent: the moment every survivor showed
    // it leading nothing lies between this and `leads_nothing`.
    let mut still_led = Duration::ZERO;
    let mut exited = None;
    // The records go out from their own thread, so a Produce waiting for acks=all never delays noticing the
    // exit; they start once Metadata names the new leaders (a leader answers Metadata from its image before it
    // has taken every partition over).
    let (layout_tx, layout_rx) = std::sync::mpsc::channel::<Layout>();
    let new_leaders = survivors.clone();
    let wait = spec.wait;
    let (polled, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<Duration> {
            let layout = layout_rx.recv()?;
            let mut writer = OneEach::new(&new_leaders, true);
            poll(
                "every moved partition took a record on its new leader",
                wait,
                || {
                    writer.round(&layout, &mut unwritten)?;
                    Ok(unwritten.is_empty().then(|| t0.elapsed()))
                },
            )
        });
        let polled = poll(
            "the SIGTERMed broker leads nothing and has exited",
            spec.wait,
            || {
                if leads_nothing.is_none() {
                    let asked_at = t0.elapsed();
                    let mut layouts = pollers.layouts();
                    if layouts.values().any(|l| l.led_by(victim) > 0) {
                        still_led = asked_at;
                    }
                    if layouts.len() == survivors.len()
                        && layouts
                            .values()
                            .all(|l| l.led() == n && l.led_by(victim) == 0)
                    {
                        leads_nothing = Some(t0.elapsed());
                        if let Some((_, layout)) = layouts.drain().next() {
                            let _ = layout_tx.send(layout);
                        }
                    }
                }
                if exited.is_none() && cluster.node_mut(victim).has_exited() {
                    exited = Some(t0.elapsed());
                }
                Ok(leads_nothing.zip(exited))
            },
        );
        // Unblocks the writer if Metadata never named the new leaders.
        drop(layout_tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the writer thread panicked")));
        (polled, written)
    });
    let (leads_nothing, exited) = polled?;
    let all_written = written?;
    f.insert("cs_written_s", secs(all_written));
    cluster.node_mut(victim).wait_exit(Duration::from_secs(1))?;
    f.insert("cs_moved", moved as f64);
    f.insert("cs_leads_nothing_s", secs(leads_nothing));
    f.insert("cs_still_led_s", secs(still_led));
    f.insert("cs_exit_s", secs(exited));
    f.insert("cs_total_s", secs(leads_nothing.max(exited)));
    f.insert(
        "cs_rate",
        moved as f64 / secs(leads_nothing.max(Duration::from_micros(1))),
    );
    eprintln!("[{name}] controlled shutdown of {victim}: {moved} leaderships moved in {leads_nothing:?} (a poll sent at {still_led:?} still saw one), each took a record after {all_written:?}, exited after {exited:?}");

    // --- restart of the broker (metadata load, clean shutdown) -----------------------------------
    f.insert(
        "load_broker_clean_s",
        restart_broker(cluster, victim, n, spec.wait)?,
    );
    let t0 = Instant::now();
    let isr_wait = spec.wait.min(Duration::from_secs(300));
    match poll("every replica is in the ISR again", isr_wait, || {
        Ok((Client::connect(first)?.layout()?.full_isr >= n).then_some(()))
    }) {
        Ok(()) => {
            f.insert("isr_rejoin_s", secs(t0.elapsed()));
        }
        Err(e) => eprintln!("[{name}] {e:#}; going on with the layout as it is"),
    }
    rebalance(cluster, &brokers, n)?;

    // --- uncontrolled failover ------------------------------------------------------------------
    settle_writes();
    let layout = Client::connect(first)?.layout()?;
    let victim = busiest(&layout);
    let orphans = layout.partitions_led_by(victim);
    let survivors: Vec<(i32, SocketAddr)> = brokers
        .iter()
        .copied()
        .filter(|(id, _)| *id != victim)
        .collect();
    let mut pollers = Pollers::new(&survivors);
    let t0 = Instant::now();
    cluster.node_mut(victim).kill9()?;
    let mut fenced = None;
    let done = poll(
        "every partition of the killed broker has a new leader on every survivor",
        spec.wait,
        || {
            let layouts = pollers.layouts();
            if fenced.is_none() && layouts.values().any(|l| !l.brokers.contains(&victim)) {
                fenced = Some(t0.elapsed());
            }
            let all = layouts.len() == survivors.len()
                && layouts.values().all(|l| {
                    orphans
                        .iter()
                        .all(|tp| l.leaders.get(tp).is_some_and(|x| *x >= 0 && *x != victim))
                });
            Ok(all.then(|| t0.elapsed()))
        },
    )?;
    let fenced = fenced.unwrap_or(done);
    f.insert("uf_moved", orphans.len() as f64);
    f.insert("uf_from_kill_s", secs(done));
    f.insert("uf_fenced_s", secs(fenced));
    f.insert("uf_from_fence_s", secs(done.saturating_sub(fenced)));
    eprintln!(
        "[{name}] kill -9 of {victim}: fenced (seen) after {fenced:?}, {} partitions led again after {done:?}",
        orphans.len()
    );
    f.insert(
        "load_broker_crash_s",
        restart_broker(cluster, victim, n, spec.wait)?,
    );

    // --- controller failover --------------------------------------------------------------------
    settle_writes();
    let active = Client::connect(first)?.quorum()?.leader;
    let t0 = Instant::now();
    cluster.node_mut(active).kill9()?;
    let topic = format!("{TOPIC_PREFIX}{tag}-after-controller-kill");
    let mut attempt = 0;
    let took = poll(
        "a CreateTopics commits after the active controller was killed",
        spec.wait,
        || {
            let mut c = Client::connect_with_timeout(first, Duration::from_secs(10))?;
            let failed = c.create_topics(std::slice::from_ref(&topic), 1, 5_000, attempt > 0);
            attempt += 1;
            Ok(failed?.is_empty().then(|| t0.elapsed()))
        },
    )?;
    f.insert("cf_s", secs(took));
    eprintln!("[{name}] controller {active} killed; CreateTopics committed after {took:?}");

    // --- restart of the controller (metadata load) ---------------------------------------------
    let target = poll("DescribeQuorum answers", spec.wait, || {
        Ok(Some(Client::connect(first)?.quorum()?))
    })?
    .high_watermark;
    let loaded = respawn_controller_caught_up(cluster, active, first, target, spec.wait)?;
    f.insert("load_controller_s", secs(loaded));
    eprintln!("[{name}] controller {active} restarted and caught up in {loaded:?}");
    Ok(())
}

/// Sends `topic`'s CreateTopics with `create` until it succeeds, at most 5 times, 500 ms apart; a transport error
/// reconnects to `addr` first. `create` gets whether this is a retry (a TOPIC_ALREADY_EXISTS then means an earlier
/// attempt committed) and answers the broker's refusal, if any.
pub fn create_retrying(
    name: &str,
    topic: &str,
    addr: SocketAddr,
    admin: &mut Client,
    mut create: impl FnMut(&mut Client, bool) -> Result<Option<String>>,
) -> Result<()> {
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        match create(admin, attempt > 0) {
            Ok(None) => return Ok(()),
            Ok(Some(refusal)) => eprintln!("[{name}] CreateTopics {topic}: {refusal}"),
            Err(e) => {
                eprintln!("[{name}] CreateTopics {topic}: {e}");
                *admin = Client::connect(addr)?;
            }
        }
    }
    bail!("creating {topic} failed 5 times")
}

/// Starts stopped controller `id` again and times it until it has started and its log end offset, as
/// DescribeQuorum at broker `addr` shows it, reached `target` (the high watermark before the restart).
pub fn respawn_controller_caught_up(
    cluster: &mut ProcCluster,
    id: i32,
    addr: SocketAddr,
    target: i64,
    wait: Duration,
) -> Result<Duration> {
    let t0 = Instant::now();
    cluster.respawn(id)?;
    poll(
        "the restarted controller has started and caught up",
        wait,
        || {
            if cluster.node_mut(id).has_exited() {
                bail!("controller {id} exited:\n{}", cluster.node(id).log_tail());
            }
            if !cluster.logged_started(id) {
                return Ok(None);
            }
            let q = Client::connect(addr)?.quorum()?;
            Ok(q.voters
                .iter()
                .any(|(voter, leo)| *voter == id && *leo >= target)
                .then(|| t0.elapsed()))
        },
    )
}

/// Writes every dirty page and journal transaction out (`sync(2)`) before a failover scenario, for both
/// systems, so the scenario's own fsyncs (the controllers' metadata appends) do not carry what the phase before
/// it left: right after the fill, the first raft append's fsync committed the journal entries of the tens of
/// thousands of partition directories and files the fill had just created (Kraftwerk creates a partition's
/// directory at its first write), which took 150 ms on the journaled loop device against 8–13 ms on a settled
/// filesystem, and decided the controlled shutdown's figure (313 against 126 ms in two runs of one build).
fn settle_writes() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// The broker leading the most harness partitions.
fn busiest(layout: &Layout) -> i32 {
    let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
    for l in layout.leaders.values() {
        *counts.entry(*l).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(id, _)| *id >= 0)
        .max_by_key(|(id, c)| (*c, -id))
        .map(|(id, _)| id)
        .unwrap_or(-1)
}

/// Restarts broker `id` and returns the seconds from spawn until it answers Metadata itself, lists
/// itself among the live brokers, and shows every harness partition with a leader.
fn restart_broker(cluster: &mut ProcCluster, id: i32, n: usize, wait: Duration) -> Result<f64> {
    let addr = cluster.node(id).addr();
    let t0 = Instant::now();
    cluster.respawn(id)?;
    let took = poll("the restarted broker serves its image", wait, || {
        if cluster.node_mut(id).has_exited() {
            bail!("broker {id} exited:\n{}", cluster.node(id).log_tail());
        }
        let mut c = Client::connect_with_timeout(addr, Duration::from_secs(2))?;
        let l = c.layout()?;
        Ok((l.brokers.contains(&id) && l.led() >= n).then(|| t0.elapsed()))
    })?;
    eprintln!(
        "[{}] broker {id} restarted and serving its image in {took:?}",
        cluster.flavor.name()
    );
    Ok(secs(took))
}

/// Runs a preferred election (after the wait for the ISR) so that each broker leads about a third again
/// (the uncontrolled-failover victim leads as much as the controlled one did).
fn rebalance(cluster: &mut ProcCluster, brokers: &[(i32, SocketAddr)], n: usize) -> Result<()> {
    let first = brokers[0].1;
    Client::connect(first)?.elect_preferred_all()?;
    let balanced = poll(
        "leaders are spread over the three brokers again",
        Duration::from_secs(120),
        || {
            let l = Client::connect(first)?.layout()?;
            let counts: Vec<usize> = brokers.iter().map(|(id, _)| l.led_by(*id)).collect();
            let (lo, hi) = (
                counts.iter().min().copied().unwrap_or(0),
                counts.iter().max().copied().unwrap_or(0),
            );
            Ok((l.led() == n && hi - lo <= n / 10 + 1).then_some(counts))
        },
    );
    match balanced {
        Ok(counts) => eprintln!(
            "[{}] leaders per broker after the preferred election: {counts:?}",
            cluster.flavor.name()
        ),
        Err(e) => eprintln!(
            "[{}] {e:#}; going on with the layout as it is",
            cluster.flavor.name()
        ),
    }
    Ok(())
}

fn max_rss_mib(cluster: &ProcCluster, brokers: bool) -> f64 {
    cluster
        .nodes
        .iter()
        .filter(|n| n.is_broker == brokers)
        .map(|n| n.rss_kib())
        .max()
        .unwrap_or(0) as f64
        / 1024.0
}
