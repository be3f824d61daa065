//! One hosted partition: its log behind a mutex, plus the replication state the handlers read.
//!
//! The log lock is held only for the duration of one synchronous append or read (page-cache writes and
//! preads), never across an await, so a slow consumer cannot stall producers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use uuid::Uuid;

use kraftwerk_storage::batch::BatchHeader;
use kraftwerk_storage::{
    AppendResult, EpochEndOffset, LogConfig, PartitionLog, ReadResult, SliceRead, StorageError,
    TimestampedRecord,
};

use super::producer_state::{ProducerBatch, ProducerStateTable, SequenceCheck, NO_PRODUCER_ID};
use super::purgatory::{Waiter, WatchList};

/// Why a leader append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("produce requests v3+ carry exactly one record batch per partition")]
    MultipleBatches,
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16 },
    #[error("producer {producer_id}: out of order sequence number {got}, expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    /// This replica does not (or no longer, or not yet) hold the role the append needs in that leader epoch:
    /// the metadata moved on, the client or fetcher must look again.
    #[error("not the {role} of this partition in leader epoch {epoch} (now epoch {current}, leader: {is_leader})")]
    WrongRole {
        role: &'static str,
        epoch: i32,
        current: i32,
        is_leader: bool,
    },
}

/// What a leader append did.
#[derive(Debug)]
pub enum Appended {
    Written(AppendResult),
    /// A retried idempotent batch already in the log: acknowledged with its original offsets.
    Duplicate {
        base_offset: i64,
        last_offset: i64,
        log_start_offset: i64,
        /// The original batch's max timestamp: Kafka answers it as the retry's `log_append_time_ms`.
        timestamp: i64,
    },
}

/// This partition's place in the cluster, from the metadata image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// This broker's id.
    pub node_id: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// The image still marks the leader as recovering from an unclean election (KIP-704's RECOVERING). A
    /// leader treats itself as recovered at once (its log is what the partition has, as Kafka's `makeLeader`
    /// does) and reports RECOVERED to the controller with its next AlterPartition, sent at once.
    pub recovering: bool,
}

impl Role {
    /// A partition with this broker as its only replica and leader (tests, single-node clusters).
    pub fn sole_leader(node_id: i32, leader_epoch: i32) -> Self {
        Role {
            node_id,
            leader: node_id,
            leader_epoch,
            partition_epoch: 0,
            replicas: vec![node_id],
            isr: vec![node_id],
            recovering: false,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader == self.node_id
    }
}

/// What the leader knows of one follower (Kafka's `Replica` state), from its fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FollowerState {
    /// The follower's log end offset (its last fetch offset); -1 until it fetches in this leader epoch.
    leo: i64,
    /// When it last fetched, and the leader's log end then.
    last_fetch_ms: i64,
    last_fetch_leader_leo: i64,
    /// When it was last known to hold everything the leader had (Kafka's `lastCaughtUpTimeMs`).
    last_caught_up_ms: i64,
}

/// An ISR change sent to the controller and not yet seen in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingIsr {
    isr: Vec<i32>,
    partition_epoch: i32,
    /// When [`Partition::isr_change`] made it (ms since the epoch).
    since_ms: i64,
}

/// How long an ISR change stays pending when no image supersedes it: a change the controller refused, or
/// accepted without writing anything, or whose answer was lost. Until then the leader asks nothing more for
/// the partition (Kafka's leader likewise waits for the metadata after INVALID_UPDATE_VERSION or
/// FENCED_LEADER_EPOCH instead of retrying at once: with thousands of partitions, immediate retries from a
/// lagging image flood the controller).
pub const PENDING_ISR_EXPIRY_MS: i64 = 5_000;

/// The ISR change a leader wants: send it to the controller as AlterPartition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

/// What a leader made of a follower's fetch ([`Partition::record_follower_fetch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerFetch {
    /// This replica does not lead, or the fetcher is not one of the partition's replicas.
    Refused,
    /// Recorded.
    Recorded,
    /// Recorded, and the follower, outside the ISR, has reached the high watermark and the start of this
    /// leader epoch: it may join the ISR (Kafka's `maybeExpandIsr`, which runs on the follower's fetch).
    MayJoinIsr,
}

/// How an acks=all wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitWait {
    /// The high watermark passed the offset: every ISR member has it.
    Committed,
    /// The request timeout passed first.
    TimedOut,
    /// Leadership moved (or the epoch changed) before the offset was committed.
    NotLeader,
}

/// The log, the producer state and the replication state, which must change together.
struct LogState {
    log: PartitionLog,
    producers: ProducerStateTable,
    role: Role,
    /// Followers' progress while this replica leads; cleared on every leadership change.
    followers: HashMap<i32, FollowerState>,
    pending_isr: Option<PendingIsr>,
    /// Deleted from this broker ([`Partition::retire`]): a request that still holds the partition must not
    /// write to it, or create its directory again.
    retired: bool,
}

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    log: Mutex<LogState>,
    leader_epoch: AtomicI32,
    /// Offsets below this are on every in-sync replica and visible to consumers. A leader sets it to the
    /// smallest log end offset over the ISR (its own included); a follower takes min(leader's, own log end).
    high_watermark: AtomicI64,
    /// Requests waiting for this partition to change (long-polling fetches, acks=all produces); woken by
    /// appends, high-watermark advances and leadership changes here only.
    watchers: WatchList,
}

impl Partition {
    /// A partition whose high watermark starts at its log end (tests, and logs known to be fully committed).
    pub fn new(
        topic: String,
        topic_id: Uuid,
        index: i32,
        log: PartitionLog,
        role: Role,
        now_ms: i64,
    ) -> Self {
        let hw = log.log_end_offset();
        Self::open(topic, topic_id, index, log, role, now_ms, hw)
    }

