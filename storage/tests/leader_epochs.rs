//! The leader-epoch cache as the log maintains it: appends, truncation, log start moves, restart and rebuild.

mod common;

use std::fs;

use common::{batch, open, small_config};
use kraftwerk_storage::{EpochEndOffset, EpochEntry, LogConfig, PartitionLog};

const CHECKPOINT: &str = "leader-epoch-checkpoint";

fn e(epoch: i32, start_offset: i64) -> EpochEntry {
    EpochEntry {
        epoch,
        start_offset,
    }
}

fn end(leader_epoch: i32, end_offset: i64) -> EpochEndOffset {
    EpochEndOffset {
        leader_epoch,
        end_offset,
    }
}

/// Appends `batches` batches of 5 records each, stamped with `epoch`.
fn append_epoch(log: &mut PartitionLog, epoch: i32, batches: usize) {
    for _ in 0..batches {
        log.append_with_leader_epoch(&batch(5, 100, 1, 1_000), 1_000, epoch)
            .unwrap();
    }
}

/// Epoch 1: offsets 0..10, epoch 3: 10..25, epoch 4: 25..30, in small segments.
fn three_epoch_log(dir: &std::path::Path) -> PartitionLog {
    let mut log = open(dir, small_config(1_200));
    append_epoch(&mut log, 1, 2);
    append_epoch(&mut log, 3, 3);
    append_epoch(&mut log, 4, 1);
    log
}

#[test]
fn appends_record_new_epochs_and_the_file_is_kafkas_format() {
    let dir = tempfile::tempdir().unwrap();
    let log = three_epoch_log(dir.path());
    assert!(log.segment_count() > 2);
    assert_eq!(log.leader_epoch_entries(), &[e(1, 0), e(3, 10), e(4, 25)]);
    assert_eq!(
        fs::read_to_string(dir.path().join(CHECKPOINT)).unwrap(),
        "0\n3\n1 0\n3 10\n4 25\n"
    );
    assert_eq!(log.end_offset_for(1), end(1, 10));
    assert_eq!(log.end_offset_for(2), end(1, 10));
    assert_eq!(log.end_offset_for(3), end(3, 25));
    assert_eq!(log.end_offset_for(4), end(4, 30));
    assert_eq!(log.end_offset_for(5), EpochEndOffset::UNDEFINED);
    assert_eq!(log.end_offset_for(0), end(0, 0));
    assert_eq!(log.end_offset_for(-1), EpochEndOffset::UNDEFINED);
}

#[test]
fn older_epoch_batches_and_unstamped_batches_do_not_move_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append_epoch(&mut log, 5, 1);
    // Epoch -1 is what a batch carries when no leader stamped it: ignored.
    log.append_with_leader_epoch(&batch(1, 10, 1, 1), 1, -1)
        .unwrap();
    append_epoch(&mut log, 2, 1);
    assert_eq!(log.leader_epoch_entries(), &[e(5, 0)]);
    assert_eq!(log.end_offset_for(5), end(5, 11));
}

#[test]
fn leader_assignment_without_data_is_the_current_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = three_epoch_log(dir.path());
    log.assign_leader_epoch(6, log.log_end_offset()).unwrap();
    assert_eq!(log.end_offset_for(6), end(6, 30));
    assert_eq!(log.end_offset_for(5), end(4, 30));
    assert_eq!(log.end_offset_for(4), end(4, 30));
    // Epoch 7 takes over before 6 wrote anything: 6 disappears, as in Kafka.
    log.assign_leader_epoch(7, 30).unwrap();
    append_epoch(&mut log, 7, 1);
    assert_eq!(
        log.leader_epoch_entries(),
        &[e(1, 0), e(3, 10), e(4, 25), e(7, 30)]
    );
}

#[test]
fn truncation_removes_entries_at_or_past_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = three_epoch_log(dir.path());
    log.truncate_to(25).unwrap();
    assert_eq!(log.leader_epoch_entries(), &[e(1, 0), e(3, 10)]);
    assert_eq!(log.end_offset_for(3), end(3, 25));
    assert_eq!(log.end_offset_for(4), EpochEndOffset::UNDEFINED);
    // Inside a batch of epoch 3: the batch [20, 24] goes whole.
    log.truncate_to(22).unwrap();
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(log.end_offset_for(3), end(3, 20));
    // Inside the first batch of epoch 3: its entry goes with it.
    log.truncate_to(12).unwrap();
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.leader_epoch_entries(), &[e(1, 0)]);
    // A new leader's data follows.
    append_epoch(&mut log, 5, 1);
    assert_eq!(log.leader_epoch_entries(), &[e(1, 0), e(5, 10)]);
    drop(log);
    let log = open(dir.path(), small_config(1_200));
    assert_eq!(log.leader_epoch_entries(), &[e(1, 0), e(5, 10)]);
}

