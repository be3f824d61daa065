//! Timestamp queries (ListOffsets by time, MAX_TIMESTAMP).

use super::PartitionLog;
use crate::segment::SegmentView;
use crate::StorageError;

/// A record found by its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampedRecord {
    pub timestamp: i64,
    pub offset: i64,
    /// The partition leader epoch of the record's batch (-1 if it carries none).
    pub leader_epoch: i32,
}

/// A MAX_TIMESTAMP lookup planned under the owner's lock ([`PartitionLog::plan_max_timestamp`], memory only)
/// and resolved without it ([`Self::resolve`] reads one batch), as fetches are.
#[derive(Debug, Clone)]
pub struct MaxTimestampPlan {
    timestamp: i64,
    segment: SegmentView,
}

impl MaxTimestampPlan {
    /// The first record carrying the log's largest timestamp, or `None` (an empty log; no record carries its
    /// batch's max timestamp; the segment was truncated meanwhile).
    pub fn resolve(&self) -> Result<Option<TimestampedRecord>, StorageError> {
        match self.segment.record_with_timestamp(self.timestamp) {
            Ok(found) => Ok(found.map(|(offset, leader_epoch)| TimestampedRecord {
                timestamp: self.timestamp,
                offset,
                leader_epoch,
            })),
            // A replica truncating to a new leader shortened the file under the plan: what it named is gone.
            Err(_) if self.segment.truncated_since() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl PartitionLog {
    /// The first record at or after the log start whose timestamp is >= `timestamp`, as
    /// (offset, timestamp).
    ///
    /// Segments are skipped by their max timestamp, the time index picks where to start, then
    /// batches are scanned record by record (compressed batches decompressed, LogAppendTime
    /// records carrying their batch's timestamp), as Kafka's `FileRecords.searchForTimestamp`.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, StorageError> {
        Ok(self
            .record_for_timestamp(timestamp)?
            .map(|r| (r.offset, r.timestamp)))
    }

    /// [`Self::offset_for_timestamp`] with the leader epoch of the record's batch, which Kafka answers with it
    /// (`FileRecords.searchForTimestamp`).
    pub fn record_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampedRecord>, StorageError> {
        for segment in self.segments() {
            if segment.next_offset() <= self.log_start_offset {
                continue;
            }
            if let Some((offset, timestamp, leader_epoch)) =
                segment.offset_for_timestamp(timestamp, self.log_start_offset)?
            {
                return Ok(Some(TimestampedRecord {
                    timestamp,
                    offset,
                    leader_epoch,
                }));
            }
        }
        Ok(None)
    }

    /// Plans the MAX_TIMESTAMP lookup (ListOffsets -3) as Kafka 3.8+ answers it (KAFKA-16310): the first
    /// segment holding the largest timestamp, and in it the first batch reaching it (kept per segment as its
    /// last offset, rebuilt by recovery from the batches, reloaded from the time index), whose first record
    /// carrying that timestamp is the answer. Memory only; `None` when the log has no segment.
    pub fn plan_max_timestamp(&self) -> Option<MaxTimestampPlan> {
        let mut best: Option<(i64, &crate::segment::Segment)> = None;
        for segment in self.segments() {
            let ts = segment.max_timestamp_so_far();
            // Ties go to the earlier segment (Kafka's `maxBy` keeps the first).
            if best.is_none_or(|(best_ts, _)| ts > best_ts) {
                best = Some((ts, segment));
            }
        }
        best.map(|(_, segment)| {
            let (timestamp, view) = segment.max_timestamp_view();
            MaxTimestampPlan {
                timestamp,
                segment: view,
            }
        })
    }

    /// [`Self::plan_max_timestamp`] resolved at once (for callers that hold no lock worth releasing).
    pub fn max_timestamp(&self) -> Result<Option<TimestampedRecord>, StorageError> {
        self.plan_max_timestamp()
            .map_or(Ok(None), |plan| plan.resolve())
    }
}
