//! Log compaction, as Kafka's log cleaner does it: for logs whose `cleanup.policy` has `compact`, the sealed
//! segments are rewritten keeping the latest record of every key.
//!
//! A cleaning has three steps, so the owner of a [`PartitionLog`] holds its lock only briefly:
//! 1. [`PartitionLog::plan_cleaning`] (under the lock): is the log due (`min.cleanable.dirty.ratio`,
//!    `min.compaction.lag.ms`, `max.compaction.lag.ms`, tombstones whose horizon passed), and which sealed
//!    segments (read by path, without the lock) are cleaned: [`CleaningPlan`].
//! 2. [`CleaningPlan::clean`] (no lock; produce and fetch go on): scan the range for the latest offset of every
//!    key ([`scan`]), then rewrite the segments in groups that fit one segment ([`filter`]) into
//!    `<base>.log.cleaned` files with their indexes: [`CleanedLog`].
//! 3. The swap ([`swap`]; crash-safe: a `.swap` file on disk is the commit point, and opening a log completes
//!    or discards a swap), split so that every fsync happens without the lock:
//!    [`PartitionLog::stage_cleaning`] (under the lock, renames only: if the segments are still the ones
//!    planned, `.cleaned` → `.swap`), [`CleanedLog::commit`] (no lock: the directory fsync that makes it
//!    durable), [`CleanedLog::install_files`] (no lock: the old segments' files go, the new ones take their
//!    names and are opened), [`PartitionLog::install_cleaning`] (under the lock, in memory only: the new
//!    segments take the old ones' places) and [`SwappedLog::finish`] (no lock: the last fsync).
//!    [`PartitionLog::commit_cleaning`] runs them in a row for a caller that owns the log.
//!
//! [`LogCleaner`] runs this on `log.cleaner.threads` threads over the logs an owner hands it, throttled to
//! `log.cleaner.io.max.bytes.per.second`, with the cleaned-up-to offsets in each log dir's
//! `cleaner-offset-checkpoint` ([`checkpoint`]).

pub mod checkpoint;
mod filter;
pub(crate) mod pending;
mod run;
mod scan;
mod segment_reader;
mod service;
pub(crate) mod swap;
mod throttle;

use std::path::PathBuf;

use crate::segment::Segment;
use crate::{LogConfig, StorageError};

pub use service::{CleanableLog, CleanerConfig, CompactedLogs, LogCleaner};
pub use throttle::Throttler;

#[cfg(doc)]
use crate::PartitionLog;

/// Where a log stands for the cleaner (Kafka's `LogToClean`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    /// The first offset not yet cleaned.
    pub first_dirty: i64,
    /// The first offset that may not be cleaned yet (active segment, high watermark, compaction lag).
    pub first_uncleanable: i64,
    /// Bytes of sealed segments below `first_dirty`.
    pub clean_bytes: u64,
    /// Bytes of sealed segments in `[first_dirty, first_uncleanable)`.
    pub dirty_bytes: u64,
    /// `dirty / (clean + dirty)`.
    pub dirty_ratio: f64,
    /// Whether the log should be cleaned now: ratio reached, `max.compaction.lag.ms` passed, or kept
    /// tombstones whose delete horizon passed.
    pub due: bool,
}

/// The segments one cleaning reads, captured under the log's lock.
#[derive(Debug)]
pub struct CleaningPlan {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) segments: Vec<SegmentSnapshot>,
    pub(crate) first_dirty: i64,
    pub(crate) end: i64,
    pub(crate) now_ms: i64,
}

impl CleaningPlan {
    /// The offset the log will be cleaned up to (the new checkpoint).
    pub fn end(&self) -> i64 {
        self.end
    }

    /// Bytes of the segments this cleaning rewrites.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }
}

/// A sealed segment as the plan saw it. Sealed segments are not written, so the cleaner reads the file by
/// path (one open at a time, so a log of thousands of segments does not take thousands of descriptors); a
/// segment deleted or truncated meanwhile fails the cleaning, which the swap would refuse anyway.
#[derive(Debug)]
pub(crate) struct SegmentSnapshot {
    pub base: i64,
    pub size: u64,
    /// The base offset of the segment after it: the end of its offset range.
    pub end: i64,
    pub path: PathBuf,
}

