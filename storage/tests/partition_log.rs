//! PartitionLog behaviour: offsets, reads, rolling, indexes, truncation, restart.

mod common;

use common::{batch, open, read_all, record_offsets, small_config};
use kraftwerk_storage::batch::{validate_batches, TimestampType, HEADER_SIZE};
use kraftwerk_storage::{LogConfig, PartitionLog, StorageError};

#[test]
fn assigns_offsets_from_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let r1 = log.append(&batch(3, 10, 1, 1_000), 5_000).unwrap();
    assert_eq!(
        (r1.base_offset, r1.last_offset, r1.log_append_time),
        (0, 2, -1)
    );
    let mut two = batch(2, 10, 2, 1_001);
    two.extend(batch(4, 10, 3, 1_002));
    let r2 = log.append(&two, 5_001).unwrap();
    assert_eq!((r2.base_offset, r2.last_offset), (3, 8));
    assert_eq!(r2.batches.len(), 2);
    assert_eq!(r2.batches[1].base_offset, 5);
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(record_offsets(&log, 0), (0..9).collect::<Vec<_>>());
}

#[test]
fn rejects_invalid_input_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    log.append(&batch(1, 10, 1, 1), 1).unwrap();
    let size = log.size_in_bytes();

    let mut corrupt = batch(2, 10, 1, 1);
    corrupt.extend(batch(2, 10, 1, 1));
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert!(matches!(
        log.append(&corrupt, 1),
        Err(StorageError::CorruptMessage(_))
    ));

    let big = batch(1, 2 << 20, 1, 1);
    assert!(matches!(
        log.append(&big, 1),
        Err(StorageError::RecordTooLarge { .. })
    ));
    assert!(matches!(
        log.append(&[], 1),
        Err(StorageError::InvalidRecord(_))
    ));
    assert_eq!(log.size_in_bytes(), size);
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn log_append_time_is_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let r = log.append(&batch(2, 5, 0, 10), 99_000).unwrap();
    assert_eq!(r.log_append_time, 99_000);
    let infos = read_all(&log, 0);
    assert_eq!(infos[0].max_timestamp, 99_000);
    assert_eq!(infos[0].timestamp_type, TimestampType::LogAppendTime);
}

/// A leader rewrites only copies of the batch headers (offsets, epoch, LogAppendTime and its CRC) and writes
/// them before the producer's own bytes: the stored batches verify, hold the producer's bytes after the
/// header, the input is untouched, and an unclean reopen (which re-checks every CRC) keeps them all.
#[test]
fn leader_append_stores_producer_bytes_under_rewritten_headers() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    log.append(&batch(1, 10, 9, 1), 1).unwrap();
    let mut input = batch(2, 100, 1, 1_000);
    input.extend(batch(3, 200, 2, 1_001));
    input.extend(batch(1, 50, 3, 1_002));
    let sent = input.clone();
    let r = log.append_with_leader_epoch(&input, 42_000, 5).unwrap();
    assert_eq!(input, sent, "the producer's buffer is not written to");
    assert_eq!((r.base_offset, r.last_offset), (1, 6));
    let check = |log: &PartitionLog| {
        let stored = log.read(1, 1 << 20, None).unwrap().records;
        let stored_infos = validate_batches(&stored, usize::MAX).expect("CRCs verify");
        let sent_infos = validate_batches(&sent, usize::MAX).unwrap();
        assert_eq!(stored.len(), sent.len());
        let bases: Vec<i64> = stored_infos.iter().map(|i| i.base_offset).collect();
        assert_eq!(bases, vec![1, 3, 6]);
        for (s, p) in stored_infos.iter().zip(&sent_infos) {
            assert_eq!(s.max_timestamp, 42_000);
            assert_eq!(s.timestamp_type, TimestampType::LogAppendTime);
            assert_eq!(s.partition_leader_epoch, 5);
            assert_eq!(
                &stored[s.position + HEADER_SIZE..s.position + s.size],
                &sent[p.position + HEADER_SIZE..p.position + p.size]
            );
        }
    };
    check(&log);
    log.close().unwrap();
    let reopened = open(dir.path(), config);
    assert_eq!(reopened.log_end_offset(), 7);
    check(&reopened);
}

