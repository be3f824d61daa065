//! raft-rs `Storage` over the `__cluster_metadata` log.
//!
//! raft-rs reads the log through the read-only [`raft::Storage`] trait and leaves writing to us.
//! [`RaftStorage`] keeps the entries after the last snapshot-trimmed prefix in memory and writes
//! through to a durable [`EntryStore`] and [`HardStateStore`]; snapshots of the image are Kafka
//! checkpoint files ([`snapshots`]), so restart time follows the image, not the history. Both are traits so the node can be tested on in-memory stores; the
//! durable ones are `PartitionEntryStore` (one Kafka record batch per entry) and
//! `QuorumStateFile`. `snapshot_file` reads and writes Kafka's metadata snapshot files (not yet
//! used by raft).

#[cfg(test)]
pub(crate) mod mem;
pub(crate) mod partition_store;
pub(crate) mod quorum_state;
pub mod snapshot_file;
pub(crate) mod snapshots;

use std::path::PathBuf;

use raft::prelude::{Entry, HardState, RaftState, Snapshot};
use raft::{GetEntriesContext, StorageError as RaftStorageError};
use thiserror::Error;

use crate::config::node_id;
use crate::membership::Membership;
pub(crate) use snapshots::{SnapshotDir, SnapshotPayload, StoredSnapshot};

