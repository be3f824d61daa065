//! Walking a buffer of concatenated batches and checking each one at batch level only.
//!
//! The produce path calls this on every request, so it does no per-record work: bounds, magic,
//! CRC32C (hardware accelerated) and a header consistency check are all it costs.

use std::ops::Range;

use super::header::{
    is_control, is_transactional, BatchHeader, Compression, TimestampType, ATTRIBUTES_OFFSET,
    LOG_OVERHEAD, MAGIC_V2,
};
use super::BatchError;

/// What the log needs to know about one batch, found by [`validate_batches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    /// Byte position of the batch within the validated buffer.
    pub position: usize,
    /// Total bytes of the batch, log overhead included.
    pub size: usize,
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub records_count: i32,
    pub partition_leader_epoch: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// Raw attribute bits, as stored.
    pub attributes: i16,
    pub compression: Compression,
    pub timestamp_type: TimestampType,
    pub is_transactional: bool,
    pub is_control: bool,
}

impl BatchInfo {
    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Number of offsets the batch occupies (lastOffsetDelta + 1).
    pub fn offset_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }

    /// Byte range of the batch within the validated buffer.
    pub fn range(&self) -> Range<usize> {
        self.position..self.position + self.size
    }
}

/// Validates every batch in `buf` (one or more concatenated v2 batches).
///
/// An empty buffer yields an empty list; a trailing partial batch is an error, as is any batch
/// larger than `max_batch_bytes` (log overhead included, as Kafka's `max.message.bytes` counts).
pub fn validate_batches(buf: &[u8], max_batch_bytes: usize) -> Result<Vec<BatchInfo>, BatchError> {
    let mut infos = Vec::new();
    let mut position = 0;
    while let Some(rest) = buf.get(position..).filter(|r| !r.is_empty()) {
        let mut info = validate_batch(rest, max_batch_bytes)?;
        info.position = position;
        position += info.size;
        infos.push(info);
    }
    Ok(infos)
}

/// Validates the single batch at the start of `buf` (bytes after it are ignored).
///
/// The returned [`BatchInfo::position`] is 0.
pub fn validate_batch(buf: &[u8], max_batch_bytes: usize) -> Result<BatchInfo, BatchError> {
    validate(buf, max_batch_bytes, true)
}

/// Validates a batch as it may sit in a log that the cleaner has compacted: framing, magic and CRC as
/// [`validate_batch`], but fewer records than the offsets it spans (records removed, offsets kept) and no
/// records at all (the last batch of a producer, kept for its sequence numbers) are allowed, as Kafka allows
/// them in replicated and recovered data.
pub fn validate_stored_batch(buf: &[u8], max_batch_bytes: usize) -> Result<BatchInfo, BatchError> {
    validate(buf, max_batch_bytes, false)
}

/// [`validate_batches`] under the rules of [`validate_stored_batch`].
pub fn validate_stored_batches(
    buf: &[u8],
    max_batch_bytes: usize,
) -> Result<Vec<BatchInfo>, BatchError> {
    let mut infos = Vec::new();
    let mut position = 0;
    while let Some(rest) = buf.get(position..).filter(|r| !r.is_empty()) {
        let mut info = validate_stored_batch(rest, max_batch_bytes)?;
        info.position = position;
        position += info.size;
        infos.push(info);
    }
    Ok(infos)
}

/// `producer`: a batch as a producer sends it (every offset of its range holds one record).
fn validate(buf: &[u8], max_batch_bytes: usize, producer: bool) -> Result<BatchInfo, BatchError> {
    let (_, batch_length) =
        super::header::peek_offset_and_length(buf).ok_or(BatchError::Truncated {
            needed: LOG_OVERHEAD,
            available: buf.len(),
        })?;
    if batch_length < super::header::MIN_BATCH_LENGTH {
        return Err(BatchError::InvalidLength(batch_length));
    }
    let size = batch_length as usize + LOG_OVERHEAD;
    if size > buf.len() {
        return Err(BatchError::Truncated {
            needed: size,
            available: buf.len(),
        });
    }
    if size > max_batch_bytes {
        return Err(BatchError::TooLarge {
            size,
            max: max_batch_bytes,
        });
    }
    let header = BatchHeader::parse(buf)?;
    if header.magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic(header.magic));
    }
    let covered = buf
        .get(ATTRIBUTES_OFFSET..size)
        .ok_or(BatchError::Truncated {
            needed: size,
            available: buf.len(),
        })?;
    let computed = crc32c::crc32c(covered);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    let compression = Compression::from_attributes(header.attributes)?;
    if header.records_count < 0 || (producer && header.records_count == 0) {
        return Err(BatchError::InvalidRecordCount(header.records_count));
    }
    if header.last_offset_delta < 0 {
        return Err(BatchError::InvalidLastOffsetDelta(header.last_offset_delta));
    }
    let span = i64::from(header.last_offset_delta) + 1;
    let count = i64::from(header.records_count);
    let mismatch = if producer {
        compression == Compression::None && span != count
    } else {
        count > span
    };
    if mismatch {
        return Err(BatchError::RecordCountMismatch {
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(BatchInfo {
        position: 0,
        size,
        base_offset: header.base_offset,
        last_offset_delta: header.last_offset_delta,
        records_count: header.records_count,
        partition_leader_epoch: header.partition_leader_epoch,
        base_timestamp: header.base_timestamp,
        max_timestamp: header.max_timestamp,
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
        attributes: header.attributes,
        compression,
        timestamp_type: TimestampType::from_attributes(header.attributes),
        is_transactional: is_transactional(header.attributes),
        is_control: is_control(header.attributes),
    })
}