#[test]
fn read_semantics_bounds_and_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(1 << 20));
    for i in 0..50 {
        log.append(&batch(4, 100, i as u8, 1_000 + i), 2_000)
            .unwrap();
    }
    let leo = log.log_end_offset();
    assert_eq!(leo, 200);
    // offset == LEO: empty; beyond: out of range.
    assert!(log.read(leo, 1000, None).unwrap().records.is_empty());
    assert!(matches!(
        log.read(leo + 1, 1000, None),
        Err(StorageError::OffsetOutOfRange { offset: 201, .. })
    ));
    assert!(matches!(
        log.read(-1, 1000, None),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // max_bytes smaller than one batch still returns that whole batch.
    let r = log.read(101, 1, None).unwrap();
    let infos = validate_batches(&r.records, usize::MAX).unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!((infos[0].base_offset, infos[0].last_offset()), (100, 103));
    // max_bytes limits to whole batches.
    let one = infos[0].size;
    let r = log.read(100, one * 3 + one / 2, None).unwrap();
    assert_eq!(validate_batches(&r.records, usize::MAX).unwrap().len(), 3);
    // Upper bound excludes batches reaching it.
    let r = log.read(100, 1 << 20, Some(110)).unwrap();
    let infos = validate_batches(&r.records, usize::MAX).unwrap();
    assert_eq!(infos.last().unwrap().last_offset(), 107);
    assert!(log
        .read(100, 1 << 20, Some(100))
        .unwrap()
        .records
        .is_empty());
    assert!(log
        .read(100, 1 << 20, Some(102))
        .unwrap()
        .records
        .is_empty());
}

#[test]
fn reads_from_every_middle_offset_via_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(8 * 1024));
    let mut expected_first = Vec::new();
    for i in 0..120 {
        let n = 1 + (i % 5);
        let r = log.append(&batch(n, 50 + i, i as u8, i as i64), 0).unwrap();
        for o in r.base_offset..=r.last_offset {
            expected_first.push((o, r.base_offset));
        }
    }
    assert!(log.segment_count() > 3, "segments: {}", log.segment_count());
    for (offset, base) in expected_first {
        let r = log.read(offset, 1, None).unwrap();
        let infos = validate_batches(&r.records, usize::MAX).unwrap();
        assert_eq!(infos.len(), 1);
        assert_eq!(infos[0].base_offset, base, "read at {offset}");
    }
}

#[test]
fn rolls_by_size_and_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch(1, 1000, 0, 0).len() as u64;
    let mut log = open(dir.path(), small_config(one * 3));
    for _ in 0..7 {
        log.append(&batch(1, 1000, 0, 0), 0).unwrap();
    }
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log.size_in_bytes(), one * 7);

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    log.append(&batch(1, 10, 0, 10_000), 10_000).unwrap();
    log.append(&batch(1, 10, 0, 10_500), 10_500).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(&batch(1, 10, 0, 11_001), 11_001).unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(record_offsets(&log, 0), vec![0, 1, 2]);
}

/// `segment.ms` counts record time, as Kafka's `LogSegment.timeWaitedForRoll`: from the segment's first
/// batch's timestamp to the newest one appended, so records whose timestamps are old (mirrored, replayed) fill
/// segments instead of each starting a new one; wall-clock time since creation counts only when the first
/// batch has no timestamp.
#[test]
fn segment_ms_counts_record_time_not_the_clock() {
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    // Timestamps from long ago, appended now: one segment (each append used to roll a new one).
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config.clone());
    let now = 1_800_000_000_000;
    for i in 0..5 {
        log.append(&batch(1, 10, 0, 1_000 + i), now + i).unwrap();
    }
    assert_eq!(log.segment_count(), 1);
    // Record time passing segment.ms rolls, whatever the clock says.
    log.append(&batch(1, 10, 0, 2_001), now + 5).unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(record_offsets(&log, 0), (0..6).collect::<Vec<_>>());

    // A first batch without a timestamp (-1): the clock since the segment was created (at open).
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config);
    log.append(&batch(1, 10, 0, -1), t0).unwrap();
    log.append(&batch(1, 10, 0, -1), t0 + 900).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(&batch(1, 10, 0, -1), t0 + 2_000).unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn oversized_batch_goes_into_an_empty_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(1024));
    log.append(&batch(1, 5000, 0, 0), 0).unwrap();
    log.append(&batch(1, 5000, 0, 0), 0).unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(record_offsets(&log, 0), vec![0, 1]);
}

#[test]
fn follower_append_keeps_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = open(&dir.path().join("leader"), small_config(4096));
    for i in 0..20 {
        leader.append(&batch(3, 100, i, 0), 0).unwrap();
    }
    let mut follower = open(&dir.path().join("follower"), small_config(4096));
    let mut offset = 0;
    while offset < leader.log_end_offset() {
        let r = leader.read(offset, 700, None).unwrap();
        let res = follower.append_as_follower(&r.records).unwrap();
        assert_eq!(res.base_offset, offset);
        offset = res.last_offset + 1;
    }
    assert_eq!(follower.log_end_offset(), 60);
    assert_eq!(record_offsets(&follower, 0), (0..60).collect::<Vec<_>>());
    let r = leader.read(3, 1, None).unwrap();
    assert!(matches!(
        follower.append_as_follower(&r.records),
        Err(StorageError::UnexpectedAppendOffset {
            expected: 60,
            actual: 3
        })
    ));
}

