//! Record-level decoding of uncompressed batches.
//!
//! Used by timestamp lookup and tests, never by the produce path. Every field read is bounds
//! checked and nothing is allocated from a length the data supplies.

use super::header::{BatchHeader, Compression, TimestampType, HEADER_SIZE};
use super::varint::Reader;
use super::BatchError;

/// One record of a batch, borrowing key, value and headers from the batch bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Absolute offset (batch baseOffset + offsetDelta).
    pub offset: i64,
    /// Effective timestamp: baseTimestamp + delta, or the batch max timestamp under LogAppendTime.
    pub timestamp: i64,
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: RecordHeaders<'a>,
}

/// The headers of a record, already validated, decoded lazily.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeaders<'a> {
    raw: &'a [u8],
    count: usize,
}

impl<'a> RecordHeaders<'a> {
    /// Number of headers.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the record has no headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterates (key, value) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        let mut reader = Reader::new(self.raw);
        // Validated when the record was decoded, so a failure here only ends the iteration early.
        (0..self.count).map_while(move |_| read_header(&mut reader).ok())
    }
}

fn read_header<'a>(reader: &mut Reader<'a>) -> Result<(&'a [u8], Option<&'a [u8]>), BatchError> {
    let key = reader
        .read_nullable_bytes()?
        .ok_or(BatchError::MalformedRecord("null header key"))?;
    let value = reader.read_nullable_bytes()?;
    Ok((key, value))
}

/// Iterator over the records of one uncompressed batch; see [`records`].
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    reader: Reader<'a>,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    remaining: i32,
    failed: bool,
}

/// Decodes the records of the uncompressed batch at the start of `batch`.
///
/// Compressed batches give [`BatchError::Compressed`]; the CRC is not checked here (use
/// `validate_batch` for that). Each item is a record or the first error, after which it ends.
pub fn records(batch: &[u8]) -> Result<RecordIter<'_>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let size = header.total_size()?;
    if Compression::from_attributes(header.attributes)? != Compression::None {
        return Err(BatchError::Compressed);
    }
    if header.records_count < 0 {
        return Err(BatchError::InvalidRecordCount(header.records_count));
    }
    let body = batch.get(HEADER_SIZE..size).ok_or(BatchError::Truncated {
        needed: size,
        available: batch.len(),
    })?;
    let log_append_time = (TimestampType::from_attributes(header.attributes)
        == TimestampType::LogAppendTime)
        .then_some(header.max_timestamp);
    Ok(RecordIter {
        reader: Reader::new(body),
        base_offset: header.base_offset,
        base_timestamp: header.base_timestamp,
        log_append_time,
        remaining: header.records_count,
        failed: false,
    })
}

impl<'a> RecordIter<'a> {
    fn decode_next(&mut self) -> Result<Record<'a>, BatchError> {
        let length = self.reader.read_varint()?;
        if length < 0 {
            return Err(BatchError::MalformedRecord("negative record length"));
        }
        let body = self.reader.read_bytes(length as usize)?;
        let mut r = Reader::new(body);
        let attributes = r.read_u8()? as i8;
        let timestamp_delta = r.read_varlong()?;
        let offset_delta = r.read_varint()?;
        let key = r.read_nullable_bytes()?;
        let value = r.read_nullable_bytes()?;
        let header_count = r.read_varint()?;
        if header_count < 0 {
            return Err(BatchError::MalformedRecord("negative header count"));
        }
        let headers_raw = body.get(r.position()..).unwrap_or_default();
        for _ in 0..header_count {
            read_header(&mut r)?;
        }
        if r.remaining() != 0 {
            return Err(BatchError::MalformedRecord("record length mismatch"));
        }
        Ok(Record {
            offset: self.base_offset.saturating_add(i64::from(offset_delta)),
            timestamp: self
                .log_append_time
                .unwrap_or(self.base_timestamp.saturating_add(timestamp_delta)),
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers: RecordHeaders {
                raw: headers_raw,
                count: header_count as usize,
            },
        })
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            if self.reader.remaining() != 0 {
                self.failed = true;
                return Some(Err(BatchError::MalformedRecord(
                    "bytes after the last record",
                )));
            }
            return None;
        }
        self.remaining -= 1;
        let item = self.decode_next();
        if item.is_err() {
            self.failed = true;
        }
        Some(item)
    }
}
