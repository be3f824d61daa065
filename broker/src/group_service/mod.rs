//! The async shell around the pure [`GroupCoordinator`]: one task owns it, feeds it requests and timer ticks,
//! follows which `__consumer_offsets` partitions this broker leads, writes the records the coordinator asks for
//! through the partition leader's replication path, and routes the replies (JoinGroup and SyncGroup replies may
//! come out of a later call).
//!
//! - **Leadership** (Kafka's `onElection`/`onResignation`): on every metadata image, and while a hosted
//!   partition has not yet taken the role the image gives it, the task compares the partitions the image says
//!   this broker leads (and whose replica has applied that leadership) with those the coordinator holds. A
//!   newly led partition is read back to its log end off the runtime ([`log_io::read_records`]) while its
//!   groups answer COORDINATOR_LOAD_IN_PROGRESS; a partition led no more is released, its waiting requests
//!   answered NOT_COORDINATOR. FindCoordinator names the partition leader, so clients follow.
//! - **Writes** (acks=all, as Kafka's coordinator appends with acks=-1): appended as leader in the epoch the
//!   partition was loaded in (refused if ISR < `min.insync.replicas`), then every reply produced after it is
//!   held in a [`commit_gate::CommitGate`] until the high watermark passes the write, so a client is never
//!   told of a commit that a failover could lose. A write that fails, times out
//!   ([`OFFSETS_COMMIT_TIMEOUT`]) or loses leadership fails the replies waiting for it (NOT_COORDINATOR or
//!   COORDINATOR_NOT_AVAILABLE, so clients retry) and reloads the partition from its log (memory was ahead of
//!   it) or releases it.
//! - **The topic** is created on demand ([`offsets_topic`]).

pub mod commit_gate;
pub mod log_io;
pub mod offsets_topic;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::{mpsc, oneshot};

use kraftwerk_storage::batch::{build_batch, KeyValue};

use crate::config::BrokerConfig;
use crate::context::now_ms;
use crate::group::{
    GroupConfig, GroupCoordinator, GroupRecord, Holding, Output, ReplyId, Response,
};
use crate::image_ext::ImageExt;
use crate::quorum::cluster::ClusterHandle;
use crate::replica::partition::{AppendError, Appended, CommitWait};
use crate::replica::ReplicaManager;

use commit_gate::CommitGate;
use offsets_topic::{OffsetsTopic, Readiness};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How long a group write may wait for the in-sync replicas (Kafka's `offsets.commit.timeout.ms` default).
pub const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How soon leadership is looked at again while a led partition's replica has not yet applied its role (the
/// image watcher reconciles replicas concurrently with this task).
const RECHECK_INTERVAL: Duration = Duration::from_millis(100);

type Call = Box<dyn FnOnce(&mut GroupCoordinator, ReplyId, i64) -> Vec<Output> + Send>;

struct Command {
    call: Call,
    reply: oneshot::Sender<Response>,
}

/// Handle to the coordinator task.
#[derive(Clone)]
pub struct GroupService {
    tx: mpsc::Sender<Command>,
    topic: Arc<OffsetsTopic>,
}

impl GroupService {
    /// Starts the coordinator task (holding no partition until it finds this broker leading one) and asks for
    /// `__consumer_offsets` if it is missing and enough brokers are live.
    pub fn start(
        config: &BrokerConfig,
        cluster: ClusterHandle,
        replicas: Arc<ReplicaManager>,
    ) -> GroupService {
        let topic = Arc::new(OffsetsTopic::new(
            cluster.clone(),
            config.offsets_topic_num_partitions,
            config.offsets_topic_replication_factor,
        ));
        topic.ensure();
        let coordinator = GroupCoordinator::new(GroupConfig {
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: config
                .group_initial_rebalance_delay_ms
                .clamp(0, i32::MAX as i64) as i32,
            ..GroupConfig::default()
        });
        let (tx, rx) = mpsc::channel(1024);
        let (events_tx, events) = mpsc::unbounded_channel();
        let shell = Shell {
            coordinator,
            pending: HashMap::new(),
            next_id: 0,
            node_id: config.node_id,
            default_min_isr: config.min_insync_replicas.max(1) as usize,
            cluster,
            replicas,
            gate: CommitGate::default(),
            generations: HashMap::new(),
            next_generation: 0,
            events_tx,
            recheck: false,
        };
        tokio::spawn(shell.run(rx, events));
        GroupService { tx, topic }
    }

    /// Whether `__consumer_offsets` exists; if not, starts creating it when enough brokers are live (Kafka
    /// creates it on the first FindCoordinator).
    pub fn offsets_topic(&self) -> Readiness {
        self.topic.ensure()
    }

    /// Runs one coordinator call and waits for its reply (which may take a whole rebalance). `None` if the
    /// coordinator stopped.
    pub async fn call<F>(&self, f: F) -> Option<Response>
    where
        F: FnOnce(&mut GroupCoordinator, ReplyId, i64) -> Vec<Output> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command {
                call: Box::new(f),
                reply,
            })
            .await
            .ok()?;
        rx.await.ok()
    }
}

