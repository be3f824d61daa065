//! Follower replication, after Kafka's `ReplicaFetcherManager` / `ReplicaFetcherThread`: one fetcher task per
//! leader broker, carrying every partition this broker follows from that leader in one Fetch request.
//!
//! [`FetcherManager::reconcile`] runs after each metadata image has been applied to the partitions: it moves
//! each followed partition to the fetcher of its current leader (starting and stopping fetchers as leaders
//! come and go). A partition that is new to a fetcher, or whose leader epoch changed, first truncates its log
//! to the point where it diverges from the new leader (OffsetForLeaderEpoch, KIP-101/279), then fetches from
//! its log end offset. Fetched batches are appended with the offsets and epochs the leader wrote
//! ([`Partition::append_as_follower`], refused if the partition's role or epoch changed meanwhile), and the
//! follower's high watermark becomes min(leader's, own log end).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::Instrument;
use uuid::Uuid;

use kraftwerk_storage::batch::BatchHeader;
use kraftwerk_storage::epoch::UNDEFINED_EPOCH;

use crate::quorum::cluster::ClusterHandle;

use super::manager::{ReplicaManager, TopicPartition};
use super::partition::{AppendError, Partition};
use super::peer_client::{PeerConnection, PeerError};

/// Fetch and OffsetForLeaderEpoch versions: the newest the broker serves (Fetch v15 carries `ReplicaState`,
/// KIP-903; topics by id since v13).
const FETCH_VERSION: i16 = 15;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;
/// The request pipelined behind a parked fetch to end its wait: ApiVersions v0, which has no fields.
const NUDGE_VERSION: i16 = 0;
/// How long the leader may hold a fetch with nothing new (Kafka's `replica.fetch.wait.max.ms`).
const FETCH_MAX_WAIT_MS: i32 = 500;
const FETCH_MAX_BYTES: i32 = 10 << 20;
const PARTITION_MAX_BYTES: i32 = 1 << 20;
/// Answer time allowed on top of the long poll.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause after a connection failure or a partition error (Kafka's `replica.fetch.backoff.ms`).
const BACKOFF: Duration = Duration::from_millis(250);
/// Pause before asking a leader again that has not taken over a partition yet (see [`backoff_after`]).
const LEADER_CATCHING_UP_BACKOFF: Duration = Duration::from_millis(25);

/// One followed partition as a fetcher sees it.
#[derive(Clone)]
struct Assignment {
    partition: Arc<Partition>,
    topic_id: Uuid,
    leader_epoch: i32,
    /// Truncated to the divergence point with this leader epoch's leader; fetching may start.
    truncated: bool,
    /// Not before this instant (after an error).
    retry_at: Option<tokio::time::Instant>,
    /// Refusals in a row because the leader had not taken the partition over yet (see [`backoff_after`]).
    catching_up: u32,
}

type Assignments = Arc<Mutex<BTreeMap<TopicPartition, Assignment>>>;

struct Fetcher {
    assignments: Assignments,
    changed: Arc<Notify>,
    task: JoinHandle<()>,
}

/// What every fetcher needs to know about this broker.
#[derive(Clone)]
pub struct FetcherContext {
    pub node_id: i32,
    /// The listener name whose endpoint, in the leader's registration, fetchers connect to.
    pub listener_name: String,
    pub cluster: ClusterHandle,
    /// This broker's current epoch (its registration offset), for `ReplicaState`.
    pub broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// Dials leaders with the inter-broker listener's protocol (PLAINTEXT or SSL).
    pub connector: crate::tls::PeerConnector,
}

pub struct FetcherManager {
    ctx: FetcherContext,
    /// The running fetchers by leader; `None` once shut down, so a reconcile still running when the broker
    /// stops (it runs on a blocking thread, which the shutdown cannot abort) starts no fetcher afterwards:
    /// a fetcher holding partitions would keep the logs from closing cleanly.
    fetchers: Mutex<Option<HashMap<i32, Fetcher>>>,
}

impl FetcherManager {
    pub fn new(ctx: FetcherContext) -> Self {
        Self {
            ctx,
            fetchers: Mutex::new(Some(HashMap::new())),
        }
    }

