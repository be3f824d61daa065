//! `leader-epoch-checkpoint`: the leader-epoch cache on disk, in the text format Kafka writes (version line `0`,
//! a line with the entry count, then one `epoch startOffset` line per entry), so the files mean the same thing
//! to anyone who knows Kafka's log directories.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
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

/// The text this process knows the checkpoint file to hold (it wrote or read exactly [`format`]'s text): its
/// length and the width of its count line, which decide whether a new text can overwrite it in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OnDisk {
    len: usize,
    count_width: usize,
}

impl OnDisk {
    fn of(entries: &[EpochEntry], text: &str) -> Self {
        Self {
            len: text.len(),
            count_width: count_width(entries),
        }
    }
}

fn count_width(entries: &[EpochEntry]) -> usize {
    entries.len().to_string().len()
}

/// A checkpoint as read: its entries, and what is known of its text.
pub(crate) type ReadCheckpoint = (Vec<EpochEntry>, Option<OnDisk>);

/// Reads the checkpoint in `dir`, with what is known of its text (`None` when it is not exactly the text
/// [`format`] gives, e.g. other whitespace). `Ok(None)` when it is missing or not a valid checkpoint (logged):
/// the caller rebuilds the cache from the log, which is the source of truth. I/O errors other than absence fail.
pub(crate) fn read(dir: &Path) -> Result<Option<ReadCheckpoint>, StorageError> {
    let path = dir.join(LEADER_EPOCH_CHECKPOINT);
    let parsed = match fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| EpochCheckpointError::NotUtf8)
            .and_then(|text| {
                let entries = parse(&text)?;
                let on_disk = (format(&entries) == text).then(|| OnDisk::of(&entries, &text));
                Ok((entries, on_disk))
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io("read", &path, e)),
    };
    match parsed {
        Ok(read) => Ok(Some(read)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring invalid leader-epoch checkpoint; rebuilding it from the log");
            Ok(None)
        }
    }
}

/// Atomically and durably replaces the checkpoint (temp file, fsync, rename, fsync of the directory): for
/// changes that remove entries (truncation, a moving log start), which opening the log could not undo.
pub(crate) fn write(dir: &Path, entries: &[EpochEntry]) -> Result<OnDisk, StorageError> {
    let text = format(entries);
    write_atomically(dir, LEADER_EPOCH_CHECKPOINT, text.as_bytes())?;
    Ok(OnDisk::of(entries, &text))
}

/// Rewrites the checkpoint without fsync (Kafka since KAFKA-15046): for new epochs, which the log's batches
/// carry too. The owner fsyncs the file with [`sync`] at its next flush, roll or close; a crash of the machine
/// before that leaves an older file, an invalid one, or one whose newest entries are torn, and opening an
/// uncleanly closed log re-assigns the epochs of the batches it verifies (the active segment's).
///
/// The file is overwritten in place when `on_disk` says it holds a text that the new one only extends past a
/// common prefix: a count line of the same width and no shorter a text. Such a change only replaces or adds
/// entries from the newest epoch's start on, which is never before the active segment (a new leader starts its
/// epoch at its log end, an append at its batch), so every older entry keeps its bytes at the same place and a
/// write torn by a crash can only damage entries the unclean open replaces anyway (or make the file invalid,
/// and the log is read again). Otherwise the new text goes to a temporary file renamed over the old one. The
/// rename cost 57 µs of CPU per write on a journaled ext4 here and 411 µs on one without a journal (a new inode
/// each time, and ext4's scan for recently freed ones), against 8 µs in place: a broker taking over 3,351
/// partitions pays that once for each (`benches/results/2026-12-05-commit-hint-epoch-in-place.md`).
pub(crate) fn write_deferred(
    dir: &Path,
    entries: &[EpochEntry],
    on_disk: Option<OnDisk>,
) -> Result<OnDisk, StorageError> {
    let text = format(entries);
    let new = OnDisk::of(entries, &text);
    let in_place =
        on_disk.is_some_and(|old| old.count_width == new.count_width && new.len >= old.len);
    if in_place {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        match OpenOptions::new().write(true).open(&path) {
            Ok(file) => {
                file.write_all_at(text.as_bytes(), 0)
                    .map_err(|e| StorageError::io("write", &path, e))?;
                return Ok(new);
            }
            // Removed under us: written whole below.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("open", &path, e)),
        }
    }
    write_replacing(dir, LEADER_EPOCH_CHECKPOINT, text.as_bytes())?;
    Ok(new)
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
        let written = write(dir.path(), &[e(1, 0), e(2, 10)]).unwrap();
        assert_eq!(
            read(dir.path()).unwrap(),
            Some((vec![e(1, 0), e(2, 10)], Some(written)))
        );
        assert!(!dir.path().join("leader-epoch-checkpoint.tmp").exists());
        // Valid, but not our exact text: its layout is unknown.
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), "0\n1\n1  0\n").unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some((vec![e(1, 0)], None)));
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), b"\xff\xfe").unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
    }

    fn inode(dir: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(dir.join(LEADER_EPOCH_CHECKPOINT))
            .unwrap()
            .ino()
    }

    /// A deferred write overwrites the file in place only when the old text is a known prefix-compatible one;
    /// otherwise (unknown text, a count line changing width, a shorter text) it replaces the file whole.
    #[test]
    fn deferred_writes_overwrite_in_place_only_past_a_common_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let mut entries = vec![e(1, 0)];
        // No known text: a new file.
        let mut on_disk = write_deferred(path, &entries, None).unwrap();
        let first = inode(path);
        for (epoch, start) in [(2, 10), (3, 25), (4, 40)] {
            entries.push(e(epoch, start));
            on_disk = write_deferred(path, &entries, Some(on_disk)).unwrap();
            assert_eq!(
                inode(path),
                first,
                "epoch {epoch} rewrote the file in place"
            );
            assert_eq!(read(path).unwrap(), Some((entries.clone(), Some(on_disk))));
        }
        // The newest epoch replaced at the same start (a leader that wrote nothing): same length, in place.
        entries.pop();
        entries.push(e(5, 40));
        on_disk = write_deferred(path, &entries, Some(on_disk)).unwrap();
        assert_eq!(inode(path), first);
        // A shorter text would leave a stale tail: replaced whole.
        entries.pop();
        entries.pop();
        entries.push(e(9, 25));
        on_disk = write_deferred(path, &entries, Some(on_disk)).unwrap();
        let second = inode(path);
        assert_ne!(second, first);
        assert_eq!(read(path).unwrap(), Some((entries.clone(), Some(on_disk))));
        // Ten entries: the count line grows a digit and every entry moves, so the file is replaced whole.
        for epoch in 10..17 {
            entries.push(e(epoch, i64::from(epoch) * 100));
            on_disk = write_deferred(path, &entries, Some(on_disk)).unwrap();
        }
        assert_eq!(entries.len(), 10);
        assert_ne!(inode(path), second);
        assert_eq!(read(path).unwrap(), Some((entries.clone(), Some(on_disk))));
        // A file removed under the log is written again.
        fs::remove_file(path.join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        entries.push(e(20, 5000));
        write_deferred(path, &entries, Some(on_disk)).unwrap();
        assert_eq!(read(path).unwrap().map(|(e, _)| e), Some(entries));
    }
}
