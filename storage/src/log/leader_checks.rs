//! What a leader checks and converts in producer batches beyond their headers, as Kafka's `LogValidator`:
//! control and transactional batches from clients, the record count inside compressed batches, CreateTime
//! timestamps against `message.timestamp.before/after.max.ms`, and recompression to the topic's
//! `compression.type`. One decompression per compressed batch serves all of them; an uncompressed batch is
//! parsed only when a timestamp bound is set or it must be compressed.

use std::borrow::Cow;

use super::PartitionLog;
use crate::batch::{
    compress_with_level, raw_records, records_body, BatchError, BatchHeader, BatchInfo,
    Compression, TimestampType, HEADER_SIZE, LOG_OVERHEAD,
};
use crate::config::TargetCompression;
use crate::{RecordError, StorageError};

/// Largest decompressed batch a leader reads.
pub(super) const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

impl PartitionLog {
    /// Checks producer `batches` (described by `infos`) and returns them recompressed when the topic's
    /// `compression.type` asks for another codec than some batch has (`None`: store them as they are).
    pub(super) fn check_and_convert(
        &self,
        batches: &[u8],
        infos: &[BatchInfo],
        now_ms: i64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let bounded = self.config.timestamp_type == TimestampType::CreateTime
            && (self.config.timestamp_before_max_ms != i64::MAX
                || self.config.timestamp_after_max_ms != i64::MAX);
        let target = match self.config.compression {
            TargetCompression::Producer => None,
            TargetCompression::Codec(codec) => {
                Some((codec, self.config.compression_levels.for_codec(codec)))
            }
        };
        let limit = MAX_DECOMPRESSED_BYTES.max(self.config.max_message_bytes as usize);
        let mut converted: Option<Vec<u8>> = None;
        let mut timestamp_errors = Vec::new();
        for info in infos {
            let batch = batches
                .get(info.range())
                .ok_or(StorageError::InvalidRecord(BatchError::Empty))?;
            if info.is_control {
                // A coordinator's marker: stored as written.
                if let Some(out) = converted.as_mut() {
                    out.extend_from_slice(batch);
                }
                continue;
            }
            let recompress = target.filter(|(codec, _)| *codec != info.compression);
            let compressed = info.compression != Compression::None;
            let body = if compressed || bounded || recompress.is_some() {
                Some(records_body(batch, limit)?)
            } else {
                None
            };
            if let Some(body) = &body {
                check_records(
                    body,
                    info,
                    compressed,
                    bounded.then(|| self.timestamp_bounds(now_ms)),
                )
                .map(|errors| timestamp_errors.extend(errors))?;
            }
            match (recompress, &body) {
                (Some((codec, level)), Some(body)) => {
                    let out = converted.get_or_insert_with(|| {
                        batches.get(..info.position).unwrap_or_default().to_vec()
                    });
                    out.extend_from_slice(&reencode(batch, body, codec, level)?);
                }
                _ => {
                    if let Some(out) = converted.as_mut() {
                        out.extend_from_slice(batch);
                    }
                }
            }
        }
        if !timestamp_errors.is_empty() {
            let shown: Vec<String> = timestamp_errors
                .iter()
                .take(3)
                .map(|e: &RecordError| {
                    format!(
                        "RecordError(batchIndex={}, message='{}')",
                        e.batch_index, e.message
                    )
                })
                .collect();
            return Err(StorageError::InvalidTimestamp {
                message: format!(
                    "One or more records have been rejected due to {} record errors in total, and only showing \
                     the first three errors at most: [{}]",
                    timestamp_errors.len(),
                    shown.join(", ")
                ),
                record_errors: timestamp_errors,
            });
        }
        Ok(converted)
    }

    /// The accepted CreateTime range at `now_ms`: `[now - before.max, now + after.max]`.
    fn timestamp_bounds(&self, now_ms: i64) -> (i64, i64) {
        (
            now_ms.saturating_sub(self.config.timestamp_before_max_ms),
            now_ms.saturating_add(self.config.timestamp_after_max_ms),
        )
    }
}

