//! The raft node: one task that owns the `RawNode`, the metadata image and the proposals.
//!
//! Everything reaches the node through one mailbox ([`Command`]); raft time advances on a fixed
//! tick. After each batch of commands the node drains raft's `Ready`s: send messages, persist
//! entries and hard state, send the messages that had to wait for persistence, apply committed
//! entries to the image, publish it, then answer the proposals those entries carried.
//!
//! The leader runs operations against a *pending* image (committed image plus its own proposed
//! but uncommitted batches), so two requests in flight cannot both create the same topic. It
//! only accepts operations once it has applied an entry of its own term, i.e. everything the
//! previous leaders committed; until then they wait in `deferred`.
//!
//! The task runs on its own thread (with a single-threaded runtime) because it fsyncs the
//! metadata log, which must not stall the broker's request-handling runtime.

mod membership_change;
mod proposals;
mod raft_logger;
mod status;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use raft::prelude::{Entry, EntryType, MessageType, RawNode};
use raft::StateRole;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

pub(crate) use proposals::{Operation, Pending};
pub(crate) use status::SharedStatus;

use crate::config::{node_id, raft_id};
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::membership::{Member, Membership};
use crate::ops::OpContext;
use crate::raft_log::snapshot_file::SnapshotId;
use crate::raft_log::{LogError, RaftStorage, SnapshotPayload, StoredSnapshot};
use crate::records::{encode_batch, kafka_format, split_batch};
use crate::rpc::{CommittedEntry, MetadataChunk, QuorumInfo, ReplicaProgress, SnapshotChunk};

/// Milliseconds since the Unix epoch, for DescribeQuorum's timestamps.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
use crate::transport::{RaftMessage, Transport};
use proposals::{InFlight, Resolved};

/// Election timeout in ticks (randomized up to twice this by raft-rs).
const ELECTION_TICKS: usize = 10;
/// Leader heartbeat interval in ticks.
const HEARTBEAT_TICKS: usize = 2;
/// Upper bound on the entries bytes of one append message to a follower.
const MAX_APPEND_BYTES: u64 = 1 << 20;
/// Commands handled before the node persists and applies, so bursts share one fsync.
const MAX_COMMANDS_PER_ROUND: usize = 256;

/// The node's mailbox.
pub(crate) enum Command {
    /// Run an operation (on the leader) and propose its records.
    Propose(Operation),
    /// A raft message from a peer.
    Step(Box<RaftMessage>),
    /// Read committed entries for a metadata follower (a broker).
    ReadCommitted {
        /// First raft index wanted.
        from_index: u64,
        /// Entry bytes to stop after (at least one entry is returned when there is one).
        max_bytes: u64,
        /// When nothing from `from_index` is committed yet: park the read until something is (the caller
        /// bounds the wait by dropping the receiver), rather than answer an empty chunk.
        wait: bool,
        /// Where the answer goes.
        reply: tokio::sync::oneshot::Sender<Result<MetadataChunk, ControllerError>>,
    },
    /// Describe the quorum (the leader's view of every voter's progress).
    DescribeQuorum {
        /// Where the answer goes.
        reply: tokio::sync::oneshot::Sender<Result<QuorumInfo, ControllerError>>,
    },
    /// Change the quorum's membership (KIP-853 AddRaftVoter, RemoveRaftVoter, UpdateRaftVoter).
    ChangeMembership {
        /// What to change.
        request: MembershipRequest,
        /// How long an addition may wait for the new voter to catch up.
        timeout: Duration,
        /// Answered once the change has committed (or failed).
        reply: tokio::sync::oneshot::Sender<Result<(), ControllerError>>,
    },
    /// Stop; in-flight requests answer NOT_CONTROLLER.
    Shutdown,
}

