//! Log compaction: the cleaner keeps the latest record of every key in sealed segments, offsets unchanged,
//! and a crash at any point of the swap leaves a readable log with every latest value.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kraftwerk_storage::batch::{
    decompressed_copy, records, validate_stored_batches, BatchBuilder, BatchHeader, Compression,
};
use kraftwerk_storage::cleaner::{
    checkpoint, CleanableLog, CleanedLog, CleanerConfig, CompactedLogs, LogCleaner,
};
use kraftwerk_storage::{CleanupPolicy, LogConfig, PartitionLog, StorageError};
use parking_lot::Mutex;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn compacted(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        cleanup_policy: CleanupPolicy::COMPACT,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 1_000,
        ..LogConfig::default()
    }
}

/// One batch of keyed records (a `None` value is a tombstone).
fn keyed(recs: &[(&str, Option<&str>)], ts: i64, codec: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, 0).compression(codec);
    for (k, v) in recs {
        b.push(ts, Some(k.as_bytes()), v.map(str::as_bytes), &[])
            .unwrap();
    }
    b.build()
}

/// A record as read back: (offset, key, value).
type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Every record from the log start to the end, with batch headers, checking offsets only grow.
fn read_everything(log: &PartitionLog) -> (Vec<BatchHeader>, Vec<Rec>) {
    let mut headers = Vec::new();
    let mut out: Vec<Rec> = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, None).expect("read");
        let infos = validate_stored_batches(&r.records, usize::MAX).expect("valid batches");
        if infos.is_empty() {
            break;
        }
        for info in &infos {
            let bytes = &r.records[info.range()];
            headers.push(BatchHeader::parse(bytes).unwrap());
            let plain = decompressed_copy(bytes, 1 << 30).unwrap();
            for rec in records(&plain).unwrap() {
                let rec = rec.unwrap();
                if let Some(last) = out.last() {
                    assert!(
                        rec.offset > last.0,
                        "offsets must grow: {} after {}",
                        rec.offset,
                        last.0
                    );
                }
                assert!(rec.offset >= info.base_offset && rec.offset <= info.last_offset());
                out.push((
                    rec.offset,
                    rec.key.map(<[u8]>::to_vec),
                    rec.value.map(<[u8]>::to_vec),
                ));
            }
        }
        offset = infos.last().unwrap().last_offset() + 1;
    }
    (headers, out)
}

/// Key → (offset, value) of its latest record.
fn latest(recs: &[Rec]) -> BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> {
    let mut m = BTreeMap::new();
    for (o, k, v) in recs {
        m.insert(k.clone().unwrap(), (*o, v.clone()));
    }
    m
}

/// Plans, cleans and commits once; the new checkpoint, or `None` if the log was not due.
fn clean(log: &mut PartitionLog, now: i64, checkpoint: Option<i64>) -> Option<i64> {
    let plan = log.plan_cleaning(now, checkpoint, i64::MAX).unwrap()?;
    let cleaned = plan.clean(usize::MAX, &|_| {}).unwrap();
    let end = cleaned.end();
    log.commit_cleaning(cleaned).unwrap().expect("committed");
    Some(end)
}

/// Writes `rounds` overwrites of `keys` keys, one record per batch, values `k<key>-r<round>`.
fn overwrite(log: &mut PartitionLog, keys: usize, rounds: usize, codec: Compression) {
    overwrite_keys(log, "k", keys, rounds, codec)
}

fn overwrite_keys(
    log: &mut PartitionLog,
    prefix: &str,
    keys: usize,
    rounds: usize,
    codec: Compression,
) {
    for r in 0..rounds {
        for k in 0..keys {
            let (key, value) = (
                format!("{prefix}{k}"),
                format!("{prefix}{k}-r{r}-{}", "x".repeat(40)),
            );
            log.append(&keyed(&[(&key, Some(&value))], 1000 + r as i64, codec), 0)
                .unwrap();
        }
    }
}

