//! Kafka error codes for failures that cross from the storage and controller crates into responses.

use kafka_protocol::ResponseError;
use kraftwerk_storage::StorageError;

pub const NONE: i16 = 0;

pub fn code(e: ResponseError) -> i16 {
    e.code()
}

/// The code a produce or fetch gets for a storage failure.
pub fn storage_error_code(e: &StorageError) -> i16 {
    match e {
        StorageError::CorruptMessage(_) => code(ResponseError::CorruptMessage),
        StorageError::RecordTooLarge { .. } => code(ResponseError::MessageTooLarge),
        StorageError::InvalidRecord(_) | StorageError::InvalidRecords { .. } => {
            code(ResponseError::InvalidRecord)
        }
        StorageError::OffsetOutOfRange { .. } => code(ResponseError::OffsetOutOfRange),
        StorageError::InvalidTimestamp { .. } => code(ResponseError::InvalidTimestamp),
        StorageError::InvalidTxnState(_) => code(ResponseError::InvalidTxnState),
        _ => code(ResponseError::KafkaStorageError),
    }
}
