//! Recovery after unclean shutdowns: torn, corrupted or extended tails, lost indexes.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{batch, open, read_all, record_offsets, small_config};
use kraftwerk_storage::{LastShutdown, LogConfig, PartitionLog};

fn segment_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn last_log_file(dir: &Path) -> PathBuf {
    segment_files(dir, "log").pop().unwrap()
}

/// Writes 3-record batches until there are a few segments; returns the config and batch size.
fn populate(dir: &Path) -> (LogConfig, u64) {
    let config = small_config(4096);
    let mut log = open(dir, config.clone());
    for i in 0..40 {
        log.append(&batch(3, 150, i, 1_000 + i64::from(i)), 0)
            .unwrap();
    }
    assert!(log.segment_count() >= 3);
    let size = batch(3, 150, 0, 0).len() as u64;
    drop(log); // no close: unclean shutdown
    (config, size)
}

/// A log of forty 3-record batches (offsets 0..=119, batch `i` at timestamp 1,000 + `i`) in small segments,
/// fsynced after each append when `flush_each`; returned open, with its config.
fn forty_batches(dir: &Path, flush_each: bool) -> (LogConfig, PartitionLog) {
    let config = small_config(4096);
    let mut log = open(dir, config.clone());
    for i in 0..40 {
        log.append(&batch(3, 150, i, 1_000 + i64::from(i)), 0)
            .unwrap();
        if flush_each {
            log.flush().unwrap();
        }
    }
    (config, log)
}

/// Every offset in `offsets` is read from the batch that holds it (the offset index found the right place).
fn assert_reads_land(log: &PartitionLog, offsets: &[i64], label: &str) {
    for &offset in offsets {
        let r = log.read(offset, 1, None).unwrap();
        let info = &kraftwerk_storage::batch::validate_batches(&r.records, usize::MAX).unwrap()[0];
        assert!(
            info.base_offset <= offset && offset <= info.last_offset(),
            "{label}: read at {offset} found {}..={}",
            info.base_offset,
            info.last_offset()
        );
    }
}

#[test]
fn truncated_tail_is_cut_at_last_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (config, batch_size) = populate(dir.path());
    let path = last_log_file(dir.path());
    let len = fs::metadata(&path).unwrap().len();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - batch_size / 2).unwrap();
    drop(file);

    let mut log = open(dir.path(), config);
    assert_eq!(log.log_end_offset(), 117);
    assert_eq!(record_offsets(&log, 0), (0..117).collect::<Vec<_>>());
    assert_eq!(fs::metadata(&path).unwrap().len(), len - batch_size);
    assert_eq!(log.append(&batch(1, 1, 0, 0), 0).unwrap().base_offset, 117);
    assert_eq!(log.log_end_offset(), 118);
}

#[test]
fn bit_flipped_tail_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (config, batch_size) = populate(dir.path());
    let path = last_log_file(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() - (batch_size as usize) - 10; // inside the second-to-last batch
    bytes[at] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let mut log = open(dir.path(), config);
    assert_eq!(log.log_end_offset(), 114);
    assert_eq!(record_offsets(&log, 0), (0..114).collect::<Vec<_>>());
    assert_eq!(log.append(&batch(2, 1, 0, 0), 0).unwrap().base_offset, 114);
}

#[test]
fn garbage_after_the_last_batch_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = populate(dir.path());
    let path = last_log_file(dir.path());
    let len = fs::metadata(&path).unwrap().len();
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&[0x5a; 777]).unwrap();
    drop(file);

    let mut log = open(dir.path(), config);
    assert_eq!(log.log_end_offset(), 120);
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
    assert_eq!(record_offsets(&log, 0), (0..120).collect::<Vec<_>>());
    assert_eq!(log.append(&batch(1, 1, 0, 0), 0).unwrap().base_offset, 120);
}

