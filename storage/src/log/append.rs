//! Leader and follower appends, and the segment-roll decision they share.

use std::io::IoSlice;
use std::mem;

use super::{now_ms, AppendResult, PartitionLog, SCRATCH_KEEP_HEADERS};
use crate::batch::{raw_records, records_body, BatchInfo, HEADER_SIZE};
use crate::batch::{
    set_base_offset, set_partition_leader_epoch, stamp_log_append_time, validate_batches,
    validate_stored_batches, BatchError, TimestampType,
};
use crate::{RecordError, StorageError};

use super::leader_checks::MAX_DECOMPRESSED_BYTES;

impl PartitionLog {
    /// Appends producer batches as the leader.
    ///
    /// All batches are validated first (framing, magic, CRC, size against
    /// `max_message_bytes`, and the record-level checks of `leader_checks`); if any fails nothing is
    /// written. Offsets are assigned from the log end offset by rewriting each base offset (outside the
    /// CRC), and under LogAppendTime each batch gets `now_ms` as max timestamp (new CRC). Only copies of
    /// the batch headers are rewritten: each header and the rest of its batch, as the producer sent it,
    /// go to the active segment (rolled first if size, age or offset range require) in one writev.
    pub fn append(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendResult, StorageError> {
        self.append_stamped(batches, now_ms, None)
    }

    /// [`append`](Self::append) that also stamps each batch with the partition leader epoch, as a Kafka leader
    /// does, so consumers and followers can tell which leader wrote what. The epoch sits outside the CRC, so
    /// stamping costs one store in the header copy `append` already makes.
    pub fn append_with_leader_epoch(
        &mut self,
        batches: &[u8],
        now_ms: i64,
        leader_epoch: i32,
    ) -> Result<AppendResult, StorageError> {
        self.append_stamped(batches, now_ms, Some(leader_epoch))
    }

    fn append_stamped(
        &mut self,
        batches: &[u8],
        now_ms: i64,
        leader_epoch: Option<i32>,
    ) -> Result<AppendResult, StorageError> {
        let mut infos = validate_batches(batches, self.config.max_message_bytes as usize)?;
        if infos.is_empty() {
            return Err(StorageError::InvalidRecord(BatchError::Empty));
        }
        // Recompressed to the topic's compression.type: validated again (size and CRC of the new bytes).
        let converted = self.check_and_convert(batches, &infos, now_ms)?;
        let batches: &[u8] = match &converted {
            Some(bytes) => {
                infos = validate_batches(bytes, self.config.max_message_bytes as usize)?;
                bytes
            }
            None => batches,
        };
        if self.config.cleanup_policy.compact {
            self.check_keys(batches, &infos)?;
        }
        let base_offset = self.log_end_offset();
        let log_append_time = self.config.timestamp_type == TimestampType::LogAppendTime;
        // Only headers are rewritten: each batch goes to the segment as its stamped header followed by the
        // rest of the producer's bytes, so the records are not copied.
        let mut headers = mem::take(&mut self.scratch);
        headers.clear();
        let mut next = base_offset;
        let mut records = 0u64;
        for info in &mut infos {
            let batch = batches
                .get(info.range())
                .ok_or(StorageError::InvalidRecord(BatchError::Empty))?;
            let (header, rest) = batch
                .split_first_chunk::<HEADER_SIZE>()
                .ok_or(StorageError::InvalidRecord(BatchError::Empty))?;
            let mut header = *header;
            set_base_offset(&mut header, next)?;
            info.base_offset = next;
            if let Some(epoch) = leader_epoch {
                set_partition_leader_epoch(&mut header, epoch)?;
                info.partition_leader_epoch = epoch;
            }
            if log_append_time {
                stamp_log_append_time(&mut header, rest, now_ms)?;
                info.max_timestamp = now_ms;
                info.timestamp_type = TimestampType::LogAppendTime;
                info.attributes = TimestampType::LogAppendTime.apply(info.attributes);
            }
            headers.push(header);
            next = next
                .checked_add(info.offset_count())
                .ok_or(StorageError::OffsetOverflow(next))?;
            records += info.records_count as u64;
        }
        let last_offset = next - 1;
        let mut parts = Vec::with_capacity(infos.len() * 2);
        for (info, header) in infos.iter().zip(&headers) {
            let rest = batches
                .get(info.position + HEADER_SIZE..info.position + info.size)
                .ok_or(StorageError::InvalidRecord(BatchError::Empty))?;
            parts.push(IoSlice::new(header));
            parts.push(IoSlice::new(rest));
        }
        let written = self
            .record_batch_epochs(
                infos
                    .iter()
                    .map(|i| (i.partition_leader_epoch, i.base_offset)),
            )
            .and_then(|()| {
                self.maybe_roll(batches.len(), last_offset, max_timestamp(&infos), now_ms)
            })
            .and_then(|()| {
                self.active
                    .append_parts(&mut parts, &infos, self.config.index_interval_bytes)
            });
        drop(parts);
        if headers.capacity() <= SCRATCH_KEEP_HEADERS {
            self.scratch = headers;
        }
        written?;
        self.note_appended(records)?;
        Ok(AppendResult {
            base_offset,
            last_offset,
            log_append_time: if log_append_time { now_ms } else { -1 },
            log_start_offset: self.log_start_offset,
            batches: infos,
        })
    }

    /// A compacted topic keeps the latest record per key, so a record without one is refused, as Kafka's
    /// `LogValidator` does: every keyless record is named by its index in its batch (KIP-467), and nothing is
    /// written. Compressed batches are decompressed to see their keys.
    fn check_keys(&self, batches: &[u8], infos: &[BatchInfo]) -> Result<(), StorageError> {
        let partition = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut errors = Vec::new();
        for info in infos.iter().filter(|i| !i.is_control) {
            let batch = batches
                .get(info.range())
                .ok_or(StorageError::InvalidRecord(BatchError::Empty))?;
            let limit = MAX_DECOMPRESSED_BYTES.max(self.config.max_message_bytes as usize);
            let body = records_body(batch, limit)?;
            for (index, record) in raw_records(&body, info.records_count).enumerate() {
                if record?.key.is_none() {
                    errors.push(RecordError {
                        batch_index: index as i32,
                        message: format!(
                            "Compacted topic cannot accept message without key in topic partition {partition}."
                        ),
                    });
                }
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        let shown: Vec<String> = errors
            .iter()
            .take(3)
            .map(|e| {
                format!(
                    "RecordError(batchIndex={}, message='{}')",
                    e.batch_index, e.message
                )
            })
            .collect();
        Err(StorageError::InvalidRecords {
            message: format!(
                "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                errors.len(),
                shown.join(", ")
            ),
            record_errors: errors,
        })
    }

    /// Appends batches that already carry their offsets (replication, the raft log).
    ///
    /// Offsets only grow: the first batch must start at or after the log end offset and each batch
    /// after the previous one (a compacted leader sends gaps where its cleaner removed batches, and
    /// batches with fewer records than offsets); batches are written as they are, with no copy. As in
    /// Kafka, `max_message_bytes` is not applied to replicated data, but every batch is still validated.
    pub fn append_as_follower(&mut self, batches: &[u8]) -> Result<AppendResult, StorageError> {
        let infos = validate_stored_batches(batches, i32::MAX as usize)?;
        let Some(first) = infos.first() else {
            return Err(StorageError::InvalidRecord(BatchError::Empty));
        };
        let base_offset = first.base_offset;
        let mut expected = self.log_end_offset();
        if base_offset < expected {
            return Err(StorageError::UnexpectedAppendOffset {
                expected,
                actual: base_offset,
            });
        }
        let mut records = 0u64;
        for info in &infos {
            if info.base_offset < expected {
                return Err(StorageError::UnexpectedAppendOffset {
                    expected,
                    actual: info.base_offset,
                });
            }
            expected = info
                .last_offset()
                .checked_add(1)
                .ok_or(StorageError::OffsetOverflow(info.base_offset))?;
            records += info.records_count as u64;
        }
        let last_offset = expected - 1;
        self.record_batch_epochs(
            infos
                .iter()
                .map(|i| (i.partition_leader_epoch, i.base_offset)),
        )?;
        self.maybe_roll(batches.len(), last_offset, max_timestamp(&infos), now_ms())?;
        self.active
            .append(batches, &infos, self.config.index_interval_bytes)?;
        self.note_appended(records)?;
        Ok(AppendResult {
            base_offset,
            last_offset,
            log_append_time: -1,
            log_start_offset: self.log_start_offset,
            batches: infos,
        })
    }

    /// Rolls before an append of `incoming` bytes ending at `last_offset`, whose newest timestamp is
    /// `incoming_max_timestamp`, if the active segment would exceed `segment_bytes` (capped at i32::MAX so
    /// positions fit the index), has waited longer than `segment_ms` (record time, see
    /// [`Segment::time_waited_for_roll`](crate::segment::Segment::time_waited_for_roll)), or could not index
    /// `last_offset` relative to its base. An empty segment is never rolled, so one oversized batch still
    /// gets written.
    fn maybe_roll(
        &mut self,
        incoming: usize,
        last_offset: i64,
        incoming_max_timestamp: i64,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        // Every append passes here before it writes: the first one creates a deferred log's directory.
        self.materialize()?;
        let segment = &self.active;
        if segment.is_empty() {
            return Ok(());
        }
        let limit = self.config.segment_bytes.min(i32::MAX as u64);
        let full = segment.size().saturating_add(incoming as u64) > limit;
        // Kafka's segment.jitter.ms: this segment's share of the jitter, bounded by segment.ms.
        let jitter = self.roll_jitter_ms(segment.base_offset());
        let aged = self.config.segment_ms >= 0
            && segment.time_waited_for_roll(now_ms, incoming_max_timestamp)
                > self.config.segment_ms.saturating_sub(jitter);
        let out_of_range = !segment.can_hold_offset(last_offset);
        if full || aged || out_of_range {
            tracing::debug!(full, aged, out_of_range, "rolling segment");
            self.roll(now_ms)?;
        }
        Ok(())
    }
}

/// The newest timestamp among batches being appended (-1, Kafka's NO_TIMESTAMP, when none has one).
fn max_timestamp(infos: &[BatchInfo]) -> i64 {
    infos.iter().map(|i| i.max_timestamp).max().unwrap_or(-1)
}

#[cfg(test)]
mod leader_epoch_tests {
    use crate::batch::{build_batch, BatchHeader};
    use crate::{LogConfig, PartitionLog};

    #[test]
    fn leader_appends_are_stamped_with_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        let batch = build_batch(0, -1, 0, &[(None, Some(b"v".as_slice()))]);
        let r = log.append_with_leader_epoch(&batch, 0, 7).unwrap();
        assert_eq!(r.batches[0].partition_leader_epoch, 7);
        let read = log.read(0, 1 << 20, None).unwrap();
        assert_eq!(
            BatchHeader::parse(&read.records)
                .unwrap()
                .partition_leader_epoch,
            7
        );
        // The CRC does not cover the epoch: the stored batch still validates.
        crate::batch::validate_batch(&read.records, 1 << 20).unwrap();
    }
}