    /// A partition opened from disk with the high watermark its log directory last checkpointed (0 if none),
    /// never above its log end: what lies beyond it is shown to consumers only once the ISR confirms it again
    /// (at once when this replica leads alone).
    pub fn open(
        topic: String,
        topic_id: Uuid,
        index: i32,
        log: PartitionLog,
        role: Role,
        now_ms: i64,
        checkpointed_hw: i64,
    ) -> Self {
        let hw = checkpointed_hw.clamp(0, log.log_end_offset());
        let mut log = log;
        if role.is_leader() {
            start_leader_epoch(&mut log, role.leader_epoch);
        }
        let followers = initial_followers(&role, now_ms);
        let p = Partition {
            topic,
            topic_id,
            index,
            leader_epoch: AtomicI32::new(role.leader_epoch),
            log: Mutex::new(LogState {
                producers: rebuild_producer_state(&log),
                log,
                role,
                followers,
                pending_isr: None,
                retired: false,
            }),
            high_watermark: AtomicI64::new(hw),
            watchers: WatchList::default(),
        };
        {
            let state = p.log.lock();
            p.maybe_advance_hw(&state);
        }
        p
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// The role as last applied from the image.
    pub fn role(&self) -> Role {
        self.log.lock().role.clone()
    }

    /// The leader this replica fetches from and its leader epoch, if it is a follower with a leader (without
    /// copying the role: the fetcher manager asks this of every hosted partition on each metadata change).
    pub fn followed_leader(&self) -> Option<(i32, i32)> {
        let state = self.log.lock();
        let role = &state.role;
        (!role.is_leader() && role.leader >= 0 && role.replicas.contains(&role.node_id))
            .then_some((role.leader, role.leader_epoch))
    }

    /// The size of the ISR as this replica knows it (without copying the role, for per-request checks).
    pub fn isr_len(&self) -> usize {
        self.log.lock().role.isr.len()
    }

    pub fn is_leader(&self) -> bool {
        self.log.lock().role.is_leader()
    }

    /// Applies the partition's state from a new metadata image. A new leader epoch (or a change of role)
    /// forgets what the previous leadership knew of followers (Kafka's `makeLeader` / `makeFollower`); as
    /// leader, the epoch is also recorded in the leader-epoch cache at the log end offset, so OffsetForLeaderEpoch
    /// for the current epoch names it even before it writes; under the log lock, so no append stamped with the
    /// new epoch can precede that entry. A changed ISR may let the high watermark advance. Waiters are woken
    /// so acks=all produces notice a lost leadership at once.
    pub fn apply_role(&self, role: Role, now_ms: i64) {
        let mut state = self.log.lock();
        let leadership_changed = state.role.is_leader() != role.is_leader()
            || state.role.leader_epoch != role.leader_epoch;
        self.leader_epoch
            .store(role.leader_epoch, Ordering::Release);
        if role.is_leader() {
            start_leader_epoch(&mut state.log, role.leader_epoch);
        }
        if leadership_changed {
            state.followers = initial_followers(&role, now_ms);
            state.pending_isr = None;
        } else if state
            .pending_isr
            .as_ref()
            .is_some_and(|p| role.partition_epoch > p.partition_epoch)
        {
            state.pending_isr = None;
        }
        if leadership_changed {
            tracing::info!(topic = %self.topic, partition = self.index, epoch = role.leader_epoch,
                leader = role.leader, isr = ?role.isr, "partition role changed");
        }
        state.role = role;
        let advanced = self.maybe_advance_hw(&state);
        drop(state);
        if leadership_changed || advanced {
            self.watchers.wake_all();
        }
    }

    /// Where `epoch` ended in this replica's log (see [`PartitionLog::end_offset_for`]).
    pub fn end_offset_for(&self, epoch: i32) -> EpochEndOffset {
        self.log.lock().log.end_offset_for(epoch)
    }

    /// The newest leader epoch in this replica's leader-epoch cache.
    pub fn latest_leader_epoch(&self) -> Option<i32> {
        self.log.lock().log.latest_leader_epoch()
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// [`Self::append_as_leader`] for records a client sent: control batches and transactional batches are
    /// refused first (Kafka's `AppendOrigin.CLIENT` rules; transactions are not served), so a client cannot
    /// write markers or burn offsets with a control batch's offset range.
    pub fn append_from_client(
        &self,
        batches: &[u8],
        now_ms: i64,
        expected_epoch: Option<i32>,
    ) -> Result<Appended, AppendError> {
        kraftwerk_storage::refuse_client_control_batches(batches).map_err(AppendError::Storage)?;
        self.append_as_leader(batches, now_ms, expected_epoch)
    }

    /// Appends one producer request's records as leader, after the idempotence check. `expected_epoch` is the
    /// leader epoch the caller's metadata names (None: whatever this replica leads in); a replica that is not
    /// leader in that epoch refuses, so a partition is never written from a stale role.
    pub fn append_as_leader(
        &self,
        batches: &[u8],
        now_ms: i64,
        expected_epoch: Option<i32>,
    ) -> Result<Appended, AppendError> {
        let header = BatchHeader::parse(batches)
            .map_err(|e| AppendError::Storage(StorageError::CorruptMessage(e)))?;
        let size = header
            .total_size()
            .map_err(|e| AppendError::Storage(StorageError::CorruptMessage(e)))?;
        if size < batches.len() {
            return Err(AppendError::MultipleBatches);
        }
        let producer =
            (header.producer_id != NO_PRODUCER_ID && header.base_sequence >= 0).then(|| {
                ProducerBatch::new(
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence,
                    header.last_offset_delta,
                )
            });
        let mut state = self.log.lock();
        let epoch = state.role.leader_epoch;
        if !state.role.is_leader() || state.retired || expected_epoch.is_some_and(|e| e != epoch) {
            return Err(AppendError::WrongRole {
                role: "leader",
                epoch: expected_epoch.unwrap_or(epoch),
                current: epoch,
                is_leader: state.role.is_leader(),
            });
        }
        if let Some(pb) = &producer {
            match state.producers.check(pb) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate {
                    first_offset,
                    last_offset,
                    timestamp,
                } => {
                    return Ok(Appended::Duplicate {
                        base_offset: first_offset,
                        last_offset,
                        log_start_offset: state.log.log_start_offset(),
                        timestamp,
                    })
                }
                SequenceCheck::InvalidProducerEpoch => {
                    return Err(AppendError::InvalidProducerEpoch {
                        producer_id: pb.producer_id,
                        epoch: pb.epoch,
                    })
                }
                SequenceCheck::OutOfOrderSequence { expected, got } => {
                    return Err(AppendError::OutOfOrderSequence {
                        producer_id: pb.producer_id,
                        expected,
                        got,
                    })
                }
            }
        }
        let result = state.log.append_with_leader_epoch(batches, now_ms, epoch)?;
        if let Some(pb) = &producer {
            state.producers.record_at(
                pb,
                result.base_offset,
                result.last_offset,
                batch_time(&result),
            );
        }
        // Under the log lock so the high watermark never passes what a concurrent truncation left; waiters
        // (long-polling followers included) are woken after it is released.
        self.maybe_advance_hw(&state);
        drop(state);
        self.watchers.wake_all();
        Ok(Appended::Written(result))
    }

    /// Appends batches fetched from the leader of `leader_epoch`, with the offsets and epochs the leader gave
    /// them, and records their producers so this replica can detect retries if it becomes leader. Refused
    /// unless this replica follows in that epoch (a response from a previous leadership is dropped).
    pub fn append_as_follower(
        &self,
        batches: &[u8],
        leader_epoch: i32,
    ) -> Result<AppendResult, AppendError> {
        let mut state = self.log.lock();
        check_follower(&state, leader_epoch)?;
        let result = state.log.append_as_follower(batches)?;
        for b in &result.batches {
            if b.producer_id != NO_PRODUCER_ID && b.base_sequence >= 0 {
                let pb = ProducerBatch::new(
                    b.producer_id,
                    b.producer_epoch,
                    b.base_sequence,
                    b.last_offset_delta,
                );
                state
                    .producers
                    .record_at(&pb, b.base_offset, b.last_offset(), b.max_timestamp);
            }
        }
        Ok(result)
    }

    /// Truncates the log to `offset` (a follower's divergence point, KIP-101), or empties it and restarts at
    /// `offset` when `fully` (the leader's log start is past our end). Producer state is rebuilt from what is
    /// left and the high watermark brought down to the new log end. A divergence point at or past the log end
    /// (the common case after a leader change) removes nothing, so the producer state stands: rebuilding it
    /// reads the log's tail from disk, for each of the thousands of partitions a follower gets at once.
    pub fn truncate_as_follower(
        &self,
        offset: i64,
        fully: bool,
        leader_epoch: i32,
    ) -> Result<i64, AppendError> {
        let mut state = self.log.lock();
        check_follower(&state, leader_epoch)?;
        if fully {
            state.log.truncate_fully_and_start_at(offset)?;
            state.producers = rebuild_producer_state(&state.log);
        } else if offset < state.log.log_end_offset() {
            state.log.truncate_to(offset)?;
            state.producers = rebuild_producer_state(&state.log);
        }
        let leo = state.log.log_end_offset();
        self.high_watermark.fetch_min(leo, Ordering::AcqRel);
        Ok(leo)
    }

    /// A follower's high watermark: the leader's, capped at what this replica holds.
    pub fn update_follower_high_watermark(&self, leader_hw: i64) {
        let state = self.log.lock();
        if state.role.is_leader() {
            return;
        }
        let hw = leader_hw.min(state.log.log_end_offset());
        self.high_watermark.store(hw, Ordering::Release);
    }

    /// A follower fetched from `fetch_offset`: that is its log end offset. Updates its caught-up time
    /// (Kafka's rule: caught up now if it reached our log end, or caught up at its previous fetch if it reached
    /// the log end we had then) and advances the high watermark if the ISR now allows. Refused if this replica
    /// does not lead or `replica_id` is not one of the partition's replicas.
    pub fn record_follower_fetch(
        &self,
        replica_id: i32,
        fetch_offset: i64,
        now_ms: i64,
    ) -> FollowerFetch {
        let mut state = self.log.lock();
        if !state.role.is_leader()
            || replica_id == state.role.node_id
            || !state.role.replicas.contains(&replica_id)
        {
            return FollowerFetch::Refused;
        }
        let leo = state.log.log_end_offset();
        let f = state.followers.entry(replica_id).or_insert(FollowerState {
            leo: -1,
            last_fetch_ms: 0,
            last_fetch_leader_leo: -1,
            last_caught_up_ms: 0,
        });
        if fetch_offset >= leo {
            f.last_caught_up_ms = now_ms;
        } else if fetch_offset >= f.last_fetch_leader_leo && f.last_fetch_leader_leo >= 0 {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.leo = fetch_offset.min(leo);
        f.last_fetch_ms = now_ms;
        f.last_fetch_leader_leo = leo;
        let advanced = self.maybe_advance_hw(&state);
        // `isr_change`'s own test (eligibility is checked there), so a fetch asks exactly when a check would act.
        let may_join = state.pending_isr.is_none()
            && may_join_isr(&state, replica_id, self.high_watermark(), None);
        drop(state);
        if advanced {
            self.watchers.wake_all();
        }
        if may_join {
            FollowerFetch::MayJoinIsr
        } else {
            FollowerFetch::Recorded
        }
    }

    /// As leader, the replicas that hold `fetch_offset` and could serve a consumer reading from there (KIP-392):
    /// `(broker id, log end offset, ms since caught up)`, this leader first with its own log end and 0. Empty when
    /// this replica does not lead. Followers that have not fetched in this leadership are left out: nothing says
    /// they hold the offset.
    pub fn read_replica_candidates(&self, fetch_offset: i64, now_ms: i64) -> Vec<(i32, i64, i64)> {
        let state = self.log.lock();
        if !state.role.is_leader() {
            return Vec::new();
        }
        let mut out = vec![(state.role.node_id, state.log.log_end_offset(), 0)];
        for (&id, f) in &state.followers {
            if f.leo >= fetch_offset && fetch_offset >= state.log.log_start_offset() {
                out.push((id, f.leo, (now_ms - f.last_caught_up_ms).max(0)));
            }
        }
        out
    }

    /// The leader's high watermark: the smallest log end offset over the ISR, counting an ISR change in
    /// flight as well (Kafka's "maximal ISR"), never lowered; stays put while an ISR member has not fetched
    /// in this leadership. Returns whether it moved.
    fn maybe_advance_hw(&self, state: &LogState) -> bool {
        if !state.role.is_leader() {
            return false;
        }
        let mut hw = state.log.log_end_offset();
        let pending = state.pending_isr.iter().flat_map(|p| p.isr.iter());
        for &id in state.role.isr.iter().chain(pending) {
            if id == state.role.node_id {
                continue;
            }
            match state.followers.get(&id) {
                Some(f) if f.leo >= 0 => hw = hw.min(f.leo),
                _ => return false,
            }
        }
        self.high_watermark.fetch_max(hw, Ordering::AcqRel) < hw
    }

    /// As leader with no ISR change in flight: the ISR this replica wants, if it differs from the image's.
    /// Members behind our log end whose last caught-up time is older than `lag_max_ms` leave (Kafka's
    /// `getOutOfSyncReplicas`); replicas outside the ISR that have reached the high watermark and the start of
    /// this leader epoch, and that `eligible` accepts (unfenced), join. The change is remembered as pending until the image shows a newer partition
    /// epoch or [`Self::clear_pending_isr`] is called.
    pub fn isr_change(
        &self,
        now_ms: i64,
        lag_max_ms: i64,
        eligible: impl Fn(i32) -> bool,
    ) -> Option<IsrChange> {
        let mut state = self.log.lock();
        let pending = state
            .pending_isr
            .as_ref()
            .is_some_and(|p| now_ms - p.since_ms < PENDING_ISR_EXPIRY_MS);
        if !state.role.is_leader() || pending {
            return None;
        }
        let hw = self.high_watermark();
        let epoch_start = leader_epoch_start(&state);
        let node_id = state.role.node_id;
        let leo = state.log.log_end_offset();
        // Kafka's `isCaughtUp`: at our log end, or caught up within the lag limit.
        let stays = |id: &i32| {
            *id == node_id
                || state
                    .followers
                    .get(id)
                    .is_some_and(|f| f.leo >= leo || now_ms - f.last_caught_up_ms <= lag_max_ms)
        };
        // Only replicas outside the current ISR may join (Kafka's `maybeExpandIsr`): a member just dropped for
        // lag must not come straight back because its log end is at the high watermark, which it holds back
        // itself whenever it stops fetching.
        let joins = |id: &i32| may_join_isr(&state, *id, hw, Some(epoch_start)) && eligible(*id);
        // The common case, checked without allocating: this runs for every led partition several times a
        // second, and with tens of thousands of them the lists built below were a visible share of an idle
        // broker's CPU.
        if !state.role.recovering
            && state.role.isr.contains(&node_id)
            && state.role.isr.iter().all(stays)
            && !state.role.replicas.iter().any(joins)
        {
            return None;
        }
        let mut isr: Vec<i32> = state.role.isr.iter().copied().filter(stays).collect();
        isr.extend(state.role.replicas.iter().copied().filter(joins));
        if !isr.contains(&node_id) {
            isr.insert(0, node_id);
        }
        let mut sorted_new = isr.clone();
        sorted_new.sort_unstable();
        let mut sorted_old = state.role.isr.clone();
        sorted_old.sort_unstable();
        // A leader elected uncleanly reports RECOVERED even when its ISR stays as it is.
        if sorted_new == sorted_old && !state.role.recovering {
            return None;
        }
        state.pending_isr = Some(PendingIsr {
            isr: isr.clone(),
            partition_epoch: state.role.partition_epoch,
            since_ms: now_ms,
        });
        Some(IsrChange {
            leader_epoch: state.role.leader_epoch,
            partition_epoch: state.role.partition_epoch,
            new_isr: isr,
        })
    }

    /// Forgets an ISR change the controller refused (or never answered), so the next check may try again.
    pub fn clear_pending_isr(&self) {
        self.log.lock().pending_isr = None;
    }

    /// [`Self::clear_pending_isr`] for the change made from `partition_epoch` only (a newer one stays).
    pub fn clear_pending_isr_from(&self, partition_epoch: i32) {
        let mut state = self.log.lock();
        if state
            .pending_isr
            .as_ref()
            .is_some_and(|p| p.partition_epoch == partition_epoch)
        {
            state.pending_isr = None;
        }
    }

    /// Registers `waiter` to be woken by this partition's appends and high-watermark advances until it is
    /// dropped (see [`super::purgatory`]).
    pub fn watch(&self, waiter: &Arc<Waiter>) {
        self.watchers.watch(waiter);
    }

    /// Raises the high watermark to `offset` (never lowers it) and wakes the waiters if it moved.
    pub fn advance_high_watermark(&self, offset: i64) -> bool {
        let advanced = self.high_watermark.fetch_max(offset, Ordering::AcqRel) < offset;
        if advanced {
            self.watchers.wake_all();
        }
        advanced
    }

    /// Waits until the high watermark reaches `offset` (everything before it is replicated to the ISR), as an
    /// acks=all produce does for its last offset + 1; `false` if `timeout` passes first. Woken only by this
    /// partition's events.
    pub async fn wait_for_high_watermark(&self, offset: i64, timeout: Duration) -> bool {
        self.wait_for_commit(offset, None, timeout).await == CommitWait::Committed
    }

    /// [`Self::wait_for_high_watermark`] that also gives up as soon as this replica stops leading in
    /// `leader_epoch` (when given): the acks=all produce then answers NOT_LEADER_OR_FOLLOWER and the producer
    /// retries against the new leader.
    pub async fn wait_for_commit(
        &self,
        offset: i64,
        leader_epoch: Option<i32>,
        timeout: Duration,
    ) -> CommitWait {
        let waiter = Waiter::new();
        self.watch(&waiter);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.high_watermark() >= offset {
                return CommitWait::Committed;
            }
            if let Some(epoch) = leader_epoch {
                let role = self.log.lock().role.clone();
                if !role.is_leader() || role.leader_epoch != epoch {
                    return CommitWait::NotLeader;
                }
            }
            if tokio::time::timeout_at(deadline, waiter.woken())
                .await
                .is_err()
            {
                return if self.high_watermark() >= offset {
                    CommitWait::Committed
                } else {
                    CommitWait::TimedOut
                };
            }
        }
    }

    /// Idempotent producers with state on this partition: (id, epoch, last sequence, last offset).
    pub fn producers(&self) -> Vec<super::producer_state::ActiveProducer> {
        self.log.lock().producers.producers().collect()
    }

    /// What a fetch from `offset` sends: a range of the segment file holding the batches from there (see
    /// `PartitionLog::plan_read`). A consumer reads only below the high watermark (uncommitted data is
    /// invisible), a follower up to the log end (its copy is what commits it). The lock is held only to
    /// snapshot the segments; the headers are read after it is released, and the records by whoever sends
    /// the slice.
    pub fn read_slice(
        &self,
        offset: i64,
        max_bytes: usize,
        follower: bool,
    ) -> Result<SliceRead, StorageError> {
        let bound = (!follower).then(|| self.high_watermark());
        let plan = self.log.lock().log.plan_read(offset, max_bytes, bound)?;
        plan.resolve()
    }

    /// Reads whole batches from `offset` up to the log end, for a follower that must copy what is not yet
    /// committed (its copy is what commits it).
    pub fn read_for_follower(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult, StorageError> {
        self.log.lock().log.read(offset, max_bytes, None)
    }

    /// Visits every batch from `from` up to the log end, committed or not, and returns that log end. A new
    /// leader reads its whole log this way (a group coordinator taking over `__consumer_offsets`, as Kafka's
    /// loader reads to the log end): what it holds beyond the high watermark is what the partition will commit,
    /// since followers now truncate to it. Under the log lock, so the end returned is exactly what was read.
    pub fn scan_to_log_end<F>(&self, from: i64, f: F) -> Result<i64, StorageError>
    where
        F: FnMut(&BatchHeader, &[u8]),
    {
        let state = self.log.lock();
        let end = state.log.log_end_offset();
        state.log.scan_batches(from, end, f)?;
        Ok(end)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.lock().log.log_start_offset()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.lock().log.log_end_offset()
    }

    /// The partition's directory (which data dir it lives in, for DescribeLogDirs).
    pub fn dir(&self) -> std::path::PathBuf {
        self.log.lock().log.dir().to_path_buf()
    }

    pub fn size_in_bytes(&self) -> u64 {
        self.log.lock().log.size_in_bytes()
    }

    /// The first record at or after the log start with a timestamp >= `ts`, with its batch's leader epoch.
    pub fn record_for_timestamp(&self, ts: i64) -> Result<Option<TimestampedRecord>, StorageError> {
        self.log.lock().log.record_for_timestamp(ts)
    }

    /// The first record carrying the log's largest timestamp (ListOffsets MAX_TIMESTAMP). The lock is held only to
    /// plan the lookup; the one batch it reads is read after it is released.
    pub fn max_timestamp(&self) -> Result<Option<TimestampedRecord>, StorageError> {
        let plan = self.log.lock().log.plan_max_timestamp();
        plan.map_or(Ok(None), |p| p.resolve())
    }

    /// DeleteRecords up to `offset`: the new log start, or `None` if the partition was deleted from this broker
    /// meanwhile ([`Self::retire`]).
    pub fn delete_records_before(&self, offset: i64) -> Result<Option<i64>, StorageError> {
        let mut state = self.log.lock();
        if state.retired {
            return Ok(None);
        }
        state.log.delete_records_before(offset).map(Some)
    }

    /// Creates the log's directory ahead of its first write if it does not exist yet
    /// ([`PartitionLog::create_deferred_dir`]). True if it made it; false if it was there already or the
    /// partition was deleted meanwhile.
    pub fn create_dir_if_deferred(&self) -> Result<bool, StorageError> {
        let mut state = self.log.lock();
        if state.retired || !state.log.is_deferred() {
            return Ok(false);
        }
        state.log.create_deferred_dir()?;
        Ok(true)
    }

    /// Marks the partition deleted while a request may still hold it: from now on it refuses every write (as a
    /// replica in no role) and never creates its directory. `remove` runs on the directory under the log's
    /// lock, so no write in progress creates it again after the removal.
    pub fn retire<R>(&self, remove: impl FnOnce(&std::path::Path) -> R) -> R {
        let mut state = self.log.lock();
        state.retired = true;
        remove(state.log.dir())
    }

    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        self.log.lock().log.enforce_retention(now_ms)
    }

    /// Runs `f` on the log under the partition's lock, with the high watermark (the log cleaner plans and
    /// swaps its work here; nothing at or above the high watermark is compacted).
    pub fn with_log_and_high_watermark(&self, f: &mut dyn FnMut(&mut PartitionLog, i64)) {
        let mut state = self.log.lock();
        f(&mut state.log, self.high_watermark())
    }

    /// The log settings in force.
    pub fn log_config(&self) -> LogConfig {
        self.log.lock().log.config().clone()
    }

    pub fn update_config(&self, config: LogConfig) {
        self.log.lock().log.update_config(config);
    }

    pub fn flush(&self) -> Result<(), StorageError> {
        self.log.lock().log.flush()
    }

    /// `flush.ms`: fsyncs if unflushed data has waited that long (see [`PartitionLog::flush_if_due`]).
    pub fn flush_if_due(&self, now_ms: i64) -> Result<bool, StorageError> {
        self.log.lock().log.flush_if_due(now_ms)
    }

    /// `producer.id.expiration.ms`: forgets idle producers (see [`ProducerStateTable::expire`]).
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.log.lock().producers.expire(now_ms, expiration_ms)
    }

