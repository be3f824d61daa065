//! Raft entries stored in the `__cluster_metadata-0` partition log, in Apache Kafka's KRaft
//! format, so Kafka's own tools (`kafka-dump-log --cluster-metadata-decoder`,
//! `kafka-metadata-shell`) read a Kraftwerk metadata directory.
//!
//! Each raft entry is one Kafka record batch whose partitionLeaderEpoch is the raft term:
//! - an entry with data (one operation's records, see [`crate::records::encode_batch`]) is a
//!   data batch with one Kafka record per metadata record: key null, value the record as
//!   Kafka's `MetadataRecordSerde` writes it;
//! - an empty entry (raft-rs appends one when a leader is elected) is a control batch with one
//!   LeaderChangeMessage control record naming the leader when this node knows it, else -1.
//!
//! As in Kafka, every record takes one offset, so an entry's batch starts where the previous
//! one ended rather than at raft index - 1; the store keeps each entry's base offset to
//! truncate by raft index.
//! - a membership change (a raft-rs `EntryConfChangeV2` whose context is the membership after it,
//!   see [`crate::membership`]) is a control batch with one VotersRecord control record (type 6):
//!   the value is the entry's context as it is (a VotersRecord), and the `ConfChangeV2` protobuf
//!   raft-rs re-applies is kept byte for byte in a record header, [`CONF_CHANGE_HEADER`]. Kafka's
//!   tools read control records from their key and value only, so they show the voter set; loading
//!   rebuilds the identical raft entry from the header and the value. raft-rs's own automatic
//!   leave-joint entry (no context) has no voter set to write and is refused; Kraftwerk never
//!   proposes a change that enters a joint configuration (one voter at a time), so it never occurs.
//!
//! Loading checks every batch (CRC, contiguous offsets, decodable records) and names
//! the offset of the first one it cannot read.

use std::path::Path;

use kraftwerk_storage::batch::{self, BatchBuilder};
use kraftwerk_storage::log_dir::{take_clean_shutdown_marker, write_clean_shutdown_marker};
use kraftwerk_storage::{partition_dir_name, LogConfig, PartitionLog};
use raft::prelude::{Entry, EntryType};

use crate::membership::Membership;

use super::{EntryStore, LogError, QuorumView};
use crate::records::kafka_format::{self, control_type, LeaderChange};
use crate::records::{join_batch, split_batch};

/// The metadata topic's name.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// The record header of a VotersRecord control record holding the raft-rs `ConfChangeV2` bytes.
pub const CONF_CHANGE_HEADER: &str = "kraftwerk.raft.conf-change-v2";
/// Bytes asked for per read while loading the log.
const LOAD_READ_BYTES: usize = 1 << 20;

pub(crate) struct PartitionEntryStore {
    /// `None` once closed.
    log: Option<PartitionLog>,
    /// Base offset of each stored entry's batch: `bases[i]` is raft index `first_index + i`'s.
    bases: Vec<i64>,
    /// Raft index of the first stored entry (1 until a snapshot trims the log).
    first_index: u64,
}

fn corrupt(what: impl std::fmt::Display) -> LogError {
    LogError::Corrupt(what.to_string())
}

fn bad(offset: i64, reason: impl std::fmt::Display) -> LogError {
    LogError::BadBatch {
        offset,
        reason: reason.to_string(),
    }
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
        // The metadata log is the only log of its directory and is opened and closed on its own, so its
        // partition directory is its log directory for the clean-shutdown marker.
        std::fs::create_dir_all(&dir).map_err(|source| LogError::Io {
            op: "create dir",
            path: dir.clone(),
            source,
        })?;
        let last = take_clean_shutdown_marker(&dir)?;
        Ok(Self {
            log: Some(PartitionLog::open_after(&dir, config, last)?),
            bases: Vec::new(),
            first_index: 1,
        })
    }

    fn log(&mut self) -> Result<&mut PartitionLog, LogError> {
        self.log
            .as_mut()
            .ok_or_else(|| corrupt("metadata log used after close"))
    }
}

/// Decodes the raft entries of a buffer of whole batches that should start at `expected`;
/// returns the offset after the last batch.
fn decode_batches(
    mut buf: &[u8],
    mut expected: i64,
    first_index: u64,
    entries: &mut Vec<Entry>,
    bases: &mut Vec<i64>,
) -> Result<i64, LogError> {
    if buf.is_empty() {
        return Err(bad(expected, "empty read inside the log"));
    }
    while !buf.is_empty() {
        let info = batch::validate_batch(buf, usize::MAX).map_err(|e| bad(expected, e))?;
        let offset = info.base_offset;
        let bytes = buf
            .get(..info.size)
            .ok_or_else(|| bad(offset, "batch runs past the read"))?;
        if offset != expected {
            return Err(bad(
                offset,
                format!("expected a batch at offset {expected}"),
            ));
        }
        let index = first_index + entries.len() as u64;
        entries.push(decode_entry(&info, bytes, index).map_err(|reason| bad(offset, reason))?);
        bases.push(offset);
        expected = info.last_offset().saturating_add(1);
        buf = buf.get(info.size..).unwrap_or_default();
    }
    Ok(expected)
}

