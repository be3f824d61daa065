//! Retention by time and size, DeleteRecords, and timestamp lookups.

mod common;

use common::{batch, open, record_offsets, small_config};
use kraftwerk_storage::batch::{BatchBuilder, TimestampType};
use kraftwerk_storage::{CleanupPolicy, LogConfig, StorageError};

/// 10 segments of 2 batches each (3 records per batch); batch i has timestamp 1000 * i.
fn ten_segments(dir: &std::path::Path, config: LogConfig) -> kraftwerk_storage::PartitionLog {
    let one = batch(3, 200, 0, 0).len() as u64;
    let config = LogConfig {
        segment_bytes: one * 2,
        ..config
    };
    let mut log = open(dir, config);
    for i in 0..20 {
        log.append(&batch(3, 200, i as u8, 1000 * i), 0).unwrap();
    }
    assert_eq!(log.segment_count(), 10);
    log
}

#[test]
fn retention_by_time_deletes_old_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 5_000,
        ..small_config(0)
    };
    let mut log = ten_segments(dir.path(), config);
    // Segment k holds timestamps 2000k and 2000k+1000; at now=12_500 those with max < 7_500 go.
    assert_eq!(log.enforce_retention(12_500).unwrap(), 4);
    assert_eq!(log.segment_count(), 6);
    assert_eq!(log.log_start_offset(), 24);
    assert!(matches!(
        log.read(23, 100, None),
        Err(StorageError::OffsetOutOfRange { offset: 23, .. })
    ));
    assert_eq!(record_offsets(&log, 24), (24..60).collect::<Vec<_>>());
    // Far in the future everything but the active segment goes.
    assert_eq!(log.enforce_retention(1_000_000).unwrap(), 5);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), 54);
    assert_eq!(log.log_end_offset(), 60);
    drop(log);
    let log = open(dir.path(), small_config(0));
    assert_eq!(log.log_start_offset(), 54);
}

#[test]
fn compact_alone_never_deletes_by_retention_compact_delete_does() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 5_000,
        retention_bytes: 1,
        ..small_config(0)
    };
    // Written as keyless records under `delete`, then switched to `compact`.
    let mut log = ten_segments(dir.path(), config.clone());
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        ..config
    };
    log.update_config(config.clone());
    assert_eq!(log.enforce_retention(1_000_000).unwrap(), 0);
    assert_eq!(log.segment_count(), 10);
    assert_eq!(log.log_start_offset(), 0);
    // A moved log start still drops the segments wholly below it.
    log.delete_records_before(13).unwrap();
    assert_eq!(log.enforce_retention(1_000_000).unwrap(), 0);
    assert_eq!(log.segment_count(), 8);
    let both = CleanupPolicy::parse("compact,delete").unwrap();
    assert!(both.compact && both.delete);
    log.update_config(LogConfig {
        cleanup_policy: both,
        ..config
    });
    assert_eq!(log.enforce_retention(1_000_000).unwrap(), 7);
    assert_eq!(log.segment_count(), 1);
}

#[test]
fn cleanup_policy_parses_kafkas_lists() {
    assert_eq!(CleanupPolicy::parse("delete"), Some(CleanupPolicy::DELETE));
    assert_eq!(
        CleanupPolicy::parse("compact"),
        Some(CleanupPolicy::COMPACT)
    );
    assert_eq!(
        CleanupPolicy::parse(" delete , compact "),
        CleanupPolicy::parse("compact,delete")
    );
    assert_eq!(CleanupPolicy::parse("shred"), None);
}

#[test]
fn retention_by_size_keeps_log_under_limit() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch(3, 200, 0, 0).len() as i64;
    let config = LogConfig {
        retention_bytes: one * 7,
        retention_ms: -1,
        ..small_config(0)
    };
    let mut log = ten_segments(dir.path(), config);
    // Kafka's rule: delete a segment only if the log stays at or above the limit without it.
    assert_eq!(log.enforce_retention(0).unwrap(), 6);
    assert_eq!(log.size_in_bytes() as i64, one * 8);
    assert_eq!(log.log_start_offset(), 36);
    assert_eq!(log.enforce_retention(0).unwrap(), 0);
}

