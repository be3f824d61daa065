//! Records as their raw encodings, for code that keeps or drops records without re-encoding them (the log
//! cleaner), and re-encoding a batch around a new set of records.

use std::borrow::Cow;

use super::compression::{compress, decompress};
use super::header::{
    BatchHeader, Compression, TimestampType, ATTRIBUTES_OFFSET, BASE_OFFSET_OFFSET,
    BASE_SEQUENCE_OFFSET, BASE_TIMESTAMP_OFFSET, HEADER_SIZE, LAST_OFFSET_DELTA_OFFSET,
    LENGTH_OFFSET, LOG_OVERHEAD, MAGIC_OFFSET, MAGIC_V2, MAX_TIMESTAMP_OFFSET,
    PARTITION_LEADER_EPOCH_OFFSET, PRODUCER_EPOCH_OFFSET, PRODUCER_ID_OFFSET, RECORDS_COUNT_OFFSET,
};
use super::rewrite::recompute_crc;
use super::varint::{write_varint, write_varlong, Reader};
use super::BatchError;

/// The records of a batch, uncompressed (borrowed when the batch was not compressed).
pub type RecordsBody<'a> = Cow<'a, [u8]>;

/// The records section of the batch at the start of `batch`, decompressed if needed (at most `limit` bytes).
pub fn records_body(batch: &[u8], limit: usize) -> Result<RecordsBody<'_>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let size = header.total_size()?;
    let body = batch.get(HEADER_SIZE..size).ok_or(BatchError::Truncated {
        needed: size,
        available: batch.len(),
    })?;
    match Compression::from_attributes(header.attributes)? {
        Compression::None => Ok(Cow::Borrowed(body)),
        codec => decompress(codec, body, limit).map(Cow::Owned),
    }
}

/// The first record of the batch at the start of `batch` for which `wanted(offset, timestamp)` holds, as
/// (offset, timestamp), decompressing at most `limit` bytes. A record's timestamp is the batch's base timestamp
/// plus its delta, or under LogAppendTime the batch's max timestamp (every record carries the time the broker
/// stamped): what Kafka's `Record.timestamp()` answers, which its timestamp lookups compare.
pub fn find_record(
    batch: &[u8],
    limit: usize,
    mut wanted: impl FnMut(i64, i64) -> bool,
) -> Result<Option<(i64, i64)>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let log_append_time =
        TimestampType::from_attributes(header.attributes) == TimestampType::LogAppendTime;
    let body = records_body(batch, limit)?;
    for record in raw_records(&body, header.records_count) {
        let record = record?;
        let offset = header
            .base_offset
            .saturating_add(i64::from(record.offset_delta));
        let timestamp = if log_append_time {
            header.max_timestamp
        } else {
            header.base_timestamp.saturating_add(record.timestamp_delta)
        };
        if wanted(offset, timestamp) {
            return Ok(Some((offset, timestamp)));
        }
    }
    Ok(None)
}

/// One record: the fields the cleaner decides on, and its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    /// A null value: a tombstone on a compacted topic.
    pub value_is_null: bool,
    /// The whole record, its length prefix included: copied as is when kept.
    pub encoded: &'a [u8],
    /// The record attributes byte.
    attributes: u8,
    /// Everything after the timestamp delta (offset delta, key, value, headers).
    after_timestamp: &'a [u8],
}

impl RawRecord<'_> {
    /// Appends this record to `out` with its timestamp delta changed (for a batch whose base timestamp moved).
    pub fn write_with_timestamp_delta(&self, out: &mut Vec<u8>, timestamp_delta: i64) {
        if timestamp_delta == self.timestamp_delta {
            out.extend_from_slice(self.encoded);
            return;
        }
        let mut body = Vec::with_capacity(self.after_timestamp.len() + 11);
        body.push(self.attributes);
        write_varlong(&mut body, timestamp_delta);
        body.extend_from_slice(self.after_timestamp);
        // A record body is far below i32::MAX: it came out of a batch whose length is an i32.
        write_varint(out, body.len() as i32);
        out.extend_from_slice(&body);
    }
}