    /// Moves every followed partition to its leader's fetcher, from the roles the partitions have applied
    /// (call after [`ReplicaManager::reconcile`]). It walks every hosted partition: call it off the async
    /// runtime's workers (it needs the runtime's context to start fetchers).
    pub fn reconcile(&self, replicas: &ReplicaManager) {
        let mut wanted: HashMap<i32, BTreeMap<TopicPartition, (Arc<Partition>, i32)>> =
            HashMap::new();
        for p in replicas.all() {
            let Some((leader, leader_epoch)) = p.followed_leader() else {
                continue;
            };
            wanted.entry(leader).or_default().insert(
                TopicPartition {
                    topic: p.topic.clone(),
                    partition: p.index,
                },
                (p, leader_epoch),
            );
        }
        let mut guard = self.fetchers.lock();
        let Some(fetchers) = guard.as_mut() else {
            return;
        };
        fetchers.retain(|leader, f| {
            if wanted.contains_key(leader) {
                return true;
            }
            tracing::info!(
                leader,
                "no partitions left to follow from this leader; stopping its fetcher"
            );
            f.task.abort();
            false
        });
        for (leader, parts) in wanted {
            let fetcher = fetchers
                .entry(leader)
                .or_insert_with(|| self.start_fetcher(leader));
            let mut assigned = fetcher.assignments.lock();
            let mut changed = false;
            assigned.retain(|tp, _| parts.contains_key(tp));
            for (tp, (partition, epoch)) in parts {
                let same = assigned.get(&tp).is_some_and(|a| {
                    a.leader_epoch == epoch && Arc::ptr_eq(&a.partition, &partition)
                });
                if !same {
                    changed = true;
                    assigned.insert(
                        tp,
                        Assignment {
                            topic_id: partition.topic_id,
                            partition,
                            leader_epoch: epoch,
                            truncated: false,
                            retry_at: None,
                            catching_up: 0,
                        },
                    );
                }
            }
            drop(assigned);
            if changed {
                fetcher.changed.notify_one();
            }
        }
    }

    fn start_fetcher(&self, leader: i32) -> Fetcher {
        let assignments: Assignments = Arc::default();
        let changed = Arc::new(Notify::new());
        let span = tracing::info_span!("replica_fetcher", leader);
        let task = tokio::spawn(
            run_fetcher(
                self.ctx.clone(),
                leader,
                assignments.clone(),
                changed.clone(),
            )
            .instrument(span),
        );
        tracing::info!(leader, "started replica fetcher");
        Fetcher {
            assignments,
            changed,
            task,
        }
    }

    /// Stops every fetcher (shutdown).
    pub fn shutdown(&self) {
        for (_, f) in self.fetchers.lock().take().into_iter().flatten() {
            f.task.abort();
        }
    }
}

impl Drop for FetcherManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Why one round with the leader failed; the connection is dropped and redialled after a pause.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("leader {0} has no endpoint for listener {1} in the metadata")]
    NoEndpoint(i32, String),
    #[error("the leader answered error code {0} for the whole request")]
    Request(i16),
}

async fn run_fetcher(
    ctx: FetcherContext,
    leader: i32,
    assignments: Assignments,
    changed: Arc<Notify>,
) {
    let mut conn: Option<PeerConnection> = None;
    loop {
        let now = tokio::time::Instant::now();
        let snapshot: Vec<(TopicPartition, Assignment)> = assignments
            .lock()
            .iter()
            .filter(|(_, a)| a.retry_at.is_none_or(|t| t <= now))
            .map(|(tp, a)| (tp.clone(), a.clone()))
            .collect();
        if snapshot.is_empty() {
            // Nothing ready: wait for a new assignment or the end of the first backoff.
            let until = next_retry(&assignments, now).unwrap_or(now + BACKOFF);
            let _ = tokio::time::timeout_at(until, changed.notified()).await;
            continue;
        }
        let connection = match conn.as_mut() {
            Some(c) => c,
            None => match connect(&ctx, leader).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the leader; retrying");
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            },
        };
        let result = round(&ctx, connection, &assignments, &changed, now, snapshot).await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "fetch from the leader failed; reconnecting");
            conn = None;
            tokio::time::sleep(BACKOFF).await;
        }
    }
}