/// A membership change asked of the leader.
#[derive(Debug, Clone)]
pub(crate) enum MembershipRequest {
    /// Add a voter: it becomes a raft learner, catches up, then is promoted. Answered once the promotion has
    /// committed, or (`ack_when_committed` false, AddRaftVoter v1) once the leader has appended it.
    Add {
        member: Member,
        ack_when_committed: bool,
    },
    /// Remove the voter (or learner) with this id; its directory id must match unless one side is unknown
    /// (zero).
    Remove { id: i32, directory_id: uuid::Uuid },
    /// Replace a voter's endpoints and kraft.version range.
    Update(Member),
}

/// What the node needs from `start`.
pub(crate) struct NodeParts {
    pub node_id: i32,
    pub tick: Duration,
    /// Bytes of applied entries between snapshots.
    pub snapshot_bytes: u64,
    pub storage: RaftStorage,
    pub transport: Arc<dyn Transport>,
    pub ctx: OpContext,
    pub image: MetadataImage,
    pub image_tx: watch::Sender<Arc<MetadataImage>>,
    /// Where the applied membership is published.
    pub membership_tx: watch::Sender<Arc<Membership>>,
    pub status: Arc<SharedStatus>,
}

pub(crate) struct Node {
    raw: RawNode<RaftStorage>,
    tick: Duration,
    transport: Arc<dyn Transport>,
    ctx: OpContext,
    /// The image of every applied entry; what is published.
    committed: MetadataImage,
    /// Leader only: `committed` plus the batches of `in_flight`.
    pending: Option<MetadataImage>,
    in_flight: InFlight,
    deferred: VecDeque<Operation>,
    applied_index: u64,
    applied_term: u64,
    /// Leader only: per voter (raft id), when it last answered an append or heartbeat and when it was last
    /// caught up, in ms since the epoch.
    peer_seen: std::collections::HashMap<u64, (i64, i64)>,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    snapshot_bytes: u64,
    /// Entry bytes applied since the last snapshot.
    bytes_since_snapshot: u64,
    image_tx: watch::Sender<Arc<MetadataImage>>,
    membership_tx: watch::Sender<Arc<Membership>>,
    /// Leader only: the membership change in progress (one at a time, as in Kafka).
    change: Option<membership_change::InProgress>,
    status: Arc<SharedStatus>,
    /// Metadata followers' reads waiting for an entry to commit; answered as soon as one is, before this node
    /// applies it (see [`Self::serve_waiting_reads`]).
    waiting_reads: Vec<WaitingRead>,
}

/// A parked [`Command::ReadCommitted`].
struct WaitingRead {
    from_index: u64,
    max_bytes: u64,
    reply: tokio::sync::oneshot::Sender<Result<MetadataChunk, ControllerError>>,
}

/// Errors that stop the node.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

impl Node {
    /// Builds the raft node over storage whose committed entries are already in `parts.image`.
    pub(crate) fn new(parts: NodeParts) -> Result<Self, NodeError> {
        let hard_state = parts.storage.hard_state().clone();
        let applied_term = parts.storage.term_of(hard_state.commit).unwrap_or(0);
        // Entries replayed at open count towards the next snapshot, so a long log without one gets one soon.
        let bytes_since_snapshot = parts
            .storage
            .committed_entries()
            .iter()
            .map(|e| e.data.len() as u64)
            .sum();
        let config = raft::Config {
            id: raft_id(parts.node_id),
            election_tick: ELECTION_TICKS,
            heartbeat_tick: HEARTBEAT_TICKS,
            applied: hard_state.commit,
            max_size_per_msg: MAX_APPEND_BYTES,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..raft::Config::default()
        };
        config.validate()?;
        let membership = parts.storage.membership().clone();
        let mut raw = RawNode::new(
            &config,
            parts.storage,
            &raft_logger::raft_logger(parts.node_id),
        )?;
        parts.transport.set_members(&membership);
        parts
            .membership_tx
            .send_replace(Arc::new(membership.clone()));
        if membership.voter_ids() == [parts.node_id] {
            // A lone voter wins at once; no need to wait out an election timeout.
            raw.campaign()?;
        }
        let node = Self {
            raw,
            tick: parts.tick,
            transport: parts.transport,
            ctx: parts.ctx,
            committed: parts.image,
            pending: None,
            in_flight: InFlight::default(),
            deferred: VecDeque::new(),
            applied_index: hard_state.commit,
            applied_term,
            peer_seen: std::collections::HashMap::new(),
            snapshot_bytes: parts.snapshot_bytes.max(1),
            bytes_since_snapshot,
            image_tx: parts.image_tx,
            membership_tx: parts.membership_tx,
            change: None,
            status: parts.status,
            waiting_reads: Vec::new(),
        };
        node.publish_status();
        Ok(node)
    }

