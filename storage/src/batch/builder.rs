//! Encoding uncompressed v2 batches: used by the controller (raft log entries), the broker
//! (`__consumer_offsets`, transaction markers) and by tests.

use super::header::{
    with_control, with_transactional, Compression, TimestampType, ATTRIBUTES_OFFSET,
    BASE_OFFSET_OFFSET, BASE_SEQUENCE_OFFSET, BASE_TIMESTAMP_OFFSET, HEADER_SIZE,
    LAST_OFFSET_DELTA_OFFSET, LENGTH_OFFSET, LOG_OVERHEAD, MAGIC_OFFSET, MAGIC_V2,
    MAX_TIMESTAMP_OFFSET, PARTITION_LEADER_EPOCH_OFFSET, PRODUCER_EPOCH_OFFSET, PRODUCER_ID_OFFSET,
    RECORDS_COUNT_OFFSET,
};
use super::rewrite::recompute_crc;
use super::varint::{varint_len, varlong_len, write_varint, write_varlong};
use super::BatchError;

/// A record header: key and optional value.
pub type Header<'a> = (&'a [u8], Option<&'a [u8]>);

/// A record as (key, value), either of which may be null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Builds one uncompressed v2 batch record by record, encoding straight into its output buffer.
///
/// Defaults: no producer (id -1, epoch -1, sequence -1), CreateTime, not transactional, not a
/// control batch. The base timestamp is the first record's timestamp.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: i16,
    count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// Starts a batch whose first record gets `base_offset`.
    pub fn new(base_offset: i64, partition_leader_epoch: i32) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.resize(HEADER_SIZE, 0);
        Self {
            buf,
            base_offset,
            partition_leader_epoch,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: Compression::None.id(),
            count: 0,
            base_timestamp: None,
            max_timestamp: -1,
        }
    }

    /// Sets the idempotent-producer fields.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch transactional (attribute bit 4).
    pub fn transactional(mut self, yes: bool) -> Self {
        self.attributes = with_transactional(self.attributes, yes);
        self
    }

    /// Marks the batch as a control batch (attribute bit 5).
    pub fn control(mut self, yes: bool) -> Self {
        self.attributes = with_control(self.attributes, yes);
        self
    }

    /// Compresses the records with `codec` when the batch is built (attribute bits 0-2).
    pub fn compression(mut self, codec: Compression) -> Self {
        self.attributes = (self.attributes & !0x07) | codec.id();
        self
    }

    /// Sets the timestamp type bit (attribute bit 3).
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.attributes = timestamp_type.apply(self.attributes);
        self
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the batch would take if built now.
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Appends a record; fails only if the batch would outgrow the i32 length field.
    pub fn push(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> Result<&mut Self, BatchError> {
        let base_timestamp = *self.base_timestamp.get_or_insert(timestamp_ms);
        let timestamp_delta = timestamp_ms.wrapping_sub(base_timestamp);
        let offset_delta = self.count;
        let body_len = record_body_len(timestamp_delta, offset_delta, key, value, headers)?;
        let body_len_i32 = i32::try_from(body_len).map_err(|_| BatchError::Overflow)?;
        let new_len = self
            .buf
            .len()
            .checked_add(varint_len(body_len_i32) + body_len)
            .filter(|&n| n - LOG_OVERHEAD <= i32::MAX as usize)
            .ok_or(BatchError::Overflow)?;
        self.count = self.count.checked_add(1).ok_or(BatchError::Overflow)?;
        self.buf.reserve(new_len - self.buf.len());
        write_varint(&mut self.buf, body_len_i32);
        self.buf.push(0); // record attributes: unused in v2
        write_varlong(&mut self.buf, timestamp_delta);
        write_varint(&mut self.buf, offset_delta);
        write_nullable(&mut self.buf, key);
        write_nullable(&mut self.buf, value);
        write_varint(&mut self.buf, headers.len() as i32);
        for (k, v) in headers {
            write_nullable(&mut self.buf, Some(k));
            write_nullable(&mut self.buf, *v);
        }
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        Ok(self)
    }

    /// Finishes the batch: fills in the header and CRC. With no records the result is empty
    /// (there is no valid v2 batch without records).
    pub fn build(mut self) -> Vec<u8> {
        if self.count == 0 {
            return Vec::new();
        }
        if let Ok(
            codec
            @ (Compression::Gzip | Compression::Snappy | Compression::Lz4 | Compression::Zstd),
        ) = Compression::from_attributes(self.attributes)
        {
            // An empty result marks a failure, as for a batch that does not fit.
            let Some(packed) = self
                .buf
                .get(HEADER_SIZE..)
                .and_then(|body| super::compression::compress(codec, body).ok())
            else {
                return Vec::new();
            };
            self.buf.truncate(HEADER_SIZE);
            self.buf.extend_from_slice(&packed);
        }
        let batch_length = (self.buf.len() - LOG_OVERHEAD) as i32;
        let base_timestamp = self.base_timestamp.unwrap_or(-1);
        let h = &mut self.buf;
        put(h, BASE_OFFSET_OFFSET, &self.base_offset.to_be_bytes());
        put(h, LENGTH_OFFSET, &batch_length.to_be_bytes());
        put(
            h,
            PARTITION_LEADER_EPOCH_OFFSET,
            &self.partition_leader_epoch.to_be_bytes(),
        );
        put(h, MAGIC_OFFSET, &[MAGIC_V2 as u8]);
        put(h, ATTRIBUTES_OFFSET, &self.attributes.to_be_bytes());
        put(h, LAST_OFFSET_DELTA_OFFSET, &(self.count - 1).to_be_bytes());
        put(h, BASE_TIMESTAMP_OFFSET, &base_timestamp.to_be_bytes());
        put(h, MAX_TIMESTAMP_OFFSET, &self.max_timestamp.to_be_bytes());
        put(h, PRODUCER_ID_OFFSET, &self.producer_id.to_be_bytes());
        put(h, PRODUCER_EPOCH_OFFSET, &self.producer_epoch.to_be_bytes());
        put(h, BASE_SEQUENCE_OFFSET, &self.base_sequence.to_be_bytes());
        put(h, RECORDS_COUNT_OFFSET, &self.count.to_be_bytes());
        // The header was sized above, so this cannot fail; an error would leave a batch that
        // validation rejects rather than a panic.
        let _ = recompute_crc(&mut self.buf);
        self.buf
    }
}

