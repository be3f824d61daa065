use prost::Message as _;
use raft::prelude::{Entry, EntryType};
use uuid::Uuid;

use super::*;
use crate::records::{encode_batch, MetadataRecord};

fn records(n: u128) -> Vec<MetadataRecord> {
    (0..n)
        .map(|i| MetadataRecord::Topic {
            name: format!("t{i}"),
            id: Uuid::from_u128(i + 1),
        })
        .collect()
}

fn data_entry(index: u64, term: u64, n: u128) -> Entry {
    Entry {
        index,
        term,
        data: encode_batch(&records(n)).unwrap(),
        ..Entry::default()
    }
}

fn empty_entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Entry::default()
    }
}

fn view(term: u64, leader: Option<i32>) -> QuorumView {
    QuorumView {
        term,
        leader,
        voters: vec![0, 1, 2],
    }
}

fn summary(entries: &[Entry]) -> Vec<(u64, u64, Vec<u8>)> {
    entries
        .iter()
        .map(|e| (e.index, e.term, e.data.clone()))
        .collect()
}

/// (base offset, last offset delta, control?, partition leader epoch) of every batch on disk.
fn layout(dir: &Path) -> Vec<(i64, i32, bool, i32)> {
    let log = PartitionLog::open(&dir.join("__cluster_metadata-0"), LogConfig::default()).unwrap();
    let end = log.log_end_offset();
    let read = log.read(0, 1 << 20, Some(end)).unwrap();
    let infos = batch::validate_batches(&read.records, usize::MAX).unwrap();
    log.close().unwrap();
    infos
        .iter()
        .map(|i| {
            (
                i.base_offset,
                i.last_offset_delta,
                i.is_control,
                i.partition_leader_epoch,
            )
        })
        .collect()
}

#[test]
fn append_truncate_reload() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = PartitionEntryStore::open(dir.path()).unwrap();
    assert!(store.load(1, 0).unwrap().is_empty());
    store
        .append(
            &[empty_entry(1, 1), data_entry(2, 1, 3), data_entry(3, 2, 1)],
            &view(1, Some(0)),
        )
        .unwrap();
    store.truncate_from(3).unwrap();
    store
        .append(&[data_entry(3, 3, 2), empty_entry(4, 3)], &view(3, Some(2)))
        .unwrap();
    drop(store);

    // One control batch per empty entry, one data batch per entry, one offset per record.
    assert_eq!(
        layout(dir.path()),
        vec![
            (0, 0, true, 1),
            (1, 2, false, 1),
            (4, 1, false, 3),
            (6, 0, true, 3)
        ]
    );

    let mut store = PartitionEntryStore::open(dir.path()).unwrap();
    let loaded = store.load(1, 0).unwrap();
    assert_eq!(
        summary(&loaded),
        summary(&[
            empty_entry(1, 1),
            data_entry(2, 1, 3),
            data_entry(3, 3, 2),
            empty_entry(4, 3)
        ])
    );
    assert!(loaded
        .iter()
        .all(|e| e.get_entry_type() == EntryType::EntryNormal));
    // Truncating by raft index after a reload uses the loaded base offsets.
    store.truncate_from(3).unwrap();
    store
        .append(&[data_entry(3, 4, 1)], &view(4, Some(1)))
        .unwrap();
    store.close().unwrap();
    let mut store = PartitionEntryStore::open(dir.path()).unwrap();
    assert_eq!(store.load(1, 0).unwrap().len(), 3);
    store.close().unwrap();
    assert_eq!(
        layout(dir.path()),
        vec![(0, 0, true, 1), (1, 2, false, 1), (4, 0, false, 4)]
    );
}