/// The `count` records of an uncompressed records section, in order; each item a record or the first error.
pub fn raw_records(
    body: &[u8],
    count: i32,
) -> impl Iterator<Item = Result<RawRecord<'_>, BatchError>> + '_ {
    let mut reader = Reader::new(body);
    let mut failed = false;
    (0..count.max(0)).map_while(move |_| {
        if failed {
            return None;
        }
        let item = next_raw(&mut reader);
        failed = item.is_err();
        Some(item)
    })
}

fn next_raw<'a>(reader: &mut Reader<'a>) -> Result<RawRecord<'a>, BatchError> {
    let all = reader.rest();
    let start = reader.position();
    let length = reader.read_varint()?;
    let length = usize::try_from(length)
        .map_err(|_| BatchError::MalformedRecord("negative record length"))?;
    let body = reader.read_bytes(length)?;
    let encoded = all
        .get(..reader.position() - start)
        .ok_or(BatchError::MalformedRecord("record length mismatch"))?;
    let mut r = Reader::new(body);
    let attributes = r.read_u8()?;
    let timestamp_delta = r.read_varlong()?;
    let after_timestamp = body.get(r.position()..).unwrap_or_default();
    let offset_delta = r.read_varint()?;
    let key = r.read_nullable_bytes()?;
    let value = r.read_nullable_bytes()?;
    Ok(RawRecord {
        timestamp_delta,
        offset_delta,
        key,
        value_is_null: value.is_none(),
        encoded,
        attributes,
        after_timestamp,
    })
}

/// Encodes a batch around `body`, the concatenated encodings of `records_count` records: every header field
/// comes from `header` (its length, magic and CRC are recomputed), and the records are compressed with the
/// codec its attributes name.
pub fn encode_batch(
    header: &BatchHeader,
    body: &[u8],
    records_count: i32,
) -> Result<Vec<u8>, BatchError> {
    let codec = Compression::from_attributes(header.attributes)?;
    let packed = match codec {
        Compression::None => Cow::Borrowed(body),
        codec => Cow::Owned(compress(codec, body)?),
    };
    let batch_length = i32::try_from(HEADER_SIZE - LOG_OVERHEAD + packed.len())
        .map_err(|_| BatchError::Overflow)?;
    let mut out = vec![0u8; HEADER_SIZE];
    let mut put = |at: usize, bytes: &[u8]| {
        if let Some(dst) = out.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    };
    put(BASE_OFFSET_OFFSET, &header.base_offset.to_be_bytes());
    put(LENGTH_OFFSET, &batch_length.to_be_bytes());
    put(
        PARTITION_LEADER_EPOCH_OFFSET,
        &header.partition_leader_epoch.to_be_bytes(),
    );
    put(MAGIC_OFFSET, &[MAGIC_V2 as u8]);
    put(ATTRIBUTES_OFFSET, &header.attributes.to_be_bytes());
    put(
        LAST_OFFSET_DELTA_OFFSET,
        &header.last_offset_delta.to_be_bytes(),
    );
    put(BASE_TIMESTAMP_OFFSET, &header.base_timestamp.to_be_bytes());
    put(MAX_TIMESTAMP_OFFSET, &header.max_timestamp.to_be_bytes());
    put(PRODUCER_ID_OFFSET, &header.producer_id.to_be_bytes());
    put(PRODUCER_EPOCH_OFFSET, &header.producer_epoch.to_be_bytes());
    put(BASE_SEQUENCE_OFFSET, &header.base_sequence.to_be_bytes());
    put(RECORDS_COUNT_OFFSET, &records_count.to_be_bytes());
    out.extend_from_slice(&packed);
    recompute_crc(&mut out)?;
    Ok(out)
}

/// An uncompressed copy of the batch at the start of `batch` (same header, codec bits cleared), so its
/// records can be read with [`super::records`]. At most `limit` bytes of records.
pub fn decompressed_copy(batch: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let mut header = BatchHeader::parse(batch)?;
    let body = records_body(batch, limit)?;
    // Attribute bits 0-2 are the codec.
    header.attributes &= !0x07;
    encode_batch(&header, &body, header.records_count)
}
