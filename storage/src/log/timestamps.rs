//! Timestamp queries (ListOffsets by time, MAX_TIMESTAMP).

use super::PartitionLog;
use crate::StorageError;

impl PartitionLog {
    /// The first record at or after the log start whose timestamp is >= `timestamp`, as
    /// (offset, timestamp).
    ///
    /// Segments are skipped by their max timestamp, the time index picks where to start, then
    /// batches are scanned. Uncompressed CreateTime batches are searched record by record;
    /// for compressed batches the granularity is the batch (its first offset and its max
    /// timestamp), since records are not decompressed here. Under LogAppendTime every record
    /// of a batch carries the batch's timestamp, so the batch answer is exact.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, StorageError> {
        for segment in self.segments() {
            if segment.next_offset() <= self.log_start_offset {
                continue;
            }
            if let Some(found) = segment.offset_for_timestamp(timestamp, self.log_start_offset)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// (largest timestamp, its offset) over the log, or `None` if no batch has a timestamp.
    /// Batch granularity: the offset is the first offset of the first batch reaching it.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.segments().filter_map(|s| s.max_timestamp()).fold(
            None,
            |best: Option<(i64, i64)>, (ts, offset)| match best {
                Some((best_ts, _)) if best_ts >= ts => best,
                _ => Some((ts, offset)),
            },
        )
    }
}