/// What background work reports back to the coordinator task. `generation` names the holding of the
/// partition the work was started for; a report for an older holding is stale and ignored.
enum Event {
    Loaded {
        partition: i32,
        leader_epoch: i32,
        generation: u64,
        /// The records and the log end they were read to, or why they could not be read.
        result: Result<(Vec<GroupRecord>, i64), String>,
    },
    Commit {
        partition: i32,
        generation: u64,
        end_offset: i64,
        outcome: CommitWait,
    },
}

/// Why group records could not be written to their partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteFailure {
    /// This broker does not lead the partition (any more): the client must find the new coordinator.
    NotLeader,
    /// Still leader, but the write could not be made durable (too few in-sync replicas, a timeout, a storage
    /// error): the client retries.
    NotDurable,
}

impl WriteFailure {
    fn error(self) -> ResponseError {
        match self {
            WriteFailure::NotLeader => ResponseError::NotCoordinator,
            WriteFailure::NotDurable => ResponseError::CoordinatorNotAvailable,
        }
    }
}

struct Shell {
    coordinator: GroupCoordinator,
    pending: HashMap<ReplyId, oneshot::Sender<Response>>,
    next_id: ReplyId,
    node_id: i32,
    default_min_isr: usize,
    cluster: ClusterHandle,
    replicas: Arc<ReplicaManager>,
    gate: CommitGate<(ReplyId, Response)>,
    /// Per held partition, the generation of its current holding (bumped on every load).
    generations: HashMap<i32, u64>,
    next_generation: u64,
    events_tx: mpsc::UnboundedSender<Event>,
    /// A led partition's replica has not applied its leadership yet: look again soon.
    recheck: bool,
}

