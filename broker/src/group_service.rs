//! The async shell around the pure [`GroupCoordinator`]: one task owns it, feeds it requests and timer ticks,
//! writes the records it asks for to `__consumer_offsets` (through the same storage as any topic) before
//! answering, and routes the replies — JoinGroup and SyncGroup replies may come out of a later call.
//!
//! On start it creates `__consumer_offsets` if needed and replays it, so committed offsets and group metadata
//! survive restarts and `kill -9`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::{mpsc, oneshot};

use kraftwerk_controller::CreateTopicSpec;

use crate::quorum::cluster::ClusterHandle;
use kraftwerk_storage::batch::{build_batch, records, KeyValue};

use crate::config::BrokerConfig;
use crate::context::now_ms;
use crate::group::{
    partition_for, GroupConfig, GroupCoordinator, GroupRecord, Output, ReplyId, Response,
};
use crate::replica::partition::Appended;
use crate::replica::ReplicaManager;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

type Call = Box<dyn FnOnce(&mut GroupCoordinator, ReplyId, i64) -> Vec<Output> + Send>;

struct Command {
    call: Call,
    reply: oneshot::Sender<Response>,
}

/// Handle to the coordinator task.
#[derive(Clone)]
pub struct GroupService {
    tx: mpsc::Sender<Command>,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupServiceError {
    #[error("cannot create {OFFSETS_TOPIC}: {0}")]
    CreateTopic(String),
}

impl GroupService {
    /// Ensures `__consumer_offsets` exists and is open here, replays it, and starts the coordinator task.
    pub async fn start(
        config: &BrokerConfig,
        controller: ClusterHandle,
        replicas: Arc<ReplicaManager>,
    ) -> Result<GroupService, GroupServiceError> {
        let num_partitions = ensure_offsets_topic(config, &controller, &replicas).await?;
        let mut coordinator = GroupCoordinator::new(GroupConfig {
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: config
                .group_initial_rebalance_delay_ms
                .clamp(0, i32::MAX as i64) as i32,
            ..GroupConfig::default()
        });
        let loaded = load(&replicas, num_partitions);
        let n = loaded.len();
        let groups = coordinator.load(loaded, now_ms());
        tracing::info!(records = n, groups, "loaded {OFFSETS_TOPIC}");
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run(coordinator, rx, replicas, num_partitions));
        Ok(GroupService { tx })
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

async fn ensure_offsets_topic(
    config: &BrokerConfig,
    controller: &ClusterHandle,
    replicas: &ReplicaManager,
) -> Result<i32, GroupServiceError> {
    if let Some(t) = controller.image().topic(OFFSETS_TOPIC) {
        return Ok(t.partition_count());
    }
    let brokers = controller.image().unfenced_broker_ids().len().max(1) as i16;
    let rf = config.offsets_topic_replication_factor.clamp(1, brokers);
    let spec = CreateTopicSpec::new(OFFSETS_TOPIC, config.offsets_topic_num_partitions, rf)
        .with_config("cleanup.policy", "compact")
        .with_config("segment.bytes", "104857600")
        .with_config("compression.type", "producer");
    let result = controller.create_topics(vec![spec], false).await;
    match result.into_iter().next().map(|r| r.result) {
        Some(Ok(created)) => {
            tracing::info!(
                partitions = created.num_partitions,
                replication_factor = rf,
                "created {OFFSETS_TOPIC}"
            );
            replicas.reconcile(&controller.image());
            Ok(created.num_partitions)
        }
        Some(Err(e)) => {
            // Lost a race with another broker creating it: fine, once our image has the topic.
            let mut images = controller.subscribe();
            let found = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                images.wait_for(|i| i.topic(OFFSETS_TOPIC).is_some()),
            )
            .await;
            match found {
                Ok(Ok(image)) => Ok(image
                    .topic(OFFSETS_TOPIC)
                    .map_or(config.offsets_topic_num_partitions, |t| t.partition_count())),
                _ => Err(GroupServiceError::CreateTopic(e.to_string())),
            }
        }
        None => Err(GroupServiceError::CreateTopic(
            "no answer from the controller".into(),
        )),
    }
}

/// Reads every record of every hosted `__consumer_offsets` partition, oldest first.
fn load(replicas: &ReplicaManager, num_partitions: i32) -> Vec<GroupRecord> {
    (0..num_partitions)
        .flat_map(|p| load_partition(replicas, p))
        .collect()
}

/// Reads every record of one `__consumer_offsets` partition, oldest first.
fn load_partition(replicas: &ReplicaManager, p: i32) -> Vec<GroupRecord> {
    let mut out = Vec::new();
    {
        let Some(part) = replicas.get(OFFSETS_TOPIC, p) else {
            return out;
        };
        let scanned = part.scan_batches(0, |h, batch| match records(batch) {
            Ok(iter) => {
                for r in iter {
                    match r {
                        Ok(r) => match r.key.map(|key| GroupRecord::decode(key, r.value)) {
                            Some(Ok(rec)) => out.push(rec),
                            Some(Err(e)) => {
                                tracing::warn!(partition = p, offset = r.offset, error = %e, "skipping undecodable group record")
                            }
                            None => tracing::warn!(partition = p, offset = r.offset, "skipping group record without key"),
                        },
                        Err(e) => {
                            tracing::warn!(partition = p, error = %e, "skipping rest of a corrupt batch");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(partition = p, offset = h.base_offset, error = %e, "skipping unreadable batch"),
        });
        if let Err(e) = scanned {
            tracing::error!(partition = p, error = %e, "cannot read {OFFSETS_TOPIC}");
        }
    }
    out
}

async fn run(
    mut coordinator: GroupCoordinator,
    mut rx: mpsc::Receiver<Command>,
    replicas: Arc<ReplicaManager>,
    num_partitions: i32,
) {
    let mut pending: HashMap<ReplyId, oneshot::Sender<Response>> = HashMap::new();
    let mut next_id: ReplyId = 0;
    loop {
        let deadline = coordinator.next_deadline_ms();
        let sleep = match deadline {
            Some(d) => Duration::from_millis((d - now_ms()).max(0) as u64),
            None => Duration::from_secs(3600),
        };
        let outputs = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Command { call, reply }) => {
                    next_id += 1;
                    pending.insert(next_id, reply);
                    call(&mut coordinator, next_id, now_ms())
                }
                None => return,
            },
            _ = tokio::time::sleep(sleep) => coordinator.tick(now_ms()),
        };
        carry_out(
            outputs,
            &mut coordinator,
            &mut pending,
            &replicas,
            num_partitions,
        );
    }
}

/// Writes records first, then answers: a client told "committed" can rely on the commit being in the log.
///
/// If a write fails, the coordinator has already applied state that is not durable. The replies that
/// followed the write become NOT_COORDINATOR (the client rediscovers the coordinator and retries), the
/// partition's groups are unloaded (answering anyone still waiting) and reloaded from what the log holds.
fn carry_out(
    outputs: Vec<Output>,
    coordinator: &mut GroupCoordinator,
    pending: &mut HashMap<ReplyId, oneshot::Sender<Response>>,
    replicas: &ReplicaManager,
    num_partitions: i32,
) {
    let mut replies = Vec::new();
    let mut failed = Vec::new();
    for o in outputs {
        match o {
            Output::Persist(records) => failed.extend(persist(records, replicas, num_partitions)),
            Output::Reply { id, mut response } => {
                if !failed.is_empty() {
                    fail_reply(&mut response, ResponseError::NotCoordinator.code());
                }
                replies.push((id, response));
            }
        }
    }
    for (id, response) in replies {
        if let Some(tx) = pending.remove(&id) {
            // The client may have gone away; nothing to do then.
            let _ = tx.send(response);
        }
    }
    failed.sort_unstable();
    failed.dedup();
    for p in failed {
        let unloaded = coordinator.unload_partition(p, num_partitions);
        carry_out(unloaded, coordinator, pending, replicas, num_partitions);
        let groups = coordinator.load(load_partition(replicas, p), now_ms());
        tracing::warn!(
            partition = p,
            groups,
            "reloaded group state from {OFFSETS_TOPIC} after a failed write"
        );
    }
}

/// Turns a reply whose records were not written into an error reply.
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
        // Reads change nothing that needed writing.
        Response::OffsetFetch(_) | Response::ListGroups(_) | Response::DescribeGroups(_) => {}
    }
}

