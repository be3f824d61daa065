//! `cleaner-offset-checkpoint`: in each log dir, how far each compacted partition has been cleaned, in
//! Kafka's offset-checkpoint format (version `0`, a count, then `topic partition offset` lines).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use crate::checkpoint::write_atomically;
use crate::StorageError;

/// The file's name in each log dir, as Kafka names it.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// (topic, partition) → first dirty offset.
pub type CleanerOffsets = BTreeMap<(String, i32), i64>;

/// Reads the checkpoint of `log_dir`; a missing or malformed file is empty (everything is dirty, which only
/// costs a cleaning).
pub fn read(log_dir: &Path) -> Result<CleanerOffsets, StorageError> {
    let path = log_dir.join(CLEANER_OFFSET_CHECKPOINT);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CleanerOffsets::new()),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            tracing::warn!(path = %path.display(), "ignoring a non-UTF-8 cleaner checkpoint");
            return Ok(CleanerOffsets::new());
        }
        Err(e) => return Err(StorageError::io("read", &path, e)),
    };
    let parsed = parse(&text);
    if parsed.is_none() {
        tracing::warn!(path = %path.display(), "ignoring a malformed cleaner checkpoint");
    }
    Ok(parsed.unwrap_or_default())
}

fn parse(text: &str) -> Option<CleanerOffsets> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut out = CleanerOffsets::new();
    for line in lines.by_ref().take(count) {
        let mut parts = line.split_whitespace();
        let (topic, partition, offset) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        out.insert(
            (topic.to_string(), partition.parse().ok()?),
            offset.parse().ok()?,
        );
    }
    (out.len() == count).then_some(out)
}

/// Replaces the checkpoint of `log_dir` atomically.
pub fn write(log_dir: &Path, offsets: &CleanerOffsets) -> Result<(), StorageError> {
    let mut text = format!("0\n{}\n", offsets.len());
    for ((topic, partition), offset) in offsets {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    write_atomically(log_dir, CLEANER_OFFSET_CHECKPOINT, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
        let mut offsets = CleanerOffsets::new();
        offsets.insert(("__consumer_offsets".into(), 7), 1234);
        offsets.insert(("t".into(), 0), 5);
        write(dir.path(), &offsets).unwrap();
        assert_eq!(read(dir.path()).unwrap(), offsets);
        fs::write(dir.path().join(CLEANER_OFFSET_CHECKPOINT), "0\n3\nt 0 5\n").unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
    }
}