#[test]
fn leader_change_records_name_the_leader_when_known() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = PartitionEntryStore::open(dir.path()).unwrap();
    // Term 5's leader is known; the entry of term 4 (replicated late) gets -1.
    store
        .append(&[empty_entry(1, 4), empty_entry(2, 5)], &view(5, Some(2)))
        .unwrap();
    store.close().unwrap();
    let log = PartitionLog::open(
        &dir.path().join("__cluster_metadata-0"),
        LogConfig::default(),
    )
    .unwrap();
    let read = log.read(0, 1 << 20, Some(2)).unwrap();
    let infos = batch::validate_batches(&read.records, usize::MAX).unwrap();
    let mut leaders = Vec::new();
    for info in &infos {
        for record in batch::records(&read.records[info.range()]).unwrap() {
            let record = record.unwrap();
            assert_eq!(record.key, Some(&[0u8, 0, 0, 2][..]));
            let message = kafka_format::decode_leader_change(record.value.unwrap()).unwrap();
            assert_eq!(message.voters, vec![0, 1, 2]);
            leaders.push(message.leader_id);
        }
    }
    assert_eq!(leaders, vec![-1, 2]);
}

#[test]
fn appends_must_continue_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = PartitionEntryStore::open(dir.path()).unwrap();
    assert!(matches!(
        store.append(&[data_entry(2, 1, 1)], &view(1, None)),
        Err(LogError::Gap { last: 0, got: 2 })
    ));
}

#[test]
fn conf_changes_and_garbage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = PartitionEntryStore::open(dir.path()).unwrap();
    let mut conf = data_entry(1, 1, 1);
    conf.set_entry_type(EntryType::EntryConfChange);
    assert!(matches!(
        store.append(&[conf], &view(1, None)),
        Err(LogError::UnsupportedEntry { index: 1, .. })
    ));
    let garbage = Entry {
        index: 1,
        term: 1,
        data: vec![3, 9, 9, 9],
        ..Entry::default()
    };
    assert!(matches!(
        store.append(&[garbage], &view(1, None)),
        Err(LogError::UnsupportedEntry { index: 1, .. })
    ));
    // Nothing was written.
    assert!(store.load(1, 0).unwrap().is_empty());
}

/// Writes raw batches as a follower would, then loads them.
fn load_raw(batches: &[u8]) -> Result<Vec<Entry>, LogError> {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = PartitionLog::open(
            &dir.path().join("__cluster_metadata-0"),
            LogConfig::default(),
        )
        .unwrap();
        log.append_as_follower(batches).unwrap();
        log.close().unwrap();
    }
    PartitionEntryStore::open(dir.path()).unwrap().load(1, 0)
}

#[test]
fn old_format_batches_are_named_corrupt() {
    let good = batch::build_batch(0, 1, 0, &[(None, Some(&encode_record_bytes()))]);
    let old_value = data_entry(2, 1, 1).encode_to_vec();
    let old = batch::build_batch(1, 1, 0, &[(None, Some(&old_value))]);
    let mut both = good.clone();
    both.extend_from_slice(&old);
    match load_raw(&both) {
        Err(e @ LogError::BadBatch { offset: 1, .. }) => {
            assert!(e.to_string().contains("offset 1"), "{e}");
        }
        other => panic!("expected a bad batch at offset 1, got {other:?}"),
    }
    assert_eq!(load_raw(&good).unwrap().len(), 1);
}

#[test]
fn unsupported_control_records_are_named_corrupt() {
    let mut builder = BatchBuilder::new(0, 1).control(true);
    builder
        .push(
            0,
            Some(&kafka_format::control_key(control_type::KRAFT_VERSION)),
            Some(&[0, 0, 0, 1, 0]),
            &[],
        )
        .unwrap();
    assert!(matches!(
        load_raw(&builder.build()),
        Err(LogError::BadBatch { offset: 0, .. })
    ));
}

