use super::*;

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

/// Epochs 2 at 0, 4 at 10, 5 at 25: the shape of a partition that saw three leaders.
fn three_epochs() -> LeaderEpochCache {
    LeaderEpochCache::from_entries([e(2, 0), e(4, 10), e(5, 25)])
}

#[test]
fn assign_records_only_new_epochs() {
    let mut c = LeaderEpochCache::default();
    assert!(c.assign(1, 0));
    assert!(!c.assign(1, 5), "same epoch later in the log is not news");
    assert!(c.assign(3, 7));
    assert!(!c.assign(-1, 9), "unstamped batches are ignored");
    assert!(!c.assign(4, -1));
    assert_eq!(c.entries(), &[e(1, 0), e(3, 7)]);
    assert_eq!(c.latest_epoch(), Some(3));
    assert_eq!(c.earliest(), Some(e(1, 0)));
}

#[test]
fn assign_drops_conflicting_trailing_entries() {
    let mut c = three_epochs();
    // Epoch 5 was assigned on becoming leader but epoch 6 starts at the same offset: 5 wrote nothing.
    assert!(c.assign(6, 25));
    assert_eq!(c.entries(), &[e(2, 0), e(4, 10), e(6, 25)]);
    // A lower epoch at a later offset replaces the newer ones (what Kafka does on a non-monotonic entry).
    assert!(c.assign(3, 30));
    assert_eq!(c.entries(), &[e(2, 0), e(3, 30)]);
    // The latest epoch starting earlier than recorded moves back.
    assert!(c.assign(3, 20));
    assert_eq!(c.entries(), &[e(2, 0), e(3, 20)]);
}

#[test]
fn end_offset_of_latest_epoch_is_log_end() {
    assert_eq!(three_epochs().end_offset_for(5, 40), end(5, 40));
}

#[test]
fn end_offset_of_older_epoch_is_next_start() {
    let c = three_epochs();
    assert_eq!(c.end_offset_for(2, 40), end(2, 10));
    assert_eq!(c.end_offset_for(4, 40), end(4, 25));
}

#[test]
fn end_offset_of_unknown_middle_epoch_is_largest_below() {
    // Epoch 3 never wrote: it "ended" where 4 began, and the answer names epoch 2.
    assert_eq!(three_epochs().end_offset_for(3, 40), end(2, 10));
}

#[test]
fn end_offset_of_epoch_below_earliest_is_first_start() {
    let c = LeaderEpochCache::from_entries([e(4, 100), e(6, 150)]);
    assert_eq!(c.end_offset_for(1, 200), end(1, 100));
}

#[test]
fn end_offset_undefined_cases() {
    let c = three_epochs();
    assert_eq!(c.end_offset_for(6, 40), EpochEndOffset::UNDEFINED);
    assert_eq!(
        c.end_offset_for(UNDEFINED_EPOCH, 40),
        EpochEndOffset::UNDEFINED
    );
    assert_eq!(
        LeaderEpochCache::default().end_offset_for(0, 0),
        EpochEndOffset::UNDEFINED
    );
}

#[test]
fn truncate_from_end_removes_entries_at_or_past() {
    let mut c = three_epochs();
    assert!(!c.truncate_from_end(26));
    assert!(c.truncate_from_end(25));
    assert_eq!(c.entries(), &[e(2, 0), e(4, 10)]);
    // Epoch 4 is now the latest: it ends at the (truncated) log end.
    assert_eq!(c.end_offset_for(4, 25), end(4, 25));
    assert_eq!(c.end_offset_for(5, 25), EpochEndOffset::UNDEFINED);
    assert!(c.truncate_from_end(0));
    assert!(c.is_empty());
}

#[test]
fn truncate_from_start_moves_the_covering_entry() {
    let mut c = three_epochs();
    assert!(!c.truncate_from_start(0));
    assert!(c.truncate_from_start(12));
    assert_eq!(c.entries(), &[e(4, 12), e(5, 25)]);
    assert!(!c.truncate_from_start(12));
    // Exactly at an entry's start: the older ones go, that one stays as it is.
    assert!(c.truncate_from_start(25));
    assert_eq!(c.entries(), &[e(5, 25)]);
    assert!(c.truncate_from_start(30));
    assert_eq!(c.entries(), &[e(5, 30)]);
    // Below the earliest epoch: nothing to do.
    let mut d = LeaderEpochCache::from_entries([e(3, 50)]);
    assert!(!d.truncate_from_start(20));
    assert_eq!(d.entries(), &[e(3, 50)]);
}

#[test]
fn epochs_below_new_log_start_answer_with_it() {
    let mut c = three_epochs();
    c.truncate_from_start(12);
    assert_eq!(c.end_offset_for(2, 40), end(2, 12));
    assert_eq!(c.end_offset_for(4, 40), end(4, 25));
}

#[test]
fn epoch_for_offset() {
    let c = three_epochs();
    assert_eq!(c.epoch_for_offset(0), Some(2));
    assert_eq!(c.epoch_for_offset(9), Some(2));
    assert_eq!(c.epoch_for_offset(10), Some(4));
    assert_eq!(c.epoch_for_offset(1000), Some(5));
    let mut d = three_epochs();
    d.truncate_from_start(12);
    assert_eq!(d.epoch_for_offset(11), None);
}

#[test]
fn from_entries_repairs_disorder() {
    let c = LeaderEpochCache::from_entries([e(1, 0), e(3, 10), e(2, 20)]);
    assert_eq!(c.entries(), &[e(1, 0), e(2, 20)]);
}

#[test]
fn clear_reports_change() {
    let mut c = three_epochs();
    assert!(c.clear());
    assert!(!c.clear());
}
