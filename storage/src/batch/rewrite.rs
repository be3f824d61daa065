//! In-place edits the log makes to a validated batch before writing it.
//!
//! baseOffset and partitionLeaderEpoch sit before the CRC-covered region, so assigning offsets
//! costs two stores per batch; only LogAppendTime touches covered bytes and needs a new CRC.

use super::header::{
    BatchHeader, TimestampType, ATTRIBUTES_OFFSET, BASE_OFFSET_OFFSET, CRC_OFFSET,
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
    let header = BatchHeader::parse(batch)?;
    let size = header.total_size()?;
    if batch.len() < size {
        return Err(BatchError::Truncated {
            needed: size,
            available: batch.len(),
        });
    }
    let attributes = TimestampType::LogAppendTime.apply(header.attributes);
    put(batch, ATTRIBUTES_OFFSET, &attributes.to_be_bytes())?;
    put(batch, MAX_TIMESTAMP_OFFSET, &timestamp_ms.to_be_bytes())?;
    recompute_crc(batch)
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