#[test]
fn keys_overwritten_many_times_keep_only_their_latest_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), compacted(2048)).unwrap();
    overwrite(&mut log, 10, 60, Compression::None);
    let (_, before) = read_everything(&log);
    let want = latest(&before);
    let size_before = log.size_in_bytes();
    let segments_before = log.segment_count();
    assert!(segments_before > 20);
    let end = clean(&mut log, 10_000, None).expect("due");
    assert!(log.size_in_bytes() < size_before / 4);
    let (_, after) = read_everything(&log);
    assert_eq!(latest(&after), want);
    // Below the cleaned-to offset, one record per key.
    let below: Vec<&Rec> = after.iter().filter(|r| r.0 < end).collect();
    let mut keys: Vec<_> = below.iter().map(|r| r.1.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), below.len(), "a key twice below {end}");
    // Offsets kept: the log end and start did not move.
    assert_eq!(log.log_end_offset(), 600);
    assert_eq!(log.log_start_offset(), 0);
    // Nothing new is dirty: not due again.
    assert_eq!(clean(&mut log, 10_000, Some(end)), None);
    // More overwrites: the next cleaning removes the older values left below the checkpoint.
    overwrite(&mut log, 10, 30, Compression::None);
    let want = latest(&read_everything(&log).1);
    let segments_mid = log.segment_count();
    let end2 = clean(&mut log, 10_000, Some(end)).expect("due");
    assert!(end2 > end);
    let (_, after) = read_everything(&log);
    assert_eq!(latest(&after), want);
    assert_eq!(after.iter().filter(|r| r.0 < end2).count(), 10);
    // The small segments the first cleaning left were merged (Kafka groups them up to segment.bytes).
    assert!(
        log.segment_count() + 10 < segments_mid,
        "{} of {segments_mid}",
        log.segment_count()
    );
    // Reopened after a clean close and after a crash: the same.
    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), compacted(2048)).unwrap();
    assert_eq!(read_everything(&log).1, after);
    drop(log);
    let log = PartitionLog::open(dir.path(), compacted(2048)).unwrap();
    assert_eq!(read_everything(&log).1, after);
}

#[test]
fn dirty_ratio_and_compaction_lags_decide_when_a_log_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        min_cleanable_dirty_ratio: 0.5,
        ..compacted(2048)
    };
    let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    overwrite(&mut log, 100, 5, Compression::None);
    let c = log.cleanable(10_000, None, i64::MAX).unwrap();
    assert_eq!(c.dirty_ratio, 1.0);
    assert!(c.due);
    // Nothing at or above the high watermark is cleaned.
    let c = log.cleanable(10_000, None, 5).unwrap();
    assert_eq!(c.first_uncleanable, 0);
    assert!(!c.due);
    let end = clean(&mut log, 10_000, None).unwrap();
    // A little new dirt: below the ratio, not due...
    overwrite(&mut log, 10, 3, Compression::None);
    let c = log.cleanable(10_000, Some(end), i64::MAX).unwrap();
    assert!(c.dirty_ratio < 0.5, "{c:?}");
    assert!(!c.due);
    // ...unless max.compaction.lag.ms has passed since the dirty records were written (timestamps 1000..).
    log.update_config(LogConfig {
        max_compaction_lag_ms: 5_000,
        ..config.clone()
    });
    assert!(log.cleanable(10_000, Some(end), i64::MAX).unwrap().due);
    assert!(!log.cleanable(5_500, Some(end), i64::MAX).unwrap().due);
    // min.compaction.lag.ms holds back segments with records newer than it.
    log.update_config(LogConfig {
        min_compaction_lag_ms: 60_000,
        min_cleanable_dirty_ratio: 0.0,
        ..config
    });
    let c = log.cleanable(10_000, None, i64::MAX).unwrap();
    assert_eq!(c.dirty_bytes, 0, "{c:?}");
    assert!(!c.due);
    let c = log.cleanable(100_000, None, i64::MAX).unwrap();
    assert!(c.due, "{c:?}");
    // Not compacted: never cleanable.
    log.update_config(LogConfig::default());
    assert_eq!(log.cleanable(10_000, None, i64::MAX), None);
}

