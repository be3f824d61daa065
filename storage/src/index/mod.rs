//! Sparse per-segment indexes: offset -> file position and timestamp -> offset.

mod file;
mod offset_index;
mod time_index;

pub(crate) use file::LoadStatus;
pub(crate) use offset_index::OffsetIndex;
pub(crate) use time_index::TimeIndex;

use std::io;
use std::path::PathBuf;

/// A failed index write, or an entry that cannot be represented in the 32-bit index fields.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IndexError {
    #[error("index {0}: {1}")]
    Io(PathBuf, io::Error),
    #[error("offset or position {0} does not fit the segment's 32-bit index fields")]
    Overflow(i64),
}
