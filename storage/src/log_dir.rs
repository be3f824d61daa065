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
//! Closing a log fsyncs its files one by one: up to five fsyncs per partition, which at 10,000 partitions kept a broker
//! busy for ~5 s after it had handed over its leaderships. Where the kernel allows, shutdown instead closes every
//! log without an fsync ([`crate::PartitionLog::close_unsynced`]) and makes the whole directory durable with one
//! `syncfs(2)` through a [`FilesystemSync`] opened at start, before the marker is written.
//!
//! Versions before this one wrote the same file name inside each partition directory. Such a per-partition marker
//! is not honoured: it is removed (without an fsync) when the log is opened, so the first start after an upgrade
//! verifies every log's tail, as after a crash. Honouring it would need a durable removal per partition (an fsync
//! each, the cost this module removes), and a removal that did not reach the disk before a later crash would
//! make that crash look clean.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

/// A handle on a log directory for one `syncfs(2)` of its filesystem: it writes back every dirty page and inode
/// there and commits the journal, so everything written to the directory's logs (data, indexes, checkpoints,
/// directory entries) is durable when it returns, as the per-file fsyncs of [`crate::PartitionLog::close`] would
/// make it.
///
/// Only offered where `syncfs` reports write-back errors: Linux from 5.8 on, where it returns an error if any
/// write-back on the filesystem failed since this handle was opened. The handle is therefore opened at start,
/// before the directory's logs are written: an error in a page written back at any time since (ours, or another
/// file's on the same filesystem) fails the sync, and the directory gets no clean-shutdown marker. Elsewhere
/// [`FilesystemSync::open`] returns `None` and the caller closes each log with its own fsyncs.
#[derive(Debug)]
pub struct FilesystemSync {
    dir: PathBuf,
    handle: File,
}

impl FilesystemSync {
    /// Opens `log_dir` for [`Self::sync`], or `None` where `syncfs` does not report write-back errors.
    pub fn open(log_dir: &Path) -> Result<Option<Self>, StorageError> {
        if !syncfs_reports_errors() {
            return Ok(None);
        }
        let handle = File::open(log_dir).map_err(|e| StorageError::io("open dir", log_dir, e))?;
        Ok(Some(Self {
            dir: log_dir.to_path_buf(),
            handle,
        }))
    }

    /// `syncfs(2)` of the directory's filesystem: fails if writing anything back failed, now or since
    /// [`Self::open`].
    pub fn sync(&self) -> Result<(), StorageError> {
        syncfs(&self.handle).map_err(|e| StorageError::io("syncfs", &self.dir, e))
    }
}

#[cfg(target_os = "linux")]
fn syncfs(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor owned by `file` for the duration of the call.
    if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn syncfs(_file: &File) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Whether this kernel's `syncfs` returns write-back errors (Linux 5.8 and later).
fn syncfs_reports_errors() -> bool {
    cfg!(target_os = "linux") && kernel_release().is_some_and(|r| reports_errors(&r))
}

/// `major.minor` of a kernel release string such as `6.1.0-18-amd64` is at least 5.8.
fn reports_errors(release: &str) -> bool {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(major), Some(minor)) => (major, minor) >= (5, 8),
        _ => false,
    }
}

#[cfg(target_os = "linux")]
fn kernel_release() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

#[cfg(not(target_os = "linux"))]
fn kernel_release() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncfs_needs_linux_5_8() {
        assert!(reports_errors("5.8.0"));
        assert!(reports_errors("6.1.0-18-amd64"));
        assert!(reports_errors("6.18.44-fc-v1272"));
        assert!(reports_errors("10.0"));
        assert!(!reports_errors("5.7.19"));
        assert!(!reports_errors("4.19.0-26-amd64"));
        assert!(!reports_errors(""));
        assert!(!reports_errors("linux"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn filesystem_sync_of_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"data").unwrap();
        let sync = FilesystemSync::open(dir.path()).unwrap();
        assert_eq!(sync.is_some(), syncfs_reports_errors());
        if let Some(sync) = sync {
            sync.sync().unwrap();
        }
    }

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