#[test]
fn tombstones_stay_for_delete_retention_after_cleaning_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), compacted(1024)).unwrap();
    overwrite(&mut log, 6, 10, Compression::None);
    for k in 0..3 {
        let key = format!("k{k}");
        log.append(&keyed(&[(&key, None)], 2000, Compression::None), 0)
            .unwrap();
    }
    // Push the tombstones out of the active segment.
    overwrite_keys(&mut log, "filler", 1, 40, Compression::None);
    let end = clean(&mut log, 50_000, None).unwrap();
    let (headers, recs) = read_everything(&log);
    let l = latest(&recs);
    for k in 0..3 {
        assert_eq!(l[format!("k{k}").as_bytes()].1, None, "tombstone k{k} kept");
        assert!(
            recs.iter()
                .filter(|r| r.1.as_deref() == Some(format!("k{k}").as_bytes()))
                .count()
                == 1
        );
    }
    // The batches holding them carry the delete horizon (KIP-534): cleaning time + delete.retention.ms.
    assert!(headers
        .iter()
        .any(|h| h.attributes & 0x40 != 0 && h.base_timestamp == 51_000));
    // Before the horizon nothing is due; after it the tombstones go and the other keys stay.
    assert_eq!(clean(&mut log, 50_500, Some(end)), None);
    clean(&mut log, 51_000, Some(end)).expect("due once the horizon passed");
    let (_, recs) = read_everything(&log);
    let l = latest(&recs);
    for k in 0..3 {
        assert!(
            !l.contains_key(format!("k{k}").as_bytes()),
            "tombstone k{k} removed"
        );
    }
    for k in 3..6 {
        assert_eq!(
            l[format!("k{k}").as_bytes()].1.as_deref(),
            Some(format!("k{k}-r9-{}", "x".repeat(40)).as_bytes())
        );
    }
}

#[test]
fn compressed_batches_of_every_codec_are_recompressed_with_their_codec() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), compacted(1024)).unwrap();
        for r in 0..40 {
            let values: Vec<String> = (0..5)
                .map(|k| format!("k{k}-r{r}-{}", "y".repeat(50)))
                .collect();
            // Keys 0..5 in every batch, plus one key unique to this batch that must survive.
            let unique = format!("u{r}");
            let mut recs: Vec<(&str, Option<&str>)> = ["k0", "k1", "k2", "k3", "k4"]
                .iter()
                .zip(&values)
                .map(|(k, v)| (*k, Some(v.as_str())))
                .collect();
            recs.push((&unique, Some("once")));
            log.append(&keyed(&recs, 1000, codec), 0).unwrap();
        }
        let (_, before) = read_everything(&log);
        let end = clean(&mut log, 10_000, None).expect("due");
        let (headers, after) = read_everything(&log);
        assert_eq!(latest(&after), latest(&before), "{codec:?}");
        assert!(after.len() < before.len() / 2, "{codec:?}");
        for h in &headers {
            if h.records_count > 0 {
                assert_eq!(Compression::from_attributes(h.attributes).unwrap(), codec);
            }
        }
        // Cleaned batches keep their offset span: the last offset of every batch is where it was.
        assert!(
            headers.iter().all(|h| (h.last_offset() + 1) % 6 == 0),
            "{codec:?}"
        );
        assert!(end > 0);
    }
}

