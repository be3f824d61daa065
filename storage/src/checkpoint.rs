//! Small per-partition files: the log-start-offset checkpoint, and the atomic file replacement the other
//! checkpoints use.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::StorageError;

/// Holds the log start offset advanced by retention and DeleteRecords.
pub(crate) const LOG_START_CHECKPOINT: &str = "log-start-offset.checkpoint";
const CHECKPOINT_VERSION: &str = "0";

/// Reads the log start offset checkpoint. A missing or unreadable checkpoint is `None`: the
/// first segment's base offset is then the log start, which is only ever more conservative.
pub(crate) fn read_log_start_offset(dir: &Path) -> Result<Option<i64>, StorageError> {
    let path = dir.join(LOG_START_CHECKPOINT);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            tracing::warn!(path = %path.display(), "ignoring non-UTF-8 checkpoint");
            return Ok(None);
        }
        Err(e) => return Err(StorageError::io("read", &path, e)),
    };
    let mut lines = text.lines();
    let parsed = match (lines.next(), lines.next()) {
        (Some(CHECKPOINT_VERSION), Some(offset)) => offset.trim().parse::<i64>().ok(),
        _ => None,
    };
    if parsed.is_none() {
        tracing::warn!(path = %path.display(), "ignoring malformed checkpoint");
    }
    Ok(parsed.filter(|&o| o >= 0))
}

/// Atomically replaces the checkpoint (write temp, fsync, rename, fsync dir).
pub(crate) fn write_log_start_offset(dir: &Path, offset: i64) -> Result<(), StorageError> {
    let contents = format!("{CHECKPOINT_VERSION}\n{offset}\n");
    write_atomically(dir, LOG_START_CHECKPOINT, contents.as_bytes())
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old or the new contents: write
/// `name.tmp`, fsync it, rename it over `name`, fsync the directory.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    write_synced(&tmp, bytes)?;
    fs::rename(&tmp, &path).map_err(|e| StorageError::io("rename", &tmp, e))?;
    sync_dir(dir)
}

/// Replaces `dir/name` with `bytes` by a rename, without any fsync: after a crash the file may hold the old
/// contents, the new ones, or (on file systems that do not order data before renames) nothing valid. Only for
/// files that opening the log checks and can rebuild from the log itself (the leader-epoch checkpoint); the
/// caller makes them durable at its next flush with [`sync_file`].
pub(crate) fn write_replacing(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    fs::write(&tmp, bytes).map_err(|e| StorageError::io("write", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| StorageError::io("rename", &tmp, e))
}

/// fsyncs `dir/name` (its directory entry is made durable by the caller's [`sync_dir`]).
pub(crate) fn sync_file(dir: &Path, name: &str) -> Result<(), StorageError> {
    let path = dir.join(name);
    File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StorageError::io("fsync", &path, e))
}

/// fsyncs a directory so that file creations, renames and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io("fsync dir", dir, e))
}

fn write_synced(path: &PathBuf, bytes: &[u8]) -> Result<(), StorageError> {
    let mut file = File::create(path).map_err(|e| StorageError::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| StorageError::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_log_start_offset(dir.path()).unwrap(), None);
        write_log_start_offset(dir.path(), 1234).unwrap();
        assert_eq!(read_log_start_offset(dir.path()).unwrap(), Some(1234));
        fs::write(dir.path().join(LOG_START_CHECKPOINT), b"\xff\xfe garbage").unwrap();
        assert_eq!(read_log_start_offset(dir.path()).unwrap(), None);
        fs::write(dir.path().join(LOG_START_CHECKPOINT), b"7\n12\n").unwrap();
        assert_eq!(read_log_start_offset(dir.path()).unwrap(), None);
    }
}
