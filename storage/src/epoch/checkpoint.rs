//! `leader-epoch-checkpoint`: the leader-epoch cache on disk, in the text format Kafka writes (version line `0`,
//! a line with the entry count, then one `epoch startOffset` line per entry), so the files mean the same thing
//! to anyone who knows Kafka's log directories.

use std::fs;
use std::io;
use std::path::Path;

use super::EpochEntry;
use crate::checkpoint::{sync_file, write_atomically, write_replacing};
use crate::StorageError;

pub(crate) const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
const VERSION: &str = "0";

/// Why a checkpoint file was not accepted; the log then rebuilds the cache from its batches.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum EpochCheckpointError {
    #[error("not UTF-8")]
    NotUtf8,
    #[error("unsupported version line {0:?}")]
    Version(String),
    #[error("missing or malformed entry count")]
    Count,
    #[error("malformed entry line {0:?}")]
    Entry(String),
    #[error("expected {expected} entries, found {found}")]
    EntryCount { expected: usize, found: usize },
}

/// Parses a checkpoint's text.
pub(crate) fn parse(text: &str) -> Result<Vec<EpochEntry>, EpochCheckpointError> {
    let mut lines = text.lines();
    match lines.next() {
        Some(VERSION) => {}
        other => {
            return Err(EpochCheckpointError::Version(
                other.unwrap_or_default().to_string(),
            ))
        }
    }
    let expected: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or(EpochCheckpointError::Count)?;
    let mut entries = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let parsed = match (fields.next(), fields.next(), fields.next()) {
            (Some(epoch), Some(start), None) => epoch.parse().ok().zip(start.parse().ok()),
            _ => None,
        };
        let Some((epoch, start_offset)) = parsed else {
            return Err(EpochCheckpointError::Entry(line.to_string()));
        };
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    if entries.len() != expected {
        return Err(EpochCheckpointError::EntryCount {
            expected,
            found: entries.len(),
        });
    }
    Ok(entries)
}

/// The checkpoint's text for `entries`.
pub(crate) fn format(entries: &[EpochEntry]) -> String {
    let mut text = format!("{VERSION}\n{}\n", entries.len());
    for e in entries {
        text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
    }
    text
}

/// Reads the checkpoint in `dir`. `Ok(None)` when it is missing or not a valid checkpoint (logged): the caller
/// rebuilds the cache from the log, which is the source of truth. I/O errors other than absence fail.
pub(crate) fn read(dir: &Path) -> Result<Option<Vec<EpochEntry>>, StorageError> {
    let path = dir.join(LEADER_EPOCH_CHECKPOINT);
    let parsed = match fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| EpochCheckpointError::NotUtf8)
            .and_then(|text| parse(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io("read", &path, e)),
    };
    match parsed {
        Ok(entries) => Ok(Some(entries)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring invalid leader-epoch checkpoint; rebuilding it from the log");
            Ok(None)
        }
    }
}

/// Atomically and durably replaces the checkpoint (temp file, fsync, rename, fsync of the directory): for
/// changes that remove entries (truncation, a moving log start), which opening the log could not undo.
pub(crate) fn write(dir: &Path, entries: &[EpochEntry]) -> Result<(), StorageError> {
    write_atomically(dir, LEADER_EPOCH_CHECKPOINT, format(entries).as_bytes())
}

/// Replaces the checkpoint by a rename without fsync (Kafka since KAFKA-15046): for new epochs, which the log's
/// batches carry too. The owner fsyncs the file with [`sync`] at its next flush, roll or close; a crash before
/// that leaves an older (or invalid) file, and opening an uncleanly closed log re-assigns the epochs of the
/// batches it verifies.
pub(crate) fn write_deferred(dir: &Path, entries: &[EpochEntry]) -> Result<(), StorageError> {
    write_replacing(dir, LEADER_EPOCH_CHECKPOINT, format(entries).as_bytes())
}

/// fsyncs the checkpoint written by [`write_deferred`] (the caller fsyncs the directory after).
pub(crate) fn sync(dir: &Path) -> Result<(), StorageError> {
    sync_file(dir, LEADER_EPOCH_CHECKPOINT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(epoch: i32, start_offset: i64) -> EpochEntry {
        EpochEntry {
            epoch,
            start_offset,
        }
    }

    #[test]
    fn kafka_text_format() {
        assert_eq!(format(&[e(0, 0), e(3, 1500)]), "0\n2\n0 0\n3 1500\n");
        assert_eq!(format(&[]), "0\n0\n");
        // Kafka splits on any whitespace.
        assert_eq!(
            parse("0\n2\n0 0\n3\t1500\n").unwrap(),
            vec![e(0, 0), e(3, 1500)]
        );
    }

    #[test]
    fn rejects_malformed_files() {
        assert!(matches!(
            parse("1\n0\n"),
            Err(EpochCheckpointError::Version(_))
        ));
        assert_eq!(parse("0\n"), Err(EpochCheckpointError::Count));
        assert_eq!(parse("0\nx\n"), Err(EpochCheckpointError::Count));
        assert!(matches!(
            parse("0\n1\n5\n"),
            Err(EpochCheckpointError::Entry(_))
        ));
        assert!(matches!(
            parse("0\n1\n5 6 7\n"),
            Err(EpochCheckpointError::Entry(_))
        ));
        assert!(matches!(
            parse("0\n1\n5 x\n"),
            Err(EpochCheckpointError::Entry(_))
        ));
        assert_eq!(
            parse("0\n2\n5 6\n"),
            Err(EpochCheckpointError::EntryCount {
                expected: 2,
                found: 1
            })
        );
    }

    #[test]
    fn round_trip_on_disk_and_garbage_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write(dir.path(), &[e(1, 0), e(2, 10)]).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(vec![e(1, 0), e(2, 10)]));
        assert!(!dir.path().join("leader-epoch-checkpoint.tmp").exists());
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), b"\xff\xfe").unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
    }
}
