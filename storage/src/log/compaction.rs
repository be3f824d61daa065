//! The log's side of compaction: when it is due, what a cleaning reads, and the steps of swapping the result in
//! that need the owner's lock (a few renames, and an in-memory swap; the fsyncs, unlinks and opens between them
//! run without it). The cleaning itself is in [`crate::cleaner`].

use super::PartitionLog;
use std::sync::Arc;

use crate::cleaner::pending::{PendingSwap, SwapGroup, SwapState};
use crate::cleaner::{
    swap, Cleanable, CleanedGroup, CleanedLog, CleanerStats, CleaningPlan, SegmentSnapshot,
    SwappedLog,
};
use crate::segment::Segment;
use crate::StorageError;

impl PartitionLog {
    /// Where the log stands for the cleaner, given the offset it was cleaned up to (`checkpoint`) and the
    /// offset nothing at or above may be cleaned (`upper_bound`: the high watermark, so only committed data is
    /// compacted). `None` when `cleanup.policy` has no `compact`.
    pub fn cleanable(
        &self,
        now_ms: i64,
        checkpoint: Option<i64>,
        upper_bound: i64,
    ) -> Option<Cleanable> {
        let config = &self.config;
        if !config.cleanup_policy.compact {
            return None;
        }
        let log_start = self.log_start_offset;
        let mut first_dirty = checkpoint.unwrap_or(log_start);
        if let Some(truncated) = self.cleaner_truncated_to {
            first_dirty = first_dirty.min(truncated);
        }
        if first_dirty < log_start || first_dirty > self.log_end_offset() {
            first_dirty = log_start;
        }
        let mut first_uncleanable = self.active.base_offset();
        let mut clean_bytes = 0u64;
        let mut dirty_bytes = 0u64;
        let mut first_dirty_segment: Option<&Segment> = None;
        for (segment, end) in self.sealed_with_ends() {
            if end <= log_start {
                continue;
            }
            // An empty segment (emptied by an earlier cleaning) holds nothing too recent.
            let too_recent = config.min_compaction_lag_ms > 0
                && !segment.is_empty()
                && now_ms.saturating_sub(segment.retention_timestamp())
                    < config.min_compaction_lag_ms;
            if end > upper_bound || too_recent {
                first_uncleanable = segment.base_offset();
                break;
            }
            if end <= first_dirty {
                clean_bytes += segment.size();
            } else {
                dirty_bytes += segment.size();
                first_dirty_segment.get_or_insert(segment);
            }
        }
        let total = clean_bytes + dirty_bytes;
        let dirty_ratio = if total == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total as f64
        };
        let lag_passed = first_dirty_segment.is_some_and(|s| {
            config.max_compaction_lag_ms < i64::MAX
                && now_ms.saturating_sub(s.roll_reference_ms()) > config.max_compaction_lag_ms
        });
        let horizon_passed = self.tombstone_horizon.is_some_and(|h| now_ms >= h);
        let due = (dirty_bytes > 0
            && (dirty_ratio >= config.min_cleanable_dirty_ratio || lag_passed))
            || (horizon_passed && first_uncleanable > log_start);
        Some(Cleanable {
            first_dirty: first_dirty.min(first_uncleanable),
            first_uncleanable,
            clean_bytes,
            dirty_bytes,
            dirty_ratio,
            due,
        })
    }

    /// If the log is due for cleaning, the segments to clean (see [`Self::cleanable`]), with
    /// their paths so the cleaning can run without the lock that guards this log.
    pub fn plan_cleaning(
        &self,
        now_ms: i64,
        checkpoint: Option<i64>,
        upper_bound: i64,
    ) -> Result<Option<CleaningPlan>, StorageError> {
        let Some(c) = self.cleanable(now_ms, checkpoint, upper_bound) else {
            return Ok(None);
        };
        if !c.due {
            return Ok(None);
        }
        let mut segments = Vec::new();
        for (segment, end) in self.sealed_with_ends() {
            if end <= self.log_start_offset {
                continue;
            }
            if segment.base_offset() >= c.first_uncleanable {
                break;
            }
            segments.push(SegmentSnapshot {
                base: segment.base_offset(),
                size: segment.size(),
                end,
                path: segment.log_path().to_path_buf(),
            });
        }
        if segments.is_empty() {
            return Ok(None);
        }
        Ok(Some(CleaningPlan {
            dir: self.dir.clone(),
            config: self.config.clone(),
            segments,
            first_dirty: c.first_dirty,
            end: c.first_uncleanable,
            now_ms,
        }))
    }

    /// Swaps cleaned segments in, all steps in a row (for a caller that owns the log; the cleaner threads run
    /// the steps separately so the log's lock is not held across file operations, see [`crate::cleaner`]). If
    /// the segments they replace changed since the plan (truncated, deleted by retention), nothing is swapped
    /// and the cleaned files are removed: `Ok(None)`.
    pub fn commit_cleaning(
        &mut self,
        mut cleaned: CleanedLog,
    ) -> Result<Option<CleanerStats>, StorageError> {
        if !self.stage_cleaning(&mut cleaned)? {
            return Ok(None);
        }
        if let Err(e) = cleaned.commit() {
            self.settle_cleaning()?;
            return Err(e);
        }
        cleaned.install_files()?;
        match self.install_cleaning(cleaned)? {
            Some(swapped) => swapped.finish().map(Some),
            None => Ok(None),
        }
    }

    /// Step 2 of the swap, under the owner's lock; renames only, no fsync. If the segments the cleaned ones
    /// replace are unchanged since the plan, renames each `.cleaned` segment `.swap` and remembers the swap as
    /// pending: from here until [`Self::install_cleaning`], anything that would truncate or delete segments
    /// settles it first ([`Self::settle_cleaning`]). `false`: the log changed, nothing is staged, and dropping
    /// `cleaned` removes its files.
    pub fn stage_cleaning(&mut self, cleaned: &mut CleanedLog) -> Result<bool, StorageError> {
        // Left by a cleaning that failed between its steps.
        self.settle_cleaning()?;
        let unchanged = cleaned.dir == self.dir
            && cleaned.swap.is_none()
            && cleaned
                .groups
                .iter()
                .all(|g| g.staged.is_some() && self.still_has(g));
        if !unchanged {
            tracing::info!(dir = %self.dir.display(), "log changed during cleaning; discarding the cleaned segments");
            return Ok(false);
        }
        let swap = Arc::new(PendingSwap {
            dir: self.dir.clone(),
            groups: cleaned
                .groups
                .iter()
                .map(|g| SwapGroup {
                    base: g.base,
                    replaced: g.replaced.clone(),
                })
                .collect(),
            index_interval: self.config.index_interval_bytes,
            state: parking_lot::Mutex::new(SwapState::Staged),
        });
        // Pending before the first rename, so a failure part-way is aborted by the next settle.
        self.pending_swap = Some((swap.clone(), cleaned.tombstone_horizon));
        cleaned.swap = Some(swap);
        for group in &mut cleaned.groups {
            // Closed before the rename (and from now on the swap's).
            drop(group.staged.take());
            swap::stage(&self.dir, group.base)?;
        }
        Ok(true)
    }

    /// Step 4 of the swap, under the owner's lock, after [`CleanedLog::install_files`]: in memory only, the
    /// cleaned segments take the old ones' places in the segment list. `Ok(None)` if the swap was aborted
    /// meanwhile (the log was truncated or segments deleted before its files were installed). The returned
    /// [`SwappedLog::finish`] is to be run after the lock is released.
    pub fn install_cleaning(
        &mut self,
        cleaned: CleanedLog,
    ) -> Result<Option<SwappedLog>, StorageError> {
        let Some(swap) = cleaned.swap.clone() else {
            return Ok(None);
        };
        let mut retired = Vec::new();
        if self
            .pending_swap
            .as_ref()
            .is_some_and(|(p, _)| Arc::ptr_eq(p, &swap))
        {
            retired = self.settle_pending()?;
        }
        // Settled here, or earlier by whatever needed the segments.
        if !matches!(*swap.state.lock(), SwapState::Done) {
            tracing::info!(dir = %self.dir.display(), "cleaner swap aborted meanwhile; not installed");
            return Ok(None);
        }
        tracing::info!(dir = %self.dir.display(), cleaned_to = cleaned.end, stats = ?cleaned.stats, "cleaned log");
        Ok(Some(SwappedLog {
            dir: self.dir.clone(),
            bases: swap.groups.iter().map(|g| g.base).collect(),
            stats: cleaned.stats,
            retired,
        }))
    }

    /// Settles a swap between its stage and its install, before the segments it replaces may change: one still
    /// staged is aborted, durably (the one fsync left under the lock; it happens only when a pending swap meets
    /// a truncation, a deletion of segments, a close or a failure), so a crash afterwards cannot complete a
    /// swap over segments that then change; one whose files are installed (or half-installed: the file steps
    /// are retried) is swapped into the segment list. Nothing pending: no-op.
    pub fn settle_cleaning(&mut self) -> Result<(), StorageError> {
        // Rare paths: the replaced segments are closed here.
        self.settle_pending().map(drop)
    }

    /// [`Self::settle_cleaning`], returning the replaced segments (when the swap was installed) for the caller
    /// to close: closing the last handle of a removed file frees its blocks, which can take as long as the
    /// unlink would have, so the cleaner does it after releasing the lock.
    fn settle_pending(&mut self) -> Result<Vec<Segment>, StorageError> {
        let Some((swap, tombstone_horizon)) = self.pending_swap.take() else {
            return Ok(Vec::new());
        };
        let mut state = swap.state.lock();
        let settled = (|| {
            if swap.abort_locked(&mut state)? {
                tracing::info!(dir = %self.dir.display(), "aborted a pending cleaner swap");
                return Ok(Vec::new());
            }
            swap.install_files_locked(&mut state)?;
            let mut retired = Vec::new();
            if matches!(*state, SwapState::FilesInstalled(_)) {
                if let SwapState::FilesInstalled(segments) =
                    std::mem::replace(&mut *state, SwapState::Done)
                {
                    retired = self.swap_segments_in(&swap, segments)?;
                    self.tombstone_horizon = tombstone_horizon;
                    self.cleaner_truncated_to = None;
                }
            }
            Ok(retired)
        })();
        if settled.is_err() {
            // Retried by the next settle.
            drop(state);
            self.pending_swap = Some((swap, tombstone_horizon));
        }
        settled
    }

    /// The in-memory half of step 4: each group's segments in the list give way to its cleaned segment. Returns
    /// the replaced segments (their files are removed already; nothing reads them any more).
    fn swap_segments_in(
        &mut self,
        swap: &PendingSwap,
        segments: Vec<Segment>,
    ) -> Result<Vec<Segment>, StorageError> {
        let mut retired = Vec::new();
        for (group, segment) in swap.groups.iter().zip(segments) {
            let start = self
                .sealed
                .iter()
                .position(|s| s.base_offset() == group.base)
                .ok_or(StorageError::OffsetOverflow(group.base))?;
            retired.extend(self.sealed.drain(start..start + group.replaced.len()));
            self.sealed.insert(start, segment);
        }
        Ok(retired)
    }

    /// Sealed segments with the end of their offset range (the next segment's base).
    fn sealed_with_ends(&self) -> impl Iterator<Item = (&Segment, i64)> {
        let nexts = self
            .sealed
            .iter()
            .skip(1)
            .map(Segment::base_offset)
            .chain(std::iter::once(self.active.base_offset()));
        self.sealed.iter().zip(nexts)
    }

    /// Whether the segments a cleaned group replaces are still sealed here, unchanged, and end where they did.
    fn still_has(&self, group: &CleanedGroup) -> bool {
        let Some(start) = self
            .sealed
            .iter()
            .position(|s| s.base_offset() == group.base)
        else {
            return false;
        };
        let current = self
            .sealed_with_ends()
            .skip(start)
            .take(group.replaced.len());
        let mut n = 0;
        let mut last_end = None;
        for ((segment, end), &(base, size)) in current.zip(&group.replaced) {
            if segment.base_offset() != base || segment.size() != size {
                return false;
            }
            n += 1;
            last_end = Some(end);
        }
        n == group.replaced.len() && last_end == Some(group.end)
    }
}