#[test]
fn keyless_records_are_refused_on_a_compacted_topic_with_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(&dir.path().join("t-3"), compacted(4096)).unwrap();
    for codec in CODECS {
        let mut b = BatchBuilder::new(0, 0).compression(codec);
        b.push(0, Some(b"k"), Some(b"v"), &[]).unwrap();
        b.push(0, None, Some(b"v"), &[]).unwrap();
        b.push(0, Some(b"k"), None, &[]).unwrap();
        b.push(0, None, None, &[]).unwrap();
        match log.append(&b.build(), 0) {
            Err(StorageError::InvalidRecords {
                message,
                record_errors,
            }) => {
                assert_eq!(
                    record_errors
                        .iter()
                        .map(|e| e.batch_index)
                        .collect::<Vec<_>>(),
                    vec![1, 3]
                );
                assert_eq!(
                    record_errors[0].message,
                    "Compacted topic cannot accept message without key in topic partition t-3."
                );
                assert!(message.contains("2 record errors"), "{message}");
            }
            other => panic!("{codec:?}: {other:?}"),
        }
    }
    assert_eq!(log.log_end_offset(), 0);
    log.append(&keyed(&[("k", Some("v"))], 0, Compression::Zstd), 0)
        .unwrap();
    // The same batch on a delete topic is fine.
    let mut plain = PartitionLog::open(&dir.path().join("d-0"), LogConfig::default()).unwrap();
    let mut b = BatchBuilder::new(0, 0);
    b.push(0, None, Some(b"v"), &[]).unwrap();
    plain.append(&b.build(), 0).unwrap();
}

#[test]
fn producer_state_transactions_and_control_batches_survive_as_kafka_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), compacted(1024)).unwrap();
    // Producer 7's only batch is overwritten later: kept as an empty batch with its sequence.
    let mut b = BatchBuilder::new(0, 0).producer(7, 2, 40);
    b.push(0, Some(b"a"), Some(b"old"), &[]).unwrap();
    log.append(&b.build(), 0).unwrap();
    log.append(&keyed(&[("b", Some("committed"))], 0, Compression::None), 0)
        .unwrap();
    // An aborted transaction of producer 9 overwrites b: it must neither stay nor shadow b.
    let mut t = BatchBuilder::new(0, 0)
        .producer(9, 0, 0)
        .transactional(true);
    t.push(0, Some(b"b"), Some(b"aborted"), &[]).unwrap();
    log.append(&t.build(), 0).unwrap();
    let abort_marker = {
        let mut m = BatchBuilder::new(0, 0)
            .producer(9, 0, -1)
            .transactional(true)
            .control(true);
        m.push(0, Some(&[0, 0, 0, 0]), Some(&[0, 0, 0, 0, 0, 0]), &[])
            .unwrap();
        m.build()
    };
    log.append(&abort_marker, 0).unwrap();
    for i in 0..30 {
        let v = format!("new-{i}-{}", "z".repeat(60));
        log.append(&keyed(&[("a", Some(&v))], 0, Compression::None), 0)
            .unwrap();
    }
    clean(&mut log, 10_000, None).expect("due");
    let (headers, recs) = read_everything(&log);
    let p7: Vec<&BatchHeader> = headers.iter().filter(|h| h.producer_id == 7).collect();
    assert_eq!(p7.len(), 1);
    assert_eq!(
        (
            p7[0].records_count,
            p7[0].base_sequence,
            p7[0].producer_epoch
        ),
        (0, 40, 2)
    );
    assert_eq!(p7[0].base_offset, 0);
    let l = latest(&recs);
    assert_eq!(
        l[b"b".as_slice()].1.as_deref(),
        Some(b"committed".as_slice())
    );
    assert!(
        headers
            .iter()
            .any(|h| h.producer_id == 9 && h.attributes & 0x20 != 0),
        "marker kept"
    );
    assert!(!recs
        .iter()
        .any(|r| r.2.as_deref() == Some(b"aborted".as_slice())));
    // A follower replicating the compacted log takes its gaps and empty batches and ends where it does.
    let mut follower = PartitionLog::open(&dir.path().join("follower"), compacted(1024)).unwrap();
    let mut offset = 0;
    while offset < log.log_end_offset() {
        let r = log.read(offset, 700, None).unwrap();
        offset = follower.append_as_follower(&r.records).unwrap().last_offset + 1;
    }
    assert_eq!(follower.log_end_offset(), log.log_end_offset());
    assert_eq!(read_everything(&follower).1, recs);
}