    /// Runs until shutdown, the mailbox closing, or a storage failure.
    pub(crate) async fn run(mut self, mut mailbox: mpsc::Receiver<Command>) {
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let failure = loop {
            if let Err(e) = self.settle() {
                break Some(e);
            }
            tokio::select! {
                _ = ticker.tick() => {
                    self.raw.tick();
                }
                command = mailbox.recv() => {
                    let Some(command) = command else { break None };
                    if !self.handle(command) {
                        break None;
                    }
                    let mut stop = false;
                    for _ in 1..MAX_COMMANDS_PER_ROUND {
                        match mailbox.try_recv() {
                            Ok(command) => {
                                if !self.handle(command) {
                                    stop = true;
                                    break;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    if stop {
                        break None;
                    }
                }
            }
        };
        let answer = match failure {
            Some(e) => {
                error!(error = %e, "controller node stopped on an error");
                ControllerError::Storage(e.to_string())
            }
            None => {
                info!("controller node shut down");
                ControllerError::NotController
            }
        };
        self.in_flight.fail_all(&answer);
        self.deferred.clear();
        self.fail_change(answer.clone());
        self.status.set(None, false);
        if let Err(e) = self.raw.mut_store().close() {
            warn!(error = %e, "closing the metadata log failed; it will be recovered on next start");
        }
    }

    /// Handles one command; `false` means stop.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Propose(op) => self.propose(op),
            Command::Step(message) => {
                let from = message.from;
                let is_response = matches!(
                    message.msg_type(),
                    MessageType::MsgAppendResponse | MessageType::MsgHeartbeatResponse
                );
                if let Err(e) = self.raw.step(*message) {
                    debug!(error = %e, "ignoring raft message");
                } else if is_response && self.is_leader() {
                    self.note_peer_response(from);
                }
            }
            Command::DescribeQuorum { reply } => {
                let _ = reply.send(self.describe_quorum());
            }
            Command::ReadCommitted {
                from_index,
                max_bytes,
                wait,
                reply,
            } => match self.read_committed(from_index, max_bytes) {
                Ok(chunk) if wait && chunk.entries.is_empty() && chunk.snapshot.is_none() => {
                    // Readers that gave up (their long poll ended) leave with their receivers.
                    self.waiting_reads.retain(|r| !r.reply.is_closed());
                    self.waiting_reads.push(WaitingRead {
                        from_index,
                        max_bytes,
                        reply,
                    });
                }
                answer => {
                    let _ = reply.send(answer);
                }
            },
            Command::ChangeMembership {
                request,
                timeout,
                reply,
            } => self.start_change(request, timeout, reply),
            Command::Shutdown => return false,
        }
        true
    }

    /// Records when a voter last answered the leader, and whether it had caught up then.
    fn note_peer_response(&mut self, from: u64) {
        let now = wall_clock_ms();
        let last = self.raw.raft.raft_log.last_index();
        let caught_up = self
            .raw
            .raft
            .prs()
            .get(from)
            .is_some_and(|p| p.matched >= last);
        let seen = self.peer_seen.entry(from).or_insert((-1, -1));
        seen.0 = now;
        if caught_up {
            seen.1 = now;
        }
    }

    /// The leader's view of the quorum; NOT_CONTROLLER elsewhere (only the leader knows every voter's progress).
    fn describe_quorum(&self) -> Result<QuorumInfo, ControllerError> {
        if !self.is_leader() {
            return Err(ControllerError::NotController);
        }
        let now = wall_clock_ms();
        let self_id = self.raw.raft.id;
        let last = self.raw.raft.raft_log.last_index();
        let conf = self.raw.raft.prs().conf().to_conf_state();
        let mut all: Vec<(bool, ReplicaProgress)> = self
            .raw
            .raft
            .prs()
            .iter()
            .filter_map(|(&id, progress)| {
                let node_id = node_id(id)?;
                let (fetch, caught_up) = if id == self_id {
                    (now, now)
                } else {
                    self.peer_seen.get(&id).copied().unwrap_or((-1, -1))
                };
                let matched = if id == self_id {
                    last
                } else {
                    progress.matched
                };
                Some((
                    conf.voters.contains(&id),
                    ReplicaProgress {
                        node_id,
                        log_end_offset: i64::try_from(matched).unwrap_or(i64::MAX),
                        last_fetch_ms: fetch,
                        last_caught_up_ms: caught_up,
                    },
                ))
            })
            .collect();
        all.sort_by_key(|(_, v)| v.node_id);
        // Learners (controllers being added) fetch the log without voting: Kafka's observers.
        let (voters, observers): (Vec<_>, Vec<_>) = all.into_iter().partition(|(voter, _)| *voter);
        let voters: Vec<ReplicaProgress> = voters.into_iter().map(|(_, v)| v).collect();
        let observers: Vec<ReplicaProgress> = observers.into_iter().map(|(_, v)| v).collect();
        Ok(QuorumInfo {
            leader_id: node_id(self_id).unwrap_or(-1),
            leader_epoch: i32::try_from(self.raw.raft.term).unwrap_or(i32::MAX),
            high_watermark: i64::try_from(self.raw.raft.raft_log.committed).unwrap_or(i64::MAX),
            voters,
            observers,
            members: self.raw.store().membership().members().cloned().collect(),
        })
    }

    /// The last entry a metadata follower may read: committed, and in this node's log storage (raft-rs lets a
    /// leader count a quorum of followers before its own append is persisted; such an entry is read once it is).
    fn readable_index(&self) -> u64 {
        let stored = raft::Storage::last_index(self.raw.store()).unwrap_or(0);
        self.raw.raft.raft_log.committed.min(stored)
    }

    /// Answers the parked reads once entries they wait for are readable. Called as soon as a commit is known,
    /// before the entries are applied here: a broker replays them into its own image, so it need not wait for
    /// this node's (a fence of 10,000 partitions took the active controller 3-36 ms to apply during a controlled
    /// shutdown, and the brokers started their replay only after it).
    fn serve_waiting_reads(&mut self) {
        if self.waiting_reads.is_empty() {
            return;
        }
        let readable = self.readable_index();
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting_reads)
            .into_iter()
            .partition(|r| r.from_index.max(1) <= readable);
        self.waiting_reads = waiting;
        for r in ready {
            if !r.reply.is_closed() {
                let _ = r.reply.send(self.read_committed(r.from_index, r.max_bytes));
            }
        }
    }

    /// Committed entries from raft index `low`, for a follower of the metadata log: everything committed and
    /// stored, whether or not this node has applied it yet.
    fn read_committed(&self, low: u64, max_bytes: u64) -> Result<MetadataChunk, ControllerError> {
        let commit_index = self.readable_index();
        let low = low.max(1);
        let first = raft::Storage::first_index(self.raw.store()).unwrap_or(1);
        if low < first {
            // Trimmed behind a snapshot: the follower loads the newest snapshot instead.
            if let Some(s) = self.raw.store().latest_snapshot() {
                return Ok(MetadataChunk {
                    entries: Vec::new(),
                    commit_index,
                    snapshot: Some(SnapshotChunk {
                        index: s.index,
                        end_offset: s.id.end_offset,
                        bytes: s.bytes.to_vec(),
                    }),
                });
            }
        }
        if low > commit_index {
            return Ok(MetadataChunk {
                entries: Vec::new(),
                commit_index,
                snapshot: None,
            });
        }
        let entries = raft::Storage::entries(
            self.raw.store(),
            low,
            commit_index + 1,
            max_bytes,
            raft::GetEntriesContext::empty(false),
        )
        .map_err(|e| {
            ControllerError::Storage(format!("reading committed metadata entries: {e}"))
        })?;
        Ok(MetadataChunk {
            entries: entries
                .into_iter()
                .map(|e| CommittedEntry {
                    index: e.index,
                    term: e.term,
                    entry_type: e.entry_type,
                    data: e.data,
                })
                .collect(),
            commit_index,
            snapshot: None,
        })
    }

    fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The leader has applied an entry of its own term, hence everything committed before it.
    fn caught_up(&self) -> bool {
        self.is_leader() && self.applied_term == self.raw.raft.term
    }

    fn propose(&mut self, op: Operation) {
        if !self.is_leader() {
            // Dropping the operation drops its reply channel: the caller answers NOT_CONTROLLER.
            return;
        }
        if !self.caught_up() {
            self.deferred.push_back(op);
            return;
        }
        let base = self
            .pending
            .take()
            .unwrap_or_else(|| self.committed.clone());
        let started = std::time::Instant::now();
        let Pending { records, complete } = op(&base, &mut self.ctx);
        let computed = started.elapsed();
        if records.is_empty() {
            self.pending = Some(base);
            complete(Ok(()));
            return;
        }
        let data = match encode_batch(&records) {
            Ok(data) => data,
            Err(e) => {
                self.pending = Some(base);
                complete(Err(ControllerError::Internal(e.to_string())));
                return;
            }
        };
        tracing::debug!(
            records = records.len(),
            compute_us = computed.as_micros() as u64,
            encode_us = (started.elapsed() - computed).as_micros() as u64,
            "operation proposed"
        );
        let before = self.raw.raft.raft_log.last_index();
        match self.raw.propose(Vec::new(), data) {
            Ok(()) if self.raw.raft.raft_log.last_index() == before + 1 => {
                let index = before + 1;
                self.pending = Some(base.apply(base.next_offset(), &records));
                self.in_flight.insert(self.raw.raft.term, index, complete);
            }
            Ok(()) => {
                self.pending = Some(base);
                complete(Err(ControllerError::Internal(
                    "proposal did not append exactly one entry".into(),
                )));
            }
            Err(raft::Error::ProposalDropped) => {
                self.pending = Some(base);
                complete(Err(ControllerError::NotController));
            }
            Err(e) => {
                self.pending = Some(base);
                complete(Err(ControllerError::Raft(e.to_string())));
            }
        }
    }

    /// Brings the node to rest after a round of commands: persists and applies everything raft
    /// has ready, drops the leader-only state when not leading, and runs deferred operations
    /// once the leader has caught up (their proposals then need another pass).
    fn settle(&mut self) -> Result<(), NodeError> {
        loop {
            self.drain_ready()?;
            if self.step_down_if_removed() {
                continue;
            }
            if !self.is_leader() {
                self.pending = None;
                // Dropped operations answer NOT_CONTROLLER through their closed reply channels.
                self.deferred.clear();
                self.fail_change(ControllerError::NotController);
            } else if self.caught_up() && !self.deferred.is_empty() {
                while let Some(op) = self.deferred.pop_front() {
                    self.propose(op);
                }
                continue;
            }
            if self.drive_change() {
                continue;
            }
            self.maybe_snapshot()?;
            self.publish_status();
            return Ok(());
        }
    }

    /// Takes a snapshot of the applied image once enough has been applied since the last one, and trims
    /// the log behind it, so a restart loads the image instead of replaying the whole history.
    fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        if self.bytes_since_snapshot < self.snapshot_bytes
            && !self.raw.store().take_snapshot_wanted()
        {
            return Ok(());
        }
        let covered = self.raw.store().latest_snapshot().map_or(0, |s| s.index);
        if self.applied_index <= covered {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let id = SnapshotId {
            end_offset: self.committed.next_offset(),
            epoch: i32::try_from(self.applied_term).unwrap_or(i32::MAX),
        };
        let mut records = 0usize;
        let snapshot = StoredSnapshot::build(
            self.applied_index,
            self.applied_term,
            id,
            wall_clock_ms(),
            self.committed.records().inspect(|_| records += 1),
            Some(self.raw.store().membership().clone()),
        )?;
        let bytes = snapshot.bytes.len();
        self.raw.mut_store().save_snapshot(snapshot)?;
        self.bytes_since_snapshot = 0;
        info!(
            index = self.applied_index,
            end_offset = id.end_offset,
            records,
            bytes,
            ms = started.elapsed().as_millis() as u64,
            "wrote a metadata snapshot"
        );
        Ok(())
    }

    /// A snapshot from the leader (this node was too far behind for entries): validated, stored, and the
    /// image replaced by it.
    fn install_snapshot(&mut self, snapshot: &raft::prelude::Snapshot) -> Result<(), NodeError> {
        let meta = snapshot.get_metadata();
        let stored = SnapshotPayload::decode(meta.index, meta.term, &snapshot.data)?;
        let records = stored.records()?;
        let image = MetadataImage::from_snapshot(
            self.committed.cluster_id().to_string(),
            stored.id.end_offset - 1,
            &records,
        );
        info!(
            index = meta.index,
            end_offset = stored.id.end_offset,
            "installing a metadata snapshot from the leader"
        );
        self.raw.mut_store().install_snapshot(stored)?;
        self.committed = image;
        self.applied_index = meta.index;
        self.applied_term = meta.term;
        self.bytes_since_snapshot = 0;
        self.image_tx.send_replace(Arc::new(self.committed.clone()));
        let membership = self.raw.store().membership().clone();
        self.publish_membership(membership);
        Ok(())
    }

    /// Hands a new membership to the transport (before anything is sent to a new member) and publishes it.
    fn publish_membership(&self, membership: Membership) {
        self.transport.set_members(&membership);
        self.membership_tx.send_replace(Arc::new(membership));
    }

    fn publish_status(&self) {
        self.status
            .set(node_id(self.raw.raft.leader_id), self.is_leader());
    }

    fn drain_ready(&mut self) -> Result<(), NodeError> {
        while self.raw.has_ready() {
            self.on_ready()?;
        }
        Ok(())
    }

    fn on_ready(&mut self) -> Result<(), NodeError> {
        let mut ready = self.raw.ready();
        if let Some(soft) = ready.ss() {
            info!(role = ?soft.raft_state, leader = ?node_id(soft.leader_id), "controller role changed");
            if soft.raft_state != StateRole::Leader {
                self.pending = None;
            }
        }
        self.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot())?;
        }
        // Who leads the current term, for the leader-change record of a new leader's entry.
        let (term, leader) = (self.raw.raft.term, self.raw.raft.leader_id);
        let store = self.raw.mut_store();
        store.note_leader(term, leader);
        let started = std::time::Instant::now();
        let appended = ready.entries().len();
        store.append(ready.entries())?;
        if let Some(hard_state) = ready.hs() {
            store.set_hard_state(hard_state)?;
        }
        let persisted = started.elapsed();
        self.send(ready.take_persisted_messages());
        self.serve_waiting_reads();
        let committed = ready.take_committed_entries();
        let applied = committed.len();
        self.apply(&committed);
        if appended + applied > 0 {
            tracing::debug!(
                appended,
                persist_us = persisted.as_micros() as u64,
                applied,
                apply_us = (started.elapsed() - persisted).as_micros() as u64,
                "ready handled"
            );
        }

        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit)?;
        }
        self.send(light.take_messages());
        self.serve_waiting_reads();
        let committed = light.take_committed_entries();
        let started = std::time::Instant::now();
        self.apply(&committed);
        if !committed.is_empty() {
            tracing::debug!(
                applied = committed.len(),
                apply_us = started.elapsed().as_micros() as u64,
                "light ready applied"
            );
        }
        self.raw.advance_apply();
        Ok(())
    }

    fn send(&self, messages: Vec<RaftMessage>) {
        for message in messages {
            match node_id(message.to) {
                Some(to) => self.transport.send(to, message),
                None => warn!(to = message.to, "dropping raft message to an invalid id"),
            }
        }
    }

    /// Applies committed entries, publishes the new image, then answers their proposals (so a
    /// client told "done" already finds the change in `image()`).
    fn apply(&mut self, entries: &[Entry]) {
        if entries.is_empty() {
            return;
        }
        let mut resolved: Vec<Resolved> = Vec::new();
        for entry in entries {
            self.bytes_since_snapshot += entry.data.len() as u64;
            if entry.get_entry_type() == EntryType::EntryConfChangeV2 {
                self.apply_membership(entry);
            }
            self.note_applied_for_change(entry);
            self.committed = apply_entry(&self.committed, entry);
            self.applied_index = entry.index;
            self.applied_term = entry.term;
            self.in_flight
                .resolve(entry.term, entry.index, &mut resolved);
        }
        if self.in_flight.is_empty() {
            // Nothing uncommitted any more: the pending image is the committed one.
            self.pending = None;
        }
        self.image_tx.send_replace(Arc::new(self.committed.clone()));
        for (complete, outcome) in resolved {
            complete(outcome);
        }
    }
}