#[test]
fn decode_batches_reports_crc_and_truncation() {
    let mut built = batch::build_batch(0, 1, 0, &[(None, Some(&encode_record_bytes()))]);
    let mut entries = Vec::new();
    let mut bases = Vec::new();
    assert!(matches!(
        decode_batches(&built[..20], 0, 1, &mut entries, &mut bases),
        Err(LogError::BadBatch { offset: 0, .. })
    ));
    let last = built.len() - 1;
    built[last] ^= 0xff;
    assert!(matches!(
        decode_batches(&built, 0, 1, &mut entries, &mut bases),
        Err(LogError::BadBatch { offset: 0, .. })
    ));
    // A batch that is not where the previous one ended.
    let gap = batch::build_batch(5, 1, 0, &[(None, Some(&encode_record_bytes()))]);
    assert!(matches!(
        decode_batches(&gap, 0, 1, &mut entries, &mut bases),
        Err(LogError::BadBatch { offset: 5, .. })
    ));
    assert!(entries.is_empty());
}

fn encode_record_bytes() -> Vec<u8> {
    crate::records::kafka_format::encode_record(&records(1)[0]).unwrap()
}

fn conf_change_entry(index: u64, term: u64) -> Entry {
    use crate::membership::{Member, Membership, KRAFT_VERSION_RANGE};
    use crate::records::kafka_format::VoterEndpoint;
    use raft::prelude::{ConfChangeSingle, ConfChangeType, ConfChangeV2};
    let member = |id: i32| Member {
        id,
        directory_id: Uuid::from_u128(id as u128),
        endpoints: vec![VoterEndpoint {
            name: "CONTROLLER".into(),
            host: "localhost".into(),
            port: 9000 + id as u16,
        }],
        kraft_version: KRAFT_VERSION_RANGE,
    };
    let membership = Membership {
        voters: vec![member(1), member(2)],
        learners: vec![member(4)],
    };
    let mut single = ConfChangeSingle::default();
    single.set_change_type(ConfChangeType::AddLearnerNode);
    single.node_id = 5;
    let cc = ConfChangeV2 {
        changes: vec![single],
        ..ConfChangeV2::default()
    };
    let mut entry = Entry {
        index,
        term,
        data: cc.encode_to_vec(),
        context: membership.encode().unwrap(),
        ..Entry::default()
    };
    entry.set_entry_type(EntryType::EntryConfChangeV2);
    entry
}

#[test]
fn conf_changes_are_voters_records_and_reload_identically() {
    let dir = tempfile::tempdir().unwrap();
    let entries = vec![
        data_entry(1, 1, 2),
        conf_change_entry(2, 1),
        data_entry(3, 1, 1),
    ];
    {
        let mut store = PartitionEntryStore::open(dir.path()).unwrap();
        store.append(&entries, &view(1, Some(1))).unwrap();
        store.close().unwrap();
    }
    // One control batch of one record between the two data batches.
    let layout = layout(dir.path());
    assert_eq!(
        layout.iter().map(|l| (l.0, l.2)).collect::<Vec<_>>(),
        vec![(0, false), (2, true), (3, false)]
    );
    let mut store = PartitionEntryStore::open(dir.path()).unwrap();
    let loaded = store.load(1, 0).unwrap();
    assert_eq!(loaded, entries);
    // The record on disk is a VotersRecord (control type 6) Kafka can decode.
    let log = PartitionLog::open(
        &dir.path().join("__cluster_metadata-0"),
        LogConfig::default(),
    )
    .unwrap();
    let read = log.read(2, 1 << 20, None).unwrap();
    let record = batch::records(&read.records)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        kafka_format::parse_control_key(record.key.unwrap()).unwrap(),
        control_type::KRAFT_VOTERS
    );
    let voters = kafka_format::decode_voters(record.value.unwrap()).unwrap();
    assert_eq!(
        voters.voters.iter().map(|v| v.id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    log.close().unwrap();
}

#[test]
fn conf_changes_without_membership_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = PartitionEntryStore::open(dir.path()).unwrap();
    let mut leave = conf_change_entry(1, 1);
    leave.context.clear();
    assert!(matches!(
        store.append(&[leave], &view(1, None)),
        Err(LogError::UnsupportedEntry { index: 1, .. })
    ));
}