#[test]
fn no_retention_limits_delete_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: -1,
        retention_bytes: -1,
        ..small_config(0)
    };
    let mut log = ten_segments(dir.path(), config);
    assert_eq!(log.enforce_retention(i64::MAX).unwrap(), 0);
    assert_eq!(log.segment_count(), 10);
}

#[test]
fn delete_records_before_advances_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ten_segments(dir.path(), small_config(0));
    assert_eq!(log.delete_records_before(20).unwrap(), 20);
    // Segments [0,6) [6,12) [12,18) only hold offsets < 20: gone; [18,24) stays.
    assert_eq!(log.segment_count(), 7);
    assert_eq!(log.log_start_offset(), 20);
    assert!(log.read(19, 10, None).is_err());
    let r = log.read(20, 1, None).unwrap();
    assert!(!r.records.is_empty());
    assert_eq!(r.log_start_offset, 20);
    // Moving backwards does nothing, past the end is an error.
    assert_eq!(log.delete_records_before(5).unwrap(), 20);
    assert!(log.delete_records_before(61).is_err());
    assert_eq!(log.delete_records_before(60).unwrap(), 60);
    assert_eq!(log.segment_count(), 1);
    assert!(log.read(60, 10, None).unwrap().records.is_empty());
    drop(log);
    let mut log = open(dir.path(), small_config(0));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (60, 60));
    assert_eq!(log.append(&batch(1, 1, 0, 0), 0).unwrap().base_offset, 60);
}

#[test]
fn truncate_below_log_start_restarts_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ten_segments(dir.path(), small_config(0));
    log.delete_records_before(30).unwrap();
    log.truncate_to(10).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 10));
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.append(&batch(2, 1, 0, 0), 0).unwrap().base_offset, 10);
    log.truncate_fully_and_start_at(500).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
    drop(log);
    let log = open(dir.path(), small_config(0));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
}

#[test]
fn offset_for_timestamp_is_record_level_for_uncompressed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(2048));
    // Each batch: 5 records at 100*i + {0, 10, 20, 30, 40}.
    for i in 0..30i64 {
        let mut b = BatchBuilder::new(0, 0);
        for j in 0..5 {
            b.push(100 * i + 10 * j, None, Some(&[0u8; 60]), &[])
                .unwrap();
        }
        log.append(&b.build(), 0).unwrap();
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 0)));
    assert_eq!(log.offset_for_timestamp(1_215).unwrap(), Some((62, 1_220)));
    assert_eq!(log.offset_for_timestamp(2_940).unwrap(), Some((149, 2_940)));
    assert_eq!(log.offset_for_timestamp(2_941).unwrap(), None);
    assert_eq!(
        log.max_timestamp()
            .unwrap()
            .map(|r| (r.timestamp, r.offset)),
        Some((2_940, 149))
    );
    for t in (0..2_941).step_by(37) {
        let (offset, ts) = log.offset_for_timestamp(t).unwrap().unwrap();
        let expected_ts = (t + 9) / 10 * 10;
        let expected_ts = if expected_ts % 100 > 40 {
            (t / 100 + 1) * 100
        } else {
            expected_ts
        };
        assert_eq!(ts, expected_ts, "lookup {t}");
        assert_eq!(offset, (expected_ts / 100) * 5 + (expected_ts % 100) / 10);
    }
    // Below the log start, answers start at the log start.
    log.delete_records_before(63).unwrap();
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((63, 1_230)));
}

#[test]
fn offset_for_timestamp_under_log_append_time_uses_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..small_config(1 << 20)
    };
    let mut log = open(dir.path(), config);
    for i in 0..10 {
        log.append(&batch(4, 10, 0, 0), 5_000 + i).unwrap();
    }
    assert_eq!(log.offset_for_timestamp(5_003).unwrap(), Some((12, 5_003)));
    assert_eq!(
        log.max_timestamp()
            .unwrap()
            .map(|r| (r.timestamp, r.offset)),
        Some((5_009, 36))
    );
}