async fn connect(ctx: &FetcherContext, leader: i32) -> Result<PeerConnection, RoundError> {
    let image = ctx.cluster.image();
    let endpoint = image
        .broker(leader)
        .and_then(|b| b.listener(&ctx.listener_name))
        .cloned()
        .ok_or_else(|| RoundError::NoEndpoint(leader, ctx.listener_name.clone()))?;
    let conn = PeerConnection::connect(
        &ctx.connector,
        &endpoint.host,
        endpoint.port,
        CONNECT_TIMEOUT,
        format!("kraftwerk-replica-fetcher-{}", ctx.node_id),
    )
    .await?;
    tracing::info!(host = %endpoint.host, port = endpoint.port, "connected to the leader");
    Ok(conn)
}

/// One round: truncate the partitions that need it, then one Fetch for every partition ready, those just
/// truncated included (so a new partition does not wait a whole long poll of the others for its first fetch).
async fn round(
    ctx: &FetcherContext,
    conn: &mut PeerConnection,
    assignments: &Assignments,
    changed: &Notify,
    taken_at: tokio::time::Instant,
    snapshot: Vec<(TopicPartition, Assignment)>,
) -> Result<(), RoundError> {
    let (mut ready, to_truncate): (Vec<_>, Vec<_>) =
        snapshot.into_iter().partition(|(_, a)| a.truncated);
    let truncating = to_truncate.len();
    let started = tokio::time::Instant::now();
    if !to_truncate.is_empty() {
        let keys: Vec<TopicPartition> = to_truncate.iter().map(|(tp, _)| tp.clone()).collect();
        truncate(ctx, conn, assignments, to_truncate).await?;
        let assigned = assignments.lock();
        ready.extend(keys.into_iter().filter_map(|tp| {
            let a = assigned.get(&tp)?;
            (a.truncated && a.retry_at.is_none_or(|t| t <= taken_at)).then(|| (tp, a.clone()))
        }));
    }
    let truncated = started.elapsed();
    let fetching = ready.len();
    if !ready.is_empty() {
        // Partitions left out for a backoff rejoin when it ends, not after the others' long poll.
        let rejoin_at = next_retry(assignments, taken_at);
        fetch(ctx, conn, assignments, (changed, rejoin_at), ready).await?;
    }
    tracing::debug!(
        truncating,
        fetching,
        truncate_ms = truncated.as_millis() as u64,
        fetch_ms = (started.elapsed() - truncated).as_millis() as u64,
        "fetcher round"
    );
    Ok(())
}

/// Updates the shared assignment of `tp` if it is still the one `epoch` describes.
fn update(
    assignments: &Assignments,
    tp: &TopicPartition,
    epoch: i32,
    f: impl FnOnce(&mut Assignment),
) {
    if let Some(a) = assignments.lock().get_mut(tp) {
        if a.leader_epoch == epoch {
            f(a);
        }
    }
}

fn back_off(assignments: &Assignments, tp: &TopicPartition, epoch: i32) {
    update(assignments, tp, epoch, |a| {
        a.retry_at = Some(tokio::time::Instant::now() + BACKOFF)
    });
}

/// Backs off after the leader refused the partition with `error_code` (see [`backoff_after`]).
fn back_off_after(assignments: &Assignments, tp: &TopicPartition, epoch: i32, error_code: i16) {
    update(assignments, tp, epoch, |a| {
        let pause = backoff_after(error_code, a.catching_up);
        a.catching_up = if leader_catching_up(error_code) {
            a.catching_up.saturating_add(1)
        } else {
            0
        };
        a.retry_at = Some(tokio::time::Instant::now() + pause)
    });
}

fn leader_catching_up(error_code: i16) -> bool {
    error_code == ResponseError::NotLeaderOrFollower.code()
        || error_code == ResponseError::UnknownLeaderEpoch.code()
}

/// The end of the first backoff still running at `after` (partitions backed off at that instant or later).
fn next_retry(
    assignments: &Assignments,
    after: tokio::time::Instant,
) -> Option<tokio::time::Instant> {
    assignments
        .lock()
        .values()
        .filter_map(|a| a.retry_at)
        .filter(|&t| t > after)
        .min()
}

