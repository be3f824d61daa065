//! A swap between its stage and its install: shared by the cleaner thread, which does the file steps without
//! the log's lock, and the log, which settles it (aborts it, or installs it in its segment list) before anything
//! truncates or deletes the segments it replaces.

use std::path::PathBuf;

use parking_lot::Mutex;

use super::swap;
use crate::checkpoint::sync_dir;
use crate::segment::Segment;
use crate::StorageError;

/// The range one cleaned segment replaces.
#[derive(Debug, Clone)]
pub(crate) struct SwapGroup {
    pub base: i64,
    /// (base offset, size) of each replaced segment.
    pub replaced: Vec<(i64, u64)>,
}

/// Where a staged swap stands.
#[derive(Debug)]
pub(crate) enum SwapState {
    /// `.swap` files renamed, the old segments untouched on disk: it may still be aborted.
    Staged,
    /// The old segments' files are removed and the cleaned ones have their final names; these are the opened
    /// cleaned segments (one per group), still to replace the old ones in the log's segment list, whose open
    /// handles keep the removed files readable meanwhile.
    FilesInstalled(Vec<Segment>),
    /// The file steps failed part-way: committed on disk, so they are retried (they are idempotent), never
    /// aborted.
    InstallFailed,
    /// In the log's segment list.
    Done,
    Aborted,
}

/// A staged swap (see [`swap`] for the steps).
#[derive(Debug)]
pub(crate) struct PendingSwap {
    pub dir: PathBuf,
    pub groups: Vec<SwapGroup>,
    pub index_interval: u32,
    /// Held by whoever runs a step, so the cleaner's file steps and the log's settling never interleave.
    pub state: Mutex<SwapState>,
}

impl PendingSwap {
    /// Step 4 (no lock on the log): removes the replaced segments' files, gives the cleaned ones their final
    /// names and opens them. A no-op unless staged (or failed before).
    pub fn install_files(&self) -> Result<(), StorageError> {
        let mut state = self.state.lock();
        self.install_files_locked(&mut state)
    }

    pub fn install_files_locked(&self, state: &mut SwapState) -> Result<(), StorageError> {
        if !matches!(state, SwapState::Staged | SwapState::InstallFailed) {
            return Ok(());
        }
        *state = SwapState::InstallFailed;
        let mut segments = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            let replaced: Vec<i64> = group.replaced.iter().map(|&(base, _)| base).collect();
            swap::install(&self.dir, group.base, &replaced)?;
            let (mut segment, indexes_loaded) = Segment::open(&self.dir, group.base)?;
            if !indexes_loaded || !segment.load_tail(self.index_interval, true)? {
                segment.recover(self.index_interval, true)?;
            }
            segments.push(segment);
        }
        *state = SwapState::FilesInstalled(segments);
        Ok(())
    }

    /// Discards a swap still staged: its files are removed and the directory fsynced, so a crash afterwards
    /// cannot complete it. Returns false if it is past the point where it can be aborted.
    pub fn abort_locked(&self, state: &mut SwapState) -> Result<bool, StorageError> {
        if !matches!(state, SwapState::Staged) {
            return Ok(false);
        }
        for group in &self.groups {
            swap::abort(&self.dir, group.base)?;
        }
        sync_dir(&self.dir)?;
        *state = SwapState::Aborted;
        Ok(true)
    }
}
