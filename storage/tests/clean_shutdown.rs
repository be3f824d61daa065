//! Crashes around a log directory's clean-shutdown marker and the lazily fsynced leader-epoch checkpoint.
//!
//! A "crash" is a log dropped without `close` (nothing is flushed, no marker is written), followed by the damage a
//! lost page cache can leave: a torn tail, a stale or torn `leader-epoch-checkpoint`.

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use common::{batch, record_offsets, small_config};
use kraftwerk_storage::log_dir::{
    take_clean_shutdown_marker, write_clean_shutdown_marker, CLEAN_SHUTDOWN_MARKER,
};
use kraftwerk_storage::{EpochEndOffset, EpochEntry, LastShutdown, LogConfig, PartitionLog};

const CHECKPOINT: &str = "leader-epoch-checkpoint";

fn last_log_file(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

/// Cuts `bytes` off the end of the partition's last segment, as a write the crash tore.
fn tear_tail(partition: &Path, bytes: u64) {
    let path = last_log_file(partition);
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - bytes)
        .unwrap();
}

/// 40 batches of 3 records (offsets 0..120) in 4 KiB segments.
fn fill(log: &mut PartitionLog) {
    for i in 0..40 {
        log.append(&batch(3, 150, i, 1_000 + i64::from(i)), 0)
            .unwrap();
    }
}

fn open(partition: &Path, last: LastShutdown) -> PartitionLog {
    PartitionLog::open_after(partition, small_config(4096), last).unwrap()
}

fn marker_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(marker_files(&path));
        } else if path.file_name().is_some_and(|n| n == CLEAN_SHUTDOWN_MARKER) {
            out.push(path);
        }
    }
    out
}

/// A crash after some logs of the directory were closed, before the marker: the directory is unclean, so every
/// log's tail is verified at the next start, the torn one included. Logs leave no marker of their own.
#[test]
fn crash_after_some_logs_closed_recovers_the_whole_directory() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a-0"), root.path().join("b-0"));
    assert_eq!(
        take_clean_shutdown_marker(root.path()).unwrap(),
        LastShutdown::Unclean
    );
    let mut log_a = open(&a, LastShutdown::Unclean);
    let mut log_b = open(&b, LastShutdown::Unclean);
    fill(&mut log_a);
    fill(&mut log_b);
    log_a.close().unwrap();
    drop(log_b); // the crash: b never closed, no directory marker
    assert!(
        marker_files(root.path()).is_empty(),
        "closing one log must not vouch for anything"
    );
    let batch_size = batch(3, 150, 0, 0).len() as u64;
    tear_tail(&b, batch_size / 2);

    let last = take_clean_shutdown_marker(root.path()).unwrap();
    assert_eq!(last, LastShutdown::Unclean);
    let log_a = open(&a, last);
    let mut log_b = open(&b, last);
    assert_eq!(log_a.log_end_offset(), 120);
    assert_eq!(log_b.log_end_offset(), 117);
    assert_eq!(record_offsets(&log_b, 0), (0..117).collect::<Vec<_>>());
    assert_eq!(
        log_b.append(&batch(1, 1, 0, 0), 0).unwrap().base_offset,
        117
    );
}

/// After a real clean shutdown the marker makes the next start trust the logs: damage inside the active segment
/// before its last index entry cannot happen then and is not looked for. Without the marker the same damage is
/// found and cut.
#[test]
fn marker_skips_verification_and_its_absence_repairs_the_tail() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a-0");
    close_cleanly(root.path(), &a);
    // Flip a bit in the active segment's first batch (before its last index entry).
    let path = last_log_file(&a);
    let pristine = fs::read(&path).unwrap();
    let mut bytes = pristine.clone();
    bytes[70] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let last = take_clean_shutdown_marker(root.path()).unwrap();
    assert_eq!(last, LastShutdown::Clean);
    let log = open(&a, last);
    assert_eq!(log.log_end_offset(), 120, "a cleanly closed log is trusted");
    drop(log); // a crash while running: the marker is gone, so this is unclean now

    let last = take_clean_shutdown_marker(root.path()).unwrap();
    assert_eq!(last, LastShutdown::Unclean);
    let log = open(&a, last);
    let leo = log.log_end_offset();
    assert!(
        leo < 120,
        "the corrupt batch and what follows are cut, log end {leo}"
    );
    assert_eq!(record_offsets(&log, 0), (0..leo).collect::<Vec<_>>());
}

