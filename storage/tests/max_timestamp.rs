//! ListOffsets MAX_TIMESTAMP as Kafka 3.8+ answers it (KAFKA-16310): the offset of the first record carrying
//! the log's largest timestamp, in the first batch (and segment) reaching it, with that batch's leader epoch;
//! the same after a roll, a clean restart, a recovery that rebuilds the indexes, and a truncation. Also the
//! record-level timestamp lookup inside compressed batches, and the time index holding the batch's last offset
//! as Kafka's does.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{open, small_config};
use kraftwerk_storage::batch::{BatchBuilder, Compression};
use kraftwerk_storage::{LogConfig, PartitionLog, TimestampType, TimestampedRecord};

/// One batch whose records carry `timestamps` (in order), 60-byte values, written with `codec`.
fn stamped(timestamps: &[i64], codec: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, 0).compression(codec);
    for ts in timestamps {
        b.push(*ts, None, Some(&[7u8; 60]), &[]).unwrap();
    }
    b.build()
}

fn found(timestamp: i64, offset: i64, leader_epoch: i32) -> Option<TimestampedRecord> {
    Some(TimestampedRecord {
        timestamp,
        offset,
        leader_epoch,
    })
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

#[test]
fn the_record_with_the_largest_timestamp_not_its_batch() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), small_config(1 << 20));
        log.append(&stamped(&[100, 200, 150], codec), 0).unwrap(); // 0..=2
                                                                   // The max (900) is the third record of the second batch, and a later record of it ties.
        log.append(&stamped(&[300, 400, 900, 500, 900], codec), 0)
            .unwrap(); // 3..=7
        log.append(&stamped(&[800, 850], codec), 0).unwrap(); // 8..=9
        assert_eq!(log.max_timestamp().unwrap(), found(900, 5, 0), "{codec:?}");
    }
}

#[test]
fn ties_between_batches_and_segments_go_to_the_first() {
    let dir = tempfile::tempdir().unwrap();
    // Segments of about three batches.
    let mut log = open(dir.path(), small_config(1_000));
    log.append(&stamped(&[10, 20], Compression::None), 0)
        .unwrap(); // 0..=1
    log.append(&stamped(&[70, 50], Compression::None), 0)
        .unwrap(); // 2..=3: the first 70
    log.append(&stamped(&[70, 70], Compression::None), 0)
        .unwrap(); // 4..=5: a later batch reaching 70
    for _ in 0..10 {
        // Later segments, with 70 again.
        log.append(&stamped(&[60, 70], Compression::None), 0)
            .unwrap();
    }
    assert!(log.segment_count() >= 3);
    assert_eq!(log.max_timestamp().unwrap(), found(70, 2, 0));
}

#[test]
fn a_later_segment_holding_the_max_is_found_after_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(300));
    for i in 0..30i64 {
        // Batch i: offsets 3i..=3i+2, its max in the middle record; batch 17 holds the largest.
        let peak = if i == 17 { 10_000 } else { 1_000 + i };
        log.append(&stamped(&[i, peak, i], Compression::Lz4), 0)
            .unwrap();
    }
    assert!(log.segment_count() > 5);
    assert_eq!(log.max_timestamp().unwrap(), found(10_000, 52, 0));
}

#[test]
fn the_batch_leader_epoch_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(1 << 20));
    log.append_with_leader_epoch(&stamped(&[5, 6], Compression::None), 0, 3)
        .unwrap();
    log.append_with_leader_epoch(&stamped(&[7, 9], Compression::Zstd), 0, 4)
        .unwrap();
    assert_eq!(log.max_timestamp().unwrap(), found(9, 3, 4));
    assert_eq!(log.record_for_timestamp(7).unwrap(), found(7, 2, 4));
    assert_eq!(log.record_for_timestamp(6).unwrap(), found(6, 1, 3));
}

#[test]
fn log_append_time_answers_the_first_record_of_the_newest_batch() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..small_config(1 << 20)
    };
    let mut log = open(dir.path(), config);
    for i in 0..5 {
        log.append(&stamped(&[1, 2, 3], Compression::Gzip), 7_000 + i)
            .unwrap();
    }
    assert_eq!(log.max_timestamp().unwrap(), found(7_004, 12, 0));
}

#[test]
fn an_empty_log_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    assert_eq!(log.max_timestamp().unwrap(), None);
}

/// 30 batches over several segments; the largest timestamp is in batch 11's fourth record (offset 58).
fn populate(dir: &Path, config: &LogConfig) -> PartitionLog {
    let mut log = open(dir, config.clone());
    for i in 0..30i64 {
        let peak = if i == 11 { 99_999 } else { 500 + i };
        log.append(&stamped(&[i, i + 1, i, peak, i], Compression::Zstd), 0)
            .unwrap();
    }
    assert!(log.segment_count() > 3);
    assert_eq!(log.max_timestamp().unwrap(), found(99_999, 58, 0));
    log
}

