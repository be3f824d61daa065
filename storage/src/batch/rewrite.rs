//! Edits the log makes to a validated batch before writing it.
//!
//! baseOffset and partitionLeaderEpoch sit before the CRC-covered region, so assigning offsets
//! costs two stores per batch; only LogAppendTime touches covered bytes and needs a new CRC. Every
//! field the log rewrites lies in the fixed [`HEADER_SIZE`]-byte header, so a leader edits a copy of
//! the header alone and writes it followed by the rest of the producer's bytes (see
//! [`stamp_log_append_time`]), never copying the records.

use super::header::{
    BatchHeader, TimestampType, ATTRIBUTES_OFFSET, BASE_OFFSET_OFFSET, CRC_OFFSET, HEADER_SIZE,
    MAX_TIMESTAMP_OFFSET, PARTITION_LEADER_EPOCH_OFFSET,
};
use super::BatchError;

/// Overwrites `baseOffset` of the batch at the start of `batch`.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), BatchError> {
    put(batch, BASE_OFFSET_OFFSET, &base_offset.to_be_bytes())
}

/// Overwrites `partitionLeaderEpoch` of the batch at the start of `batch`.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), BatchError> {
    put(batch, PARTITION_LEADER_EPOCH_OFFSET, &epoch.to_be_bytes())
}

/// Marks the batch at the start of `batch` as LogAppendTime with `timestamp_ms` as its max
/// timestamp (which consumers then use for every record) and recomputes the CRC.
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) -> Result<(), BatchError> {
    let size = BatchHeader::parse(batch)?.total_size()?;
    let available = batch.len();
    let (header, rest) = batch
        .get_mut(..size)
        .ok_or(BatchError::Truncated {
            needed: size,
            available,
        })?
        .split_at_mut(HEADER_SIZE);
    let header: &mut [u8; HEADER_SIZE] = header.try_into().map_err(|_| BatchError::Truncated {
        needed: HEADER_SIZE,
        available,
    })?;
    stamp_log_append_time(header, rest, timestamp_ms)
}

/// [`set_log_append_time`] on a batch held as two pieces: its `header` (a copy the caller writes in place
/// of the original) and `rest`, the batch's bytes after the header, which are only read. The new CRC is
/// the header's covered bytes continued over `rest`, so the records are neither copied nor changed.
pub fn stamp_log_append_time(
    header: &mut [u8; HEADER_SIZE],
    rest: &[u8],
    timestamp_ms: i64,
) -> Result<(), BatchError> {
    let parsed = BatchHeader::parse(header)?;
    let size = parsed.total_size()?;
    if HEADER_SIZE + rest.len() != size {
        return Err(BatchError::Truncated {
            needed: size,
            available: HEADER_SIZE + rest.len(),
        });
    }
    let attributes = TimestampType::LogAppendTime.apply(parsed.attributes);
    put(header, ATTRIBUTES_OFFSET, &attributes.to_be_bytes())?;
    put(header, MAX_TIMESTAMP_OFFSET, &timestamp_ms.to_be_bytes())?;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[ATTRIBUTES_OFFSET..]), rest);
    put(header, CRC_OFFSET, &crc.to_be_bytes())
}

/// Recomputes and stores the CRC32C of the batch at the start of `batch`.
pub fn recompute_crc(batch: &mut [u8]) -> Result<(), BatchError> {
    let size = BatchHeader::parse(batch)?.total_size()?;
    let covered = batch
        .get(ATTRIBUTES_OFFSET..size)
        .ok_or(BatchError::Truncated {
            needed: size,
            available: batch.len(),
        })?;
    let crc = crc32c::crc32c(covered);
    put(batch, CRC_OFFSET, &crc.to_be_bytes())
}

fn put(batch: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), BatchError> {
    let available = batch.len();
    let dst = batch
        .get_mut(at..at + bytes.len())
        .ok_or(BatchError::Truncated {
            needed: at + bytes.len(),
            available,
        })?;
    dst.copy_from_slice(bytes);
    Ok(())
}