#[test]
fn truncate_fully_clears_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = three_epoch_log(dir.path());
    log.truncate_fully_and_start_at(100).unwrap();
    assert!(log.leader_epoch_entries().is_empty());
    assert_eq!(log.end_offset_for(4), EpochEndOffset::UNDEFINED);
    append_epoch(&mut log, 9, 1);
    assert_eq!(log.leader_epoch_entries(), &[e(9, 100)]);
}

#[test]
fn delete_records_moves_the_covering_entry_to_the_new_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = three_epoch_log(dir.path());
    log.delete_records_before(12).unwrap();
    assert_eq!(log.leader_epoch_entries(), &[e(3, 12), e(4, 25)]);
    // An epoch below the earliest kept answers with the new start (Kafka's KIP-279 rule).
    assert_eq!(log.end_offset_for(1), end(1, 12));
    assert_eq!(log.end_offset_for(3), end(3, 25));
    drop(log);
    let log = open(dir.path(), small_config(1_200));
    assert_eq!(log.leader_epoch_entries(), &[e(3, 12), e(4, 25)]);
}

#[test]
fn retention_moves_the_log_start_and_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = three_epoch_log(dir.path());
    let config = LogConfig {
        retention_bytes: 0,
        ..small_config(1_200)
    };
    log.update_config(config);
    assert!(log.enforce_retention(2_000).unwrap() > 0);
    let start = log.log_start_offset();
    assert!(start > 0);
    let first = log.leader_epoch_entries()[0];
    assert_eq!(first.start_offset, start);
    assert_eq!(log.end_offset_for(4), end(4, 30));
}

#[test]
fn survives_restart_clean_and_unclean() {
    let dir = tempfile::tempdir().unwrap();
    let log = three_epoch_log(dir.path());
    log.close().unwrap();
    let log = open(dir.path(), small_config(1_200));
    assert_eq!(log.leader_epoch_entries(), &[e(1, 0), e(3, 10), e(4, 25)]);
    assert_eq!(log.end_offset_for(3), end(3, 25));
    drop(log); // no clean-shutdown marker: the next open recovers
    let log = open(dir.path(), small_config(1_200));
    assert_eq!(log.end_offset_for(4), end(4, 30));
}

#[test]
fn missing_or_garbled_checkpoint_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = three_epoch_log(dir.path());
    log.delete_records_before(12).unwrap();
    log.close().unwrap();
    fs::remove_file(dir.path().join(CHECKPOINT)).unwrap();
    let log = open(dir.path(), small_config(1_200));
    // Rebuilt from batch headers, then trimmed to the log start. The segment holding offset 12 starts at a
    // batch boundary at or before it, so the covering epoch (3) is found and moved to 12.
    assert_eq!(log.leader_epoch_entries(), &[e(3, 12), e(4, 25)]);
    assert!(
        dir.path().join(CHECKPOINT).exists(),
        "the rebuilt cache is written"
    );
    drop(log);
    fs::write(dir.path().join(CHECKPOINT), "0\n5\n1 0\n").unwrap();
    let log = open(dir.path(), small_config(1_200));
    assert_eq!(log.leader_epoch_entries(), &[e(3, 12), e(4, 25)]);
}

#[test]
fn checkpoint_past_the_recovered_log_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let log = three_epoch_log(dir.path());
    drop(log);
    // As if epoch 8 had been recorded just before a crash that lost its data.
    fs::write(dir.path().join(CHECKPOINT), "0\n4\n1 0\n3 10\n4 25\n8 30\n").unwrap();
    let log = open(dir.path(), small_config(1_200));
    assert_eq!(log.leader_epoch_entries(), &[e(1, 0), e(3, 10), e(4, 25)]);
    // Trimmed in memory only (as Kafka's loader does): the file is left for the next epoch change, and every
    // open trims it the same way until then.
    assert_eq!(
        fs::read_to_string(dir.path().join(CHECKPOINT)).unwrap(),
        "0\n4\n1 0\n3 10\n4 25\n8 30\n"
    );
    drop(log);
    let mut log = open(dir.path(), small_config(1_200));
    assert_eq!(log.leader_epoch_entries(), &[e(1, 0), e(3, 10), e(4, 25)]);
    let end = log.log_end_offset();
    append_epoch(&mut log, 9, 1);
    assert_eq!(
        fs::read_to_string(dir.path().join(CHECKPOINT)).unwrap(),
        format!("0\n4\n1 0\n3 10\n4 25\n9 {end}\n"),
        "the next epoch change writes the trimmed cache"
    );
}