/// Appends records to their `__consumer_offsets` partitions; returns the partitions whose write failed.
fn persist(records: Vec<GroupRecord>, replicas: &ReplicaManager, num_partitions: i32) -> Vec<i32> {
    let mut failed = Vec::new();
    let mut by_partition: BTreeMap<i32, Vec<(bytes::Bytes, Option<bytes::Bytes>)>> =
        BTreeMap::new();
    for r in records {
        match (r.encode_key(), r.encode_value()) {
            (Ok(k), Ok(v)) => by_partition
                .entry(partition_for(r.group_id(), num_partitions))
                .or_default()
                .push((k, v)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(group = r.group_id(), error = %e, "cannot encode group record")
            }
        }
    }
    let now = now_ms();
    for (p, kvs) in by_partition {
        let Some(part) = replicas.get(OFFSETS_TOPIC, p) else {
            tracing::error!(
                partition = p,
                "{OFFSETS_TOPIC} partition is not hosted here; group state not persisted"
            );
            failed.push(p);
            continue;
        };
        let pairs: Vec<KeyValue> = kvs
            .iter()
            .map(|(k, v)| (Some(k.as_ref()), v.as_deref()))
            .collect();
        let batch = build_batch(0, part.leader_epoch(), now, &pairs);
        match part.append_as_leader(&batch, now, None) {
            Ok(Appended::Written(_)) | Ok(Appended::Duplicate { .. }) => {}
            Err(e) => {
                tracing::error!(partition = p, error = %e, "cannot write group records");
                failed.push(p);
            }
        }
    }
    failed
}