/// Cleans without committing: the cleaned files are on disk, the log untouched.
fn cleaned_but_not_swapped(log: &PartitionLog) -> Vec<(i64, i64)> {
    let plan = log.plan_cleaning(10_000, None, i64::MAX).unwrap().unwrap();
    let cleaned: CleanedLog = plan.clean(usize::MAX, &|_| {}).unwrap();
    let ranges = cleaned.replaced_ranges();
    // As if the process died here: the files stay.
    std::mem::forget(cleaned);
    ranges
}

fn names(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

#[test]
fn a_crash_before_the_swap_commits_leaves_the_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), compacted(2048)).unwrap();
    overwrite(&mut log, 8, 40, Compression::Lz4);
    let (_, before) = read_everything(&log);
    cleaned_but_not_swapped(&log);
    assert!(!names(dir.path(), ".log.cleaned").is_empty());
    drop(log); // no clean shutdown
    let log = PartitionLog::open(dir.path(), compacted(2048)).unwrap();
    assert!(names(dir.path(), ".cleaned").is_empty());
    assert_eq!(read_everything(&log).1, before);
}

#[test]
fn a_crash_after_the_swap_commits_completes_it_on_open() {
    // At each step after the commit point: swap renamed but old segments all there; some removed; the
    // indexes renamed but the log still `.swap`.
    for step in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), compacted(2048)).unwrap();
        overwrite(&mut log, 8, 40, Compression::Snappy);
        // A first cleaning leaves small segments, which the second one merges.
        clean(&mut log, 10_000, None).unwrap();
        overwrite(&mut log, 8, 40, Compression::Snappy);
        let (_, before) = read_everything(&log);
        let want = latest(&before);
        let end_offset = log.log_end_offset();
        let ranges = cleaned_but_not_swapped(&log);
        drop(log);
        let d = dir.path();
        let old_bases: Vec<i64> = names(d, ".log")
            .iter()
            .filter_map(|n| n.trim_end_matches(".log").parse().ok())
            .collect();
        let (base, end) = *ranges
            .iter()
            .max_by_key(|(b, e)| old_bases.iter().filter(|o| (*b..*e).contains(o)).count())
            .unwrap();
        std::fs::write(d.join(format!("{base:020}.swap.end")), format!("{end}\n")).unwrap();
        std::fs::rename(
            d.join(format!("{base:020}.log.cleaned")),
            d.join(format!("{base:020}.log.swap")),
        )
        .unwrap();
        let old: Vec<i64> = names(d, ".log")
            .iter()
            .filter_map(|n| n.trim_end_matches(".log").parse().ok())
            .filter(|b| (base..end).contains(b))
            .collect();
        assert!(old.len() > 1);
        if step >= 1 {
            for b in old.iter().take(old.len() / 2) {
                for ext in ["log", "index", "timeindex"] {
                    let _ = std::fs::remove_file(d.join(format!("{b:020}.{ext}")));
                }
            }
        }
        if step >= 2 {
            for b in &old {
                for ext in ["log", "index", "timeindex"] {
                    let _ = std::fs::remove_file(d.join(format!("{b:020}.{ext}")));
                }
            }
            for ext in ["index", "timeindex"] {
                std::fs::rename(
                    d.join(format!("{base:020}.{ext}.cleaned")),
                    d.join(format!("{base:020}.{ext}")),
                )
                .unwrap();
            }
        }
        let log = PartitionLog::open(d, compacted(2048)).unwrap();
        assert!(
            names(d, ".swap").is_empty()
                && names(d, ".cleaned").is_empty()
                && names(d, ".swap.end").is_empty()
        );
        let (_, after) = read_everything(&log);
        assert_eq!(latest(&after), want, "step {step}");
        assert!(
            after.len() < before.len(),
            "step {step}: cleaned data in place"
        );
        let below: Vec<&Rec> = after.iter().filter(|r| r.0 < end).collect();
        assert!(
            below.len() <= 8,
            "step {step}: old segments gone ({} records below {end})",
            below.len()
        );
        assert_eq!(log.log_end_offset(), end_offset);
    }
}