#[test]
fn truncate_to_drops_tail_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(2048));
    for i in 0..40 {
        log.append(&batch(2, 100, i, i as i64), 0).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 3);
    log.truncate_to(31).unwrap(); // inside batch [30, 31]: the whole batch goes
    assert_eq!(log.log_end_offset(), 30);
    assert!(log.segment_count() < segments);
    assert_eq!(record_offsets(&log, 0), (0..30).collect::<Vec<_>>());
    let r = log.append(&batch(2, 100, 9, 0), 0).unwrap();
    assert_eq!(r.base_offset, 30);
    log.truncate_to(100).unwrap();
    assert_eq!(log.log_end_offset(), 32);
    log.truncate_to(0).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.append(&batch(1, 1, 0, 0), 0).unwrap().base_offset, 0);
}

#[test]
fn restart_keeps_data_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(4096));
    for i in 0..30 {
        log.append(&batch(2, 200, i, 1_000 + i as i64), 0).unwrap();
    }
    let before = read_all(&log, 0);
    let segments = log.segment_count();
    log.close().unwrap();
    let mut log = open(dir.path(), small_config(4096));
    assert_eq!(log.log_end_offset(), 60);
    assert_eq!(log.segment_count(), segments);
    assert_eq!(read_all(&log, 0), before);
    assert_eq!(
        log.max_timestamp()
            .unwrap()
            .map(|r| (r.timestamp, r.offset)),
        Some((1_029, 58))
    );
    assert_eq!(log.append(&batch(1, 1, 0, 0), 0).unwrap().base_offset, 60);
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config(4096)).unwrap();
    assert_eq!(log.log_end_offset(), 61);
}

#[test]
fn partition_log_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PartitionLog>();
    assert_send_sync::<StorageError>();
}

#[test]
fn update_config_applies_to_later_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    for _ in 0..4 {
        log.append(&batch(1, 500, 0, 0), 0).unwrap();
    }
    assert_eq!(log.segment_count(), 1);
    let config = LogConfig {
        segment_bytes: 600,
        flush_interval_messages: 1,
        ..LogConfig::default()
    };
    log.update_config(config.clone());
    assert_eq!(log.config(), &config);
    log.append(&batch(1, 500, 0, 0), 0).unwrap();
    log.append(&batch(1, 500, 0, 0), 0).unwrap();
    assert_eq!(log.segment_count(), 3);
    log.flush().unwrap();
    assert_eq!(record_offsets(&log, 0), (0..6).collect::<Vec<_>>());
}

#[test]
fn delete_removes_the_partition_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join(kraftwerk_storage::partition_dir_name("t", 0));
    let mut log = open(&path, small_config(1024));
    for _ in 0..5 {
        log.append(&batch(2, 600, 0, 0), 0).unwrap();
    }
    assert!(path.join("00000000000000000000.log").exists());
    log.delete().unwrap();
    assert!(!path.exists());
}

/// A new log is one file until its indexes are first written: creating thousands of partitions is bound by the
/// filesystem's inode creation. A flush makes both index files, as does a close; a log whose index files were
/// never made (a crash before any flush) reopens with every record.
#[test]
fn a_new_log_makes_its_index_files_at_the_first_flush() {
    let names = |dir: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("0000"))
            .collect();
        v.sort();
        v
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(1 << 20));
    assert_eq!(names(dir.path()), ["00000000000000000000.log"]);
    log.append(&batch(2, 200, 0, 1_000), 0).unwrap();
    log.flush().unwrap();
    assert_eq!(
        names(dir.path()),
        [
            "00000000000000000000.index",
            "00000000000000000000.log",
            "00000000000000000000.timeindex"
        ]
    );
    log.close().unwrap();

    // Never flushed, then dropped as a crash would leave it: no index files, and a reopen finds the records.
    let crashed = tempfile::tempdir().unwrap();
    let mut log = open(crashed.path(), small_config(1 << 20));
    for i in 0..5 {
        log.append(&batch(2, 200, i, 1_000 + i as i64), 0).unwrap();
    }
    let before = read_all(&log, 0);
    drop(log);
    assert_eq!(names(crashed.path()), ["00000000000000000000.log"]);
    let log = open(crashed.path(), small_config(1 << 20));
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(read_all(&log, 0), before);
}