/// Cleaned segments waiting to be swapped in; dropping it before [`PartitionLog::stage_cleaning`] removes their
/// files (once staged, the log shares them: it installs or aborts the swap).
#[derive(Debug)]
pub struct CleanedLog {
    pub(crate) dir: PathBuf,
    pub(crate) groups: Vec<CleanedGroup>,
    pub(crate) end: i64,
    pub(crate) stats: CleanerStats,
    /// The earliest delete horizon of a tombstone kept: the log is due again once it passes.
    pub(crate) tombstone_horizon: Option<i64>,
    /// Set by [`PartitionLog::stage_cleaning`]: the swap the log and the cleaner share until it is installed.
    pub(crate) swap: Option<std::sync::Arc<pending::PendingSwap>>,
}

impl CleanedLog {
    /// The offset the log is cleaned up to once committed.
    pub fn end(&self) -> i64 {
        self.end
    }

    pub fn stats(&self) -> CleanerStats {
        self.stats
    }

    /// `(base, end)` of each cleaned segment: it replaces the segments whose base offsets lie in `[base, end)`.
    pub fn replaced_ranges(&self) -> Vec<(i64, i64)> {
        self.groups.iter().map(|g| (g.base, g.end)).collect()
    }

    /// Step 3 of the swap, without the log's lock: fsyncs the directory so the swap staged by
    /// [`PartitionLog::stage_cleaning`] survives a crash (the commit point). On failure the caller aborts the
    /// staged swap with [`PartitionLog::settle_cleaning`].
    pub fn commit(&self) -> Result<(), StorageError> {
        crate::checkpoint::sync_dir(&self.dir)
    }

    /// Step 4 of the swap, without the log's lock, after [`Self::commit`]: removes the replaced segments' files,
    /// gives the cleaned ones their final names and opens them; [`PartitionLog::install_cleaning`] then puts
    /// them in the log's segment list. On failure the swap stays committed on disk and the log retries these
    /// steps when it next settles it ([`PartitionLog::settle_cleaning`]).
    pub fn install_files(&self) -> Result<(), StorageError> {
        match &self.swap {
            Some(swap) => swap.install_files(),
            None => Ok(()),
        }
    }
}

/// Cleaned segments installed by [`PartitionLog::install_cleaning`]; [`Self::finish`] (without the log's lock)
/// makes that durable and removes the swap's end markers.
#[derive(Debug)]
#[must_use = "finish() makes the installed swap durable"]
pub struct SwappedLog {
    pub(crate) dir: PathBuf,
    pub(crate) bases: Vec<i64>,
    pub(crate) stats: CleanerStats,
    /// The replaced segments, closed here rather than under the lock: their files are removed, so closing the
    /// last handle frees their blocks, which takes as long as an unlink on a busy disk.
    pub(crate) retired: Vec<Segment>,
}

impl SwappedLog {
    /// Step 5 of the swap: closes the replaced segments, fsyncs the directory, then removes the end markers.
    /// Returns what the cleaning did.
    pub fn finish(self) -> Result<CleanerStats, StorageError> {
        drop(self.retired);
        swap::finish(&self.dir, &self.bases)?;
        Ok(self.stats)
    }
}

/// One cleaned segment and the old segments it replaces.
#[derive(Debug)]
pub(crate) struct CleanedGroup {
    pub base: i64,
    /// The end of the replaced range (the next segment's base).
    pub end: i64,
    /// (base offset, size) of each replaced segment, to check they did not change meanwhile.
    pub replaced: Vec<(i64, u64)>,
    pub staged: Option<Segment>,
}

impl Drop for CleanedGroup {
    /// A group never staged for a swap removes its files; a staged one (`staged` taken) is the log's to install
    /// or abort.
    fn drop(&mut self) {
        if let Some(staged) = self.staged.take() {
            let dir = staged.log_path().parent().map(std::path::Path::to_path_buf);
            if let Err(e) = staged.delete() {
                tracing::warn!(error = %e, "cannot remove an abandoned cleaned segment");
            }
            if let Some(dir) = dir {
                if let Err(e) = swap::remove_end(&dir, self.base) {
                    tracing::warn!(error = %e, "cannot remove an abandoned swap end marker");
                }
            }
        }
    }
}

/// What a cleaning did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanerStats {
    /// Bytes of log read and rewritten (the dirty and clean segments of the range).
    pub bytes_read: u64,
    /// Of `bytes_read`, the bytes of segments holding dirty offsets (at or above the cleaner checkpoint).
    pub dirty_bytes: u64,
    /// Bytes of the cleaned segments.
    pub bytes_written: u64,
    pub records_removed: u64,
    pub batches_removed: u64,
    /// Segments replaced.
    pub segments: usize,
}