    /// Records appended and not yet fsynced.
    pub fn unflushed_messages(&self) -> u64 {
        self.log.lock().log.unflushed_messages()
    }

    /// Gives the log back for closing or deleting; the partition must no longer be shared.
    pub fn into_log(self) -> PartitionLog {
        self.log.into_inner().log
    }
}

/// How much of the log tail is scanned on open to rebuild producer state. Retries that must be recognised as
/// duplicates are recent (a producer retries within its delivery timeout), so the tail is enough; a producer
/// whose last batch is older starts over as unknown, which Kafka also allows.
const PRODUCER_SCAN_BYTES: u64 = 64 * 1024 * 1024;

/// Records `epoch` as starting at the log end unless the cache already has it (or a newer one). A failure to
/// write the checkpoint is logged, not fatal: the in-memory cache is updated, and the next open rebuilds or
/// trims the file against the log.
fn start_leader_epoch(log: &mut PartitionLog, epoch: i32) {
    if log
        .latest_leader_epoch()
        .is_some_and(|latest| latest >= epoch)
    {
        return;
    }
    let leo = log.log_end_offset();
    if let Err(e) = log.assign_leader_epoch(epoch, leo) {
        tracing::error!(dir = %log.dir().display(), epoch, error = %e, "cannot record the new leader epoch");
    }
}

