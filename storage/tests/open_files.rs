//! A hosted partition costs one open file (its active segment's log), as in Kafka: the offset and time indexes
//! are written by path and hold no descriptor, so a broker with thousands of partitions stays far below the
//! process's open-file limit. Its own test binary, so no other test opens files while the descriptors are
//! counted.

mod common;

use common::{batch, open, read_all, small_config};
use kraftwerk_storage::LogConfig;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn each_open_partition_holds_one_descriptor_and_its_indexes_still_work() {
    let root = tempfile::tempdir().unwrap();
    let before = open_descriptors();
    let mut logs = Vec::new();
    for i in 0..200 {
        let dir = root.path().join(format!("t-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = open(&dir, LogConfig::default());
        log.append(&batch(3, 100, 1, 1_000), 1_000).unwrap();
        logs.push((dir, log));
    }
    let held = open_descriptors() - before;
    assert!(held <= 200 + 4, "200 partitions hold {held} descriptors");

    // Rolled segments and index entries are written (by path), flushed, and read back after a reopen.
    let dir = root.path().join("rolling");
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = small_config(4096);
    config.index_interval_bytes = 128;
    let mut log = open(&dir, config.clone());
    for i in 0..200 {
        log.append(&batch(2, 100, 1, 1_000 + i), 2_000 + i).unwrap();
    }
    let end = log.log_end_offset();
    log.flush().unwrap();
    let before_close = read_all(&log, 150);
    log.close().unwrap();
    let log = open(&dir, config);
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(read_all(&log, 150), before_close);
    let index_bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".index"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(index_bytes > 0, "the offset indexes were written");
    drop(logs);
}
