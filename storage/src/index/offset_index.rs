//! The sparse offset index: (relative offset u32, file position u32) per entry, like Kafka's
//! `.index`. An entry says "the batch at this position ends at this offset".

use std::io;
use std::path::Path;

use super::file::{IndexEntry, IndexFile, LoadStatus};
use super::IndexError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    /// Last offset of the indexed batch, relative to the segment base offset.
    pub(crate) relative_offset: u32,
    /// Byte position of that batch in the segment's `.log`.
    pub(crate) position: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(Self {
            relative_offset: u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?),
            position: u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?),
        })
    }
}

#[derive(Debug)]
pub(crate) struct OffsetIndex(IndexFile<OffsetEntry>);

impl OffsetIndex {
    /// A new, empty index; its file is made by the first write (see [`IndexFile::create`]).
    pub(crate) fn create(path: &Path) -> Self {
        Self(IndexFile::create(path))
    }

    /// Loads the index; entries must be strictly increasing and point inside a log of
    /// `log_size` bytes, otherwise the index is reported as needing a rebuild.
    pub(crate) fn load(path: &Path, log_size: u64) -> io::Result<(Self, LoadStatus)> {
        let (file, status) = IndexFile::<OffsetEntry>::load(path)?;
        let sane =
            file.entries().windows(2).all(|w| {
                w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position
            }) && file.last().is_none_or(|e| u64::from(e.position) < log_size);
        if status == LoadStatus::Loaded && !sane {
            return Ok((Self::create(path), LoadStatus::NeedsRebuild));
        }
        Ok((Self(file), status))
    }

    pub(crate) fn file(&self) -> &IndexFile<OffsetEntry> {
        &self.0
    }

    pub(crate) fn file_mut(&mut self) -> &mut IndexFile<OffsetEntry> {
        &mut self.0
    }

    pub(crate) fn last(&self) -> Option<OffsetEntry> {
        self.0.last().copied()
    }

    pub(crate) fn push(&mut self, relative_offset: u32, position: u32) -> Result<(), IndexError> {
        self.0.push(OffsetEntry {
            relative_offset,
            position,
        })
    }

    /// Position to start scanning from for `relative_offset`: that of the last entry whose
    /// offset is <= it (the batch containing it starts there or later), else 0.
    pub(crate) fn lookup(&self, relative_offset: i64) -> u32 {
        let entries = self.0.entries();
        let n = entries.partition_point(|e| i64::from(e.relative_offset) <= relative_offset);
        n.checked_sub(1)
            .and_then(|i| entries.get(i))
            .map_or(0, |e| e.position)
    }

    /// Drops entries for batches at or after byte `position`.
    pub(crate) fn truncate_to_position(&mut self, position: u64) -> Result<(), IndexError> {
        let keep = self
            .0
            .entries()
            .partition_point(|e| u64::from(e.position) < position);
        self.0.truncate(keep)
    }
}