/// Builds an uncompressed v2 batch of `records` (key, value), all stamped `timestamp_ms`, with
/// no producer id. Returns an empty buffer if `records` is empty or cannot fit one batch
/// (over 2 GiB); use [`BatchBuilder`] to see that error.
pub fn build_batch(
    base_offset: i64,
    partition_leader_epoch: i32,
    timestamp_ms: i64,
    records: &[KeyValue<'_>],
) -> Vec<u8> {
    let mut builder = BatchBuilder::new(base_offset, partition_leader_epoch);
    for (key, value) in records {
        if builder.push(timestamp_ms, *key, *value, &[]).is_err() {
            return Vec::new();
        }
    }
    builder.build()
}

fn record_body_len(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header<'_>],
) -> Result<usize, BatchError> {
    let mut len = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
    len = add(len, nullable_len(key)?)?;
    len = add(len, nullable_len(value)?)?;
    let count = i32::try_from(headers.len()).map_err(|_| BatchError::Overflow)?;
    len = add(len, varint_len(count))?;
    for (k, v) in headers {
        len = add(len, nullable_len(Some(k))?)?;
        len = add(len, nullable_len(*v)?)?;
    }
    Ok(len)
}

fn nullable_len(bytes: Option<&[u8]>) -> Result<usize, BatchError> {
    match bytes {
        None => Ok(varint_len(-1)),
        Some(b) => {
            let n = i32::try_from(b.len()).map_err(|_| BatchError::Overflow)?;
            add(varint_len(n), b.len())
        }
    }
}

fn add(a: usize, b: usize) -> Result<usize, BatchError> {
    a.checked_add(b).ok_or(BatchError::Overflow)
}

fn write_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => write_varint(out, -1),
        Some(b) => {
            // Lengths were checked to fit i32 by record_body_len.
            write_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}
