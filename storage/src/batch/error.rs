//! Why a buffer of record batches was rejected.

/// A reason a record batch (or the buffer holding it) is not a valid Kafka v2 batch.
///
/// The partition log maps these onto Kafka error codes (see `StorageError`), so the variants
/// keep the distinctions Kafka makes: corruption, oversize, and semantically invalid batches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The buffer held no batch at all.
    #[error("no record batch in buffer")]
    Empty,
    /// The buffer ends before the batch (or its header) does.
    #[error("truncated record batch: need {needed} bytes, {available} available")]
    Truncated { needed: usize, available: usize },
    /// The batchLength field cannot describe a v2 batch.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// The batch is larger than the configured maximum.
    #[error("record batch of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge { size: usize, max: usize },
    /// Only magic 2 (RecordBatch v2) is supported.
    #[error("unsupported magic byte {0}")]
    UnsupportedMagic(i8),
    /// The stored CRC32C does not match the batch contents.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    /// Attribute bits 0-2 name no known codec.
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
    /// The batch claims no records, or a negative number of them.
    #[error("invalid record count {0}")]
    InvalidRecordCount(i32),
    /// lastOffsetDelta is negative.
    #[error("invalid last offset delta {0}")]
    InvalidLastOffsetDelta(i32),
    /// For an uncompressed batch lastOffsetDelta + 1 must equal recordsCount.
    #[error("record count {records_count} does not match last offset delta {last_offset_delta}")]
    RecordCountMismatch {
        records_count: i32,
        last_offset_delta: i32,
    },
    /// Record-level decoding needs an uncompressed batch.
    #[error("record iteration needs an uncompressed batch")]
    Compressed,
    /// A record inside the batch is malformed.
    #[error("malformed record: {0}")]
    MalformedRecord(&'static str),
    /// A compressed batch's records could not be decompressed (or grew past the allowed size).
    #[error("cannot decompress records: {0}")]
    Decompression(String),
    /// The encoded batch would not fit the i32 length field.
    #[error("records do not fit in one batch")]
    Overflow,
}
