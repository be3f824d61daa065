//! Fetch with long polling. Reads return whole batches straight from the log files (no re-encoding); a request
//! that finds fewer than `min_bytes` waits until `max_wait_ms` for an append or high-watermark advance on one of
//! the partitions it reads (see `replica::purgatory`), then answers with what there is. It answers sooner when
//! the client has sent another request on the connection meanwhile, which would otherwise wait behind it
//! (`network::queued_input`); Kafka waits out `max_wait_ms` then too.
//!
//! A fetch with a replica id >= 0 (`replica_id` before v15, `ReplicaState` from v15) is a follower copying the
//! partition: its fetch offset is its log end offset, which the leader records (moving the high watermark and
//! the follower's caught-up time), and it reads up to the log end; consumers (replica id -1) read only below the
//! high watermark.
//!
//! Fetch from the closest replica (KIP-392): a consumer fetch of v11+ carries client metadata, so a follower
//! serves it too (up to the follower's high watermark); a leader running `replica.selector.class` answers a
//! consumer in another rack with the preferred read replica instead of records.
//!
//! Fetch sessions (KIP-227, `crate::fetch_session`): a full fetch with epoch 0 opens a session when the cache has
//! room and its answer carries the session id; an incremental fetch reads every partition of its session and
//! answers only those with records, moved offsets or errors. Epoch -1 (librdkafka, kafkajs, our followers) is
//! answered whole with session id 0.
//!
//! Records are not copied here: each partition's answer names a range of a segment file (`FileSlice`, taken
//! with the partition lock held only to snapshot the segments), which the connection sends after the encoded
//! response fields (sendfile on plaintext listeners), as Kafka's `FileRecords`.
//!
//! NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH answers name the current leader and epoch (v12+) and the
//! response lists those leaders' endpoints on the client's listener (v16+), KIP-951.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_controller::image::TopicImage;
use kraftwerk_controller::MetadataImage;
use kraftwerk_storage::FileSlice;

use crate::context::BrokerContext;
use crate::fetch_session::{Answer, Begun, PartitionKey, SessionRequest, TopicRef};
use crate::network::queued_input::QueuedInput;
use crate::replica::partition::FollowerFetch;
use crate::replica::purgatory::Waiter;
use crate::replica::read_replica::{preferred_read_replica, ReplicaSelector, ReplicaView};
use crate::replica::Partition;

use super::errors::{code, storage_error_code};
use super::leader_hints;

/// First Fetch version with sessions (KIP-227).
const SESSION_VERSION: i16 = 7;
/// First Fetch version naming topics by id.
const TOPIC_ID_VERSION: i16 = 13;
/// FetchRequest.isolation_level for READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

struct Target {
    /// Index into the response's topic list and partition list.
    topic_idx: usize,
    part_idx: usize,
    /// The topic's name (shared by its partitions); `None` for an id the image does not know.
    name: Option<Arc<str>>,
    req: FetchPartition,
    /// A follower's fetch (replica id >= 0): reads up to the log end.
    follower: bool,
    /// For a follower fetch: whether the leader recorded it (false: not a replica here, or we do not lead).
    follower_recorded: bool,
}

/// Who is reading, beyond the per-partition targets.
struct Reader {
    /// Fetch v11+ from a consumer: it may read from a follower (KIP-392), as Kafka allows once a request
    /// carries client metadata.
    may_read_follower: bool,
    /// The consumer's `client.rack` (empty: none).
    rack: String,
    /// READ_COMMITTED: Kafka lists aborted transactions (possibly none) for a partition it read only
    /// then; a READ_UNCOMMITTED read gets null (an error before the log is reached still gets `[]`).
    read_committed: bool,
}

/// First version with the current leader in a partition's answer (KIP-951 uses it).
const CURRENT_LEADER_VERSION: i16 = 12;
/// First version listing the endpoints of the leaders named (KIP-951).
const NODE_ENDPOINTS_VERSION: i16 = 16;