/// Failures of the metadata log and quorum state.
#[derive(Debug, Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The stored data does not make sense (bad quorum-state, entries out of order, ...).
    #[error("corrupt metadata log: {0}")]
    Corrupt(String),
    /// The partition log refused an operation.
    #[error("metadata partition log: {0}")]
    Partition(#[from] kraftwerk_storage::StorageError),
    /// A stored batch cannot be read as a raft entry (bad CRC, unknown control record, ...).
    #[error("unreadable metadata log batch at offset {offset}: {reason}")]
    BadBatch {
        /// Base offset of the batch.
        offset: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry the Kafka-format log has no representation for (conf changes: voters are
    /// static configuration for now).
    #[error("cannot store raft entry {index}: {reason}")]
    UnsupportedEntry {
        /// The entry's raft index.
        index: u64,
        /// Why.
        reason: String,
    },
    /// raft-rs handed us entries that do not continue the log.
    #[error("entries starting at index {got} do not follow the last index {last}")]
    Gap {
        /// Our last index.
        last: u64,
        /// The first index offered.
        got: u64,
    },
}

/// What the node knows of the quorum when it persists entries: the durable log records a new
/// leader's (empty) entry as Kafka's LeaderChangeMessage, which names the leader and voters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QuorumView {
    /// The node's current raft term.
    pub term: u64,
    /// The leader of `term` as a node id, if known.
    pub leader: Option<i32>,
    /// The voters' node ids.
    pub voters: Vec<i32>,
}

/// Durable raft entries: a contiguous run of indexes, starting after the trimmed prefix.
pub(crate) trait EntryStore: Send {
    /// The log's (start, end) Kafka offsets.
    fn bounds(&mut self) -> Result<(i64, i64), LogError>;
    /// Every stored entry from Kafka offset `from_offset` (a batch boundary), the first of which has raft index
    /// `first_index`.
    fn load(&mut self, first_index: u64, from_offset: i64) -> Result<Vec<Entry>, LogError>;
    /// Removes every entry with index >= `index`.
    fn truncate_from(&mut self, index: u64) -> Result<(), LogError>;
    /// Appends entries that directly follow the stored ones, durably (fsync) before returning.
    fn append(&mut self, entries: &[Entry], quorum: &QuorumView) -> Result<(), LogError>;
    /// Deletes every entry with index <= `index` (covered by a snapshot).
    fn trim_through(&mut self, index: u64) -> Result<(), LogError>;
    /// Empties the log; the next entry appended has raft index `next_index` and Kafka offset `offset`
    /// (after installing a snapshot received from the leader).
    fn reset(&mut self, next_index: u64, offset: i64) -> Result<(), LogError>;
    /// Flushes and marks a clean shutdown, so the next open can skip recovery.
    fn close(&mut self) -> Result<(), LogError> {
        Ok(())
    }
}

/// Durable raft hard state (term, vote, commit).
pub(crate) trait HardStateStore: Send {
    /// The stored state, `None` on first start; its commit is the newest one saved either way.
    fn load(&mut self) -> Result<Option<HardState>, LogError>;
    /// Replaces the stored state durably.
    fn save(&mut self, state: &HardState) -> Result<(), LogError>;
    /// Records a newer commit index without waiting for the disk. Raft needs only the term and
    /// the vote durable; a commit lost in a crash is learnt again from the leader.
    fn save_commit(&mut self, commit: u64) -> Result<(), LogError>;
}

/// The raft log as raft-rs sees it: in-memory entries after the last trimmed one, the newest snapshot, and
/// the durable stores they are written through to.
pub(crate) struct RaftStorage {
    /// `entries[i].index == trimmed.0 + 1 + i`.
    entries: Vec<Entry>,
    /// Index and term of the last entry removed from the log (0, 0 when nothing was).
    trimmed: (u64, u64),
    /// The newest snapshot: what a voter too far behind is sent, and where the image starts on restart.
    snapshot: Option<StoredSnapshot>,
    hard_state: HardState,
    /// The term and vote last saved durably: a change to either is saved durably, a change of the
    /// commit alone is only recorded (`HardStateStore::save_commit`) and made durable at close.
    durable: (u64, u64),
    /// The membership of the applied log (what raft-rs starts from: the membership at the commit index).
    membership: Membership,
    /// The membership the log starts from: the static `controller.quorum.voters`.
    initial: Membership,
    log: Box<dyn EntryStore>,
    quorum: Box<dyn HardStateStore>,
    snapshots: SnapshotDir,
    /// The leader of the current term, as last noted by the node.
    view: QuorumView,
    /// raft-rs asked for a snapshot for a member the newest snapshot predates (raft-rs refuses a snapshot whose
    /// configuration does not name it): the node takes a new one at once.
    snapshot_wanted: std::sync::atomic::AtomicBool,
}

impl RaftStorage {
    /// Loads the stores. `initial` is the membership the log starts from (the static voters); the
    /// membership at the commit index is the newest snapshot's (else `initial`) updated by every committed
    /// conf change after it, whose context holds the whole membership after the change.
    pub(crate) fn open(
        mut log: Box<dyn EntryStore>,
        mut quorum: Box<dyn HardStateStore>,
        initial: Membership,
        snapshot_dir: SnapshotDir,
    ) -> Result<Self, LogError> {
        let snapshots = snapshot_dir.load_all()?;
        let (log_start, log_end) = log.bounds()?;
        let newest = snapshots.first().cloned();
        // Entries are read from the oldest snapshot whose end the log still has, so raft keeps the entries
        // after it; a log that ends before the newest snapshot (a snapshot installed from the leader just
        // before a crash) is emptied to start after it.
        let base = match &newest {
            Some(n) if log_end < n.id.end_offset => {
                log.reset(n.index + 1, n.id.end_offset)?;
                Some(n.clone())
            }
            _ => snapshots
                .iter()
                .rev()
                .find(|s| s.id.end_offset >= log_start)
                .cloned(),
        };
        let (trimmed, from_offset) = match &base {
            Some(b) => ((b.index, b.term), b.id.end_offset),
            None if log_start == 0 => ((0, 0), 0),
            None => {
                return Err(LogError::Corrupt(format!(
                    "the metadata log starts at offset {log_start} but no valid snapshot covers the entries \
                     before it; restore the snapshot files of __cluster_metadata-0, or empty this node's \
                     metadata directory and reformat it so it fetches a snapshot from the quorum"
                )))
            }
        };
        let entries = log.load(trimmed.0 + 1, from_offset)?;
        for (expected, entry) in (trimmed.0 + 1..).zip(&entries) {
            if entry.index != expected {
                return Err(LogError::Corrupt(format!(
                    "entry at position {expected} has index {}",
                    entry.index
                )));
            }
        }
        let mut hard_state = quorum.load()?.unwrap_or_default();
        // What is on disk, before the term is raised to the log's below: a raised term is saved at its first change.
        let durable = (hard_state.term, hard_state.vote);
        let last = trimmed.0 + entries.len() as u64;
        let snapshot_index = newest.as_ref().map_or(0, |s| s.index);
        if hard_state.commit > last.max(snapshot_index) {
            // The commit index is persisted after the entries it covers, so this means the log
            // lost synced data; refusing to start is safer than silently forgetting commits.
            return Err(LogError::Corrupt(format!(
                "quorum state commit {} is past the last log index {last}",
                hard_state.commit
            )));
        }
        hard_state.commit = hard_state.commit.max(snapshot_index);
        if let Some(last_entry) = entries.last() {
            hard_state.term = hard_state.term.max(last_entry.term);
        }
        if let Some(n) = &newest {
            hard_state.term = hard_state.term.max(n.term);
        }
        let mut membership = newest
            .as_ref()
            .and_then(|s| s.membership.clone())
            .unwrap_or_else(|| initial.clone());
        let commit_pos = usize::try_from(hard_state.commit.saturating_sub(trimmed.0))
            .unwrap_or(usize::MAX)
            .min(entries.len());
        let from = newest.as_ref().map_or(0, |s| s.index);
        for entry in entries.get(..commit_pos).unwrap_or_default() {
            if entry.index > from
                && entry.get_entry_type() == raft::prelude::EntryType::EntryConfChangeV2
            {
                membership = Membership::decode(&entry.context).map_err(|e| {
                    LogError::Corrupt(format!(
                        "membership of the conf change at index {}: {e}",
                        entry.index
                    ))
                })?;
            }
        }
        let view = QuorumView {
            term: hard_state.term,
            leader: None,
            voters: membership.voter_ids(),
        };
        Ok(Self {
            entries,
            trimmed,
            snapshot: newest,
            durable,
            hard_state,
            membership,
            initial,
            log,
            quorum,
            snapshots: snapshot_dir,
            view,
            snapshot_wanted: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The newest snapshot, if any.
    pub(crate) fn latest_snapshot(&self) -> Option<&StoredSnapshot> {
        self.snapshot.as_ref()
    }

    /// Committed entries after the newest snapshot, for replay at open: `snapshot.index+1..=commit`.
    pub(crate) fn committed_entries(&self) -> &[Entry] {
        let from = self.snapshot.as_ref().map_or(0, |s| s.index);
        let lo = usize::try_from(from.saturating_sub(self.trimmed.0)).unwrap_or(usize::MAX);
        let hi = usize::try_from(self.hard_state.commit.saturating_sub(self.trimmed.0))
            .unwrap_or(usize::MAX);
        let hi = hi.min(self.entries.len());
        self.entries.get(lo.min(hi)..hi).unwrap_or_default()
    }

    pub(crate) fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// Whether a snapshot was asked for that the newest one cannot serve (clears the request).
    pub(crate) fn take_snapshot_wanted(&self) -> bool {
        self.snapshot_wanted
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// The membership of the applied log.
    pub(crate) fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Records the membership after applying a conf change. Not written anywhere by itself: the conf change
    /// entry holds it, and a snapshot taken later carries it.
    pub(crate) fn set_membership(&mut self, membership: Membership) {
        self.view.voters = membership.voter_ids();
        self.membership = membership;
    }

    fn last_stored_index(&self) -> u64 {
        self.trimmed.0 + self.entries.len() as u64
    }

    /// Records who leads `term` (raft id, 0 for unknown) before entries are persisted.
    pub(crate) fn note_leader(&mut self, term: u64, leader_raft_id: u64) {
        self.view.term = term;
        self.view.leader = node_id(leader_raft_id);
    }

    /// Persists entries from a `Ready`, replacing any conflicting suffix first.
    pub(crate) fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let last = self.last_stored_index();
        if first.index <= self.trimmed.0 || first.index > last + 1 {
            return Err(LogError::Gap {
                last,
                got: first.index,
            });
        }
        if first.index <= last {
            self.log.truncate_from(first.index)?;
            let keep = usize::try_from(first.index - 1 - self.trimmed.0).unwrap_or(usize::MAX);
            self.entries.truncate(keep);
        }
        self.log.append(entries, &self.view)?;
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    /// Stores a snapshot this node took of its own applied image, and trims the log before the previous
    /// snapshot (the newest could be damaged; the log after the previous one lets a restart do without it).
    pub(crate) fn save_snapshot(&mut self, snapshot: StoredSnapshot) -> Result<(), LogError> {
        let trim_to = self.snapshots.save(&snapshot)?;
        self.snapshot = Some(snapshot);
        if let Some(index) = trim_to {
            self.trim_through(index)?;
        }
        Ok(())
    }

    fn trim_through(&mut self, index: u64) -> Result<(), LogError> {
        if index <= self.trimmed.0 || index > self.last_stored_index() {
            return Ok(());
        }
        let Some(term) = self.term_of(index) else {
            return Ok(());
        };
        self.log.trim_through(index)?;
        let drop = usize::try_from(index - self.trimmed.0).unwrap_or(usize::MAX);
        self.entries.drain(..drop.min(self.entries.len()));
        self.trimmed = (index, term);
        Ok(())
    }

    /// Installs a snapshot received from the leader: written durably, then the log is emptied to continue
    /// after it and the commit index moves to it.
    pub(crate) fn install_snapshot(&mut self, snapshot: StoredSnapshot) -> Result<(), LogError> {
        self.snapshots.save(&snapshot)?;
        self.log.reset(snapshot.index + 1, snapshot.id.end_offset)?;
        self.entries.clear();
        self.trimmed = (snapshot.index, snapshot.term);
        let mut state = self.hard_state.clone();
        state.commit = state.commit.max(snapshot.index);
        state.term = state.term.max(snapshot.term);
        let membership = snapshot
            .membership
            .clone()
            .unwrap_or_else(|| self.initial.clone());
        self.set_membership(membership);
        self.snapshot = Some(snapshot);
        self.set_hard_state(&state)
    }

    /// Persists a new hard state if it differs from the stored one: durably when the term or the
    /// vote changed, as a commit hint when only the commit moved.
    pub(crate) fn set_hard_state(&mut self, state: &HardState) -> Result<(), LogError> {
        if *state == self.hard_state {
            return Ok(());
        }
        if (state.term, state.vote) != self.durable {
            self.quorum.save(state)?;
            self.durable = (state.term, state.vote);
        } else {
            self.quorum.save_commit(state.commit)?;
        }
        self.hard_state = state.clone();
        Ok(())
    }

    /// Persists a new commit index (from a `LightReady`).
    pub(crate) fn set_commit(&mut self, commit: u64) -> Result<(), LogError> {
        let mut state = self.hard_state.clone();
        state.commit = commit;
        self.set_hard_state(&state)
    }

    /// Closes the durable log cleanly, with the hard state and its latest commit saved durably;
    /// the storage must not be written afterwards.
    pub(crate) fn close(&mut self) -> Result<(), LogError> {
        self.quorum.save(&self.hard_state)?;
        self.log.close()
    }

    /// The term of the entry at `index` (0 for index 0), if known.
    pub(crate) fn term_of(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        if index == self.trimmed.0 {
            return Some(self.trimmed.1);
        }
        if let Some(s) = &self.snapshot {
            if index == s.index {
                return Some(s.term);
            }
        }
        if index < self.trimmed.0 {
            return None;
        }
        usize::try_from(index - 1 - self.trimmed.0)
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|e| e.term)
    }
}

impl raft::Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.membership.conf_state(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.trimmed.0 {
            return Err(raft::Error::Store(RaftStorageError::Compacted));
        }
        if high > self.last_stored_index() + 1 || low > high {
            return Err(raft::Error::Store(RaftStorageError::Unavailable));
        }
        let lo = usize::try_from(low - 1 - self.trimmed.0).unwrap_or(usize::MAX);
        let hi = usize::try_from(high - 1 - self.trimmed.0).unwrap_or(usize::MAX);
        let mut out = self
            .entries
            .get(lo..hi)
            .map(<[Entry]>::to_vec)
            .ok_or(raft::Error::Store(RaftStorageError::Unavailable))?;
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx < self.trimmed.0 {
            return Err(raft::Error::Store(RaftStorageError::Compacted));
        }
        self.term_of(idx)
            .ok_or(raft::Error::Store(RaftStorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.trimmed.0 + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_stored_index())
    }

    fn snapshot(&self, _request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let Some(s) = &self.snapshot else {
            return Err(raft::Error::Store(
                RaftStorageError::SnapshotTemporarilyUnavailable,
            ));
        };
        let membership = s.membership.as_ref().unwrap_or(&self.initial);
        if !node_id(to).is_some_and(|id| membership.is_member(id)) {
            // A controller added after this snapshot: raft-rs on its side would refuse it. Ask for a new one.
            self.snapshot_wanted
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(raft::Error::Store(
                RaftStorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let data = SnapshotPayload::encode(s)
            .map_err(|e| raft::Error::Store(RaftStorageError::Other(Box::new(e))))?;
        let mut snapshot = Snapshot {
            data,
            ..Snapshot::default()
        };
        let meta = snapshot.mut_metadata();
        meta.index = s.index;
        meta.term = s.term;
        // The configuration as of the snapshot, not the current one: raft-rs applies the conf changes after it.
        meta.set_conf_state(membership.conf_state());
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests;