/// Whether replica `id`, outside the ISR and not this leader, has reached the high watermark `hw` and the start of
/// this leader epoch (`epoch_start`, looked up when `None`) by its last fetch: Kafka's `isFollowerInSync`.
fn may_join_isr(state: &LogState, id: i32, hw: i64, epoch_start: Option<i64>) -> bool {
    !state.role.isr.contains(&id)
        && id != state.role.node_id
        && state.followers.get(&id).is_some_and(|f| {
            f.leo >= hw && f.leo >= epoch_start.unwrap_or_else(|| leader_epoch_start(state))
        })
}

/// Where the current leader epoch starts in this leader's log (0 if the cache does not have it).
fn leader_epoch_start(state: &LogState) -> i64 {
    state
        .log
        .leader_epoch_entries()
        .iter()
        .rev()
        .find(|e| e.epoch == state.role.leader_epoch)
        .map_or(0, |e| e.start_offset)
}

/// Follower states at the start of a leadership: log end offsets unknown until each follower fetches, and the
/// ISR members counted as caught up now (Kafka resets `lastCaughtUpTimeMs` the same way), so a leader does
/// not shrink the ISR before a follower has had `replica.lag.time.max.ms` to fetch from it.
fn initial_followers(role: &Role, now_ms: i64) -> HashMap<i32, FollowerState> {
    if !role.is_leader() {
        return HashMap::new();
    }
    role.isr
        .iter()
        .filter(|&&id| id != role.node_id)
        .map(|&id| {
            (
                id,
                FollowerState {
                    leo: -1,
                    last_fetch_ms: 0,
                    last_fetch_leader_leo: -1,
                    last_caught_up_ms: now_ms,
                },
            )
        })
        .collect()
}

