//! Fetch-path reads: whole batches from the one containing the requested offset.

use bytes::Bytes;

use super::{PartitionLog, ReadResult};
use crate::batch::BatchHeader;
use crate::StorageError;

impl PartitionLog {
    /// Whole batches starting with the one containing `offset`, up to `max_bytes` but always
    /// at least that first batch (Kafka semantics), never including a batch that reaches
    /// `upper_bound` (exclusive, e.g. the high watermark). Reads stay within one segment.
    ///
    /// `offset == log_end_offset` gives an empty result; an offset outside
    /// `[log_start_offset, log_end_offset]` is [`StorageError::OffsetOutOfRange`].
    /// The batch is found with the offset index and a short forward scan of headers, then
    /// read with one pread into the returned buffer.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: Option<i64>,
    ) -> Result<ReadResult, StorageError> {
        let log_end_offset = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset,
            });
        }
        let result = |records: Bytes| ReadResult {
            records,
            log_start_offset: self.log_start_offset,
            log_end_offset,
        };
        let bound = upper_bound.map_or(log_end_offset, |b| b.min(log_end_offset));
        if offset >= bound {
            return Ok(result(Bytes::new()));
        }
        let Some(mut index) = self.segment_index_for(offset) else {
            return Ok(result(Bytes::new()));
        };
        while let Some(segment) = self.segment_at(index) {
            index += 1;
            let Some((pos, header)) = segment.find_batch(offset)? else {
                continue;
            };
            if header.last_offset() >= bound {
                return Ok(result(Bytes::new()));
            }
            let first_size = header.total_size()? as u64;
            let mut len = (segment.size() - pos).min((max_bytes as u64).max(first_size));
            if let Some(limit) = segment.position_bound_below(bound) {
                len = len.min(limit.saturating_sub(pos).max(first_size));
            }
            let mut buf = segment.read_at(pos, len as usize)?;
            let keep = whole_batches_below(&buf, bound);
            buf.truncate(keep);
            return Ok(result(Bytes::from(buf)));
        }
        Ok(result(Bytes::new()))
    }
}

/// Length of the leading run of whole batches in `buf` that end below `bound`.
fn whole_batches_below(buf: &[u8], bound: i64) -> usize {
    let mut pos = 0;
    while let Some(rest) = buf.get(pos..) {
        let Ok(header) = BatchHeader::parse(rest) else {
            break;
        };
        let Ok(size) = header.total_size() else {
            break;
        };
        if size > rest.len() || header.last_offset() >= bound {
            break;
        }
        pos += size;
    }
    pos
}