#[test]
fn deleted_or_garbled_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (config, log) = forty_batches(dir.path(), false);
    let expected = read_all(&log, 0);
    log.close().unwrap();
    let index_sizes: Vec<u64> = segment_files(dir.path(), "index")
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .collect();
    assert!(index_sizes.iter().any(|&s| s > 0), "indexes were written");

    for path in segment_files(dir.path(), "index") {
        fs::remove_file(path).unwrap();
    }
    let garbled = segment_files(dir.path(), "timeindex").remove(0);
    fs::write(&garbled, [1u8; 13]).unwrap();

    let log = open(dir.path(), config);
    assert_eq!(read_all(&log, 0), expected);
    let rebuilt: Vec<u64> = segment_files(dir.path(), "index")
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .collect();
    assert_eq!(rebuilt, index_sizes);
    assert_reads_land(&log, &[0, 7, 50, 61, 99, 119], "rebuilt");
    assert_eq!(log.offset_for_timestamp(1_020).unwrap(), Some((60, 1_020)));
}

/// A machine crash can lose the active segment's index pages while its data survived (the index files are
/// written in place; here zeroed, and in a second run cut to nothing). The open after it rebuilds them from
/// the batches: no record lost and no lookup answered from the lost entries.
#[test]
fn a_lost_active_index_is_rebuilt_after_a_crash() {
    for lost in ["zeroed", "empty"] {
        let dir = tempfile::tempdir().unwrap();
        let (config, log) = forty_batches(dir.path(), true);
        assert!(log.segment_count() >= 3);
        let expected = read_all(&log, 0);
        drop(log); // no close: a crash
        for ext in ["index", "timeindex"] {
            let active = segment_files(dir.path(), ext).pop().unwrap();
            let len = fs::metadata(&active).unwrap().len() as usize;
            assert!(len > 0, "the active segment's {ext} had entries");
            let bytes = if lost == "zeroed" {
                vec![0u8; len]
            } else {
                Vec::new()
            };
            fs::write(&active, bytes).unwrap();
        }

        let log = open(dir.path(), config);
        assert_eq!(read_all(&log, 0), expected, "{lost}");
        assert_reads_land(&log, &[0, 50, 99, 110, 117, 119], lost);
        assert_eq!(
            log.offset_for_timestamp(1_038).unwrap(),
            Some((114, 1_038)),
            "{lost}"
        );
    }
}

#[test]
fn torn_tail_after_clean_shutdown_is_still_caught() {
    let dir = tempfile::tempdir().unwrap();
    let (config, batch_size) = populate(dir.path());
    let log = open(dir.path(), config.clone());
    log.close().unwrap();
    let path = last_log_file(dir.path());
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    // Even when its directory vouches for it, the batches after the last index entry are checked.
    let log = PartitionLog::open_after(dir.path(), config, LastShutdown::Clean).unwrap();
    assert_eq!(log.log_end_offset(), 117);
    assert_eq!(fs::metadata(&path).unwrap().len(), len - batch_size);
}

#[test]
fn corruption_in_an_older_segment_drops_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = populate(dir.path());
    let logs = segment_files(dir.path(), "log");
    let segments = logs.len();
    // Remove the first segment's index so it is verified, and corrupt its middle.
    let first = &logs[0];
    fs::remove_file(first.with_extension("index")).unwrap();
    let mut bytes = fs::read(first).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(first, &bytes).unwrap();

    let mut log = open(dir.path(), config);
    assert_eq!(log.segment_count(), 1);
    assert!(segments > 1);
    let leo = log.log_end_offset();
    assert!(leo > 0 && leo < 120);
    assert_eq!(record_offsets(&log, 0), (0..leo).collect::<Vec<_>>());
    assert_eq!(segment_files(dir.path(), "log").len(), 1);
    assert_eq!(log.append(&batch(1, 1, 0, 0), 0).unwrap().base_offset, leo);
}

/// A per-partition marker written by an older version is not honoured (the log's tail is verified) and is removed.
#[test]
fn legacy_partition_marker_is_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (config, batch_size) = populate(dir.path());
    let marker = dir
        .path()
        .join(kraftwerk_storage::log_dir::CLEAN_SHUTDOWN_MARKER);
    fs::write(&marker, b"").unwrap();
    // A bit flip before the last index entry: only a full verification of the segment finds it.
    let path = last_log_file(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let at = batch_size as usize + 40;
    bytes[at] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    let log = open(dir.path(), config);
    assert!(!marker.exists());
    let first = log.log_end_offset();
    assert!(first < 120, "the segment was verified, not trusted");
}