/// The pause after the leader refused a partition with `error_code`, the `catching_up`-th such refusal in a
/// row. NOT_LEADER_OR_FOLLOWER and UNKNOWN_LEADER_EPOCH from the broker our metadata names leader in the epoch we
/// sent mean its metadata or its partitions have not caught up with that leadership yet. After a leader change
/// that takes milliseconds to some hundreds (a broker taking over 3,000 partitions applies them one by one), so
/// the pause starts at [`LEADER_CATCHING_UP_BACKOFF`] and doubles with each refusal up to [`BACKOFF`]: a
/// partition is not held a quarter second behind a leader that took it over meanwhile, and a leader that stays
/// behind is not asked more often than a few times. Anything else waits the full [`BACKOFF`].
fn backoff_after(error_code: i16, catching_up: u32) -> Duration {
    if leader_catching_up(error_code) {
        LEADER_CATCHING_UP_BACKOFF
            .saturating_mul(1 << catching_up.min(8))
            .min(BACKOFF)
    } else {
        BACKOFF
    }
}

/// OffsetForLeaderEpoch for every partition that needs it, then truncation to the divergence point:
/// Kafka's rule — if the leader knows our latest epoch, truncate to where it ended on the leader; if it answers
/// an older epoch, to the smaller of its end offset and ours for that epoch; never past our log end; with no
/// epoch information at all, to our high watermark.
async fn truncate(
    ctx: &FetcherContext,
    conn: &mut PeerConnection,
    assignments: &Assignments,
    parts: Vec<(TopicPartition, Assignment)>,
) -> Result<(), RoundError> {
    let mut by_topic: BTreeMap<String, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
    let mut asked = HashMap::new();
    for (tp, a) in &parts {
        let p = &a.partition;
        let Some(latest) = p.latest_leader_epoch() else {
            // An empty log has nothing to diverge; a log with no epochs falls back to the high watermark.
            let to = p.high_watermark();
            match p.truncate_as_follower(to, false, a.leader_epoch) {
                Ok(_) => update(assignments, tp, a.leader_epoch, |a| a.truncated = true),
                Err(e) => truncation_failed(assignments, tp, a.leader_epoch, &e),
            }
            continue;
        };
        by_topic.entry(tp.topic.clone()).or_default().push(
            OffsetForLeaderPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(a.leader_epoch)
                .with_leader_epoch(latest),
        );
        asked.insert(tp.clone(), (a.clone(), latest));
    }
    if by_topic.is_empty() {
        return Ok(());
    }
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(ctx.node_id))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetForLeaderTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = conn
        .request(OFFSET_FOR_LEADER_EPOCH_VERSION, &request, RESPONSE_TIMEOUT)
        .await?;
    for topic in response.topics {
        for r in topic.partitions {
            let tp = TopicPartition {
                topic: topic.topic.0.to_string(),
                partition: r.partition,
            };
            let Some((a, asked_epoch)) = asked.remove(&tp) else {
                continue;
            };
            if r.error_code != 0 {
                tracing::debug!(topic = %tp.topic, partition = tp.partition, error_code = r.error_code,
                    "OffsetForLeaderEpoch refused; retrying after the backoff");
                back_off_after(assignments, &tp, a.leader_epoch, r.error_code);
                continue;
            }
            let p = &a.partition;
            let leo = p.log_end_offset();
            let to = if r.leader_epoch == UNDEFINED_EPOCH || r.end_offset < 0 {
                p.high_watermark()
            } else if r.leader_epoch == asked_epoch {
                r.end_offset
            } else {
                let ours = p.end_offset_for(r.leader_epoch);
                if ours.end_offset >= 0 {
                    r.end_offset.min(ours.end_offset)
                } else {
                    r.end_offset
                }
            }
            .min(leo);
            match p.truncate_as_follower(to, false, a.leader_epoch) {
                Ok(end) => {
                    if to < leo {
                        tracing::info!(topic = %tp.topic, partition = tp.partition, from = leo, to = end,
                            leader_epoch = r.leader_epoch, "truncated to the divergence point with the leader");
                    }
                    update(assignments, &tp, a.leader_epoch, |a| a.truncated = true);
                }
                Err(e) => truncation_failed(assignments, &tp, a.leader_epoch, &e),
            }
        }
    }
    // Partitions the leader did not answer for: ask again later.
    for (tp, (a, _)) in asked {
        back_off(assignments, &tp, a.leader_epoch);
    }
    Ok(())
}

