//! Raft entries stored in the `__cluster_metadata-0` partition log.
//!
//! Each raft entry is one Kafka record batch: baseOffset = raft index - 1,
//! partitionLeaderEpoch = raft term, and a single record whose value is the protobuf-encoded
//! raft `Entry`. The directory is an ordinary Kafka partition, so the same tooling (and later
//! the broker's fetch path) can read it.

use std::path::Path;

use kraftwerk_storage::batch::{self, BatchHeader};
use kraftwerk_storage::{partition_dir_name, LogConfig, PartitionLog};
use prost::Message as _;
use raft::prelude::Entry;

use super::{EntryStore, LogError};

/// The metadata topic's name.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// Bytes asked for per read while loading the log.
const LOAD_READ_BYTES: usize = 1 << 20;

pub(crate) struct PartitionEntryStore {
    /// `None` once closed.
    log: Option<PartitionLog>,
}

fn corrupt(what: impl std::fmt::Display) -> LogError {
    LogError::Corrupt(what.to_string())
}

impl PartitionEntryStore {
    /// Opens (creating if needed) `<metadata_dir>/__cluster_metadata-0/`.
    pub(crate) fn open(metadata_dir: &Path) -> Result<Self, LogError> {
        let dir = metadata_dir.join(partition_dir_name(METADATA_TOPIC, 0));
        let config = LogConfig {
            // Metadata is never deleted by age or size, and segments roll by size only.
            retention_ms: -1,
            retention_bytes: -1,
            segment_ms: -1,
            // We fsync every append ourselves, before raft may count the entries as persisted.
            flush_interval_messages: u64::MAX,
            ..LogConfig::default()
        };
        Ok(Self {
            log: Some(PartitionLog::open(&dir, config)?),
        })
    }

    fn log(&mut self) -> Result<&mut PartitionLog, LogError> {
        self.log
            .as_mut()
            .ok_or_else(|| corrupt("metadata log used after close"))
    }
}

/// Decodes the raft entries of a buffer of whole batches.
fn decode_batches(mut buf: &[u8], entries: &mut Vec<Entry>) -> Result<i64, LogError> {
    let mut next_offset = None;
    while !buf.is_empty() {
        let header = BatchHeader::parse(buf).map_err(corrupt)?;
        let size = header.total_size().map_err(corrupt)?;
        let batch = buf
            .get(..size)
            .ok_or_else(|| corrupt("batch runs past the read"))?;
        for record in batch::records(batch).map_err(corrupt)? {
            let record = record.map_err(corrupt)?;
            let value = record
                .value
                .ok_or_else(|| corrupt("metadata record without value"))?;
            let entry = Entry::decode(value).map_err(corrupt)?;
            let expected_index = u64::try_from(record.offset).ok().map(|o| o + 1);
            if expected_index != Some(entry.index)
                || i64::from(header.partition_leader_epoch)
                    != i64::try_from(entry.term).unwrap_or(-1)
            {
                return Err(corrupt(format!(
                    "offset {} (epoch {}) holds raft entry {} of term {}",
                    record.offset, header.partition_leader_epoch, entry.index, entry.term
                )));
            }
            entries.push(entry);
        }
        next_offset = Some(header.next_offset());
        buf = buf.get(size..).unwrap_or_default();
    }
    next_offset.ok_or_else(|| corrupt("empty read inside the log"))
}

impl EntryStore for PartitionEntryStore {
    fn load(&mut self) -> Result<Vec<Entry>, LogError> {
        let log = self.log()?;
        if log.log_start_offset() != 0 {
            return Err(corrupt(format!(
                "metadata log starts at offset {}, but snapshots are not supported yet",
                log.log_start_offset()
            )));
        }
        let end = log.log_end_offset();
        let mut entries = Vec::new();
        let mut offset = 0;
        while offset < end {
            let read = log.read(offset, LOAD_READ_BYTES, None)?;
            offset = decode_batches(&read.records, &mut entries)?;
        }
        Ok(entries)
    }

    fn truncate_from(&mut self, index: u64) -> Result<(), LogError> {
        let offset = i64::try_from(index.saturating_sub(1)).map_err(corrupt)?;
        self.log()?.truncate_to(offset)?;
        Ok(())
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        if entries.is_empty() {
            return Ok(());
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut batches = Vec::new();
        for entry in entries {
            let offset = i64::try_from(entry.index.saturating_sub(1)).map_err(corrupt)?;
            let epoch = i32::try_from(entry.term).map_err(|_| {
                corrupt(format!(
                    "raft term {} does not fit a leader epoch",
                    entry.term
                ))
            })?;
            let value = entry.encode_to_vec();
            let built = batch::build_batch(offset, epoch, now_ms, &[(None, Some(&value))]);
            if built.is_empty() {
                return Err(corrupt(format!(
                    "raft entry {} too large for a record batch",
                    entry.index
                )));
            }
            batches.extend_from_slice(&built);
        }
        let log = self.log()?;
        log.append_as_follower(&batches)?;
        log.flush()?;
        Ok(())
    }

    fn close(&mut self) -> Result<(), LogError> {
        match self.log.take() {
            Some(log) => Ok(log.close()?),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            index,
            term,
            data: data.to_vec(),
            ..Entry::default()
        }
    }

    #[test]
    fn append_truncate_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PartitionEntryStore::open(dir.path()).unwrap();
        assert!(store.load().unwrap().is_empty());
        store
            .append(&[entry(1, 1, b""), entry(2, 1, b"a"), entry(3, 2, b"b")])
            .unwrap();
        store.truncate_from(3).unwrap();
        store
            .append(&[entry(3, 3, b"c"), entry(4, 3, b"d")])
            .unwrap();
        drop(store);

        let mut store = PartitionEntryStore::open(dir.path()).unwrap();
        let loaded = store.load().unwrap();
        let summary: Vec<_> = loaded
            .iter()
            .map(|e| (e.index, e.term, e.data.to_vec()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, 1, vec![]),
                (2, 1, b"a".to_vec()),
                (3, 3, b"c".to_vec()),
                (4, 3, b"d".to_vec())
            ]
        );
        assert!(dir.path().join("__cluster_metadata-0").is_dir());
        store.close().unwrap();
        let mut store = PartitionEntryStore::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap().len(), 4);
    }

    #[test]
    fn appends_must_continue_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PartitionEntryStore::open(dir.path()).unwrap();
        assert!(store.append(&[entry(2, 1, b"x")]).is_err());
    }

    #[test]
    fn mismatched_entry_is_corrupt() {
        let value = entry(7, 1, b"x").encode_to_vec();
        let built = batch::build_batch(0, 1, 0, &[(None, Some(&value))]);
        let mut entries = Vec::new();
        assert!(matches!(
            decode_batches(&built, &mut entries),
            Err(LogError::Corrupt(_))
        ));
        assert!(matches!(
            decode_batches(&built[..20], &mut entries),
            Err(LogError::Corrupt(_))
        ));
    }
}