/// Parses the records of one batch: a compressed batch must hold exactly `last_offset_delta + 1` records with
/// offset deltas 0, 1, ... (Kafka's "inner record count" check), so its header cannot claim offsets its
/// records do not use; with `bounds`, every record's timestamp must lie within them (KIP-467 errors).
fn check_records(
    body: &[u8],
    info: &BatchInfo,
    compressed: bool,
    bounds: Option<(i64, i64)>,
) -> Result<Vec<RecordError>, StorageError> {
    let expected = info.last_offset_delta.saturating_add(1);
    let mut count = 0i32;
    let mut consumed = 0usize;
    let mut errors = Vec::new();
    for (index, record) in raw_records(body, expected).enumerate() {
        let record = record?;
        if compressed && record.offset_delta != index as i32 {
            return Err(StorageError::InvalidRecord(BatchError::MalformedRecord(
                "inner record offset deltas of a compressed batch must be 0, 1, 2, ...",
            )));
        }
        consumed += record.encoded.len();
        count += 1;
        if let Some((low, high)) = bounds {
            let ts = info.base_timestamp.saturating_add(record.timestamp_delta);
            if ts < low || ts > high {
                errors.push(RecordError {
                    batch_index: index as i32,
                    message: format!(
                        "Timestamp {ts} of message with offset {index} is out of range. The timestamp should be \
                         within [{low}, {high}]"
                    ),
                });
            }
        }
    }
    if compressed && (count != expected || consumed != body.len() || info.records_count != expected)
    {
        return Err(StorageError::InvalidRecord(
            BatchError::RecordCountMismatch {
                records_count: count,
                last_offset_delta: info.last_offset_delta,
            },
        ));
    }
    Ok(errors)
}