/// One validated batch as the raft entry at `index`.
fn decode_entry(info: &batch::BatchInfo, bytes: &[u8], index: u64) -> Result<Entry, String> {
    let term = u64::try_from(info.partition_leader_epoch)
        .map_err(|_| format!("negative leader epoch {}", info.partition_leader_epoch))?;
    let mut values = Vec::new();
    let mut conf_change: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut expected_offset = info.base_offset;
    for record in batch::records(bytes).map_err(|e| e.to_string())? {
        let record = record.map_err(|e| e.to_string())?;
        if record.offset != expected_offset {
            return Err(format!(
                "record at offset {} out of sequence",
                record.offset
            ));
        }
        expected_offset += 1;
        let value = record
            .value
            .ok_or_else(|| format!("record at offset {} has no value", record.offset))?;
        if info.is_control {
            let key = record
                .key
                .ok_or_else(|| format!("control record at offset {} has no key", record.offset))?;
            let kind = kafka_format::parse_control_key(key).map_err(|e| e.to_string())?;
            match kind {
                control_type::LEADER_CHANGE => {
                    kafka_format::decode_leader_change(value)
                        .map_err(|e| format!("LeaderChangeMessage: {e}"))?;
                }
                control_type::KRAFT_VOTERS => {
                    Membership::decode(value).map_err(|e| format!("VotersRecord: {e}"))?;
                    let cc = record
                        .headers
                        .iter()
                        .find(|(k, _)| *k == CONF_CHANGE_HEADER.as_bytes())
                        .and_then(|(_, v)| v)
                        .ok_or_else(|| {
                            format!(
                                "VotersRecord at offset {} has no {CONF_CHANGE_HEADER} header: \
                                 not written by Kraftwerk",
                                record.offset
                            )
                        })?;
                    conf_change = Some((cc.to_vec(), value.to_vec()));
                }
                _ => {
                    return Err(format!(
                        "control record type {kind} is not supported in the metadata log"
                    ))
                }
            }
        } else {
            kafka_format::decode_record(value).map_err(|e| {
                format!(
                    "record at offset {} is not a metadata record: {e}",
                    record.offset
                )
            })?;
            values.push(value);
        }
    }
    let count = expected_offset - info.base_offset;
    if count != info.offset_count() {
        return Err(format!(
            "{count} records where the header counts {}",
            info.offset_count()
        ));
    }
    if info.is_control && count != 1 {
        return Err(format!("control batch with {count} records"));
    }
    if let Some((data, context)) = conf_change {
        let mut entry = Entry {
            index,
            term,
            data,
            context,
            ..Entry::default()
        };
        entry.set_entry_type(EntryType::EntryConfChangeV2);
        return Ok(entry);
    }
    let data = if info.is_control {
        Vec::new()
    } else {
        join_batch(values).map_err(|e| e.to_string())?
    };
    Ok(Entry {
        index,
        term,
        data,
        ..Entry::default()
    })
}

/// The batch storing `entry` at `base_offset`, and the offsets it takes.
fn encode_entry(
    entry: &Entry,
    base_offset: i64,
    quorum: &QuorumView,
    now_ms: i64,
) -> Result<(Vec<u8>, i64), LogError> {
    let unsupported = |reason: &str| LogError::UnsupportedEntry {
        index: entry.index,
        reason: reason.to_owned(),
    };
    let epoch = i32::try_from(entry.term)
        .map_err(|_| unsupported("raft term does not fit a Kafka leader epoch"))?;
    let mut builder = BatchBuilder::new(base_offset, epoch);
    match entry.get_entry_type() {
        EntryType::EntryNormal => {}
        EntryType::EntryConfChangeV2 => {
            if entry.context.is_empty() {
                return Err(unsupported(
                    "a conf change without the membership after it (raft-rs's automatic leave-joint entry) \
                     has no VotersRecord to store; Kraftwerk proposes single-voter changes only",
                ));
            }
            Membership::decode(&entry.context).map_err(|e| {
                unsupported(&format!("conf change context is not a VotersRecord: {e}"))
            })?;
            let key = kafka_format::control_key(control_type::KRAFT_VOTERS);
            builder = builder.control(true);
            builder
                .push(
                    now_ms,
                    Some(&key),
                    Some(entry.context.as_slice()),
                    &[(CONF_CHANGE_HEADER.as_bytes(), Some(entry.data.as_slice()))],
                )
                .map_err(|e| unsupported(&e.to_string()))?;
            let built = builder.build();
            return Ok((built, 1));
        }
        EntryType::EntryConfChange => {
            return Err(unsupported(
                "raft-rs ConfChange (v1) entries are not used; membership changes are ConfChangeV2",
            ))
        }
    }
    if !entry.context.is_empty() {
        return Err(unsupported(
            "entry context is not stored by the metadata log",
        ));
    }
    if entry.data.is_empty() {
        // A new leader's first entry: Kafka's leader-change control record.
        let leader_id = if quorum.term == entry.term {
            quorum.leader.unwrap_or(-1)
        } else {
            -1
        };
        let message = LeaderChange {
            version: 0,
            leader_id,
            voters: quorum.voters.clone(),
            granting_voters: Vec::new(),
        };
        let value = kafka_format::encode_leader_change(&message)
            .map_err(|e| unsupported(&e.to_string()))?;
        let key = kafka_format::control_key(control_type::LEADER_CHANGE);
        builder = builder.control(true);
        builder
            .push(now_ms, Some(&key), Some(&value), &[])
            .map_err(|e| unsupported(&e.to_string()))?;
    } else {
        let records = split_batch(&entry.data).map_err(|e| unsupported(&e.to_string()))?;
        for value in records {
            kafka_format::decode_record(value)
                .map_err(|e| unsupported(&format!("not a metadata record: {e}")))?;
            builder
                .push(now_ms, None, Some(value), &[])
                .map_err(|e| unsupported(&e.to_string()))?;
        }
    }
    let count = builder.len() as i64;
    let built = builder.build();
    if built.is_empty() {
        return Err(unsupported("no records"));
    }
    Ok((built, count))
}