/// A follower write is allowed only while this replica follows in the epoch the fetcher fetched in.
fn check_follower(state: &LogState, leader_epoch: i32) -> Result<(), AppendError> {
    let role = &state.role;
    if role.is_leader() || state.retired || role.leader_epoch != leader_epoch {
        return Err(AppendError::WrongRole {
            role: "follower",
            epoch: leader_epoch,
            current: role.leader_epoch,
            is_leader: role.is_leader(),
        });
    }
    Ok(())
}

/// The max timestamp of an append's (single) batch, Kafka's producer `lastTimestamp`.
fn batch_time(result: &kraftwerk_storage::AppendResult) -> i64 {
    result
        .batches
        .iter()
        .map(|b| b.max_timestamp)
        .max()
        .unwrap_or(-1)
}

fn rebuild_producer_state(log: &PartitionLog) -> ProducerStateTable {
    let mut table = ProducerStateTable::new();
    let from = log.tail_offset_for_bytes(PRODUCER_SCAN_BYTES);
    let scanned = log.scan_batches(from, i64::MAX, |h, _| {
        if h.producer_id != NO_PRODUCER_ID && h.base_sequence >= 0 {
            let pb = ProducerBatch::new(
                h.producer_id,
                h.producer_epoch,
                h.base_sequence,
                h.last_offset_delta,
            );
            table.record_at(&pb, h.base_offset, h.last_offset(), h.max_timestamp);
        }
    });
    if let Err(e) = scanned {
        tracing::warn!(error = %e, "cannot read the log tail to rebuild producer state");
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use kraftwerk_storage::batch::build_batch;

    fn partition(dir: &std::path::Path, epoch: i32, is_leader: bool) -> Partition {
        let log = PartitionLog::open(dir, LogConfig::default()).unwrap();
        Partition::new("t".into(), Uuid::nil(), 0, log, role(epoch, is_leader), 0)
    }

    fn role(epoch: i32, is_leader: bool) -> Role {
        let mut r = Role::sole_leader(1, epoch);
        if !is_leader {
            r.leader = 2;
        }
        r
    }

    /// Broker 1 in a three-replica partition led by `leader`, ISR `isr`.
    fn role3(epoch: i32, leader: i32, isr: &[i32], partition_epoch: i32) -> Role {
        Role {
            node_id: 1,
            leader,
            leader_epoch: epoch,
            partition_epoch,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            recovering: false,
        }
    }

    fn end(leader_epoch: i32, end_offset: i64) -> EpochEndOffset {
        EpochEndOffset {
            leader_epoch,
            end_offset,
        }
    }

    #[test]
    fn a_reopened_replica_starts_at_its_checkpointed_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        {
            let p = partition(dir.path(), 3, true);
            for _ in 0..10 {
                p.append_as_leader(&one_record(), 0, None).unwrap();
            }
            p.into_log().close().unwrap();
        }
        let open = |role: Role, checkpoint: i64| {
            let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
            let p = Partition::open("t".into(), Uuid::nil(), 0, log, role, 0, checkpoint);
            let hw = p.high_watermark();
            p.into_log().close().unwrap();
            hw
        };
        // A follower, or a leader whose followers have not fetched yet: only what was known committed.
        assert_eq!(open(role3(4, 2, &[1, 2, 3], 0), 4), 4);
        assert_eq!(open(role3(4, 1, &[1, 2, 3], 0), 4), 4);
        // Leading alone, everything in the log is committed at once.
        assert_eq!(open(role3(4, 1, &[1], 0), 4), 10);
        // A checkpoint beyond the log (a truncated tail) is capped at the log end.
        assert_eq!(open(role3(4, 2, &[1, 2], 0), 25), 10);
    }

    #[test]
    fn a_new_leader_epoch_starts_at_the_log_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path(), 3, true);
        assert_eq!(p.end_offset_for(3), end(3, 0));
        let batch = build_batch(0, -1, 0, &[(None, Some(b"v".as_slice()))]);
        p.append_as_leader(&batch, 0, None).unwrap();
        p.append_as_leader(&batch, 0, None).unwrap();
        // A follower of a newer epoch records nothing; leading it does, at the log end.
        p.apply_role(role(4, false), 0);
        assert_eq!(p.end_offset_for(3), end(3, 2));
        assert_eq!(p.end_offset_for(4), EpochEndOffset::UNDEFINED);
        p.apply_role(role(5, true), 0);
        assert_eq!(p.end_offset_for(3), end(3, 2));
        assert_eq!(p.end_offset_for(4), end(3, 2));
        assert_eq!(p.end_offset_for(5), end(5, 2));
        p.append_as_leader(&batch, 0, None).unwrap();
        assert_eq!(p.end_offset_for(5), end(5, 3));
        // The same epoch again (every reconcile) changes nothing.
        p.apply_role(role(5, true), 0);
        assert_eq!(p.end_offset_for(3), end(3, 2));
    }

    fn one_record() -> Vec<u8> {
        build_batch(0, -1, 0, &[(None, Some(b"v".as_slice()))])
    }

    #[tokio::test]
    async fn high_watermark_wait_completes_on_append_or_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = std::sync::Arc::new(partition(dir.path(), 0, true));
        assert!(p.wait_for_high_watermark(0, Duration::ZERO).await);
        assert!(
            !p.wait_for_high_watermark(1, Duration::from_millis(30))
                .await
        );
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.wait_for_high_watermark(2, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        p.append_as_leader(&one_record(), 0, None).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "offset 2 is not yet below the high watermark"
        );
        p.append_as_leader(&one_record(), 0, None).unwrap();
        let done = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(done, Ok(Ok(true))));
    }

    #[tokio::test]
    async fn advancing_the_high_watermark_wakes_waiters_and_never_lowers_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = std::sync::Arc::new(partition(dir.path(), 0, true));
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.wait_for_high_watermark(7, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(p.advance_high_watermark(7));
        assert!(!p.advance_high_watermark(3));
        assert_eq!(p.high_watermark(), 7);
        let done = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(done, Ok(Ok(true))));
    }

    #[tokio::test]
    async fn appends_wake_only_the_waiters_of_their_partition() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (partition(da.path(), 0, true), partition(db.path(), 0, true));
        let on_a = Waiter::new();
        a.watch(&on_a);
        let on_both = Waiter::new();
        a.watch(&on_both);
        b.watch(&on_both);
        b.append_as_leader(&one_record(), 0, None).unwrap();
        let short = Duration::from_millis(30);
        assert!(tokio::time::timeout(short, on_a.woken()).await.is_err());
        assert!(tokio::time::timeout(short, on_both.woken()).await.is_ok());
        a.append_as_leader(&one_record(), 0, None).unwrap();
        assert!(tokio::time::timeout(short, on_a.woken()).await.is_ok());
        assert!(tokio::time::timeout(short, on_both.woken()).await.is_ok());
    }

    #[test]
    fn the_leader_high_watermark_is_the_smallest_isr_log_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        let p = Partition::new(
            "t".into(),
            Uuid::nil(),
            0,
            log,
            role3(1, 1, &[1, 2, 3], 0),
            0,
        );
        for _ in 0..3 {
            p.append_as_leader(&one_record(), 0, Some(1)).unwrap();
        }
        assert_eq!(p.high_watermark(), 0, "no follower has fetched yet");
        assert_eq!(p.record_follower_fetch(2, 3, 10), FollowerFetch::Recorded);
        assert_eq!(
            p.high_watermark(),
            0,
            "3 has not fetched in this leadership"
        );
        assert_eq!(p.record_follower_fetch(3, 2, 10), FollowerFetch::Recorded);
        assert_eq!(p.high_watermark(), 2);
        assert_eq!(p.record_follower_fetch(3, 3, 20), FollowerFetch::Recorded);
        assert_eq!(p.high_watermark(), 3);
        // Not a replica, or this broker itself: not recorded.
        assert_eq!(p.record_follower_fetch(9, 3, 20), FollowerFetch::Refused);
        assert_eq!(p.record_follower_fetch(1, 3, 20), FollowerFetch::Refused);
        // A wrong epoch refuses the append; the right one works.
        assert!(matches!(
            p.append_as_leader(&one_record(), 0, Some(2)),
            Err(AppendError::WrongRole { .. })
        ));
        // ISR shrunk to the leader alone: the high watermark follows the log end.
        p.apply_role(role3(1, 1, &[1], 1), 30);
        p.append_as_leader(&one_record(), 0, Some(1)).unwrap();
        assert_eq!(p.high_watermark(), 4);
        // Consumers read below the high watermark only, followers up to the log end.
        // 2, now outside the ISR, is behind the high watermark (4): no ISR check is asked for.
        assert_eq!(p.record_follower_fetch(2, 3, 40), FollowerFetch::Recorded);
        p.append_as_leader(&one_record(), 0, Some(1)).unwrap();
        assert_eq!(p.high_watermark(), 5);
    }

    #[test]
    fn isr_shrinks_on_lag_and_expands_on_catch_up() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        let p = Partition::new(
            "t".into(),
            Uuid::nil(),
            0,
            log,
            role3(1, 1, &[1, 2, 3], 5),
            0,
        );
        p.append_as_leader(&one_record(), 0, Some(1)).unwrap();
        assert_eq!(
            p.record_follower_fetch(2, 1, 1_000),
            FollowerFetch::Recorded
        );
        // Within the lag limit: no change.
        assert_eq!(p.isr_change(5_000, 10_000, |_| true), None);
        // 3 never fetched: out after the lag limit; 2 is caught up.
        let change = p.isr_change(12_000, 10_000, |_| true).unwrap();
        assert_eq!(
            change,
            IsrChange {
                leader_epoch: 1,
                partition_epoch: 5,
                new_isr: vec![1, 2]
            }
        );
        // Pending: no second request until the image moves on, it is cleared or it expires.
        assert_eq!(p.isr_change(12_000, 10_000, |_| true), None);
        let expired = 12_000 + PENDING_ISR_EXPIRY_MS;
        assert_eq!(
            p.isr_change(expired - 1, 10_000, |_| true),
            None,
            "still pending"
        );
        assert!(
            p.isr_change(expired, 10_000, |_| true).is_some(),
            "asked again once the pending change expired"
        );
        p.apply_role(role3(1, 1, &[1, 2], 6), 12_000);
        // 3 comes back and catches up to the high watermark: it rejoins, if eligible.
        // Its fetch says so at once, so the ISR check need not wait for its tick.
        assert_eq!(
            p.record_follower_fetch(3, 1, 13_000),
            FollowerFetch::MayJoinIsr
        );
        assert_eq!(p.isr_change(13_000, 10_000, |id| id != 3), None);
        p.clear_pending_isr();
        let change = p.isr_change(13_000, 10_000, |_| true).unwrap();
        assert_eq!(change.new_isr, vec![1, 2, 3]);
        assert_eq!(change.partition_epoch, 6);
        // The refused change can be retried after clearing.
        p.clear_pending_isr();
        assert!(p.isr_change(13_000, 10_000, |_| true).is_some());
    }

    #[test]
    fn an_isr_member_that_stops_fetching_is_dropped_though_it_holds_the_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        let p = Partition::new(
            "t".into(),
            Uuid::nil(),
            0,
            log,
            role3(1, 1, &[1, 2, 3], 5),
            0,
        );
        p.append_as_leader(&one_record(), 0, Some(1)).unwrap();
        assert_eq!(
            p.record_follower_fetch(2, 1, 1_000),
            FollowerFetch::Recorded
        );
        assert_eq!(
            p.record_follower_fetch(3, 1, 1_000),
            FollowerFetch::Recorded
        );
        assert_eq!(p.high_watermark(), 1);
        // 3 stops fetching (cut off from the leader); 2 keeps up with a new append.
        p.append_as_leader(&one_record(), 0, Some(1)).unwrap();
        assert_eq!(
            p.record_follower_fetch(2, 2, 2_000),
            FollowerFetch::Recorded
        );
        assert_eq!(p.high_watermark(), 1, "3 holds the high watermark back");
        assert_eq!(p.isr_change(10_000, 10_000, |_| true), None);
        let change = p.isr_change(12_000, 10_000, |_| true).unwrap();
        assert_eq!(change.new_isr, vec![1, 2]);
    }

    #[test]
    fn an_uncleanly_elected_leader_asks_once_to_be_marked_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        let mut role = role3(4, 1, &[1], 7);
        role.recovering = true;
        let p = Partition::new("t".into(), Uuid::nil(), 0, log, role.clone(), 0);
        // Same ISR: a change is still wanted, to carry RECOVERED.
        let change = p.isr_change(1_000, 10_000, |_| true).unwrap();
        assert_eq!(change.new_isr, vec![1]);
        assert_eq!(p.isr_change(1_000, 10_000, |_| true), None, "pending");
        // Once the image shows it recovered, nothing more to ask.
        role.recovering = false;
        role.partition_epoch = 8;
        p.apply_role(role, 1_000);
        assert_eq!(p.isr_change(1_000, 10_000, |_| true), None);
    }

    #[test]
    fn follower_appends_truncates_and_caps_its_high_watermark() {
        let (dl, df) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let leader = partition(dl.path(), 3, true);
        for _ in 0..4 {
            leader.append_as_leader(&one_record(), 0, None).unwrap();
        }
        let log = PartitionLog::open(df.path(), LogConfig::default()).unwrap();
        let follower = Partition::new("t".into(), Uuid::nil(), 0, log, role(3, false), 0);
        let data = leader.read_for_follower(0, 1 << 20).unwrap().records;
        // Wrong epoch: refused; a leader does not take follower writes.
        assert!(follower.append_as_follower(&data, 2).is_err());
        assert!(leader.append_as_follower(&data, 3).is_err());
        follower.append_as_follower(&data, 3).unwrap();
        assert_eq!(follower.log_end_offset(), 4);
        assert_eq!(follower.end_offset_for(3), end(3, 4));
        follower.update_follower_high_watermark(10);
        assert_eq!(follower.high_watermark(), 4);
        assert_eq!(follower.truncate_as_follower(2, false, 3).unwrap(), 2);
        assert_eq!(follower.high_watermark(), 2);
        assert!(matches!(
            follower.append_as_leader(&one_record(), 0, None),
            Err(AppendError::WrongRole { .. })
        ));
    }

    fn idempotent(first_seq: i32, records: usize) -> Vec<u8> {
        let mut b = kraftwerk_storage::batch::BatchBuilder::new(0, -1).producer(7, 0, first_seq);
        for _ in 0..records {
            b.push(0, None, Some(b"v".as_slice()), &[]).unwrap();
        }
        b.build()
    }

    #[test]
    fn a_follower_that_becomes_leader_recognises_retries_of_what_it_replicated() {
        let (dl, df) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let leader = partition(dl.path(), 3, true);
        leader.append_as_leader(&idempotent(0, 2), 0, None).unwrap();
        leader.append_as_leader(&idempotent(2, 3), 0, None).unwrap();
        let log = PartitionLog::open(df.path(), LogConfig::default()).unwrap();
        let follower = Partition::new("t".into(), Uuid::nil(), 0, log, role(3, false), 0);
        let data = leader.read_for_follower(0, 1 << 20).unwrap().records;
        follower.append_as_follower(&data, 3).unwrap();
        // Failover: the follower leads epoch 4; the producer retries its last batch there.
        follower.apply_role(role(4, true), 0);
        assert!(matches!(
            follower.append_as_leader(&idempotent(2, 3), 0, Some(4)),
            Ok(Appended::Duplicate {
                base_offset: 2,
                last_offset: 4,
                ..
            })
        ));
        assert_eq!(follower.log_end_offset(), 5);
    }

    #[test]
    fn truncation_rebuilds_producer_state_from_what_is_left() {
        let (dl, df) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let leader = partition(dl.path(), 3, true);
        leader.append_as_leader(&idempotent(0, 2), 0, None).unwrap();
        leader.append_as_leader(&idempotent(2, 3), 0, None).unwrap();
        let log = PartitionLog::open(df.path(), LogConfig::default()).unwrap();
        let follower = Partition::new("t".into(), Uuid::nil(), 0, log, role(3, false), 0);
        let data = leader.read_for_follower(0, 1 << 20).unwrap().records;
        follower.append_as_follower(&data, 3).unwrap();
        // The second batch diverged and is truncated away: a retry of it is new data, written at offset 2.
        follower.truncate_as_follower(2, false, 3).unwrap();
        follower.apply_role(role(4, true), 0);
        match follower.append_as_leader(&idempotent(2, 3), 0, Some(4)) {
            Ok(Appended::Written(r)) => assert_eq!(r.base_offset, 2),
            other => panic!("expected a fresh write, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_acks_all_wait_ends_when_leadership_moves() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        let p = std::sync::Arc::new(Partition::new(
            "t".into(),
            Uuid::nil(),
            0,
            log,
            role3(1, 1, &[1, 2], 0),
            0,
        ));
        p.append_as_leader(&one_record(), 0, Some(1)).unwrap();
        let waiting = {
            let p = p.clone();
            tokio::spawn(
                async move { p.wait_for_commit(1, Some(1), Duration::from_secs(10)).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        p.apply_role(role3(2, 2, &[2], 1), 0);
        let done = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(done, Ok(Ok(CommitWait::NotLeader))));
        assert_eq!(
            p.wait_for_commit(1, None, Duration::from_millis(20)).await,
            CommitWait::TimedOut
        );
    }
}
