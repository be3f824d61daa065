//! The log's side of compaction: when it is due, what a cleaning reads, and the steps of swapping the result in
//! that need the owner's lock (renames and unlinks only; the fsyncs between them run without it). The cleaning
//! itself is in [`crate::cleaner`].

use super::PartitionLog;
use crate::checkpoint::sync_dir;
use crate::cleaner::{
    swap, Cleanable, CleanedLog, CleanerStats, CleaningPlan, SegmentSnapshot, SwappedLog,
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
    /// the steps separately so the log's lock is not held across fsyncs, see [`crate::cleaner`]). If the
    /// segments they replace changed since the plan (truncated, deleted by retention), nothing is swapped and
    /// the cleaned files are removed: `Ok(None)`.
    pub fn commit_cleaning(
        &mut self,
        mut cleaned: CleanedLog,
    ) -> Result<Option<CleanerStats>, StorageError> {
        if !self.stage_cleaning(&mut cleaned)? {
            return Ok(None);
        }
        if let Err(e) = cleaned.commit() {
            self.abort_cleaning()?;
            return Err(e);
        }
        match self.install_cleaning(cleaned)? {
            Some(swapped) => swapped.finish().map(Some),
            None => Ok(None),
        }
    }

    /// Step 2 of the swap, under the owner's lock; renames only, no fsync. If the segments the cleaned ones
    /// replace are unchanged since the plan, renames each `.cleaned` segment `.swap` and remembers the swap as
    /// pending: from here until [`Self::install_cleaning`], anything that would truncate or delete segments
    /// aborts it first. `false`: the log changed, nothing is staged, and dropping `cleaned` removes its files.
    pub fn stage_cleaning(&mut self, cleaned: &mut CleanedLog) -> Result<bool, StorageError> {
        // Left by a cleaning that failed between its steps.
        self.abort_cleaning()?;
        let unchanged = cleaned.dir == self.dir
            && cleaned
                .groups
                .iter()
                .all(|g| g.staged.is_some() && self.still_has(g));
        if !unchanged {
            tracing::info!(dir = %self.dir.display(), "log changed during cleaning; discarding the cleaned segments");
            return Ok(false);
        }
        for group in &mut cleaned.groups {
            // Closed before the rename (and from now on the log's to install or abort).
            drop(group.staged.take());
            self.pending_swap.push(group.base);
            swap::stage(&self.dir, group.base)?;
        }
        Ok(true)
    }

    /// Step 4 of the swap, under the owner's lock, after [`CleanedLog::commit`]; unlinks and renames only, no
    /// fsync. Removes the replaced segments and puts the cleaned ones in their place, on disk and in the
    /// segment list. `Ok(None)` if the swap was aborted meanwhile (the log was truncated or segments deleted).
    /// The returned [`SwappedLog::finish`] is to be run after the lock is released.
    pub fn install_cleaning(
        &mut self,
        cleaned: CleanedLog,
    ) -> Result<Option<SwappedLog>, StorageError> {
        let bases: Vec<i64> = cleaned.groups.iter().map(|g| g.base).collect();
        if cleaned.dir != self.dir || self.pending_swap != bases {
            tracing::info!(dir = %self.dir.display(), "cleaner swap aborted meanwhile; not installed");
            return Ok(None);
        }
        if !cleaned.groups.iter().all(|g| self.still_has(g)) {
            // Whatever changes these segments aborts the pending swap first, so this is a bug; the abort
            // keeps the disk right all the same.
            tracing::error!(dir = %self.dir.display(), "segments changed under a pending cleaner swap; aborting it");
            self.abort_cleaning()?;
            return Ok(None);
        }
        // Committed: from here the swap can only complete (an error leaves it to the recovery on open).
        self.pending_swap.clear();
        let interval = self.config.index_interval_bytes;
        for group in &cleaned.groups {
            let start = self
                .sealed
                .iter()
                .position(|s| s.base_offset() == group.base)
                .ok_or(StorageError::OffsetOverflow(group.base))?;
            let replaced: Vec<i64> = group.replaced.iter().map(|&(base, _)| base).collect();
            drop(self.sealed.drain(start..start + replaced.len()));
            swap::install(&self.dir, group.base, &replaced)?;
            let (mut segment, indexes_loaded) = Segment::open(&self.dir, group.base)?;
            if !indexes_loaded || !segment.load_tail(interval, true)? {
                segment.recover(interval, true)?;
            }
            self.sealed.insert(start, segment);
        }
        self.tombstone_horizon = cleaned.tombstone_horizon;
        self.cleaner_truncated_to = None;
        tracing::info!(dir = %self.dir.display(), cleaned_to = cleaned.end, stats = ?cleaned.stats, "cleaned log");
        Ok(Some(SwappedLog {
            dir: self.dir.clone(),
            bases,
            stats: cleaned.stats,
        }))
    }

    /// Discards a swap staged by [`Self::stage_cleaning`] and not installed, durably (this one fsyncs, under
    /// the lock; it runs only when a pending swap meets a truncation, a deletion of segments or a failure), so
    /// a crash afterwards cannot complete a swap over segments that then change. Nothing pending: no-op.
    pub fn abort_cleaning(&mut self) -> Result<(), StorageError> {
        if self.pending_swap.is_empty() {
            return Ok(());
        }
        for &base in &self.pending_swap {
            swap::abort(&self.dir, base)?;
        }
        sync_dir(&self.dir)?;
        tracing::info!(dir = %self.dir.display(), bases = ?self.pending_swap, "aborted a pending cleaner swap");
        self.pending_swap.clear();
        Ok(())
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
    fn still_has(&self, group: &crate::cleaner::CleanedGroup) -> bool {
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