#[test]
fn a_log_that_changed_during_cleaning_is_not_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), compacted(2048)).unwrap();
    overwrite(&mut log, 8, 40, Compression::None);
    let plan = log.plan_cleaning(10_000, None, i64::MAX).unwrap().unwrap();
    let cleaned = plan.clean(usize::MAX, &|_| {}).unwrap();
    // A follower truncation into the cleaned range meanwhile.
    log.truncate_to(100).unwrap();
    let (_, before) = read_everything(&log);
    assert_eq!(log.commit_cleaning(cleaned).unwrap(), None);
    assert!(names(dir.path(), ".cleaned").is_empty());
    assert_eq!(read_everything(&log).1, before);
    // Truncation makes the range dirty again even with a checkpoint above it.
    let c = log.cleanable(10_000, Some(10_000), i64::MAX).unwrap();
    assert!(c.first_dirty <= 100, "{c:?}");
}

/// A log shared with the cleaner threads, as a broker's partition is.
struct Shared {
    dir: std::path::PathBuf,
    log: Mutex<PartitionLog>,
}

impl CleanableLog for Shared {
    fn topic_partition(&self) -> (String, i32) {
        ("t".into(), 0)
    }
    fn log_dir(&self) -> std::path::PathBuf {
        self.dir.clone()
    }
    fn with_log(&self, f: &mut dyn FnMut(&mut PartitionLog, i64)) {
        f(&mut self.log.lock(), i64::MAX)
    }
}

struct Logs(Vec<Arc<Shared>>);

impl CompactedLogs for Logs {
    fn logs(&self) -> Vec<Arc<dyn CleanableLog>> {
        self.0
            .iter()
            .map(|l| l.clone() as Arc<dyn CleanableLog>)
            .collect()
    }
}

#[test]
fn cleaner_threads_clean_in_the_background_and_checkpoint_progress() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(&dir.path().join("t-0"), compacted(2048)).unwrap();
    overwrite(&mut log, 10, 40, Compression::Gzip);
    let want = latest(&read_everything(&log).1);
    let shared = Arc::new(Shared {
        dir: dir.path().to_path_buf(),
        log: Mutex::new(log),
    });
    let config = CleanerConfig {
        threads: 2,
        backoff_ms: 10,
        ..CleanerConfig::default()
    };
    let cleaner = LogCleaner::start(config, Arc::new(Logs(vec![shared.clone()]))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let cleaned_to = loop {
        if let Some(&o) = checkpoint::read(dir.path())
            .unwrap()
            .get(&("t".to_string(), 0))
        {
            break o;
        }
        assert!(Instant::now() < deadline, "cleaner never checkpointed");
        // Appends go on meanwhile: the cleaner holds the lock only to plan and swap.
        shared
            .log
            .lock()
            .append(&keyed(&[("live", Some("v"))], 1000, Compression::None), 0)
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    };
    cleaner.stop();
    let log = shared.log.lock();
    assert!(cleaned_to > 0);
    let (_, recs) = read_everything(&log);
    let l = latest(&recs);
    for (k, v) in want {
        assert_eq!(l[&k], v);
    }
    assert!(
        recs.iter()
            .filter(|r| r.0 < cleaned_to && r.1.as_deref() != Some(b"live".as_slice()))
            .count()
            <= 10
    );
}

