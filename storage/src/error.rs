//! The typed error of every fallible call at this crate's boundary.

use std::io;
use std::path::{Path, PathBuf};

use crate::batch::BatchError;

/// Why a partition-log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A batch failed framing, magic or CRC checks (Kafka CORRUPT_MESSAGE).
    #[error("corrupt message: {0}")]
    CorruptMessage(BatchError),
    /// A batch is larger than `max.message.bytes` (Kafka MESSAGE_TOO_LARGE).
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge { size: usize, max: usize },
    /// A well-framed batch that breaks a rule of the format (Kafka INVALID_RECORD).
    #[error("invalid record: {0}")]
    InvalidRecord(BatchError),
    /// Records refused one by one (KIP-467), such as keyless records sent to a compacted topic
    /// (Kafka INVALID_RECORD with `record_errors`); nothing of the request's batches was written.
    #[error("{message}")]
    InvalidRecords {
        message: String,
        record_errors: Vec<RecordError>,
    },
    /// CreateTime timestamps outside `message.timestamp.before/after.max.ms` (Kafka INVALID_TIMESTAMP with
    /// `record_errors`); nothing was written.
    #[error("{message}")]
    InvalidTimestamp {
        message: String,
        record_errors: Vec<RecordError>,
    },
    /// A transactional batch from a producer that is not in a transaction (Kafka INVALID_TXN_STATE).
    #[error("{0}")]
    InvalidTxnState(String),
    /// The requested offset is outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// A follower/raft append that does not continue the log where it ends.
    #[error("unexpected append offset: expected {expected}, got {actual}")]
    UnexpectedAppendOffset { expected: i64, actual: i64 },
    /// Offsets would not fit i64, or a segment's relative offsets would not fit u32.
    #[error("offset overflow at {0}")]
    OffsetOverflow(i64),
    /// Data already on disk is not a valid log where it should be (found by a read).
    #[error("corrupt log {path} at byte {position}: {reason}")]
    CorruptLog {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One refused record: its index in the batch and why (Kafka's `ProduceResponse.RecordError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

impl StorageError {
    /// Wraps an I/O error with what was being done to which path.
    pub fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The Kafka protocol error code a broker should answer with.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            Self::OffsetOutOfRange { .. } => 1,
            Self::CorruptMessage(_) => 2,
            Self::RecordTooLarge { .. } => 10,
            Self::InvalidRecord(_) | Self::InvalidRecords { .. } => 87,
            Self::InvalidTimestamp { .. } => 32,
            Self::InvalidTxnState(_) => 48,
            Self::Io { .. } | Self::CorruptLog { .. } => 56,
            Self::UnexpectedAppendOffset { .. } | Self::OffsetOverflow(_) => -1,
        }
    }
}

impl From<BatchError> for StorageError {
    /// Sorts batch errors the way Kafka does: framing/CRC problems are corruption, oversize is
    /// its own code, and header inconsistencies are invalid records.
    fn from(e: BatchError) -> Self {
        match e {
            BatchError::TooLarge { size, max } => Self::RecordTooLarge { size, max },
            BatchError::Empty
            | BatchError::InvalidRecordCount(_)
            | BatchError::InvalidLastOffsetDelta(_)
            | BatchError::RecordCountMismatch { .. }
            | BatchError::MalformedRecord(_)
            | BatchError::Compressed
            | BatchError::Overflow => Self::InvalidRecord(e),
            BatchError::Decompression(_) => Self::CorruptMessage(e),
            BatchError::Truncated { .. }
            | BatchError::InvalidLength(_)
            | BatchError::UnsupportedMagic(_)
            | BatchError::CrcMismatch { .. }
            | BatchError::UnknownCompression(_) => Self::CorruptMessage(e),
        }
    }
}
