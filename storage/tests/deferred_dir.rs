//! Logs created with `PartitionLog::create_deferred`: nothing on disk until the first write, then the directory
//! with its seed files, the segment and the leader epochs assigned meanwhile; never a loss of data that exists.

mod common;

use std::fs;
use std::path::Path;

use common::{batch, record_offsets, small_config};
use kraftwerk_storage::{EpochEntry, LastShutdown, LogConfig, PartitionLog, SeedFile};

fn seed() -> Vec<SeedFile> {
    vec![SeedFile {
        name: "partition.metadata".into(),
        contents: b"version: 0\ntopic_id: x\n".to_vec(),
    }]
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn nothing_is_on_disk_until_the_first_append() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let mut log = PartitionLog::create_deferred(&dir, LogConfig::default(), seed()).unwrap();
    assert!(log.is_deferred());
    // Reads, epochs, flushes and no-op truncations of an empty log touch nothing.
    assert_eq!(log.log_end_offset(), 0);
    assert!(log.read(0, 1 << 20, None).unwrap().records.is_empty());
    log.assign_leader_epoch(3, 0).unwrap();
    log.truncate_to(0).unwrap();
    log.flush().unwrap();
    assert!(!log.flush_if_due(i64::MAX).unwrap());
    assert_eq!(log.enforce_retention(i64::MAX).unwrap(), 0);
    assert!(!dir.exists(), "{:?}", names(root.path()));
    log.close().unwrap();
    assert!(!dir.exists());
}

#[test]
fn the_first_append_creates_the_directory_with_its_seed_and_epochs() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let mut log = PartitionLog::create_deferred(&dir, LogConfig::default(), seed()).unwrap();
    log.assign_leader_epoch(3, 0).unwrap();
    let r = log
        .append_with_leader_epoch(&batch(5, 10, 1, 1_000), 1_000, 3)
        .unwrap();
    assert_eq!((r.base_offset, r.last_offset), (0, 4));
    assert!(!log.is_deferred());
    assert_eq!(
        fs::read(dir.join("partition.metadata")).unwrap(),
        seed()[0].contents
    );
    assert!(dir.join("00000000000000000000.log").exists());
    log.close().unwrap();

    let log = PartitionLog::open_after(&dir, LogConfig::default(), LastShutdown::Clean).unwrap();
    assert_eq!(record_offsets(&log, 0), vec![0, 1, 2, 3, 4]);
    assert_eq!(
        log.leader_epoch_entries(),
        &[EpochEntry {
            epoch: 3,
            start_offset: 0
        }]
    );
}

#[test]
fn a_crash_after_the_first_append_keeps_the_data() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let mut log = PartitionLog::create_deferred(&dir, small_config(1 << 20), seed()).unwrap();
    log.append_as_follower(&batch(3, 10, 1, 1_000)).unwrap();
    drop(log); // crash: no close, no flush
    let log = PartitionLog::open_after(&dir, small_config(1 << 20), LastShutdown::Unclean).unwrap();
    assert_eq!(record_offsets(&log, 0), vec![0, 1, 2]);
}

#[test]
fn an_existing_directory_is_opened_not_replaced() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let mut log = PartitionLog::open(&dir, LogConfig::default()).unwrap();
    log.append(&batch(4, 10, 1, 1_000), 1_000).unwrap();
    log.close().unwrap();

    let log = PartitionLog::create_deferred(&dir, LogConfig::default(), seed()).unwrap();
    assert!(!log.is_deferred());
    assert_eq!(record_offsets(&log, 0), vec![0, 1, 2, 3]);
    assert!(dir.join("partition.metadata").exists());
}

#[test]
fn a_full_truncation_creates_the_directory_and_keeps_the_new_start() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let mut log = PartitionLog::create_deferred(&dir, LogConfig::default(), seed()).unwrap();
    log.truncate_fully_and_start_at(100).unwrap();
    assert!(dir.join("partition.metadata").exists());
    log.append_as_follower(&{
        let mut b = batch(2, 10, 1, 1_000);
        // Base offset 100: the first 8 bytes of a batch.
        b[..8].copy_from_slice(&100i64.to_be_bytes());
        b
    })
    .unwrap();
    log.close().unwrap();
    let log = PartitionLog::open_after(&dir, LogConfig::default(), LastShutdown::Clean).unwrap();
    assert_eq!(log.log_start_offset(), 100);
    assert_eq!(record_offsets(&log, 100), vec![100, 101]);
}

#[test]
fn deleting_a_log_never_written_is_fine() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let log = PartitionLog::create_deferred(&dir, LogConfig::default(), seed()).unwrap();
    log.delete().unwrap();
    assert!(!dir.exists());
}

#[test]
fn the_directory_can_be_made_ahead_of_the_first_write() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let mut log = PartitionLog::create_deferred(&dir, LogConfig::default(), seed()).unwrap();
    log.assign_leader_epoch(2, 0).unwrap();
    log.create_deferred_dir().unwrap();
    assert!(!log.is_deferred());
    assert_eq!(
        names(&dir),
        [
            "00000000000000000000.log",
            "leader-epoch-checkpoint",
            "partition.metadata"
        ]
    );
    // A second call and then the first write find it there.
    log.create_deferred_dir().unwrap();
    let r = log
        .append_with_leader_epoch(&batch(3, 10, 2, 1_000), 1_000, 2)
        .unwrap();
    assert_eq!((r.base_offset, r.last_offset), (0, 2));
    log.close().unwrap();
    let log = PartitionLog::open_after(&dir, LogConfig::default(), LastShutdown::Clean).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(
        log.leader_epoch_entries(),
        &[EpochEntry {
            epoch: 2,
            start_offset: 0
        }]
    );
}
