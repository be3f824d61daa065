//! Kafka RecordBatch v2: header decoding, batch validation, in-place rewrites, record
//! iteration and a builder. Pure functions over byte slices with no I/O, so they can be fuzzed.

mod builder;
mod compression;
mod error;
mod header;
mod raw;
mod records;
mod rewrite;
mod validate;
mod varint;

#[cfg(test)]
mod tests;

pub use builder::{build_batch, BatchBuilder, Header, KeyValue};
pub use compression::{compress, compress_with_level, decompress};
pub use error::BatchError;
pub use header::{
    is_control, is_transactional, peek_offset_and_length, BatchHeader, Compression, TimestampType,
    HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2,
};
pub use raw::{
    decompressed_copy, encode_batch, find_record, raw_records, records_body, RawRecord, RecordsBody,
};
pub use records::{records, Record, RecordHeaders, RecordIter};
pub use rewrite::{
    recompute_crc, set_base_offset, set_log_append_time, set_partition_leader_epoch,
    stamp_log_append_time,
};
pub use validate::{
    validate_batch, validate_batches, validate_stored_batch, validate_stored_batches, BatchInfo,
};