impl Shell {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        mut events: mpsc::UnboundedReceiver<Event>,
    ) {
        let mut images = self.cluster.subscribe();
        images.mark_changed();
        loop {
            let sleep = match self.coordinator.next_deadline_ms() {
                Some(d) => Duration::from_millis((d - now_ms()).max(0) as u64),
                None => Duration::from_secs(3600),
            };
            let recheck = if self.recheck {
                RECHECK_INTERVAL
            } else {
                Duration::from_secs(3600)
            };
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Command { call, reply }) => {
                        self.next_id += 1;
                        self.pending.insert(self.next_id, reply);
                        let outputs = call(&mut self.coordinator, self.next_id, now_ms());
                        self.carry_out(outputs);
                    }
                    None => return,
                },
                Some(event) = events.recv() => self.on_event(event),
                changed = images.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    images.borrow_and_update();
                    self.follow_leadership();
                }
                _ = tokio::time::sleep(recheck) => self.follow_leadership(),
                _ = tokio::time::sleep(sleep) => {
                    let outputs = self.coordinator.tick(now_ms());
                    self.carry_out(outputs);
                }
            }
        }
    }

    /// Takes over the `__consumer_offsets` partitions this broker now leads and releases the others.
    fn follow_leadership(&mut self) {
        let image = self.cluster.image();
        self.recheck = false;
        let Some(topic) = image.topic(OFFSETS_TOPIC) else {
            return;
        };
        self.coordinator
            .set_offsets_partitions(topic.partition_count());
        for (&p, state) in topic.partitions.iter() {
            let led_epoch = (state.leader == self.node_id).then_some(state.leader_epoch);
            // The replica must have taken the role too, or appends in that epoch would be refused.
            let replica_leads = led_epoch.is_some_and(|epoch| {
                self.replicas
                    .get(OFFSETS_TOPIC, p)
                    .map(|part| part.role())
                    .is_some_and(|role| role.is_leader() && role.leader_epoch == epoch)
            });
            if led_epoch.is_some() && !replica_leads {
                self.recheck = true;
            }
            let want = led_epoch.filter(|_| replica_leads);
            let held = self.coordinator.holding(p).map(Holding::leader_epoch);
            match (held, want) {
                (Some(h), Some(w)) if h == w => {}
                (Some(_), None) => {
                    tracing::info!(
                        partition = p,
                        "no longer the coordinator of this {OFFSETS_TOPIC} partition"
                    );
                    self.release(p, WriteFailure::NotLeader);
                }
                (_, Some(epoch)) => self.load(p, epoch),
                (None, None) => {}
            }
        }
        // Partitions the image no longer names (never, for an existing topic; if it was deleted, all).
        for (p, _) in self.coordinator.held_partitions() {
            if !topic.partitions.contains_key(&p) {
                self.release(p, WriteFailure::NotLeader);
            }
        }
    }

    /// Starts holding `partition` in `leader_epoch` (dropping any earlier holding) and reads it back off the
    /// runtime.
    fn load(&mut self, partition: i32, leader_epoch: i32) {
        let Some(part) = self.replicas.get(OFFSETS_TOPIC, partition) else {
            self.recheck = true;
            return;
        };
        self.fail_waiting(partition, WriteFailure::NotLeader);
        let outputs = self.coordinator.begin_load(partition, leader_epoch);
        self.carry_out(outputs);
        self.next_generation += 1;
        let generation = self.next_generation;
        self.generations.insert(partition, generation);
        tracing::info!(
            partition,
            leader_epoch,
            "loading groups of {OFFSETS_TOPIC} partition"
        );
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let result =
                match tokio::task::spawn_blocking(move || log_io::read_records(&part)).await {
                    Ok(read) => read.map_err(|e| e.to_string()),
                    Err(e) => Err(format!("reading task failed: {e}")),
                };
            let _ = events.send(Event::Loaded {
                partition,
                leader_epoch,
                generation,
                result,
            });
        });
    }

    /// Stops holding `partition`: its groups are dropped, replies waiting on its writes fail.
    fn release(&mut self, partition: i32, why: WriteFailure) {
        self.generations.remove(&partition);
        self.fail_waiting(partition, why);
        let outputs = self.coordinator.release(partition);
        self.carry_out(outputs);
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Loaded {
                partition,
                leader_epoch,
                generation,
                result,
            } => {
                if self.generations.get(&partition) != Some(&generation) {
                    return;
                }
                match result {
                    Ok((records, end_offset)) => {
                        let n = records.len();
                        let Some(groups) = self.coordinator.complete_load(
                            partition,
                            leader_epoch,
                            records,
                            now_ms(),
                        ) else {
                            return;
                        };
                        tracing::info!(
                            partition,
                            leader_epoch,
                            records = n,
                            groups,
                            end_offset,
                            "loaded groups of {OFFSETS_TOPIC} partition"
                        );
                        // What was read may not all be committed yet: replies from now on wait until it is.
                        self.wrote(partition, leader_epoch, generation, end_offset, true);
                    }
                    Err(e) => {
                        tracing::error!(partition, error = %e, "cannot read {OFFSETS_TOPIC}; not coordinating its groups");
                        self.release(partition, WriteFailure::NotLeader);
                        self.recheck = true;
                    }
                }
            }
            Event::Commit {
                partition,
                generation,
                end_offset,
                outcome,
            } => {
                if self.generations.get(&partition) != Some(&generation) {
                    return;
                }
                match outcome {
                    CommitWait::Committed => {
                        for (id, response) in self.gate.committed(partition, end_offset) {
                            self.send(id, response);
                        }
                    }
                    CommitWait::NotLeader => self.release(partition, WriteFailure::NotLeader),
                    CommitWait::TimedOut => self.reload(partition, WriteFailure::NotDurable),
                }
            }
        }
    }

    /// Records a write to `partition` ending at `end_offset` in the gate and waits for its commit in the
    /// background. A load's end (`patient`) is waited for as long as leadership lasts; a write gives up after
    /// [`OFFSETS_COMMIT_TIMEOUT`].
    fn wrote(
        &mut self,
        partition: i32,
        leader_epoch: i32,
        generation: u64,
        end_offset: i64,
        patient: bool,
    ) {
        let Some(part) = self.replicas.get(OFFSETS_TOPIC, partition) else {
            return;
        };
        if part.high_watermark() >= end_offset {
            return;
        }
        self.gate.wrote(partition, end_offset);
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let outcome = loop {
                let outcome = part
                    .wait_for_commit(end_offset, Some(leader_epoch), OFFSETS_COMMIT_TIMEOUT)
                    .await;
                if !(patient && outcome == CommitWait::TimedOut) {
                    break outcome;
                }
            };
            let _ = events.send(Event::Commit {
                partition,
                generation,
                end_offset,
                outcome,
            });
        });
    }

    /// Fails the replies waiting on `partition`'s writes.
    fn fail_waiting(&mut self, partition: i32, why: WriteFailure) {
        for (id, mut response) in self.gate.failed(partition) {
            fail_reply(&mut response, why.error().code());
            self.send(id, response);
        }
    }

    /// Memory is ahead of the log (a write failed while still leader): drop the partition's groups and read
    /// them back from what the log holds.
    fn reload(&mut self, partition: i32, why: WriteFailure) {
        self.fail_waiting(partition, why);
        match self.coordinator.holding(partition) {
            Some(holding) => {
                tracing::warn!(
                    partition,
                    "reloading group state from {OFFSETS_TOPIC} after a failed write"
                );
                self.load(partition, holding.leader_epoch());
            }
            None => self.release(partition, why),
        }
    }

    /// Writes records first, then answers: replies after a write wait (in the gate) until it is committed;
    /// replies after a write that failed at once report the failure.
    fn carry_out(&mut self, outputs: Vec<Output>) {
        let mut failed: Vec<(i32, WriteFailure)> = Vec::new();
        for o in outputs {
            match o {
                Output::Persist(records) => failed.extend(self.persist(records)),
                Output::Reply { id, mut response } => {
                    if let Some((_, why)) = failed.first() {
                        fail_reply(&mut response, why.error().code());
                        self.send(id, response);
                    } else if let Some((id, response)) = self.gate.admit((id, response)) {
                        self.send(id, response);
                    }
                }
            }
        }
        failed.sort_unstable_by_key(|(p, _)| *p);
        failed.dedup_by_key(|(p, _)| *p);
        for (p, why) in failed {
            match why {
                WriteFailure::NotLeader => self.release(p, why),
                WriteFailure::NotDurable => self.reload(p, why),
            }
        }
    }

    fn send(&mut self, id: ReplyId, response: Response) {
        if let Some(tx) = self.pending.remove(&id) {
            // The client may have gone away; nothing to do then.
            let _ = tx.send(response);
        }
    }

    /// Appends records to their `__consumer_offsets` partitions as leader, in the epoch each was loaded in;
    /// returns the partitions whose write failed.
    fn persist(&mut self, records: Vec<GroupRecord>) -> Vec<(i32, WriteFailure)> {
        let n = self.coordinator.offsets_partitions();
        let mut failed = Vec::new();
        let now = now_ms();
        let image = self.cluster.image();
        let min_isr = image
            .topic_or_dynamic(
                OFFSETS_TOPIC,
                "min.insync.replicas",
                self.node_id,
                "min.insync.replicas",
            )
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(self.default_min_isr);
        for (p, kvs) in log_io::encode_by_partition(records, n) {
            let (Some(Holding::Active { leader_epoch }), Some(part), Some(&generation)) = (
                self.coordinator.holding(p),
                self.replicas.get(OFFSETS_TOPIC, p),
                self.generations.get(&p),
            ) else {
                tracing::error!(
                    partition = p,
                    "not coordinating this {OFFSETS_TOPIC} partition; group state not persisted"
                );
                failed.push((p, WriteFailure::NotLeader));
                continue;
            };
            let isr = part.isr_len();
            if isr < min_isr {
                tracing::warn!(
                    partition = p,
                    isr,
                    min_isr,
                    "too few in-sync replicas to write group records"
                );
                failed.push((p, WriteFailure::NotDurable));
                continue;
            }
            let pairs: Vec<KeyValue> = kvs
                .iter()
                .map(|(k, v)| (Some(k.as_ref()), v.as_deref()))
                .collect();
            let batch = build_batch(0, leader_epoch, now, &pairs);
            match part.append_as_leader(&batch, now, Some(leader_epoch)) {
                Ok(appended) => {
                    let end = match appended {
                        Appended::Written(r) => r.last_offset + 1,
                        Appended::Duplicate { last_offset, .. } => last_offset + 1,
                    };
                    self.wrote(p, leader_epoch, generation, end, false);
                }
                Err(e @ AppendError::WrongRole { .. }) => {
                    tracing::warn!(partition = p, error = %e, "lost leadership writing group records");
                    failed.push((p, WriteFailure::NotLeader));
                }
                Err(e) => {
                    tracing::error!(partition = p, error = %e, "cannot write group records");
                    failed.push((p, WriteFailure::NotDurable));
                }
            }
        }
        failed
    }
}

/// Turns a reply whose records were not written (or not committed) into an error reply.
fn fail_reply(response: &mut Response, code: i16) {
    match response {
        Response::OffsetCommit(r) => {
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                if p.error_code == 0 {
                    p.error_code = code;
                }
            }
        }
        Response::JoinGroup(r) => {
            r.error_code = code;
            r.members.clear();
        }
        Response::SyncGroup(r) => {
            r.error_code = code;
            r.assignment = bytes::Bytes::new();
        }
        Response::Heartbeat(r) => r.error_code = code,
        Response::LeaveGroup(r) => r.error_code = code,
        Response::OffsetDelete(r) => r.error_code = code,
        Response::DeleteGroups(r) => {
            for g in &mut r.results {
                if g.error_code == 0 {
                    g.error_code = code;
                }
            }
        }
        // Reads change nothing that needed writing; what they read may be rolled back, which a retry sees.
        Response::OffsetFetch(_) | Response::ListGroups(_) | Response::DescribeGroups(_) => {}
    }
}
