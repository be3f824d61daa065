//! The fixed 61-byte RecordBatch v2 header: its byte layout, decoding and attribute bits.

use super::BatchError;

/// Byte position of `baseOffset` (i64).
pub const BASE_OFFSET_OFFSET: usize = 0;
/// Byte position of `batchLength` (i32, counts the bytes after this field).
pub const LENGTH_OFFSET: usize = 8;
/// Byte position of `partitionLeaderEpoch` (i32).
pub const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
/// Byte position of `magic` (i8).
pub const MAGIC_OFFSET: usize = 16;
/// Byte position of `crc` (u32).
pub const CRC_OFFSET: usize = 17;
/// Byte position of `attributes` (i16); the CRC covers from here to the end of the batch.
pub const ATTRIBUTES_OFFSET: usize = 21;
/// Byte position of `lastOffsetDelta` (i32).
pub const LAST_OFFSET_DELTA_OFFSET: usize = 23;
/// Byte position of `baseTimestamp` (i64).
pub const BASE_TIMESTAMP_OFFSET: usize = 27;
/// Byte position of `maxTimestamp` (i64).
pub const MAX_TIMESTAMP_OFFSET: usize = 35;
/// Byte position of `producerId` (i64).
pub const PRODUCER_ID_OFFSET: usize = 43;
/// Byte position of `producerEpoch` (i16).
pub const PRODUCER_EPOCH_OFFSET: usize = 51;
/// Byte position of `baseSequence` (i32).
pub const BASE_SEQUENCE_OFFSET: usize = 53;
/// Byte position of `recordsCount` (i32).
pub const RECORDS_COUNT_OFFSET: usize = 57;
/// Size of the whole v2 header; records start here.
pub const HEADER_SIZE: usize = 61;
/// baseOffset + batchLength: the bytes not counted by `batchLength`.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest legal `batchLength` (a header with no records).
pub const MIN_BATCH_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;
/// The only supported magic value.
pub const MAGIC_V2: i8 = 2;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Compression codec from attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// Decodes the codec bits of `attributes`.
    pub fn from_attributes(attributes: i16) -> Result<Self, BatchError> {
        match attributes & COMPRESSION_MASK {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(BatchError::UnknownCompression(other as u8)),
        }
    }

    /// The codec id as stored in attribute bits 0-2.
    pub fn id(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }
}

/// Whether record timestamps come from the producer or from the broker at append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    /// Decodes attribute bit 3.
    pub fn from_attributes(attributes: i16) -> Self {
        if attributes & TIMESTAMP_TYPE_BIT != 0 {
            Self::LogAppendTime
        } else {
            Self::CreateTime
        }
    }

    /// `attributes` with bit 3 set for this type.
    pub fn apply(self, attributes: i16) -> i16 {
        match self {
            Self::CreateTime => attributes & !TIMESTAMP_TYPE_BIT,
            Self::LogAppendTime => attributes | TIMESTAMP_TYPE_BIT,
        }
    }
}

/// Whether attribute bit 4 (transactional) is set.
pub fn is_transactional(attributes: i16) -> bool {
    attributes & TRANSACTIONAL_BIT != 0
}

/// Whether attribute bit 5 (control batch) is set.
pub fn is_control(attributes: i16) -> bool {
    attributes & CONTROL_BIT != 0
}

/// `attributes` with the transactional bit set or cleared.
pub fn with_transactional(attributes: i16, yes: bool) -> i16 {
    if yes {
        attributes | TRANSACTIONAL_BIT
    } else {
        attributes & !TRANSACTIONAL_BIT
    }
}

/// `attributes` with the control bit set or cleared.
pub fn with_control(attributes: i16, yes: bool) -> i16 {
    if yes {
        attributes | CONTROL_BIT
    } else {
        attributes & !CONTROL_BIT
    }
}

/// Every field of a decoded v2 header, exactly as stored (no validation beyond size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the header at the start of `buf`, which must hold at least [`HEADER_SIZE`] bytes.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        let h: &[u8; HEADER_SIZE] = buf
            .get(..HEADER_SIZE)
            .and_then(|s| s.try_into().ok())
            .ok_or(BatchError::Truncated {
                needed: HEADER_SIZE,
                available: buf.len(),
            })?;
        Ok(Self {
            base_offset: be_i64(h, BASE_OFFSET_OFFSET),
            batch_length: be_i32(h, LENGTH_OFFSET),
            partition_leader_epoch: be_i32(h, PARTITION_LEADER_EPOCH_OFFSET),
            magic: h[MAGIC_OFFSET] as i8,
            crc: be_i32(h, CRC_OFFSET) as u32,
            attributes: be_i16(h, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(h, LAST_OFFSET_DELTA_OFFSET),
            base_timestamp: be_i64(h, BASE_TIMESTAMP_OFFSET),
            max_timestamp: be_i64(h, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(h, PRODUCER_ID_OFFSET),
            producer_epoch: be_i16(h, PRODUCER_EPOCH_OFFSET),
            base_sequence: be_i32(h, BASE_SEQUENCE_OFFSET),
            records_count: be_i32(h, RECORDS_COUNT_OFFSET),
        })
    }

    /// Total size of the batch on disk (`batchLength` + 12), if `batchLength` is plausible.
    pub fn total_size(&self) -> Result<usize, BatchError> {
        if self.batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::InvalidLength(self.batch_length));
        }
        Ok(self.batch_length as usize + LOG_OVERHEAD)
    }

    /// Offset of the last record (saturating, so garbage cannot overflow).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Offset the next batch should start at.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
}

/// Reads `baseOffset` and `batchLength` from the 12-byte log overhead at the start of `buf`.
pub fn peek_offset_and_length(buf: &[u8]) -> Option<(i64, i32)> {
    let h: &[u8; LOG_OVERHEAD] = buf.get(..LOG_OVERHEAD)?.try_into().ok()?;
    let base = i64::from_be_bytes(h[0..8].try_into().ok()?);
    let len = i32::from_be_bytes(h[8..12].try_into().ok()?);
    Some((base, len))
}

fn be_i64(h: &[u8; HEADER_SIZE], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[at..at + 8]);
    i64::from_be_bytes(b)
}

fn be_i32(h: &[u8; HEADER_SIZE], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&h[at..at + 4]);
    i32::from_be_bytes(b)
}

fn be_i16(h: &[u8; HEADER_SIZE], at: usize) -> i16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(&h[at..at + 2]);
    i16::from_be_bytes(b)
}
