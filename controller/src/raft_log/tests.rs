use raft::prelude::{Entry, HardState};
use raft::{GetEntriesContext, Storage};

use super::mem::{MemEntryStore, MemHardStateStore};
use super::*;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![index as u8; 10],
        ..Entry::default()
    }
}

/// Node 0 (raft id 1) alone.
fn one_voter() -> crate::membership::Membership {
    crate::membership::Membership::from_static(
        &[crate::config::VoterAddr {
            id: 0,
            host: "localhost".into(),
            port: 9093,
        }],
        "CONTROLLER",
    )
}

fn open(log: &MemEntryStore, hs: &MemHardStateStore) -> RaftStorage {
    RaftStorage::open(
        Box::new(log.clone()),
        Box::new(hs.clone()),
        one_voter(),
        SnapshotDir::in_memory(),
    )
    .unwrap()
}

#[test]
fn append_read_and_reopen() {
    let (log, hs) = (MemEntryStore::default(), MemHardStateStore::default());
    let mut s = open(&log, &hs);
    assert_eq!(s.first_index().unwrap(), 1);
    assert_eq!(s.last_index().unwrap(), 0);
    assert_eq!(s.term(0).unwrap(), 0);
    s.append(&[entry(1, 1), entry(2, 1), entry(3, 2)]).unwrap();
    let state = HardState {
        term: 2,
        commit: 2,
        ..HardState::default()
    };
    s.set_hard_state(&state).unwrap();
    assert_eq!(s.term(3).unwrap(), 2);
    assert!(s.term(4).is_err());
    let got = s
        .entries(2, 4, None, GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(got.iter().map(|e| e.index).collect::<Vec<_>>(), vec![2, 3]);
    // max_size still returns at least one entry.
    assert_eq!(
        s.entries(1, 4, Some(1), GetEntriesContext::empty(false))
            .unwrap()
            .len(),
        1
    );
    assert!(s
        .entries(1, 5, None, GetEntriesContext::empty(false))
        .is_err());

    let s = open(&log, &hs);
    assert_eq!(s.last_index().unwrap(), 3);
    assert_eq!(s.committed_entries().len(), 2);
    assert_eq!(s.initial_state().unwrap().hard_state.term, 2);
    assert_eq!(s.initial_state().unwrap().conf_state.voters, vec![1]);
}

#[test]
fn conflicting_suffix_is_replaced() {
    let (log, hs) = (MemEntryStore::default(), MemHardStateStore::default());
    let mut s = open(&log, &hs);
    s.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
    s.append(&[entry(2, 2)]).unwrap();
    assert_eq!(s.last_index().unwrap(), 2);
    assert_eq!(s.term(2).unwrap(), 2);
    let s = open(&log, &hs);
    assert_eq!(s.last_index().unwrap(), 2);
    assert_eq!(s.term(2).unwrap(), 2);
}

#[test]
fn gaps_are_refused() {
    let (log, hs) = (MemEntryStore::default(), MemHardStateStore::default());
    let mut s = open(&log, &hs);
    assert!(matches!(
        s.append(&[entry(2, 1)]),
        Err(LogError::Gap { last: 0, got: 2 })
    ));
}

#[test]
fn commit_past_log_end_is_corrupt() {
    let (log, mut hs) = (MemEntryStore::default(), MemHardStateStore::default());
    let state = HardState {
        commit: 5,
        ..HardState::default()
    };
    hs.save(&state).unwrap();
    assert!(matches!(
        RaftStorage::open(
            Box::new(log),
            Box::new(hs),
            one_voter(),
            SnapshotDir::in_memory()
        ),
        Err(LogError::Corrupt(_))
    ));
}

#[test]
fn a_commit_alone_is_a_hint_and_term_or_vote_are_durable() {
    let (log, hs) = (MemEntryStore::default(), MemHardStateStore::default());
    let mut s = open(&log, &hs);
    s.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
    let voted = HardState {
        term: 1,
        vote: 1,
        commit: 0,
    };
    s.set_hard_state(&voted).unwrap();
    assert_eq!(hs.durable(), Some(voted.clone()));
    s.set_commit(2).unwrap();
    // The commit moved without a durable write.
    assert_eq!(hs.durable(), Some(voted.clone()));
    // A process crash keeps the hint: the reopened log replays through it.
    let reopened = open(&log, &hs);
    assert_eq!(reopened.hard_state().commit, 2);
    assert_eq!(reopened.committed_entries().len(), 2);
    // A machine crash may lose it: the reopened log replays through the durable commit only.
    hs.lose_commit_hint();
    let reopened = open(&log, &hs);
    assert_eq!(reopened.hard_state().commit, 0);
    assert!(reopened.committed_entries().is_empty());
    // A new term is saved durably, with the commit of the moment.
    s.set_commit(3).unwrap();
    let next_term = HardState {
        term: 2,
        vote: 0,
        commit: 3,
    };
    s.set_hard_state(&next_term).unwrap();
    assert_eq!(hs.durable(), Some(next_term));
    // A clean close makes the latest commit durable.
    let mut s = open(&log, &hs);
    s.append(&[entry(4, 2)]).unwrap();
    s.set_commit(4).unwrap();
    assert_eq!(hs.durable().map(|h| h.commit), Some(3));
    s.close().unwrap();
    hs.lose_commit_hint();
    assert_eq!(open(&log, &hs).hard_state().commit, 4);
}