/// A fetch answer: the response, whose partitions with records have an empty `records` field, and the
/// records themselves, still in the segment files.
#[derive(Debug, Default)]
pub struct FetchReply {
    pub response: FetchResponse,
    /// (topic index, partition index) in `response`, and the bytes to send as that partition's records.
    pub records: Vec<((usize, usize), FileSlice)>,
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    listener: &str,
    queued: &QueuedInput,
    req: FetchRequest,
    version: i16,
) -> FetchReply {
    let mut resp = FetchResponse::default();
    let replica_id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let follower = (replica_id >= 0).then_some(replica_id);
    let uses_topic_ids = version >= TOPIC_ID_VERSION;
    let named = named_partitions(&req, uses_topic_ids);
    // Fetch sessions (KIP-227) from v7; before, every request is sessionless.
    let begun = if version >= SESSION_VERSION {
        ctx.fetch_sessions.begin(
            SessionRequest {
                session_id: req.session_id,
                epoch: req.session_epoch,
                uses_topic_ids,
                partitions: named,
                forgotten: forgotten_partitions(&req, uses_topic_ids),
            },
            crate::context::now_ms().max(0) as u64,
        )
    } else {
        Begun::Sessionless(named)
    };
    let to_read = match &begun {
        Begun::Error(e) => {
            resp.error_code = code(*e);
            return FetchReply::from(resp);
        }
        Begun::Sessionless(parts) | Begun::Full(parts) => parts.as_slice(),
        Begun::Incremental { partitions, .. } => partitions.as_slice(),
    };
    let image = ctx.controller.image();
    let mut targets = Vec::with_capacity(to_read.len());
    let mut prev_topic: Option<&TopicRef> = None;
    // The name of the topic being laid out, resolved once per run of its partitions.
    let mut name: Option<Arc<str>> = None;
    for (key, fp) in to_read {
        if prev_topic != Some(&key.topic) {
            prev_topic = Some(&key.topic);
            let mut tr = FetchableTopicResponse::default();
            match &key.topic {
                TopicRef::Id(id) => {
                    tr.topic_id = *id;
                    name = image.topic_by_id(id).map(|t| Arc::from(t.name.as_str()));
                }
                TopicRef::Name(n) => {
                    tr.topic = TopicName(StrBytes::from_string(n.to_string()));
                    name = Some(n.clone());
                }
            }
            resp.responses.push(tr);
        }
        let topic_idx = resp.responses.len() - 1;
        let partitions = &mut resp.responses[topic_idx].partitions;
        let mut pd = PartitionData::default();
        pd.partition_index = fp.partition;
        pd.high_watermark = -1;
        pd.last_stable_offset = -1;
        pd.log_start_offset = -1;
        pd.preferred_read_replica = BrokerId(-1);
        pd.aborted_transactions = Some(Vec::new());
        pd.records = Some(bytes::Bytes::new());
        partitions.push(pd);
        targets.push(Target {
            topic_idx,
            part_idx: partitions.len() - 1,
            name: name.clone(),
            req: fp.clone(),
            follower: false,
            follower_recorded: false,
        });
    }

    let reader = Reader {
        may_read_follower: follower.is_none() && version >= 11,
        rack: if version >= 11 {
            req.rack_id.to_string()
        } else {
            String::new()
        },
        read_committed: req.isolation_level == READ_COMMITTED,
    };
    if let Some(replica_id) = follower {
        let now = crate::context::now_ms();
        let parts = hosted(ctx, &targets);
        for (t, part) in targets.iter_mut().zip(parts) {
            if let Some(part) = part {
                let fetch = part.record_follower_fetch(replica_id, t.req.fetch_offset, now);
                t.follower_recorded = fetch != FollowerFetch::Refused;
                if fetch == FollowerFetch::MayJoinIsr {
                    ctx.replicas.want_isr_check();
                }
            }
            t.follower = true;
        }
    }
    let max_bytes = if req.max_bytes <= 0 {
        i32::MAX
    } else {
        req.max_bytes
    } as usize;
    let min_bytes = req.min_bytes.max(0) as usize;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    // Watch only the partitions this fetch reads, registered before the first read so that an append between
    // a read and the wait still wakes it. Nothing is registered when the fetch cannot wait.
    let waiter = Waiter::new();
    // A fetch naming no partition is answered at once, as Kafka's ReplicaManager does (`fetchInfos.isEmpty`):
    // nothing could wake it, so it would only hold the client for max_wait_ms. The Java consumer sends one
    // (session epoch -1, no topics) when it closes against a broker without fetch sessions.
    let may_wait = min_bytes > 0 && req.max_wait_ms > 0 && !targets.is_empty();
    if may_wait {
        for part in hosted(ctx, &targets).into_iter().flatten() {
            part.watch(&waiter);
        }
    }
    let mut slices = vec![None; targets.len()];
    loop {
        let (total, any_error) = read_all(
            ctx,
            &image,
            &reader,
            &targets,
            &mut resp,
            &mut slices,
            max_bytes,
            version,
        );
        if !may_wait || total >= min_bytes || any_error || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::select! {
            // Woken by a change to a partition it reads, or at the deadline: read again. Past the deadline the
            // loop ends after that read, so data that arrived at the last moment is not held back.
            _ = tokio::time::timeout_at(deadline, waiter.woken()) => {}
            // The client's next request waits behind this answer: answer with what the last read found.
            () = queued.arrived() => {
                tracing::debug!("long poll answered before max_wait_ms: the client sent another request behind it");
                break;
            }
        }
    }
    let records = match begun {
        Begun::Full(parts) => {
            let answered = parts
                .into_iter()
                .zip(targets.iter().zip(&slices))
                .map(|((key, fp), (t, slice))| (key, fp, answer_of(&resp, t, slice)))
                .collect();
            resp.session_id = ctx.fetch_sessions.open(
                follower.is_some(),
                uses_topic_ids,
                answered,
                crate::context::now_ms().max(0) as u64,
            );
            all_records(&targets, slices)
        }
        Begun::Incremental {
            id,
            epoch,
            partitions,
        } => {
            let answers: Vec<(PartitionKey, Answer)> = partitions
                .into_iter()
                .zip(targets.iter().zip(&slices))
                .map(|((key, _), (t, slice))| (key, answer_of(&resp, t, slice)))
                .collect();
            match ctx.fetch_sessions.select(id, epoch, &answers) {
                Ok(keep) => {
                    resp.session_id = id;
                    keep_only(&mut resp, &targets, slices, &keep)
                }
                Err(e) => {
                    tracing::info!(
                        session = id,
                        "incremental fetch session {id} moved past epoch {epoch} meanwhile: possible duplicate request"
                    );
                    let mut stale = FetchResponse::default();
                    stale.error_code = code(e);
                    stale.session_id = id;
                    return FetchReply::from(stale);
                }
            }
        }
        Begun::Sessionless(_) | Begun::Error(_) => all_records(&targets, slices),
    };
    if version >= NODE_ENDPOINTS_VERSION {
        add_leader_endpoints(&mut resp, &image, listener);
    }
    FetchReply {
        response: resp,
        records,
    }
}