#[test]
fn a_small_key_map_cleans_in_several_passes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), compacted(2048)).unwrap();
    overwrite(&mut log, 200, 5, Compression::None);
    let want = latest(&read_everything(&log).1);
    let full_end = log
        .cleanable(10_000, None, i64::MAX)
        .unwrap()
        .first_uncleanable;
    // Room for a few dozen keys: each pass stops once the map is full, the next one goes on from there.
    let mut checkpoint = None;
    let mut passes = 0;
    while let Some(plan) = log.plan_cleaning(10_000, checkpoint, i64::MAX).unwrap() {
        let cleaned = plan.clean(2_000, &|_| {}).unwrap();
        let end = cleaned.end();
        assert!(checkpoint.is_none_or(|c| end > c), "progress");
        log.commit_cleaning(cleaned).unwrap().unwrap();
        checkpoint = Some(end);
        passes += 1;
        assert!(passes < 100);
    }
    assert!(passes > 2, "{passes} passes");
    assert_eq!(checkpoint, Some(full_end));
    let (_, recs) = read_everything(&log);
    assert_eq!(latest(&recs), want);
}

/// A log with two rounds of overwrites and one cleaning behind it, and a second cleaning ready to swap in:
/// (dir, log, records before, cleaned).
fn ready_to_swap() -> (tempfile::TempDir, PartitionLog, Vec<Rec>, CleanedLog) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), compacted(2048)).unwrap();
    overwrite(&mut log, 8, 40, Compression::Lz4);
    clean(&mut log, 10_000, None).unwrap();
    overwrite(&mut log, 8, 40, Compression::Lz4);
    let (_, before) = read_everything(&log);
    let plan = log.plan_cleaning(10_000, None, i64::MAX).unwrap().unwrap();
    let cleaned = plan.clean(usize::MAX, &|_| {}).unwrap();
    (dir, log, before, cleaned)
}

#[test]
fn the_swap_steps_without_the_lock_let_appends_and_reads_go_on() {
    // The cleaner threads run stage (lock), commit (fsync, no lock), install the files (no lock), install in
    // memory (lock), finish (fsync, no lock); between them the log is the owner's: appends and reads go on,
    // and the result is the same.
    let (dir, mut log, before, mut cleaned) = ready_to_swap();
    let d = dir.path();
    assert!(
        !names(d, ".swap.end").is_empty(),
        "end markers written while cleaning"
    );
    assert!(log.stage_cleaning(&mut cleaned).unwrap());
    assert!(!names(d, ".log.swap").is_empty() && names(d, ".log.cleaned").is_empty());
    log.append(
        &keyed(&[("k0", Some("during-1"))], 20_000, Compression::None),
        0,
    )
    .unwrap();
    assert_eq!(read_everything(&log).1.len(), before.len() + 1);
    cleaned.commit().unwrap();
    log.append(
        &keyed(&[("k1", Some("during-2"))], 20_000, Compression::None),
        0,
    )
    .unwrap();
    // The old segments' files go while the log still lists them: reads go on through their open handles.
    cleaned.install_files().unwrap();
    assert!(names(d, ".log.swap").is_empty() && names(d, ".cleaned").is_empty());
    assert_eq!(read_everything(&log).1.len(), before.len() + 2);
    log.append(
        &keyed(&[("k2", Some("during-3"))], 20_000, Compression::None),
        0,
    )
    .unwrap();
    let swapped = log.install_cleaning(cleaned).unwrap().expect("installed");
    // A crash here leaves only the end markers, which the next open drops.
    assert!(!names(d, ".swap.end").is_empty());
    let stats = swapped.finish().unwrap();
    assert!(stats.records_removed > 0);
    assert!(names(d, ".swap.end").is_empty());
    let (_, after) = read_everything(&log);
    let mut want = latest(&before);
    let l = latest(&after);
    for k in ["k0", "k1", "k2"] {
        want.insert(k.as_bytes().to_vec(), l[k.as_bytes()].clone());
    }
    assert_eq!(
        l[b"k0".as_slice()].1.as_deref(),
        Some(b"during-1".as_slice())
    );
    assert_eq!(
        l[b"k1".as_slice()].1.as_deref(),
        Some(b"during-2".as_slice())
    );
    assert_eq!(
        l[b"k2".as_slice()].1.as_deref(),
        Some(b"during-3".as_slice())
    );
    assert_eq!(latest(&after), want);
    assert!(after.len() < before.len());
    drop(log);
    let log = PartitionLog::open(d, compacted(2048)).unwrap();
    assert_eq!(read_everything(&log).1, after);
}

