//! A segment's indexes plus the state derived from the batches it indexed (next offset, max
//! timestamp), updated batch by batch the same way on append and on recovery.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::batch::BatchInfo;
pub(crate) use crate::index::IndexError;
use crate::index::{OffsetIndex, TimeIndex};

#[derive(Debug)]
pub(crate) struct Indexed {
    base_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    next_offset: i64,
    /// Largest batch max timestamp seen, -1 if none.
    max_timestamp: i64,
    /// Last offset of the first batch that reached `max_timestamp` (the segment's base offset while none has):
    /// Kafka's `shallowOffsetOfMaxTimestampSoFar`, which is what the time index stores and what `kafka-dump-log`
    /// checks its entries against. The record itself is found by reading that batch when asked
    /// ([`super::SegmentView::record_with_timestamp`]). Indexes written before this was the last offset hold
    /// the batch's base offset, which leads to the same batch.
    offset_of_max_timestamp: i64,
    first_batch_timestamp: Option<i64>,
    bytes_since_last_index_entry: u64,
}

impl Indexed {
    pub(crate) fn new(base_offset: i64, offset_index: OffsetIndex, time_index: TimeIndex) -> Self {
        Self {
            base_offset,
            offset_index,
            time_index,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            first_batch_timestamp: None,
            bytes_since_last_index_entry: 0,
        }
    }

    pub(crate) fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }

    pub(crate) fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub(crate) fn max_timestamp(&self) -> Option<(i64, i64)> {
        (self.max_timestamp >= 0).then_some((self.max_timestamp, self.offset_of_max_timestamp))
    }

    /// (max timestamp, offset of its batch) as Kafka's `LogSegment.readMaxTimestampAndOffsetSoFar` has them:
    /// (-1, base offset) while no batch carries a timestamp.
    pub(crate) fn max_timestamp_and_offset(&self) -> (i64, i64) {
        (self.max_timestamp, self.offset_of_max_timestamp)
    }

    pub(crate) fn first_batch_timestamp(&self) -> Option<i64> {
        self.first_batch_timestamp.filter(|&ts| ts >= 0)
    }

    pub(crate) fn offset_index_path(&self) -> &Path {
        self.offset_index.file().path()
    }

    pub(crate) fn time_index_path(&self) -> &Path {
        self.time_index.file().path()
    }

    /// Resets derived state to what the indexes alone say, before a scan of the batches after
    /// the last offset-index entry (which `track` then re-applies without duplicating entries).
    pub(crate) fn reset_from_indexes(&mut self, first_batch_timestamp: Option<i64>) {
        let last_time = self.time_index.last();
        self.max_timestamp = last_time.map_or(-1, |e| e.timestamp);
        self.offset_of_max_timestamp =
            self.base_offset + last_time.map_or(0, |e| i64::from(e.relative_offset));
        self.next_offset = self.base_offset;
        self.first_batch_timestamp = first_batch_timestamp;
        self.bytes_since_last_index_entry = 0;
    }

    /// Empties both indexes and the derived state.
    pub(crate) fn clear(&mut self) -> Result<(), IndexError> {
        self.offset_index.file_mut().truncate(0)?;
        self.time_index.file_mut().truncate(0)?;
        self.reset_from_indexes(None);
        Ok(())
    }

    /// Drops index entries for data at or after byte `position` / offset `first_dropped`.
    pub(crate) fn truncate(&mut self, position: u64, first_dropped: i64) -> Result<(), IndexError> {
        self.offset_index.truncate_to_position(position)?;
        self.time_index
            .truncate_to_offset(first_dropped - self.base_offset)
    }

    /// Accounts for the batch at byte `position`, adding index entries every
    /// `index_interval` bytes (Kafka's rule: the entry points at the batch that crosses it).
    pub(crate) fn track(
        &mut self,
        position: u64,
        info: &BatchInfo,
        index_interval: u32,
    ) -> Result<(), IndexError> {
        let last_offset = info.last_offset();
        let relative_last = self.relative(last_offset)?;
        let position32 =
            u32::try_from(position).map_err(|_| IndexError::Overflow(position as i64))?;
        if info.max_timestamp > self.max_timestamp {
            self.max_timestamp = info.max_timestamp;
            self.offset_of_max_timestamp = last_offset;
        }
        if self.bytes_since_last_index_entry > u64::from(index_interval) {
            self.offset_index.push(relative_last, position32)?;
            self.push_time_entry()?;
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += info.size as u64;
        if position == 0 {
            self.first_batch_timestamp = Some(info.max_timestamp);
        }
        self.next_offset = last_offset.saturating_add(1);
        Ok(())
    }

    /// Records the final max timestamp in the time index and writes pending entries; both files exist after.
    pub(crate) fn seal(&mut self) -> Result<(), IndexError> {
        self.push_time_entry()?;
        self.write_pending()?;
        self.offset_index.file_mut().create_if_missing()?;
        self.time_index.file_mut().create_if_missing()
    }

    pub(crate) fn write_pending(&mut self) -> Result<(), IndexError> {
        self.offset_index.file_mut().write_pending()?;
        self.time_index.file_mut().write_pending()
    }

    pub(crate) fn sync(&mut self) -> Result<(), IndexError> {
        self.offset_index.file_mut().sync()?;
        self.time_index.file_mut().sync()
    }

    pub(crate) fn file_handles(&self) -> Result<Vec<(PathBuf, File)>, IndexError> {
        Ok(vec![
            (
                self.offset_index_path().to_path_buf(),
                self.offset_index.file().handle()?,
            ),
            (
                self.time_index_path().to_path_buf(),
                self.time_index.file().handle()?,
            ),
        ])
    }

    fn push_time_entry(&mut self) -> Result<(), IndexError> {
        if self.max_timestamp < 0 {
            return Ok(());
        }
        let relative = self.relative(self.offset_of_max_timestamp)?;
        self.time_index.maybe_push(self.max_timestamp, relative)
    }

    fn relative(&self, offset: i64) -> Result<u32, IndexError> {
        offset
            .checked_sub(self.base_offset)
            .and_then(|d| u32::try_from(d).ok())
            .ok_or(IndexError::Overflow(offset))
    }
}
