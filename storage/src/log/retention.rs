//! Removing data: truncation (replication), DeleteRecords, and retention by time and size.

use std::mem;

use super::{now_ms, PartitionLog};
use crate::checkpoint::write_log_start_offset;
use crate::epoch::LeaderEpochCache;
use crate::segment::Segment;
use crate::StorageError;

impl PartitionLog {
    /// Drops every offset >= `offset`. The batch containing `offset` is dropped whole, so the
    /// log end offset becomes the first offset of that batch. An offset below the log start
    /// empties the log and restarts it at `offset`; one at or past the end does nothing.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), StorageError> {
        if offset < 0 {
            return Err(self.out_of_range(offset));
        }
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        if offset < self.log_start_offset {
            return self.truncate_fully_and_start_at(offset);
        }
        self.settle_cleaning()?;
        self.note_truncation(offset);
        while self.active.base_offset() > offset {
            let Some(previous) = self.sealed.pop() else {
                return self.truncate_fully_and_start_at(offset);
            };
            mem::replace(&mut self.active, previous).delete()?;
        }
        self.active.truncate_to(
            offset,
            self.config.index_interval_bytes,
            self.config.cleanup_policy.compact,
        )?;
        if self.log_end_offset() < self.log_start_offset {
            // The dropped batch also held the log start: nothing readable is left.
            return self.truncate_fully_and_start_at(offset);
        }
        // The log end, not `offset`: the batch holding `offset` went whole, and an epoch that started in it
        // wrote nothing that is left.
        let log_end = self.log_end_offset();
        self.update_epochs(|c| c.truncate_from_end(log_end))?;
        tracing::info!(dir = %self.dir.display(), offset, log_end = self.log_end_offset(), "truncated log");
        Ok(())
    }

    /// Deletes every segment and restarts the log, empty, at `offset` (log start = end =
    /// `offset`); used when a replica is too far behind the leader's log start.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), StorageError> {
        if offset < 0 {
            return Err(self.out_of_range(offset));
        }
        self.materialize()?;
        self.settle_cleaning()?;
        self.note_truncation(offset);
        for segment in mem::take(&mut self.sealed) {
            segment.delete()?;
        }
        if self.active.base_offset() == offset {
            self.active.truncate_to(
                offset,
                self.config.index_interval_bytes,
                self.config.cleanup_policy.compact,
            )?;
        } else {
            let fresh = Segment::create(&self.dir, offset, now_ms())?;
            mem::replace(&mut self.active, fresh).delete()?;
        }
        self.log_start_offset = offset;
        write_log_start_offset(&self.dir, offset)?;
        self.update_epochs(LeaderEpochCache::clear)?;
        tracing::info!(dir = %self.dir.display(), offset, "log emptied and restarted");
        Ok(())
    }

    /// Advances the log start offset to `offset` (DeleteRecords) and deletes sealed segments
    /// that then hold only offsets below it. Returns the new log start offset.
    /// `offset` must be within `[0, log_end_offset]`.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, StorageError> {
        if offset < 0 || offset > self.log_end_offset() {
            return Err(self.out_of_range(offset));
        }
        if offset > self.log_start_offset {
            self.materialize()?;
            self.log_start_offset = offset;
            write_log_start_offset(&self.dir, offset)?;
            self.update_epochs(|c| c.truncate_from_start(offset))?;
            let below = self.segments_below_log_start();
            self.delete_oldest(below)?;
        }
        Ok(self.log_start_offset)
    }

    /// Deletes the oldest sealed segments that break `retention_ms` (by their largest
    /// timestamp) or `retention_bytes`, or lie wholly below the log start offset. Whole
    /// segments only, never the active one; the log start advances to the first kept segment.
    /// Returns how many segments were deleted.
    ///
    /// A log whose `cleanup.policy` lacks `delete` (compacted only) keeps every segment: only a log start
    /// offset moved by [`Self::delete_records_before`] removes data from it (the broker refuses DeleteRecords
    /// on such a topic with POLICY_VIOLATION, as Kafka does, so that happens after a policy change).
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, StorageError> {
        let mut count = self.segments_below_log_start();
        if !self.config.cleanup_policy.delete {
            self.delete_oldest(count)?;
            return Ok(count);
        }
        if self.config.retention_ms >= 0 {
            let by_time = self
                .sealed
                .iter()
                .take_while(|s| {
                    now_ms.saturating_sub(s.retention_timestamp()) > self.config.retention_ms
                })
                .count();
            count = count.max(by_time);
        }
        if self.config.retention_bytes >= 0 {
            let mut excess = self.size_in_bytes() as i64 - self.config.retention_bytes;
            let by_size = self
                .sealed
                .iter()
                .take_while(|s| {
                    let fits = excess - s.size() as i64 >= 0;
                    if fits {
                        excess -= s.size() as i64;
                    }
                    fits
                })
                .count();
            count = count.max(by_size);
        }
        self.delete_oldest(count)?;
        Ok(count)
    }

    /// How many leading sealed segments hold only offsets below the log start.
    fn segments_below_log_start(&self) -> usize {
        let next_bases = self.segments().skip(1).map(Segment::base_offset);
        next_bases
            .take_while(|&next| next <= self.log_start_offset)
            .count()
    }

    /// Deletes the `count` oldest sealed segments and moves the log start past them.
    fn delete_oldest(&mut self, count: usize) -> Result<(), StorageError> {
        if count == 0 {
            return Ok(());
        }
        self.settle_cleaning()?;
        let doomed: Vec<Segment> = self.sealed.drain(..count.min(self.sealed.len())).collect();
        for segment in doomed {
            tracing::info!(dir = %self.dir.display(), base_offset = segment.base_offset(), "deleting segment");
            segment.delete()?;
        }
        let first_base = self
            .segments()
            .next()
            .map_or(self.log_start_offset, Segment::base_offset);
        if first_base > self.log_start_offset {
            self.log_start_offset = first_base;
            write_log_start_offset(&self.dir, first_base)?;
            self.update_epochs(|c| c.truncate_from_start(first_base))?;
        }
        Ok(())
    }

    fn note_truncation(&mut self, offset: i64) {
        self.cleaner_truncated_to =
            Some(self.cleaner_truncated_to.map_or(offset, |t| t.min(offset)));
    }

    fn out_of_range(&self, offset: i64) -> StorageError {
        StorageError::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        }
    }
}