#[test]
fn a_crash_between_the_swap_steps_leaves_the_old_or_the_new_segments() {
    // After stage (rename not yet fsynced: on disk it may or may not be there, both are the old data), after
    // commit, after the files are installed, and after the in-memory install (end markers left): every case
    // opens to all the latest values.
    for step in 0..4 {
        let (dir, mut log, before, mut cleaned) = ready_to_swap();
        let want = latest(&before);
        let end_offset = log.log_end_offset();
        assert!(log.stage_cleaning(&mut cleaned).unwrap());
        if step >= 1 {
            cleaned.commit().unwrap();
        }
        if step >= 2 {
            cleaned.install_files().unwrap();
        }
        if step >= 3 {
            std::mem::forget(log.install_cleaning(cleaned).unwrap().expect("installed"));
        } else {
            std::mem::forget(cleaned);
        }
        std::mem::forget(log); // no clean shutdown, nothing closed
        let d = dir.path();
        let log = PartitionLog::open(d, compacted(2048)).unwrap();
        assert!(
            names(d, ".swap").is_empty()
                && names(d, ".cleaned").is_empty()
                && names(d, ".swap.end").is_empty(),
            "step {step}"
        );
        let (_, after) = read_everything(&log);
        assert_eq!(latest(&after), want, "step {step}");
        assert!(after.len() < before.len(), "step {step}: swap completed");
        assert_eq!(log.log_end_offset(), end_offset);
    }
}

#[test]
fn truncation_or_deletion_while_a_swap_is_pending_settles_it_first() {
    // Between stage and install the old segments may only change once the swap is settled: undone while only
    // staged (a crash afterwards must not complete a swap over segments that were truncated or deleted,
    // resurrecting their records), swapped in once its files are installed (the change then applies to the
    // cleaned segments).
    for files_installed in [false, true] {
        for change in ["truncate", "truncate fully", "delete records", "close"] {
            let what = format!("{change}, files installed: {files_installed}");
            let (dir, mut log, before, mut cleaned) = ready_to_swap();
            let d = dir.path();
            assert!(log.stage_cleaning(&mut cleaned).unwrap());
            cleaned.commit().unwrap();
            if files_installed {
                cleaned.install_files().unwrap();
            }
            match change {
                "truncate" => log.truncate_to(100).unwrap(),
                "truncate fully" => log.truncate_fully_and_start_at(5).unwrap(),
                "delete records" => {
                    let mid = log.log_end_offset() - 10;
                    log.delete_records_before(mid).unwrap();
                }
                _ => {
                    log.close().unwrap();
                    let mut log = PartitionLog::open(d, compacted(2048)).unwrap();
                    assert!(names(d, ".swap").is_empty() && names(d, ".cleaned").is_empty());
                    let (_, after) = read_everything(&log);
                    assert_eq!(latest(&after), latest(&before), "{what}");
                    assert_eq!(after.len() < before.len(), files_installed, "{what}");
                    let installed = log.commit_cleaning(cleaned).unwrap();
                    assert_eq!(installed, None, "{what}");
                    continue;
                }
            }
            assert!(
                names(d, ".swap").is_empty() && names(d, ".cleaned").is_empty(),
                "{what}: swap settled before the segments changed"
            );
            let (_, now) = read_everything(&log);
            let installed = log.install_cleaning(cleaned).unwrap();
            assert_eq!(installed.is_some(), files_installed, "{what}");
            if let Some(swapped) = installed {
                swapped.finish().unwrap();
            }
            assert_eq!(read_everything(&log).1, now, "{what}");
            std::mem::forget(log); // crash
            let log = PartitionLog::open(d, compacted(2048)).unwrap();
            assert_eq!(read_everything(&log).1, now, "{what}: nothing resurrected");
        }
    }
}
