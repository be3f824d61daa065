//! Helpers shared by the partition-log integration tests.
#![allow(dead_code)]

use kraftwerk_storage::batch::{build_batch, records, validate_batches, BatchInfo, KeyValue};
use kraftwerk_storage::{LogConfig, PartitionLog};
use std::path::Path;

/// A batch of `n` records whose values are `value_len` bytes tagged with `tag`.
pub fn batch(n: usize, value_len: usize, tag: u8, timestamp: i64) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| vec![tag ^ i as u8; value_len]).collect();
    let recs: Vec<KeyValue<'_>> = values.iter().map(|v| (None, Some(v.as_slice()))).collect();
    build_batch(0, 0, timestamp, &recs)
}

/// Opens a log in `dir` with `config`.
pub fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config).expect("open log")
}

/// Reads everything from `from` to the log end, batch infos in order.
pub fn read_all(log: &PartitionLog, from: i64) -> Vec<BatchInfo> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, None).expect("read");
        let infos = validate_batches(&r.records, usize::MAX).expect("valid batches");
        assert!(!infos.is_empty(), "no progress reading at {offset}");
        offset = infos.last().unwrap().last_offset() + 1;
        out.extend(infos);
    }
    out
}

/// Offsets of every record from `from` to the end, checking they are contiguous batches.
pub fn record_offsets(log: &PartitionLog, from: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, None).expect("read");
        let infos = validate_batches(&r.records, usize::MAX).expect("valid batches");
        assert!(!infos.is_empty());
        for info in &infos {
            let bytes = &r.records[info.range()];
            for rec in records(bytes).expect("uncompressed") {
                out.push(rec.expect("record").offset);
            }
        }
        offset = infos.last().unwrap().last_offset() + 1;
    }
    out
}

/// A config with small segments and index interval so tests exercise rolling and indexes.
pub fn small_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}