/// The image after one committed raft entry. The entry's batch starts at the image's next
/// offset and takes one offset per serialized record (an empty entry, stored as a control
/// batch, takes one). A batch with an undecodable record is skipped whole (every replica skips
/// the same bytes), but its offsets still count.
pub(crate) fn apply_entry(image: &MetadataImage, entry: &Entry) -> MetadataImage {
    let offset = image.next_offset();
    if entry.data.is_empty() {
        return image.apply(offset, &[]);
    }
    if entry.get_entry_type() != EntryType::EntryNormal {
        // A membership change: one control record (VotersRecord), nothing for the image.
        return image.apply(offset, &[]);
    }
    let serialized = match split_batch(&entry.data) {
        Ok(serialized) => serialized,
        Err(e) => {
            error!(index = entry.index, error = %e, "skipping unframed metadata batch");
            return image.apply(offset, &[]);
        }
    };
    let decoded: Result<Vec<_>, _> = serialized
        .iter()
        .map(|bytes| kafka_format::decode_record(bytes))
        .collect();
    match decoded {
        Ok(records) => image.apply(offset, &records),
        Err(e) => {
            error!(index = entry.index, error = %e, "skipping undecodable metadata batch");
            image.apply_span(offset, serialized.len(), &[])
        }
    }
}

/// The image after every committed entry of a freshly opened log.
/// The image at open: the newest snapshot, then every committed entry after it.
pub(crate) fn replay(cluster_id: &str, storage: &RaftStorage) -> Result<MetadataImage, LogError> {
    let image = match storage.latest_snapshot() {
        Some(s) => MetadataImage::from_snapshot(cluster_id, s.id.end_offset - 1, &s.records()?),
        None => MetadataImage::empty(cluster_id),
    };
    Ok(storage
        .committed_entries()
        .iter()
        .fold(image, |image, entry| apply_entry(&image, entry)))
}
