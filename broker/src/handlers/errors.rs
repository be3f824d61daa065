//! Kafka error codes for failures that cross from the storage and controller crates into responses.

use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kraftwerk_controller::ControllerError;
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

/// The code and message of one result as Kafka sends them: `(0, null)` with success, the error's code and
/// text otherwise. kafka-protocol's default for these nullable messages is "", which is not what Kafka
/// sends, so a handler sets both from here.
pub fn outcome<T>(result: &Result<T, ControllerError>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(_) => (NONE, None),
        Err(e) => (e.error_code(), Some(StrBytes::from_string(e.message()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_has_a_null_message_and_an_error_its_text() {
        assert_eq!(outcome(&Ok::<(), ControllerError>(())), (0, None));
        let e = ControllerError::InvalidRequest("why".into());
        let (code, message) = outcome::<()>(&Err(e.clone()));
        assert_eq!(code, e.error_code());
        assert_eq!(message.as_deref(), Some(e.message().as_str()));
    }
}