/// The partitions a request names, in its order, by topic id (v13+) or name.
fn named_partitions(
    req: &FetchRequest,
    uses_topic_ids: bool,
) -> Vec<(PartitionKey, FetchPartition)> {
    req.topics
        .iter()
        .flat_map(|topic| {
            let topic_ref = topic_ref(uses_topic_ids, &topic.topic_id, &topic.topic);
            topic.partitions.iter().map(move |p| {
                (
                    PartitionKey {
                        topic: topic_ref.clone(),
                        partition: p.partition,
                    },
                    p.clone(),
                )
            })
        })
        .collect()
}

/// `forgotten_topics_data` (v7+): the partitions an incremental request drops from its session.
fn forgotten_partitions(req: &FetchRequest, uses_topic_ids: bool) -> Vec<PartitionKey> {
    req.forgotten_topics_data
        .iter()
        .flat_map(|topic| {
            let topic_ref = topic_ref(uses_topic_ids, &topic.topic_id, &topic.topic);
            topic.partitions.iter().map(move |&partition| PartitionKey {
                topic: topic_ref.clone(),
                partition,
            })
        })
        .collect()
}

fn topic_ref(uses_topic_ids: bool, id: &uuid::Uuid, name: &TopicName) -> TopicRef {
    if uses_topic_ids {
        TopicRef::Id(*id)
    } else {
        TopicRef::Name(Arc::from(name.0.as_str()))
    }
}

/// What a session needs to know of a partition's answer.
fn answer_of(resp: &FetchResponse, t: &Target, slice: &Option<FileSlice>) -> Answer {
    let pd = &resp.responses[t.topic_idx].partitions[t.part_idx];
    Answer {
        has_records: slice.as_ref().is_some_and(|s| !s.is_empty()),
        high_watermark: pd.high_watermark,
        log_start_offset: pd.log_start_offset,
        error: pd.error_code != 0,
        preferred_replica: pd.preferred_read_replica.0 >= 0,
    }
}

/// Every partition's records, by its place in the response.
fn all_records(
    targets: &[Target],
    slices: Vec<Option<FileSlice>>,
) -> Vec<((usize, usize), FileSlice)> {
    targets
        .iter()
        .zip(slices)
        .filter_map(|(t, slice)| Some(((t.topic_idx, t.part_idx), slice?)))
        .collect()
}