#[test]
fn a_restart_finds_the_same_record() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(300);
    let expected = found(99_999, 58, 0);
    // Clean: from the time index.
    populate(dir.path(), &config).close().unwrap();
    assert_eq!(
        open(dir.path(), config.clone()).max_timestamp().unwrap(),
        expected
    );
    // Unclean (no close): recovery walks the tail.
    let log = open(dir.path(), config.clone());
    drop(log);
    assert_eq!(
        open(dir.path(), config.clone()).max_timestamp().unwrap(),
        expected
    );
    // Indexes lost: rebuilt from the batches.
    for path in files(dir.path(), "index")
        .into_iter()
        .chain(files(dir.path(), "timeindex"))
    {
        fs::remove_file(path).unwrap();
    }
    assert_eq!(open(dir.path(), config).max_timestamp().unwrap(), expected);
}

#[test]
fn a_truncation_past_the_max_falls_back_to_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(300);
    let mut log = populate(dir.path(), &config);
    // Batch 11 is offsets 55..=59: cut it off; batch 10's peak (510, offset 53) is the largest left.
    log.truncate_to(55).unwrap();
    assert_eq!(log.max_timestamp().unwrap(), found(510, 53, 0));
    log.close().unwrap();
    let log = open(dir.path(), config);
    assert_eq!(log.max_timestamp().unwrap(), found(510, 53, 0));
}

#[test]
fn time_index_entries_name_the_last_offset_of_their_batch() {
    // Kafka's time index stores the last offset of the first batch reaching each max timestamp, and
    // `kafka-dump-log` reports any entry that is not a batch's last offset.
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(1 << 20);
    let mut log = open(dir.path(), config);
    for i in 0..20i64 {
        log.append(
            &stamped(&[i * 10, i * 10 + 5, i * 10], Compression::None),
            0,
        )
        .unwrap();
    }
    log.close().unwrap();
    let bytes = fs::read(&files(dir.path(), "timeindex")[0]).unwrap();
    assert!(bytes.len() >= 24, "a few entries were written");
    for entry in bytes.chunks_exact(12) {
        let ts = i64::from_be_bytes(entry[..8].try_into().unwrap());
        let relative = u32::from_be_bytes(entry[8..].try_into().unwrap());
        if ts == 0 && relative == 0 {
            continue; // preallocated tail
        }
        // Batch i holds offsets 3i..=3i+2 and max timestamp 10i + 5.
        let batch = (ts - 5) / 10;
        assert_eq!(ts, batch * 10 + 5);
        assert_eq!(i64::from(relative), 3 * batch + 2, "entry {ts}");
    }
}

#[test]
fn timestamp_lookups_search_inside_compressed_batches() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), small_config(1 << 20));
        log.append(&stamped(&[100, 300, 200, 400], codec), 0)
            .unwrap(); // 0..=3
        log.append(&stamped(&[500, 600], codec), 0).unwrap(); // 4..=5
        assert_eq!(log.offset_for_timestamp(250).unwrap(), Some((1, 300)));
        assert_eq!(log.offset_for_timestamp(301).unwrap(), Some((3, 400)));
        assert_eq!(log.offset_for_timestamp(550).unwrap(), Some((5, 600)));
        assert_eq!(log.offset_for_timestamp(601).unwrap(), None);
        // Below the log start, the search goes on from it.
        log.delete_records_before(2).unwrap();
        assert_eq!(
            log.offset_for_timestamp(250).unwrap(),
            Some((3, 400)),
            "{codec:?}"
        );
    }
}

#[test]
fn time_indexes_written_with_base_offsets_still_lead_to_the_record() {
    // Kraftwerk wrote the first batch's base offset into time index entries before it wrote Kafka's last
    // offset: a log written then is read the same.
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(1 << 20);
    let mut log = open(dir.path(), config.clone());
    for i in 0..20i64 {
        // Batch i: offsets 3i..=3i+2, max timestamp 10i + 5 in its middle record.
        log.append(
            &stamped(&[i * 10, i * 10 + 5, i * 10], Compression::None),
            0,
        )
        .unwrap();
    }
    log.close().unwrap();
    let path = files(dir.path(), "timeindex").remove(0);
    let mut bytes = fs::read(&path).unwrap();
    for entry in bytes.chunks_exact_mut(12) {
        let relative = u32::from_be_bytes(entry[8..].try_into().unwrap());
        if relative >= 2 {
            entry[8..].copy_from_slice(&(relative - 2).to_be_bytes());
        }
    }
    fs::write(&path, &bytes).unwrap();
    let log = open(dir.path(), config);
    assert_eq!(log.max_timestamp().unwrap(), found(195, 58, 0));
    assert_eq!(log.offset_for_timestamp(101).unwrap(), Some((31, 105)));
    assert_eq!(log.offset_for_timestamp(95).unwrap(), Some((28, 95)));
}
