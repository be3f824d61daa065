//! Criterion bench of the log cleaner alone: a compacted log whose keys were overwritten many times is
//! planned, cleaned and swapped in, reported as bytes of dirty log cleaned per second. Uncompressed and lz4
//! batches (the latter decompressed to read keys and recompressed).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kraftwerk_storage::batch::{BatchBuilder, Compression};
use kraftwerk_storage::{CleanupPolicy, LogConfig, PartitionLog};

/// Distinct keys: each is overwritten `LOG_BYTES / (KEYS * record size)` times.
const KEYS: usize = 20_000;
/// Records per producer batch.
const PER_BATCH: usize = 50;
/// Value size (the key is ~10 bytes).
const VALUE_BYTES: usize = 200;
/// Dirty log laid down before each cleaning.
const LOG_BYTES: u64 = 48 << 20;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4 << 20,
        cleanup_policy: CleanupPolicy::COMPACT,
        min_cleanable_dirty_ratio: 0.0,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// A fresh log of about `LOG_BYTES` of overwrites; returns it and the bytes of its sealed segments.
fn dirty_log(dir: &std::path::Path, codec: Compression) -> (PartitionLog, u64) {
    let mut log = PartitionLog::open(dir, config()).expect("open");
    let value = vec![0x5au8; VALUE_BYTES];
    let mut next_key = 0usize;
    while log.size_in_bytes() < LOG_BYTES {
        let mut b = BatchBuilder::new(0, 0).compression(codec);
        for _ in 0..PER_BATCH {
            let key = format!("key{:06}", next_key % KEYS);
            // Values differ a little so lz4 has real work.
            let mut v = value.clone();
            v[..8].copy_from_slice(&(next_key as u64).to_be_bytes());
            b.push(1_700_000_000_000, Some(key.as_bytes()), Some(&v), &[])
                .expect("push");
            next_key += 1;
        }
        log.append(&b.build(), 1_700_000_000_000).expect("append");
    }
    let sealed = log
        .cleanable(1_700_000_100_000, None, i64::MAX)
        .map_or(0, |c| c.dirty_bytes);
    (log, sealed)
}

fn clean(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_cleaner");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    for (name, codec) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        let probe = tempfile::tempdir().expect("tempdir");
        let (_, dirty) = dirty_log(probe.path(), codec);
        group.throughput(Throughput::Bytes(dirty));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut measured = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let (mut log, _) = dirty_log(dir.path(), codec);
                    let start = Instant::now();
                    let plan = log
                        .plan_cleaning(1_700_000_100_000, None, i64::MAX)
                        .expect("plan")
                        .expect("due");
                    let cleaned = plan.clean(usize::MAX, &|_| {}).expect("clean");
                    log.commit_cleaning(cleaned)
                        .expect("commit")
                        .expect("swapped");
                    measured += start.elapsed();
                }
                measured
            })
        });
    }
    group.finish();
}

criterion_group!(benches, clean);
criterion_main!(benches);
