//! In-memory stores for tests. Clones share their contents, so a test can drop a node and
//! open a new one on the same "disk".

use std::sync::{Arc, Mutex, MutexGuard};

use raft::prelude::{Entry, HardState};

use super::{EntryStore, HardStateStore, LogError, QuorumView};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another test thread panicked; the data is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Entries with one offset each (offset = index - 1), and the index of the first kept one.
#[derive(Clone, Default)]
pub(crate) struct MemEntryStore(Arc<Mutex<Vec<Entry>>>, Arc<Mutex<u64>>);

impl EntryStore for MemEntryStore {
    fn bounds(&mut self) -> Result<(i64, i64), LogError> {
        let start = (*lock(&self.1)).max(1) as i64 - 1;
        let end = lock(&self.0).last().map_or(start, |e| e.index as i64);
        Ok((start, end))
    }

    fn load(&mut self, first_index: u64, _from_offset: i64) -> Result<Vec<Entry>, LogError> {
        Ok(lock(&self.0)
            .iter()
            .filter(|e| e.index >= first_index)
            .cloned()
            .collect())
    }

    fn trim_through(&mut self, index: u64) -> Result<(), LogError> {
        lock(&self.0).retain(|e| e.index > index);
        *lock(&self.1) = index + 1;
        Ok(())
    }

    fn reset(&mut self, next_index: u64, _offset: i64) -> Result<(), LogError> {
        lock(&self.0).clear();
        *lock(&self.1) = next_index;
        Ok(())
    }

    fn truncate_from(&mut self, index: u64) -> Result<(), LogError> {
        lock(&self.0).retain(|e| e.index < index);
        Ok(())
    }

    fn append(&mut self, entries: &[Entry], _quorum: &QuorumView) -> Result<(), LogError> {
        let mut stored = lock(&self.0);
        let last = stored
            .last()
            .map_or((*lock(&self.1)).max(1) - 1, |e| e.index);
        match entries.first() {
            Some(first) if first.index != last + 1 => Err(LogError::Gap {
                last,
                got: first.index,
            }),
            _ => {
                stored.extend_from_slice(entries);
                Ok(())
            }
        }
    }
}

/// The durable state, and the commit hint (what a crash of the machine may lose: see
/// [`MemHardStateStore::lose_commit_hint`]).
#[derive(Clone, Default)]
pub(crate) struct MemHardStateStore(Arc<Mutex<Option<HardState>>>, Arc<Mutex<Option<u64>>>);

impl MemHardStateStore {
    /// The durably saved state, without the hint.
    pub(crate) fn durable(&self) -> Option<HardState> {
        lock(&self.0).clone()
    }

    /// Drops the commit hint, as a crash of the machine may.
    pub(crate) fn lose_commit_hint(&self) {
        *lock(&self.1) = None;
    }
}

impl HardStateStore for MemHardStateStore {
    fn load(&mut self) -> Result<Option<HardState>, LogError> {
        let hint = *lock(&self.1);
        Ok(lock(&self.0).clone().map(|mut state| {
            state.commit = state.commit.max(hint.unwrap_or(0));
            state
        }))
    }

    fn save(&mut self, state: &HardState) -> Result<(), LogError> {
        *lock(&self.0) = Some(state.clone());
        Ok(())
    }

    fn save_commit(&mut self, commit: u64) -> Result<(), LogError> {
        *lock(&self.1) = Some(commit);
        Ok(())
    }
}