/// Leaves in the response only the partitions `keep` marks (an incremental answer), topics in the same order,
/// and returns their records by their new places.
fn keep_only(
    resp: &mut FetchResponse,
    targets: &[Target],
    slices: Vec<Option<FileSlice>>,
    keep: &[bool],
) -> Vec<((usize, usize), FileSlice)> {
    let mut read = std::mem::take(&mut resp.responses);
    let mut records = Vec::new();
    let mut from_topic = None;
    for ((t, slice), _) in targets
        .iter()
        .zip(slices)
        .zip(keep)
        .filter(|(_, keep)| **keep)
    {
        if from_topic != Some(t.topic_idx) {
            from_topic = Some(t.topic_idx);
            let mut tr = FetchableTopicResponse::default();
            tr.topic = read[t.topic_idx].topic.clone();
            tr.topic_id = read[t.topic_idx].topic_id;
            resp.responses.push(tr);
        }
        let pd = std::mem::take(&mut read[t.topic_idx].partitions[t.part_idx]);
        let topic_idx = resp.responses.len() - 1;
        let partitions = &mut resp.responses[topic_idx].partitions;
        partitions.push(pd);
        if let Some(slice) = slice {
            records.push(((topic_idx, partitions.len() - 1), slice));
        }
    }
    records
}

impl From<FetchResponse> for FetchReply {
    fn from(response: FetchResponse) -> Self {
        Self {
            response,
            records: Vec::new(),
        }
    }
}

/// KIP-951: the endpoints, on the client's listener, of the leaders named in partitions answered
/// NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH.
fn add_leader_endpoints(resp: &mut FetchResponse, image: &MetadataImage, listener: &str) {
    let hinted = [
        code(ResponseError::NotLeaderOrFollower),
        code(ResponseError::FencedLeaderEpoch),
    ];
    let leaders: BTreeSet<i32> = resp
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter(|p| hinted.contains(&p.error_code) && p.current_leader.leader_id.0 >= 0)
        .map(|p| p.current_leader.leader_id.0)
        .collect();
    resp.node_endpoints = leader_hints::endpoints(image, listener, &leaders)
        .into_iter()
        .map(|e| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(e.node_id))
                .with_host(StrBytes::from_string(e.host))
                .with_port(e.port)
                .with_rack(e.rack.map(StrBytes::from_string))
        })
        .collect();
}

/// Names the partition's current leader and epoch in an error answer that tells the client to move.
fn hint_leader(pd: &mut PartitionData, leader: i32, leader_epoch: i32, version: i16) {
    if version >= CURRENT_LEADER_VERSION {
        pd.current_leader = LeaderIdAndEpoch::default()
            .with_leader_id(BrokerId(leader))
            .with_leader_epoch(leader_epoch);
    }
}

/// Fills every partition of the response (records in `slices`, by target); returns the bytes gathered and
/// whether any partition errored.
#[allow(clippy::too_many_arguments)]
fn read_all(
    ctx: &BrokerContext,
    image: &MetadataImage,
    reader: &Reader,
    targets: &[Target],
    resp: &mut FetchResponse,
    slices: &mut [Option<FileSlice>],
    max_bytes: usize,
    version: i16,
) -> (usize, bool) {
    let mut total = 0usize;
    let mut any_error = false;
    let parts = hosted(ctx, targets);
    // Targets come grouped by topic: its image is looked up once per run of them.
    let mut topic: Option<(&str, Option<&Arc<TopicImage>>)> = None;
    for ((t, slice), part) in targets.iter().zip(slices.iter_mut()).zip(parts) {
        let pd = &mut resp.responses[t.topic_idx].partitions[t.part_idx];
        let budget = max_bytes.saturating_sub(total);
        *slice = None;
        let ti = match (t.name.as_deref(), topic) {
            (Some(name), Some((cached, ti))) if cached == name => ti,
            (Some(name), _) => {
                let ti = image.topic(name);
                topic = Some((name, ti));
                ti
            }
            (None, _) => None,
        };
        let found = Found { ti, part };
        let taken = read_partition(
            ctx,
            image,
            reader,
            t,
            found,
            pd,
            budget,
            total == 0,
            version,
        )
        .map(|s| {
            let n = s.len();
            *slice = Some(s);
            n
        })
        .unwrap_or(0);
        total += taken;
        any_error |= pd.error_code != 0;
    }
    (total, any_error)
}

/// The hosted replica of each target (one lookup of the replica map for them all).
fn hosted(ctx: &BrokerContext, targets: &[Target]) -> Vec<Option<Arc<Partition>>> {
    ctx.replicas
        .get_each(targets.iter().map(|t| (t.name.as_deref(), t.req.partition)))
}

/// What [`read_all`] looked up for one target: its topic in the request's image and its hosted replica.
struct Found<'a> {
    ti: Option<&'a Arc<TopicImage>>,
    part: Option<Arc<Partition>>,
}