/// Taking the marker removes it before anything is written, so appends after a clean start and then a crash are
/// recovered as a crash: the torn batch written after the start is cut.
#[test]
fn marker_is_gone_before_the_first_append() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a-0");
    close_cleanly(root.path(), &a);

    let last = take_clean_shutdown_marker(root.path()).unwrap();
    assert_eq!(last, LastShutdown::Clean);
    assert!(
        marker_files(root.path()).is_empty(),
        "taken before any log is opened"
    );
    let mut log = open(&a, last);
    log.append(&batch(3, 150, 99, 5_000), 0).unwrap();
    drop(log); // crash after the append
    let batch_size = batch(3, 150, 0, 0).len() as u64;
    tear_tail(&a, batch_size / 3);

    let last = take_clean_shutdown_marker(root.path()).unwrap();
    assert_eq!(last, LastShutdown::Unclean);
    let log = open(&a, last);
    assert_eq!(log.log_end_offset(), 120);
}

fn e(epoch: i32, start_offset: i64) -> EpochEntry {
    EpochEntry {
        epoch,
        start_offset,
    }
}

/// Epoch 1: offsets 0..10, epoch 3: 10..25, epoch 4: 25..30, all in the active segment.
fn epoch_log(dir: &Path) -> PartitionLog {
    let mut log = PartitionLog::open(dir, LogConfig::default()).unwrap();
    for (epoch, batches) in [(1, 2), (3, 3), (4, 1)] {
        for _ in 0..batches {
            log.append_with_leader_epoch(&batch(5, 100, 1, 1_000), 1_000, epoch)
                .unwrap();
        }
    }
    log
}

/// OffsetForLeaderEpoch's answers for epochs 0..=7.
fn answers(log: &PartitionLog) -> Vec<EpochEndOffset> {
    (0..=7).map(|epoch| log.end_offset_for(epoch)).collect()
}

/// The checkpoint's fsync is deferred, so a crash can leave it stale (an older version of the file), empty or
/// missing. Opening the uncleanly closed log re-assigns the epochs of the batches it verifies, so the cache and
/// OffsetForLeaderEpoch come back as before the crash, and the repaired file is written.
#[test]
fn stale_torn_or_missing_epoch_checkpoint_is_rebuilt_from_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = epoch_log(dir.path());
    assert_eq!(log.leader_epoch_entries(), &[e(1, 0), e(3, 10), e(4, 25)]);
    let before = answers(&log);
    drop(log); // crash
    let expected = [e(1, 0), e(3, 10), e(4, 25)];
    let damages: [(&str, Option<&str>); 4] = [
        (
            "stale: only the first epoch reached the disk",
            Some("0\n1\n1 0\n"),
        ),
        (
            "stale: names an epoch the batches do not have",
            Some("0\n2\n1 0\n2 10\n"),
        ),
        ("torn: empty after the crash", Some("")),
        ("missing", None),
    ];
    for (what, contents) in damages {
        let path = dir.path().join(CHECKPOINT);
        match contents {
            Some(text) => fs::write(&path, text).unwrap(),
            None => fs::remove_file(&path).unwrap(),
        }
        let log = PartitionLog::open_after(dir.path(), LogConfig::default(), LastShutdown::Unclean)
            .unwrap();
        assert_eq!(log.leader_epoch_entries(), &expected, "{what}");
        assert_eq!(answers(&log), before, "{what}");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n3\n1 0\n3 10\n4 25\n",
            "{what}: the repaired cache is written"
        );
        drop(log);
    }
}

/// A clean close fsyncs the checkpoint with the data: after the marker the file is trusted as it is, with the
/// epoch assigned at the log end kept on disk (trimmed in memory only).
#[test]
fn close_makes_the_deferred_checkpoint_durable_and_trusted() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a-0");
    let mut log = epoch_log(&a);
    log.assign_leader_epoch(7, 30).unwrap();
    log.close().unwrap();
    write_clean_shutdown_marker(root.path()).unwrap();
    assert_eq!(
        fs::read_to_string(a.join(CHECKPOINT)).unwrap(),
        "0\n4\n1 0\n3 10\n4 25\n7 30\n"
    );
    let last = take_clean_shutdown_marker(root.path()).unwrap();
    let log = PartitionLog::open_after(&a, LogConfig::default(), last).unwrap();
    assert_eq!(log.leader_epoch_entries(), &[e(1, 0), e(3, 10), e(4, 25)]);
    assert_eq!(
        fs::read_to_string(a.join(CHECKPOINT)).unwrap(),
        "0\n4\n1 0\n3 10\n4 25\n7 30\n",
        "not rewritten at open"
    );
}

/// Fills the log at `dir`, closes it, and marks its log directory `root` clean, as a broker's shutdown does.
fn close_cleanly(root: &Path, dir: &Path) {
    let mut log = open(dir, LastShutdown::Unclean);
    fill(&mut log);
    log.close().unwrap();
    write_clean_shutdown_marker(root).unwrap();
}