fn truncation_failed(assignments: &Assignments, tp: &TopicPartition, epoch: i32, e: &AppendError) {
    match e {
        // The role moved on: the next reconcile reassigns it.
        AppendError::WrongRole { .. } => {}
        e => {
            tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "truncation failed")
        }
    }
    back_off(assignments, tp, epoch);
}

/// One Fetch for every ready partition, from each one's log end offset; appends what comes back.
async fn fetch(
    ctx: &FetcherContext,
    conn: &mut PeerConnection,
    assignments: &Assignments,
    wake: (&Notify, Option<tokio::time::Instant>),
    parts: Vec<(TopicPartition, Assignment)>,
) -> Result<(), RoundError> {
    let mut topics: BTreeMap<Uuid, Vec<FetchPartition>> = BTreeMap::new();
    let mut sent: HashMap<(Uuid, i32), (TopicPartition, Assignment, i64)> = HashMap::new();
    for (tp, a) in parts {
        let p = &a.partition;
        let leo = p.log_end_offset();
        topics.entry(a.topic_id).or_default().push(
            FetchPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(a.leader_epoch)
                .with_fetch_offset(leo)
                .with_last_fetched_epoch(p.latest_leader_epoch().unwrap_or(-1))
                .with_log_start_offset(p.log_start_offset())
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
        sent.insert((a.topic_id, tp.partition), (tp, a, leo));
    }
    let request = FetchRequest::default()
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(ctx.node_id))
                .with_replica_epoch((ctx.broker_epoch)()),
        )
        .with_max_wait_ms(FETCH_MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(topic_id, partitions)| {
                    FetchTopic::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let timeout = Duration::from_millis(FETCH_MAX_WAIT_MS as u64) + RESPONSE_TIMEOUT;
    let asked_at = tokio::time::Instant::now();
    let response = tokio::time::timeout(timeout, long_poll(conn, &request, wake))
        .await
        .map_err(|_| PeerError::Timeout(timeout))??;
    let answered_at = tokio::time::Instant::now();
    if response.error_code != 0 {
        return Err(RoundError::Request(response.error_code));
    }
    let mut with_records = 0usize;
    for topic in response.responses {
        for pd in topic.partitions {
            let Some((tp, a, fetch_offset)) = sent.remove(&(topic.topic_id, pd.partition_index))
            else {
                continue;
            };
            with_records += usize::from(pd.records.as_ref().is_some_and(|r| !r.is_empty()));
            apply_partition_response(assignments, &tp, &a, fetch_offset, pd);
        }
    }
    tracing::debug!(
        wait_ms = (answered_at - asked_at).as_millis() as u64,
        apply_ms = answered_at.elapsed().as_millis() as u64,
        with_records,
        "fetch answered"
    );
    Ok(())
}

/// Sends `request` and waits for its answer. If this fetcher's partitions change while the leader holds the
/// fetch (up to `FETCH_MAX_WAIT_MS` with nothing new), or the backoff of a partition left out of it ends
/// (`wake`: the change notification and that instant), an ApiVersions request is pipelined behind it: a leader
/// answers a parked fetch as soon as another request from the same connection waits behind it
/// (`network/queued_input.rs`), so those partitions start fetching now instead of after the long poll.
async fn long_poll(
    conn: &mut PeerConnection,
    request: &FetchRequest,
    (changed, rejoin_at): (&Notify, Option<tokio::time::Instant>),
) -> Result<kafka_protocol::messages::FetchResponse, PeerError> {
    let sent = conn.send(FETCH_VERSION, request).await?;
    {
        let receive = conn.receive(&sent);
        tokio::pin!(receive);
        let rejoin = async {
            match rejoin_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            response = &mut receive => return response,
            () = changed.notified() => {}
            () = rejoin => {}
        }
        // `receive` is dropped here (it is cancel-safe) and called again below for the same answer.
    }
    tracing::debug!("partitions to add during the long poll; asking the leader to answer it now");
    let nudge = conn
        .send(NUDGE_VERSION, &ApiVersionsRequest::default())
        .await?;
    let response = conn.receive(&sent).await?;
    conn.receive(&nudge).await?;
    Ok(response)
}

fn apply_partition_response(
    assignments: &Assignments,
    tp: &TopicPartition,
    a: &Assignment,
    fetch_offset: i64,
    pd: kafka_protocol::messages::fetch_response::PartitionData,
) {
    let p = &a.partition;
    match pd.error_code {
        0 => {
            let records = whole_batches(pd.records.unwrap_or_default());
            if !records.is_empty() {
                match p.append_as_follower(&records, a.leader_epoch) {
                    Ok(_) => {}
                    Err(AppendError::WrongRole { .. }) => return,
                    Err(e) => {
                        // Our log and the leader's disagree (e.g. an offset gap): truncate again first.
                        tracing::warn!(topic = %tp.topic, partition = tp.partition, fetch_offset, error = %e,
                            "cannot append fetched batches; re-checking the divergence point");
                        update(assignments, tp, a.leader_epoch, |a| a.truncated = false);
                        back_off(assignments, tp, a.leader_epoch);
                        return;
                    }
                }
            }
            p.update_follower_high_watermark(pd.high_watermark);
            if a.catching_up > 0 {
                update(assignments, tp, a.leader_epoch, |a| a.catching_up = 0);
            }
        }
        code if code == ResponseError::OffsetOutOfRange.code() => {
            if pd.log_start_offset > fetch_offset {
                // The leader deleted what we would need next: start over at its log start (Kafka's
                // `truncateFullyAndStartAt`).
                match p.truncate_as_follower(pd.log_start_offset, true, a.leader_epoch) {
                    Ok(_) => tracing::info!(topic = %tp.topic, partition = tp.partition,
                        log_start = pd.log_start_offset, "behind the leader's log start; restarted the log there"),
                    Err(e) => truncation_failed(assignments, tp, a.leader_epoch, &e),
                }
            } else {
                update(assignments, tp, a.leader_epoch, |a| a.truncated = false);
            }
        }
        code => {
            // NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH, UNKNOWN_TOPIC_ID: the leader's or our
            // metadata is behind; the next image sorts it out.
            tracing::debug!(topic = %tp.topic, partition = tp.partition, error_code = code,
                "fetch refused for a partition; retrying after the backoff");
            back_off_after(assignments, tp, a.leader_epoch, code);
        }
    }
}

/// The whole batches at the front of `records` (a leader may end a response with a partial batch).
fn whole_batches(records: Bytes) -> Bytes {
    let mut end = 0usize;
    while let Some(rest) = records.get(end..) {
        let Ok(header) = BatchHeader::parse(rest) else {
            break;
        };
        let Ok(size) = header.total_size() else {
            break;
        };
        if size == 0 || size > rest.len() {
            break;
        }
        end += size;
    }
    records.slice(..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsResponse, FetchResponse, RequestHeader, ResponseHeader,
    };
    use kafka_protocol::protocol::{Decodable, Encodable};
    use kraftwerk_storage::batch::build_batch;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A leader that holds a fetch until another request arrives behind it (as ours does, when `hold`), then
    /// answers both in order. Returns the API keys it was sent.
    async fn leader(listener: TcpListener, hold: bool) -> Vec<i16> {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut asked = Vec::new();
        loop {
            let len = match socket.read_i32().await {
                Ok(len) => len as usize,
                Err(_) => return asked.into_iter().map(|(key, _, _)| key).collect(),
            };
            let mut frame = vec![0u8; len];
            socket.read_exact(&mut frame).await.unwrap();
            let mut buf = Bytes::from(frame);
            let key = i16::from_be_bytes([buf[0], buf[1]]);
            let version = i16::from_be_bytes([buf[2], buf[3]]);
            let api = ApiKey::try_from(key).unwrap();
            let header =
                RequestHeader::decode(&mut buf, api.request_header_version(version)).unwrap();
            asked.push((key, version, header.correlation_id));
            if hold && asked.len() == 1 {
                // The parked fetch: answered once a request arrives behind it.
                continue;
            }
            let unanswered = if hold && asked.len() == 2 { 2 } else { 1 };
            for (key, version, correlation_id) in &asked[asked.len() - unanswered..] {
                let mut out = bytes::BytesMut::new();
                let api = ApiKey::try_from(*key).unwrap();
                ResponseHeader::default()
                    .with_correlation_id(*correlation_id)
                    .encode(&mut out, api.response_header_version(*version))
                    .unwrap();
                if api == ApiKey::Fetch {
                    FetchResponse::default().encode(&mut out, *version).unwrap();
                } else {
                    ApiVersionsResponse::default()
                        .encode(&mut out, *version)
                        .unwrap();
                }
                socket.write_i32(out.len() as i32).await.unwrap();
                socket.write_all(&out).await.unwrap();
            }
        }
    }

    /// Runs one [`long_poll`] against a [`leader`] that holds the fetch (`hold`) or answers it at once, woken by
    /// `changed` and `rejoin_at`; returns the API keys the leader was sent. A fetch the leader still holds after
    /// 10 s means nothing ended its poll.
    async fn requests_sent(
        hold: bool,
        changed: &Notify,
        rejoin_at: Option<tokio::time::Instant>,
    ) -> Vec<i16> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = tokio::spawn(leader(listener, hold));
        let mut conn = PeerConnection::connect(
            &crate::tls::PeerConnector::plaintext(),
            "127.0.0.1",
            port,
            CONNECT_TIMEOUT,
            "test".into(),
        )
        .await
        .unwrap();
        let request = FetchRequest::default();
        let poll = long_poll(&mut conn, &request, (changed, rejoin_at));
        tokio::time::timeout(Duration::from_secs(10), poll)
            .await
            .expect("the parked fetch was never answered")
            .unwrap();
        drop(conn);
        peer.await.unwrap()
    }

    const FETCH: i16 = ApiKey::Fetch as i16;
    const API_VERSIONS: i16 = ApiKey::ApiVersions as i16;

    #[tokio::test]
    async fn a_long_poll_is_ended_when_partitions_are_assigned_meanwhile() {
        let changed = Arc::new(Notify::new());
        let notifier = changed.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            notifier.notify_one();
        });
        let sent = requests_sent(true, &changed, None).await;
        assert_eq!(sent, [FETCH, API_VERSIONS]);
    }

    #[tokio::test]
    async fn a_long_poll_is_ended_when_a_left_out_partition_may_be_fetched_again() {
        let rejoin_at = tokio::time::Instant::now() + Duration::from_millis(20);
        let sent = requests_sent(true, &Notify::new(), Some(rejoin_at)).await;
        assert_eq!(sent, [FETCH, API_VERSIONS]);
    }

    #[tokio::test]
    async fn a_fetch_answered_by_itself_sends_nothing_more() {
        let sent = requests_sent(false, &Notify::new(), None).await;
        assert_eq!(sent, [FETCH]);
    }

    #[test]
    fn a_leader_catching_up_is_asked_again_soon_then_less_often() {
        let not_leader = ResponseError::NotLeaderOrFollower.code();
        let pauses: Vec<u64> = (0..7)
            .map(|n| backoff_after(not_leader, n).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [25, 50, 100, 200, 250, 250, 250]);
        let unknown_epoch = ResponseError::UnknownLeaderEpoch.code();
        assert_eq!(backoff_after(unknown_epoch, 0), LEADER_CATCHING_UP_BACKOFF);
        assert_eq!(backoff_after(unknown_epoch, u32::MAX), BACKOFF);
        // Our own metadata is behind (fenced epoch) or the topic is unknown: the full pause at once.
        assert_eq!(
            backoff_after(ResponseError::FencedLeaderEpoch.code(), 0),
            BACKOFF
        );
        assert_eq!(
            backoff_after(ResponseError::UnknownTopicId.code(), 0),
            BACKOFF
        );
    }

    #[test]
    fn a_partial_trailing_batch_is_dropped() {
        let one = build_batch(0, 1, 0, &[(None, Some(b"v".as_slice()))]);
        let two = build_batch(1, 1, 0, &[(None, Some(b"w".as_slice()))]);
        let mut all = one.clone();
        all.extend_from_slice(&two);
        assert_eq!(whole_batches(Bytes::from(all.clone())).len(), all.len());
        let cut = Bytes::from(all[..all.len() - 3].to_vec());
        assert_eq!(whole_batches(cut).len(), one.len());
        assert!(whole_batches(Bytes::from_static(&[1, 2, 3])).is_empty());
    }
}
