//! Criterion bench of the partition log alone: leader appends and fetch-style reads of
//! ~16 KiB batches of 1 KiB and 100 B records, and the checks a produce request's batches get before they are
//! written (framing and CRC32C, then every record parsed), reported as bytes/second.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kraftwerk_storage::batch::{
    build_batch, raw_records, records_body, validate_batches, KeyValue,
};
use kraftwerk_storage::{LogConfig, PartitionLog};

/// Target size of one producer batch (Kafka's default batch.size is 16 KiB).
const BATCH_BYTES: usize = 16 * 1024;
/// Batches appended per measured iteration (~1 MiB, a typical produce request).
const BATCHES_PER_APPEND: usize = 64;
/// Bytes asked for per read (Kafka's default max.partition.fetch.bytes).
const FETCH_BYTES: usize = 1 << 20;
/// Data laid down before the read bench.
const READ_LOG_BYTES: usize = 256 << 20;

fn make_batch(record_size: usize) -> Vec<u8> {
    let value = vec![0xabu8; record_size];
    let per_batch = (BATCH_BYTES / (record_size + 8)).max(1);
    let records: Vec<KeyValue<'_>> = (0..per_batch)
        .map(|_| (None, Some(value.as_slice())))
        .collect();
    build_batch(0, 0, 1_700_000_000_000, &records)
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 128 << 20,
        retention_bytes: 512 << 20,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage_append");
    for record_size in [1024usize, 100] {
        let batch = make_batch(record_size);
        let request: Vec<u8> = batch.repeat(BATCHES_PER_APPEND);
        group.throughput(Throughput::Bytes(request.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{record_size}B")),
            &request,
            |b, request| {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut log = PartitionLog::open(dir.path(), config()).expect("open");
                b.iter_custom(|iters| {
                    let mut measured = Duration::ZERO;
                    for i in 0..iters {
                        let start = Instant::now();
                        log.append(request, 1_700_000_000_000).expect("append");
                        measured += start.elapsed();
                        if i % 64 == 63 {
                            // Keep disk use bounded; not part of the produce path.
                            log.enforce_retention(0).expect("retention");
                        }
                    }
                    measured
                });
            },
        );
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage_read");
    for record_size in [1024usize, 100] {
        let batch = make_batch(record_size);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = PartitionLog::open(dir.path(), config()).expect("open");
        let request: Vec<u8> = batch.repeat(BATCHES_PER_APPEND);
        while (log.size_in_bytes() as usize) < READ_LOG_BYTES {
            log.append(&request, 1_700_000_000_000).expect("append");
        }
        let per_fetch = (FETCH_BYTES / batch.len()) * batch.len();
        group.throughput(Throughput::Bytes(per_fetch as u64));
        group.bench_function(
            BenchmarkId::from_parameter(format!("{record_size}B")),
            |b| {
                let mut offset = log.log_start_offset();
                b.iter(|| {
                    let r = log.read(offset, FETCH_BYTES, None).expect("read");
                    assert_eq!(r.records.len(), per_fetch);
                    let records_per_batch = (BATCH_BYTES / (record_size + 8)).max(1) as i64;
                    offset += (per_fetch / batch.len()) as i64 * records_per_batch;
                    if offset + (FETCH_BYTES / batch.len()) as i64 * records_per_batch
                        >= log.log_end_offset()
                    {
                        offset = log.log_start_offset();
                    }
                    r
                });
            },
        );
    }
    group.finish();
}

/// What a leader does to a produce request's batches before writing them, without the write: the framing and
/// CRC32C of each batch (`validate_batches`), then each record parsed (the per-record timestamp and offset
/// checks walk `raw_records`).
fn checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("produce_checks");
    for record_size in [1024usize, 100] {
        let request: Vec<u8> = make_batch(record_size).repeat(BATCHES_PER_APPEND);
        group.throughput(Throughput::Bytes(request.len() as u64));
        group.bench_function(
            BenchmarkId::from_parameter(format!("{record_size}B")),
            |b| {
                b.iter(|| {
                    let infos = validate_batches(&request, usize::MAX).expect("valid");
                    let mut records = 0usize;
                    for info in &infos {
                        let body = records_body(&request[info.range()], usize::MAX).expect("body");
                        for record in raw_records(&body, info.records_count) {
                            records += record.expect("record").encoded.len();
                        }
                    }
                    records
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, append, read, checks);
criterion_main!(benches);
