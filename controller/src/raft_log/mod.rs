//! raft-rs `Storage` over the `__cluster_metadata` log.
//!
//! raft-rs reads the log through the read-only [`raft::Storage`] trait and leaves writing to us.
//! [`RaftStorage`] keeps every entry in memory (the metadata log is small and there are no
//! snapshots yet, so nothing is ever compacted) and writes through to a durable [`EntryStore`]
//! and [`HardStateStore`]. Both are traits so the node can be tested on in-memory stores; the
//! durable ones are `PartitionEntryStore` (one Kafka record batch per entry) and
//! `QuorumStateFile`. `snapshot_file` reads and writes Kafka's metadata snapshot files (not yet
//! used by raft).

#[cfg(test)]
pub(crate) mod mem;
pub(crate) mod partition_store;
pub(crate) mod quorum_state;
pub mod snapshot_file;

use std::path::PathBuf;

use raft::prelude::{ConfState, Entry, HardState, RaftState, Snapshot};
use raft::{GetEntriesContext, StorageError as RaftStorageError};
use thiserror::Error;

use crate::config::node_id;

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

/// Durable raft entries. Indexes start at 1 and are contiguous.
pub(crate) trait EntryStore: Send {
    /// Every stored entry in index order.
    fn load(&mut self) -> Result<Vec<Entry>, LogError>;
    /// Removes every entry with index >= `index`.
    fn truncate_from(&mut self, index: u64) -> Result<(), LogError>;
    /// Appends entries that directly follow the stored ones, durably (fsync) before returning.
    fn append(&mut self, entries: &[Entry], quorum: &QuorumView) -> Result<(), LogError>;
    /// Flushes and marks a clean shutdown, so the next open can skip recovery.
    fn close(&mut self) -> Result<(), LogError> {
        Ok(())
    }
}

/// Durable raft hard state (term, vote, commit).
pub(crate) trait HardStateStore: Send {
    /// The stored state, `None` on first start.
    fn load(&mut self) -> Result<Option<HardState>, LogError>;
    /// Replaces the stored state durably.
    fn save(&mut self, state: &HardState) -> Result<(), LogError>;
}

/// The raft log as raft-rs sees it: in-memory entries backed by durable stores.
pub(crate) struct RaftStorage {
    /// `entries[i].index == i + 1`.
    entries: Vec<Entry>,
    hard_state: HardState,
    conf_state: ConfState,
    log: Box<dyn EntryStore>,
    quorum: Box<dyn HardStateStore>,
    /// The leader of the current term, as last noted by the node.
    view: QuorumView,
}

impl RaftStorage {
    /// Loads the stores. `voters` are raft ids; membership is static configuration, so the
    /// conf state is not persisted.
    pub(crate) fn open(
        mut log: Box<dyn EntryStore>,
        mut quorum: Box<dyn HardStateStore>,
        voters: Vec<u64>,
    ) -> Result<Self, LogError> {
        let entries = log.load()?;
        for (expected, entry) in (1u64..).zip(&entries) {
            if entry.index != expected {
                return Err(LogError::Corrupt(format!(
                    "entry at position {expected} has index {}",
                    entry.index
                )));
            }
        }
        let mut hard_state = quorum.load()?.unwrap_or_default();
        let last = entries.len() as u64;
        if hard_state.commit > last {
            // The commit index is persisted after the entries it covers, so this means the log
            // lost synced data; refusing to start is safer than silently forgetting commits.
            return Err(LogError::Corrupt(format!(
                "quorum state commit {} is past the last log index {last}",
                hard_state.commit
            )));
        }
        if let Some(last_entry) = entries.last() {
            hard_state.term = hard_state.term.max(last_entry.term);
        }
        let view = QuorumView {
            term: hard_state.term,
            leader: None,
            voters: voters.iter().filter_map(|&id| node_id(id)).collect(),
        };
        let conf_state = ConfState {
            voters,
            ..ConfState::default()
        };
        Ok(Self {
            entries,
            hard_state,
            conf_state,
            log,
            quorum,
            view,
        })
    }

    /// Entries known committed at open time or later: `1..=commit`.
    pub(crate) fn committed_entries(&self) -> &[Entry] {
        let commit = usize::try_from(self.hard_state.commit).unwrap_or(usize::MAX);
        &self.entries[..commit.min(self.entries.len())]
    }

    pub(crate) fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    fn last_stored_index(&self) -> u64 {
        self.entries.len() as u64
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
        if first.index == 0 || first.index > last + 1 {
            return Err(LogError::Gap {
                last,
                got: first.index,
            });
        }
        if first.index <= last {
            self.log.truncate_from(first.index)?;
            let keep = usize::try_from(first.index - 1).unwrap_or(usize::MAX);
            self.entries.truncate(keep);
        }
        self.log.append(entries, &self.view)?;
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    /// Persists a new hard state if it differs from the stored one.
    pub(crate) fn set_hard_state(&mut self, state: &HardState) -> Result<(), LogError> {
        if *state != self.hard_state {
            self.quorum.save(state)?;
            self.hard_state = state.clone();
        }
        Ok(())
    }

    /// Persists a new commit index (from a `LightReady`).
    pub(crate) fn set_commit(&mut self, commit: u64) -> Result<(), LogError> {
        let mut state = self.hard_state.clone();
        state.commit = commit;
        self.set_hard_state(&state)
    }

    /// Closes the durable log cleanly; the storage must not be written afterwards.
    pub(crate) fn close(&mut self) -> Result<(), LogError> {
        self.log.close()
    }

    /// The term of the entry at `index` (0 for index 0), if stored.
    pub(crate) fn term_of(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        usize::try_from(index - 1)
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|e| e.term)
    }
}

impl raft::Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low == 0 {
            return Err(raft::Error::Store(RaftStorageError::Compacted));
        }
        if high > self.last_stored_index() + 1 || low > high {
            return Err(raft::Error::Store(RaftStorageError::Unavailable));
        }
        let lo = usize::try_from(low - 1).unwrap_or(usize::MAX);
        let hi = usize::try_from(high - 1).unwrap_or(usize::MAX);
        let mut out = self
            .entries
            .get(lo..hi)
            .map(<[Entry]>::to_vec)
            .ok_or(raft::Error::Store(RaftStorageError::Unavailable))?;
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.term_of(idx)
            .ok_or(raft::Error::Store(RaftStorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_stored_index())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // Nothing is ever compacted, so raft-rs never needs a snapshot to catch a peer up.
        Err(raft::Error::Store(
            RaftStorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

#[cfg(test)]
mod tests;