impl EntryStore for PartitionEntryStore {
    fn bounds(&mut self) -> Result<(i64, i64), LogError> {
        let log = self.log()?;
        Ok((log.log_start_offset(), log.log_end_offset()))
    }

    fn load(&mut self, first_index: u64, from_offset: i64) -> Result<Vec<Entry>, LogError> {
        let log = self
            .log
            .as_mut()
            .ok_or_else(|| corrupt("metadata log used after close"))?;
        if from_offset < log.log_start_offset() {
            return Err(corrupt(format!(
                "entries from offset {from_offset} are needed but the metadata log starts at {}",
                log.log_start_offset()
            )));
        }
        let end = log.log_end_offset();
        let mut entries = Vec::new();
        let mut bases = Vec::new();
        let mut offset = from_offset;
        while offset < end {
            let read = log.read(offset, LOAD_READ_BYTES, None)?;
            // A read at a trimmed log's start returns the whole batch holding it; snapshots end on batch
            // boundaries, so a batch that starts before `offset` means the log and the snapshot disagree.
            offset = decode_batches(&read.records, offset, first_index, &mut entries, &mut bases)?;
        }
        self.bases = bases;
        self.first_index = first_index;
        Ok(entries)
    }

    fn truncate_from(&mut self, index: u64) -> Result<(), LogError> {
        let keep = usize::try_from(index.saturating_sub(self.first_index)).map_err(corrupt)?;
        if let Some(&base) = self.bases.get(keep) {
            self.log()?.truncate_to(base)?;
            self.bases.truncate(keep);
        }
        Ok(())
    }

    fn trim_through(&mut self, index: u64) -> Result<(), LogError> {
        if index < self.first_index {
            return Ok(());
        }
        let drop = usize::try_from(index + 1 - self.first_index).map_err(corrupt)?;
        let new_start = match self.bases.get(drop) {
            Some(&base) => base,
            None => self.log()?.log_end_offset(),
        };
        self.log()?.delete_records_before(new_start)?;
        self.bases.drain(..drop.min(self.bases.len()));
        self.first_index = index + 1;
        Ok(())
    }

    fn reset(&mut self, next_index: u64, offset: i64) -> Result<(), LogError> {
        self.log()?.truncate_fully_and_start_at(offset)?;
        self.bases.clear();
        self.first_index = next_index;
        Ok(())
    }

    fn append(&mut self, entries: &[Entry], quorum: &QuorumView) -> Result<(), LogError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let last = self.first_index + self.bases.len() as u64 - 1;
        if first.index != last + 1 {
            return Err(LogError::Gap {
                last,
                got: first.index,
            });
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut next = self.log()?.log_end_offset();
        let mut batches = Vec::new();
        let mut bases = Vec::with_capacity(entries.len());
        for (expected, entry) in (first.index..).zip(entries) {
            if entry.index != expected {
                return Err(LogError::Gap {
                    last: expected - 1,
                    got: entry.index,
                });
            }
            let (built, count) = encode_entry(entry, next, quorum, now_ms)?;
            batches.extend_from_slice(&built);
            bases.push(next);
            next += count;
        }
        let log = self.log()?;
        log.append_as_follower(&batches)?;
        log.flush()?;
        self.bases.extend(bases);
        Ok(())
    }

    fn close(&mut self) -> Result<(), LogError> {
        match self.log.take() {
            Some(log) => {
                let dir = log.dir().to_path_buf();
                log.close()?;
                Ok(write_clean_shutdown_marker(&dir)?)
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