#[test]
fn torn_tail_cut_by_recovery_trims_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append_epoch(&mut log, 1, 2);
    append_epoch(&mut log, 2, 1);
    drop(log);
    // Tear the last batch (epoch 2's only one): recovery cuts it, and epoch 2 must go with it.
    let seg = dir.path().join("00000000000000000000.log");
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.leader_epoch_entries(), &[e(1, 0)]);
    assert_eq!(log.end_offset_for(2), EpochEndOffset::UNDEFINED);
    assert_eq!(log.end_offset_for(1), end(1, 10));
}

#[test]
fn follower_appends_record_the_leaders_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let leader = three_epoch_log(&dir.path().join("leader"));
    let mut follower = open(&dir.path().join("follower"), LogConfig::default());
    let mut offset = 0;
    while offset < leader.log_end_offset() {
        let r = leader.read(offset, 1 << 20, None).unwrap();
        offset = follower.append_as_follower(&r.records).unwrap().last_offset + 1;
    }
    assert_eq!(
        follower.leader_epoch_entries(),
        leader.leader_epoch_entries()
    );
}

/// A new epoch overwrites the checkpoint in place; what a machine crash can leave of that unsynced write (the new
/// length with the new line not yet written, or the new count over the old lines) is refused and rebuilt from
/// the log, and the entries before it are never changed by such a write.
#[test]
fn an_in_place_write_torn_by_a_crash_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let log = three_epoch_log(dir.path());
    log.close().unwrap();
    let path = dir.path().join(CHECKPOINT);
    let old = fs::read_to_string(&path).unwrap();
    let mut log = open(dir.path(), small_config(1_200));
    log.assign_leader_epoch(6, log.log_end_offset()).unwrap();
    log.flush().unwrap();
    let new = fs::read_to_string(&path).unwrap();
    assert_eq!(new, "0\n4\n1 0\n3 10\n4 25\n6 30\n");
    // Only the count (same width) and the new line differ: every older entry keeps its bytes and place.
    assert_eq!(&new[4..old.len()], &old[4..]);
    drop(log);
    let zeroed_tail = format!(
        "{}{}",
        &new[..old.len()],
        "\0".repeat(new.len() - old.len())
    );
    let new_count_old_lines = format!("{}{}", &new[..4], &old[4..]);
    for torn in [zeroed_tail, new_count_old_lines] {
        fs::write(&path, &torn).unwrap();
        let log = open(dir.path(), small_config(1_200));
        assert_eq!(
            log.leader_epoch_entries(),
            &[e(1, 0), e(3, 10), e(4, 25)],
            "{torn:?}"
        );
        drop(log);
    }
}

/// A new epoch reaches the checkpoint file at the next roll, flush or close, not at once. A crash before that (the
/// log dropped without closing, as after kill -9) loses no entry the data carries: the file holds every entry
/// starting before the active segment, and the open re-assigns the active segment's from its batches. A new
/// leader's epoch at the log end, which no batch carries yet, is gone after such a crash, as every open trims
/// an entry starting at the log end anyway.
#[test]
fn epochs_not_yet_written_come_back_from_the_batches_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CHECKPOINT);
    let mut log = three_epoch_log(dir.path());
    log.flush().unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "0\n3\n1 0\n3 10\n4 25\n"
    );
    // Epoch 6 goes into the active segment with no roll; epoch 7 is assigned at the log end with no batch.
    let segments = log.segment_count();
    log.append_with_leader_epoch(&common::batch(1, 10, 1, 1_000), 1_000, 6)
        .unwrap();
    assert_eq!(log.segment_count(), segments);
    log.assign_leader_epoch(7, log.log_end_offset()).unwrap();
    assert_eq!(
        log.leader_epoch_entries(),
        &[e(1, 0), e(3, 10), e(4, 25), e(6, 30), e(7, 31)]
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "0\n3\n1 0\n3 10\n4 25\n",
        "not written yet"
    );
    drop(log);
    let mut log = open(dir.path(), small_config(1_200));
    assert_eq!(
        log.leader_epoch_entries(),
        &[e(1, 0), e(3, 10), e(4, 25), e(6, 30)]
    );
    assert_eq!(log.end_offset_for(6), end(6, 31));

    // Epochs 8 and 9 start in segments that roll before the crash: each roll wrote them.
    append_epoch(&mut log, 8, 3);
    append_epoch(&mut log, 9, 3);
    let before_crash = log.leader_epoch_entries().to_vec();
    assert!(before_crash.len() == 6 && log.segment_count() > segments + 1);
    drop(log);
    let log = open(dir.path(), small_config(1_200));
    assert_eq!(log.leader_epoch_entries(), before_crash.as_slice());
}
