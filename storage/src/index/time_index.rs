//! The sparse time index: (timestamp i64, relative offset u32) per entry, like Kafka's
//! `.timeindex`. An entry says "no record before this offset has a larger timestamp", and
//! timestamps strictly increase, so it can steer timestamp lookups and retention.

use std::io;
use std::path::Path;

use super::file::{IndexEntry, IndexFile, LoadStatus};
use super::IndexError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    /// Relative offset of the batch that first reached `timestamp`.
    pub(crate) relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(Self {
            timestamp: i64::from_be_bytes(bytes.get(0..8)?.try_into().ok()?),
            relative_offset: u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?),
        })
    }
}

#[derive(Debug)]
pub(crate) struct TimeIndex(IndexFile<TimeEntry>);

impl TimeIndex {
    /// A new, empty index; its file is made by the first write (see [`IndexFile::create`]).
    pub(crate) fn create(path: &Path) -> Self {
        Self(IndexFile::create(path))
    }

    /// Loads the index; timestamps must strictly increase and offsets must not decrease.
    pub(crate) fn load(path: &Path) -> io::Result<(Self, LoadStatus)> {
        let (file, status) = IndexFile::<TimeEntry>::load(path)?;
        let sane = file.entries().windows(2).all(|w| {
            w[0].timestamp < w[1].timestamp && w[0].relative_offset <= w[1].relative_offset
        });
        if status == LoadStatus::Loaded && !sane {
            return Ok((Self::create(path), LoadStatus::NeedsRebuild));
        }
        Ok((Self(file), status))
    }

    pub(crate) fn file(&self) -> &IndexFile<TimeEntry> {
        &self.0
    }

    pub(crate) fn file_mut(&mut self) -> &mut IndexFile<TimeEntry> {
        &mut self.0
    }

    pub(crate) fn last(&self) -> Option<TimeEntry> {
        self.0.last().copied()
    }

    /// Appends (timestamp, offset) if the timestamp is newer than the last entry's.
    pub(crate) fn maybe_push(
        &mut self,
        timestamp: i64,
        relative_offset: u32,
    ) -> Result<(), IndexError> {
        if self.last().is_some_and(|e| e.timestamp >= timestamp) || timestamp < 0 {
            return Ok(());
        }
        self.0.push(TimeEntry {
            timestamp,
            relative_offset,
        })
    }

    /// The last entry whose timestamp is strictly below `timestamp`: every record before its
    /// offset is older than `timestamp`, so a search can start at that offset.
    pub(crate) fn last_before(&self, timestamp: i64) -> Option<TimeEntry> {
        let entries = self.0.entries();
        let n = entries.partition_point(|e| e.timestamp < timestamp);
        n.checked_sub(1).and_then(|i| entries.get(i)).copied()
    }

    /// Drops entries pointing at `relative_offset` or later.
    pub(crate) fn truncate_to_offset(&mut self, relative_offset: i64) -> Result<(), IndexError> {
        let keep = self
            .0
            .entries()
            .partition_point(|e| i64::from(e.relative_offset) < relative_offset);
        self.0.truncate(keep)
    }
}
