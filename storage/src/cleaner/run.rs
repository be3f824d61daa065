//! The part of a cleaning that runs without the log's lock: scan, filter and write the cleaned segments.

use super::filter::{filter_batch, Filtered};
use super::scan::build_context;
use super::segment_reader::for_each_batch;
use super::swap;
use super::{CleanedGroup, CleanedLog, CleanerStats, CleaningPlan, SegmentSnapshot};
use crate::batch::validate_stored_batch;
use crate::segment::Segment;
use crate::StorageError;

/// Suffix of segment files being written by the cleaner (Kafka's `.cleaned`).
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";

impl CleaningPlan {
    /// Cleans the planned segments into new files beside them. `map_limit` bounds the memory of the key map
    /// (bytes; a log with more distinct dirty keys is cleaned in several passes, as Kafka's dedupe buffer does);
    /// `throttle` is called with the bytes read and written as the work goes, and may sleep to hold the cleaner
    /// to its I/O budget.
    pub fn clean(
        self,
        map_limit: usize,
        throttle: &dyn Fn(u64),
    ) -> Result<CleanedLog, StorageError> {
        let (ctx, stopped_at) = build_context(
            &self.segments,
            self.first_dirty,
            self.now_ms,
            self.config.delete_retention_ms,
            map_limit,
            throttle,
        )?;
        let end = stopped_at.unwrap_or(self.end);
        let segments: Vec<&SegmentSnapshot> =
            self.segments.iter().filter(|s| s.base < end).collect();
        let mut stats = CleanerStats::default();
        let mut tombstone_horizon: Option<i64> = None;
        let mut groups = Vec::new();
        for group in group_segments(&segments, self.config.segment_bytes) {
            let Some(first) = group.first() else { continue };
            let end = group.last().map_or(first.end, |s| s.end);
            let mut staged =
                Segment::create_with_suffix(&self.dir, first.base, self.now_ms, CLEANED_SUFFIX)?;
            let mut cleaned = CleanedGroup {
                base: first.base,
                end,
                replaced: group.iter().map(|s| (s.base, s.size)).collect(),
                staged: None,
            };
            let interval = self.config.index_interval_bytes;
            for segment in group {
                for_each_batch(segment, |_, batch| {
                    let outcome = filter_batch(batch, &ctx)?;
                    stats.records_removed += outcome.records_removed;
                    if let Some(h) = outcome.tombstone_horizon {
                        tombstone_horizon = Some(tombstone_horizon.map_or(h, |t| t.min(h)));
                    }
                    let bytes: &[u8] = match &outcome.filtered {
                        Filtered::Removed => {
                            stats.batches_removed += 1;
                            return Ok(());
                        }
                        Filtered::Unchanged => batch,
                        Filtered::Rewritten(bytes) => bytes,
                    };
                    let info = validate_stored_batch(bytes, usize::MAX)?;
                    staged.append(bytes, &[info], interval)
                })?;
                stats.bytes_read += segment.size;
                if segment.end > self.first_dirty {
                    stats.dirty_bytes += segment.size;
                }
                throttle(segment.size);
            }
            staged.seal()?;
            // Owned by the group from here, so an error below removes the files.
            let size = staged.size();
            cleaned.staged = Some(staged);
            if let Some(staged) = cleaned.staged.as_mut() {
                staged.sync()?;
            }
            // Step 1 of the swap (see `swap`): durable before the swap can be staged, and without the lock.
            swap::write_end(&self.dir, cleaned.base, cleaned.end)?;
            stats.bytes_written += size;
            stats.segments += cleaned.replaced.len();
            throttle(size);
            groups.push(cleaned);
        }
        Ok(CleanedLog {
            dir: self.dir,
            groups,
            end,
            stats,
            tombstone_horizon,
            swap: None,
        })
    }
}

/// Consecutive segments merged into one cleaned segment while their total size stays within `segment_bytes`
/// (and their offsets within one segment's u32 range), as Kafka's `groupSegmentsBySize`.
fn group_segments<'a>(
    segments: &'a [&'a SegmentSnapshot],
    segment_bytes: u64,
) -> Vec<&'a [&'a SegmentSnapshot]> {
    let limit = segment_bytes.min(i32::MAX as u64);
    let mut groups = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let base = segments[start].base;
        let mut size = 0u64;
        let mut end = start;
        while let Some(s) = segments.get(end) {
            let fits = size + s.size <= limit && s.end.saturating_sub(base) <= i64::from(u32::MAX);
            if end > start && !fits {
                break;
            }
            size += s.size;
            end += 1;
        }
        groups.push(&segments[start..end]);
        start = end;
    }
    groups
}
