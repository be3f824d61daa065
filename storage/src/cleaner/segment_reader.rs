//! Reading a sealed segment batch by batch, without the log's lock.

use std::os::unix::fs::FileExt;

use super::SegmentSnapshot;
use crate::batch::{peek_offset_and_length, validate_stored_batch, BatchHeader, LOG_OVERHEAD};
use crate::StorageError;

/// Bytes read from the segment file at a time.
const CHUNK: usize = 1 << 20;

/// Calls `f` with the header and bytes of every batch of the segment snapshot, in order. Each batch's CRC is
/// checked: the cleaner never rewrites data it cannot trust.
pub(crate) fn for_each_batch(
    segment: &SegmentSnapshot,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let corrupt = |position: u64, reason: String| StorageError::CorruptLog {
        path: segment.path.clone(),
        position,
        reason,
    };
    let file = std::fs::File::open(&segment.path)
        .map_err(|e| StorageError::io("open", &segment.path, e))?;
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = 0u64;
    let mut pos = 0u64;
    while pos < segment.size {
        let in_buf = |pos: u64, len: usize, buf: &Vec<u8>, buf_start: u64| {
            pos >= buf_start && pos + len as u64 <= buf_start + buf.len() as u64
        };
        if !in_buf(pos, LOG_OVERHEAD, &buf, buf_start) {
            fill(segment, &file, &mut buf, &mut buf_start, pos, LOG_OVERHEAD)?;
        }
        let at = (pos - buf_start) as usize;
        let (_, length) = buf
            .get(at..)
            .and_then(peek_offset_and_length)
            .ok_or_else(|| corrupt(pos, "torn batch header".into()))?;
        let size = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .filter(|&s| pos + s as u64 <= segment.size)
            .ok_or_else(|| corrupt(pos, format!("invalid batch length {length}")))?;
        if !in_buf(pos, size, &buf, buf_start) {
            fill(segment, &file, &mut buf, &mut buf_start, pos, size)?;
        }
        let at = (pos - buf_start) as usize;
        let batch = buf
            .get(at..at + size)
            .ok_or_else(|| corrupt(pos, "torn batch".into()))?;
        validate_stored_batch(batch, usize::MAX).map_err(|e| corrupt(pos, e.to_string()))?;
        let header = BatchHeader::parse(batch).map_err(|e| corrupt(pos, e.to_string()))?;
        f(&header, batch)?;
        pos += size as u64;
    }
    Ok(())
}

fn fill(
    segment: &SegmentSnapshot,
    file: &std::fs::File,
    buf: &mut Vec<u8>,
    buf_start: &mut u64,
    pos: u64,
    len: usize,
) -> Result<(), StorageError> {
    let want = (len.max(CHUNK) as u64).min(segment.size - pos) as usize;
    buf.resize(want, 0);
    file.read_exact_at(buf, pos)
        .map_err(|e| StorageError::io("read", &segment.path, e))?;
    *buf_start = pos;
    Ok(())
}