#[allow(clippy::too_many_arguments)]
fn read_partition(
    ctx: &BrokerContext,
    image: &MetadataImage,
    reader: &Reader,
    t: &Target,
    found: Found<'_>,
    pd: &mut PartitionData,
    budget: usize,
    first: bool,
    version: i16,
) -> Option<FileSlice> {
    pd.records = Some(bytes::Bytes::new());
    if t.name.is_none() {
        pd.error_code = code(ResponseError::UnknownTopicId);
        return None;
    }
    let Some(pi) = found.ti.and_then(|ti| ti.partitions.get(&t.req.partition)) else {
        pd.error_code = code(ResponseError::UnknownTopicOrPartition);
        return None;
    };
    let Some(part) = found.part else {
        pd.error_code = code(ResponseError::NotLeaderOrFollower);
        hint_leader(pd, pi.leader, pi.leader_epoch, version);
        return None;
    };
    // The partition's own role too: the image may be newer than what this replica has applied.
    let leads = pi.leader == ctx.node_id && part.is_leader();
    // A consumer with client metadata may read from any replica of the partition (up to its high watermark).
    let serves = if t.follower {
        leads && t.follower_recorded
    } else {
        leads || (reader.may_read_follower && pi.replicas.contains(&ctx.node_id))
    };
    if !serves {
        pd.error_code = code(ResponseError::NotLeaderOrFollower);
        hint_leader(pd, pi.leader, pi.leader_epoch, version);
        return None;
    }
    let epoch = t.req.current_leader_epoch;
    if epoch >= 0 && epoch < pi.leader_epoch {
        pd.error_code = code(ResponseError::FencedLeaderEpoch);
        hint_leader(pd, pi.leader, pi.leader_epoch, version);
        return None;
    }
    if epoch > pi.leader_epoch {
        pd.error_code = code(ResponseError::UnknownLeaderEpoch);
        return None;
    }
    pd.aborted_transactions = reader.read_committed.then(Vec::new);
    pd.high_watermark = part.high_watermark();
    pd.last_stable_offset = pd.high_watermark;
    if version >= 5 {
        pd.log_start_offset = part.log_start_offset();
    }
    if leads && !t.follower {
        if let Some(replica) = preferred_replica(ctx, image, reader, &part, t.req.fetch_offset) {
            // Kafka answers the preferred read replica instead of records; the consumer refetches there.
            pd.error_code = 0;
            pd.preferred_read_replica = BrokerId(replica);
            return None;
        }
    }
    let limit = (t.req.partition_max_bytes.max(0) as usize).min(budget);
    // Kafka returns at least one whole batch to the first partition with data, so a batch larger than the
    // limits can never wedge a consumer; everyone else stays within the budget.
    if limit == 0 && !first {
        pd.error_code = 0;
        return None;
    }
    match part.read_slice(t.req.fetch_offset, limit, t.follower) {
        Ok(r) => {
            pd.error_code = 0;
            if version >= 5 {
                pd.log_start_offset = r.log_start_offset;
            }
            let slice = r.records?;
            if !first && slice.first_batch_len() > limit {
                return None;
            }
            Some(slice)
        }
        Err(e) => {
            pd.error_code = storage_error_code(&e);
            // As Kafka's error answers to consumers: no offsets alongside an error. Our followers keep the
            // log start offset, which they restart from when they fell behind it (fetcher.rs), where
            // Kafka's follower asks ListOffsets instead.
            pd.high_watermark = -1;
            pd.last_stable_offset = -1;
            if !t.follower {
                pd.log_start_offset = -1;
            }
            None
        }
    }
}

/// The replica in the consumer's rack it should read from instead of this leader (KIP-392), if the broker runs a
/// selector and one exists among the live replicas that hold `fetch_offset`.
fn preferred_replica(
    ctx: &BrokerContext,
    image: &MetadataImage,
    reader: &Reader,
    part: &Partition,
    fetch_offset: i64,
) -> Option<i32> {
    let selector = ctx.config.replica_selector;
    if selector == ReplicaSelector::Leader || reader.rack.is_empty() {
        return None;
    }
    let views: Vec<ReplicaView> = part
        .read_replica_candidates(fetch_offset, crate::context::now_ms())
        .into_iter()
        .filter(|&(id, _, _)| id == ctx.node_id || image.is_broker_active(id))
        .map(
            |(broker_id, log_end_offset, since_caught_up_ms)| ReplicaView {
                broker_id,
                rack: image.broker(broker_id).and_then(|b| b.rack.clone()),
                log_end_offset,
                since_caught_up_ms,
            },
        )
        .collect();
    preferred_read_replica(selector, &reader.rack, ctx.node_id, &views)
}