/// Refuses what a client may not write, as Kafka's `LogValidator` does for `AppendOrigin.CLIENT`: control
/// batches (INVALID_RECORD), and transactional batches, since transactions are not served and so no producer
/// can be in one (INVALID_TXN_STATE). Without this a client could append a control batch whose
/// `last_offset_delta` burns 2^31 offsets. Only headers are read; framing errors are left to the append's own
/// validation.
pub fn refuse_client_control_batches(batches: &[u8]) -> Result<(), StorageError> {
    let mut position = 0usize;
    while let Some(rest) = batches.get(position..).filter(|r| !r.is_empty()) {
        let Ok(header) = BatchHeader::parse(rest) else {
            return Ok(());
        };
        if crate::batch::is_control(header.attributes) {
            return Err(StorageError::InvalidRecord(BatchError::MalformedRecord(
                "Clients are not allowed to write control records",
            )));
        }
        if crate::batch::is_transactional(header.attributes) {
            return Err(StorageError::InvalidTxnState(
                "The producer attempted a transactional operation in an invalid state: transactions are not \
                 served, so no producer can be in a transaction"
                    .into(),
            ));
        }
        match header.total_size() {
            Ok(size) if size > 0 => position += size,
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// The batch at the start of `batch` with its records (`body`, uncompressed) compressed with `codec` instead.
fn reencode(
    batch: &[u8],
    body: &[u8],
    codec: Compression,
    level: Option<i32>,
) -> Result<Vec<u8>, StorageError> {
    let header = BatchHeader::parse(batch)?;
    let packed: Cow<'_, [u8]> = match codec {
        Compression::None => Cow::Borrowed(body),
        codec => Cow::Owned(compress_with_level(codec, body, level)?),
    };
    let mut out = Vec::with_capacity(HEADER_SIZE + packed.len());
    out.extend_from_slice(batch.get(..HEADER_SIZE).ok_or(BatchError::Truncated {
        needed: HEADER_SIZE,
        available: batch.len(),
    })?);
    out.extend_from_slice(&packed);
    let length = i32::try_from(out.len() - LOG_OVERHEAD).map_err(|_| BatchError::Overflow)?;
    // Length at byte 8, attributes (codec bits 0-2) at byte 21; the CRC is recomputed over the new bytes.
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let attributes = (header.attributes & !0x07) | codec.id();
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    crate::batch::recompute_crc(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::batch::{
        records, validate_batch, BatchBuilder, BatchHeader, Compression, HEADER_SIZE,
    };
    use crate::{LogConfig, PartitionLog, StorageError, TargetCompression};

    fn batch(codec: Compression, n: i32, ts: i64) -> Vec<u8> {
        let mut b = BatchBuilder::new(0, -1).compression(codec);
        for i in 0..n {
            let v = format!("value-{i}-{}", "x".repeat(100));
            b.push(ts, Some(b"k"), Some(v.as_bytes()), &[]).unwrap();
        }
        b.build()
    }

    fn open(config: LogConfig) -> (tempfile::TempDir, PartitionLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), config).unwrap();
        (dir, log)
    }

    fn stored_codec(log: &PartitionLog) -> Compression {
        let read = log.read(0, 1 << 20, None).unwrap();
        let header = BatchHeader::parse(&read.records).unwrap();
        Compression::from_attributes(header.attributes).unwrap()
    }

    #[test]
    fn compression_type_recompresses_and_producer_keeps_the_codec() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for from in codecs {
            for to in codecs {
                let config = LogConfig {
                    compression: TargetCompression::Codec(to),
                    ..LogConfig::default()
                };
                let (_dir, mut log) = open(config);
                log.append(&batch(from, 20, 1000), 1000).unwrap();
                assert_eq!(stored_codec(&log), to, "{from:?} -> {to:?}");
                let read = log.read(0, 1 << 20, None).unwrap();
                validate_batch(&read.records, 1 << 20).unwrap();
                let plain = crate::batch::decompressed_copy(&read.records, 1 << 20).unwrap();
                let values: Vec<Vec<u8>> = records(&plain)
                    .unwrap()
                    .map(|r| r.unwrap().value.unwrap().to_vec())
                    .collect();
                assert_eq!(values.len(), 20);
                assert!(values[19].starts_with(b"value-19-"));
                assert_eq!(log.log_end_offset(), 20);
            }
            let (_dir, mut log) = open(LogConfig::default());
            log.append(&batch(from, 3, 1000), 1000).unwrap();
            assert_eq!(stored_codec(&log), from, "producer keeps {from:?}");
        }
    }

    #[test]
    fn compression_levels_change_the_output() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 1000).to_le_bytes())
            .collect();
        let fast = crate::batch::compress_with_level(Compression::Zstd, &data, Some(1)).unwrap();
        let strong = crate::batch::compress_with_level(Compression::Zstd, &data, Some(19)).unwrap();
        assert!(
            strong.len() < fast.len(),
            "{} !< {}",
            strong.len(),
            fast.len()
        );
        let g1 = crate::batch::compress_with_level(Compression::Gzip, &data, Some(1)).unwrap();
        let g9 = crate::batch::compress_with_level(Compression::Gzip, &data, Some(9)).unwrap();
        assert!(g9.len() < g1.len());
    }

    /// A compressed batch whose header claims more offsets than it holds records would burn offsets: refused
    /// with INVALID_RECORD, nothing written.
    #[test]
    fn a_compressed_batch_must_hold_last_offset_delta_plus_one_records() {
        for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            let mut b = batch(codec, 5, 1000);
            // last_offset_delta (byte 23) and records count (byte 57) both say 2^31-1: the header is
            // consistent, the records are not.
            b[23..27].copy_from_slice(&i32::MAX.to_be_bytes());
            b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
            crate::batch::recompute_crc(&mut b).unwrap();
            let (_dir, mut log) = open(LogConfig::default());
            let err = log.append(&b, 1000).unwrap_err();
            assert_eq!(err.kafka_error_code(), 87, "{codec:?}: {err}");
            assert_eq!(log.log_end_offset(), 0);
        }
        assert_eq!(HEADER_SIZE, 61);
    }

    #[test]
    fn control_and_transactional_batches_from_clients_are_refused() {
        use super::refuse_client_control_batches as check;
        let plain = batch(Compression::None, 2, 0);
        check(&plain).unwrap();
        let mut control = BatchBuilder::new(0, -1).control(true);
        control.push(0, Some(b"\0\0\0\0"), Some(b"x"), &[]).unwrap();
        let control = control.build();
        let err = check(&[plain.clone(), control].concat()).unwrap_err();
        assert_eq!(err.kafka_error_code(), 87, "{err}");
        let mut txn = BatchBuilder::new(0, -1)
            .producer(7, 0, 0)
            .transactional(true);
        txn.push(0, Some(b"k"), Some(b"v"), &[]).unwrap();
        let err = check(&[plain, txn.build()].concat()).unwrap_err();
        assert!(matches!(err, StorageError::InvalidTxnState(_)), "{err}");
        assert_eq!(err.kafka_error_code(), 48);
    }

    #[test]
    fn create_time_outside_the_timestamp_bounds_is_refused_per_record() {
        let config = LogConfig {
            timestamp_before_max_ms: 1000,
            timestamp_after_max_ms: 500,
            ..LogConfig::default()
        };
        let now = 1_000_000;
        for codec in [Compression::None, Compression::Zstd] {
            let (_dir, mut log) = open(config.clone());
            let mut b = BatchBuilder::new(0, -1).compression(codec);
            for ts in [now, now - 999, now - 1001, now + 501, now + 500] {
                b.push(ts, Some(b"k"), Some(b"v"), &[]).unwrap();
            }
            let err = log.append(&b.build(), now).unwrap_err();
            let StorageError::InvalidTimestamp { record_errors, .. } = &err else {
                panic!("{err}");
            };
            let indexes: Vec<i32> = record_errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(indexes, vec![2, 3], "{codec:?}");
            assert_eq!(err.kafka_error_code(), 32);
            log.append(&batch(codec, 2, now - 10), now).unwrap();
        }
        // LogAppendTime replaces the producer's timestamps: no bound applies.
        let (_dir, mut log) = open(LogConfig {
            timestamp_type: crate::TimestampType::LogAppendTime,
            ..config
        });
        log.append(&batch(Compression::None, 1, 0), now).unwrap();
    }

    #[test]
    fn flush_ms_flushes_only_unflushed_data_that_is_old_enough() {
        let (_dir, mut log) = open(LogConfig {
            flush_ms: 1000,
            ..LogConfig::default()
        });
        let now = super::super::now_ms();
        assert!(!log.flush_if_due(now + 10_000).unwrap(), "nothing to flush");
        log.append(&batch(Compression::None, 3, now), now).unwrap();
        assert_eq!(log.unflushed_messages(), 3);
        assert!(!log.flush_if_due(now).unwrap(), "not due yet");
        assert!(log.flush_if_due(now + 10_000).unwrap());
        assert_eq!(log.unflushed_messages(), 0);
        let (_dir, mut never) = open(LogConfig::default());
        never
            .append(&batch(Compression::None, 3, now), now)
            .unwrap();
        assert!(!never.flush_if_due(i64::MAX).unwrap(), "flush.ms unset");
    }

    #[test]
    fn segment_jitter_rolls_early_within_its_bound() {
        let config = LogConfig {
            segment_ms: 10_000,
            segment_jitter_ms: 8_000,
            ..LogConfig::default()
        };
        let (_dir, log) = open(config.clone());
        let jitters: Vec<i64> = (0..50).map(|b| log.roll_jitter_ms(b)).collect();
        assert!(jitters.iter().all(|j| (0..8_000).contains(j)));
        assert!(jitters.iter().any(|j| *j != jitters[0]), "{jitters:?}");
        let (_dir, plain) = open(LogConfig::default());
        assert_eq!(plain.roll_jitter_ms(3), 0);
        // A segment rolls once its age (record time) passes segment.ms minus its jitter.
        let (_dir, mut log) = open(config);
        log.append(&batch(Compression::None, 1, 0), 0).unwrap();
        let jitter = log.roll_jitter_ms(0);
        let at = 10_000 - jitter;
        log.append(&batch(Compression::None, 1, at), at).unwrap();
        assert_eq!(log.segment_count(), 1);
        log.append(&batch(Compression::None, 1, at + 1), at + 1)
            .unwrap();
        assert_eq!(log.segment_count(), 2);
    }
}
