//! A log directory's clean-shutdown marker: Kafka's `.kafka_cleanshutdown`, one per log directory.
//!
//! The marker is a promise about every log in the directory: the process that last had them open closed each one
//! (segments sealed and fsynced, indexes complete, leader-epoch checkpoint fsynced) before writing it. Only then may
//! a log be opened without verifying its tail ([`LastShutdown::Clean`]). One marker per directory makes a restart
//! cost one fsync per directory (taking the marker) instead of one per partition.
//!
//! The broker's lifecycle around it:
//! 1. At start, before any log of the directory is opened or written, [`take_clean_shutdown_marker`] reads and
//!    removes the marker and makes the removal durable: from then on a crash must look unclean, whatever is
//!    appended later.
//! 2. The logs found in the directory at start are opened with what it returned; a log opened later (created
//!    while running, or re-opened after a failed open) is opened [`LastShutdown::Unclean`], which only costs a
//!    scan of its active segment.
//! 3. At shutdown, once every log of the directory was closed without error (and no log of it failed to open,
//!    to close, or to be removed), [`write_clean_shutdown_marker`]. A directory with any such failure gets no
//!    marker and is recovered in full at the next start.
//!
//! Versions before this one wrote the same file name inside each partition directory. Such a per-partition marker
//! is not honoured: it is removed (without an fsync) when the log is opened, so the first start after an upgrade
//! verifies every log's tail, as after a crash. Honouring it would need a durable removal per partition (an fsync
//! each, the cost this module removes), and a removal that did not reach the disk before a later crash would
//! make that crash look clean.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::checkpoint::sync_dir;
use crate::StorageError;

/// The marker's file name, in a log directory (and, from older versions, in partition directories).
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kraftwerk_cleanshutdown";

/// How the process that last had a log open left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastShutdown {
    /// Closed cleanly (its directory's marker was there): the log is trusted; only the batches after each
    /// segment's last index entry are checked.
    Clean,
    /// A crash, a failed close, or not known: the active segment is verified batch by batch and cut at the first
    /// torn batch, and the leader-epoch cache is rebuilt from the batches verified.
    Unclean,
}

/// Reads and removes `log_dir`'s marker; the removal is fsynced before this returns, so it must be called before
/// anything in the directory is written. A missing directory has no marker.
pub fn take_clean_shutdown_marker(log_dir: &Path) -> Result<LastShutdown, StorageError> {
    let path = log_dir.join(CLEAN_SHUTDOWN_MARKER);
    match fs::remove_file(&path) {
        Ok(()) => {
            sync_dir(log_dir)?;
            Ok(LastShutdown::Clean)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(LastShutdown::Unclean),
        Err(e) => Err(StorageError::io("remove", &path, e)),
    }
}

/// Writes `log_dir`'s marker (file and directory fsynced). Only after every log in it was closed.
pub fn write_clean_shutdown_marker(log_dir: &Path) -> Result<(), StorageError> {
    let path = log_dir.join(CLEAN_SHUTDOWN_MARKER);
    let mut file = File::create(&path).map_err(|e| StorageError::io("create", &path, e))?;
    file.write_all(b"")
        .and_then(|()| file.sync_all())
        .map_err(|e| StorageError::io("write", &path, e))?;
    sync_dir(log_dir)
}

/// Removes a per-partition marker left by an older version, not honoured (see the module doc). Not fsynced: if the
/// removal is lost in a crash the file is ignored again.
pub(crate) fn remove_legacy_partition_marker(partition_dir: &Path) -> Result<(), StorageError> {
    let path = partition_dir.join(CLEAN_SHUTDOWN_MARKER);
    match fs::remove_file(&path) {
        Ok(()) => {
            tracing::debug!(path = %path.display(), "removed a per-partition clean-shutdown marker of an older version");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", &path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            take_clean_shutdown_marker(dir.path()).unwrap(),
            LastShutdown::Unclean
        );
        write_clean_shutdown_marker(dir.path()).unwrap();
        assert_eq!(
            take_clean_shutdown_marker(dir.path()).unwrap(),
            LastShutdown::Clean
        );
        assert_eq!(
            take_clean_shutdown_marker(dir.path()).unwrap(),
            LastShutdown::Unclean
        );
        assert!(!dir.path().join(CLEAN_SHUTDOWN_MARKER).exists());
    }
}
