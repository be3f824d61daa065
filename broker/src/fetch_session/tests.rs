use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::ResponseError;

use super::*;

fn key(topic: &str, partition: i32) -> PartitionKey {
    PartitionKey {
        topic: TopicRef::Name(topic.into()),
        partition,
    }
}

fn ask(partition: i32, offset: i64) -> FetchPartition {
    FetchPartition::default()
        .with_partition(partition)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20)
}

fn answer(high_watermark: i64) -> Answer {
    Answer {
        high_watermark,
        log_start_offset: 0,
        ..Answer::default()
    }
}

fn full(id: i32, epoch: i32, parts: &[(&str, i32, i64)]) -> SessionRequest {
    SessionRequest {
        session_id: id,
        epoch,
        uses_topic_ids: false,
        partitions: parts
            .iter()
            .map(|&(t, p, o)| (key(t, p), ask(p, o)))
            .collect(),
        forgotten: Vec::new(),
    }
}

/// Opens a session over `parts`, each answered with high watermark 10 and no records.
fn open(cache: &FetchSessionCache, parts: &[(&str, i32, i64)], now: u64) -> i32 {
    let Begun::Full(partitions) = cache.begin(full(0, INITIAL_EPOCH, parts), now) else {
        panic!("epoch 0 is a full fetch");
    };
    let answered = partitions
        .into_iter()
        .map(|(k, r)| (k, r, answer(10)))
        .collect();
    cache.open(false, false, answered, now)
}

fn incremental(
    cache: &FetchSessionCache,
    id: i32,
    epoch: i32,
    named: &[(&str, i32, i64)],
    forgotten: &[(&str, i32)],
) -> Begun {
    let mut req = full(id, epoch, named);
    req.forgotten = forgotten.iter().map(|&(t, p)| key(t, p)).collect();
    cache.begin(req, 0)
}

fn incremental_at(cache: &FetchSessionCache, id: i32, epoch: i32, now: u64) -> Begun {
    cache.begin(full(id, epoch, &[]), now)
}

fn read_list(begun: &Begun) -> Vec<(PartitionKey, i64)> {
    match begun {
        Begun::Incremental { partitions, .. } => partitions
            .iter()
            .map(|(k, r)| (k.clone(), r.fetch_offset))
            .collect(),
        other => panic!("expected an incremental fetch, got {other:?}"),
    }
}

#[test]
fn a_full_fetch_opens_a_session_that_the_next_epoch_reads_whole() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, &[("a", 0, 5), ("a", 1, 7)], 0);
    assert!(id > 0);
    let begun = incremental(&cache, id, 1, &[], &[]);
    assert_eq!(read_list(&begun), vec![(key("a", 0), 5), (key("a", 1), 7)]);
    let Begun::Incremental { epoch, .. } = begun else {
        unreachable!()
    };
    assert_eq!(epoch, 2);
}

#[test]
fn wrong_epochs_and_unknown_sessions_are_refused_as_kafka_refuses_them() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, &[("a", 0, 0)], 0);
    assert!(matches!(
        incremental(&cache, id, 2, &[], &[]),
        Begun::Error(ResponseError::InvalidFetchSessionEpoch)
    ));
    assert!(matches!(
        incremental(&cache, id + 1, 1, &[], &[]),
        Begun::Error(ResponseError::FetchSessionIdNotFound)
    ));
    // A request by topic id against a session by name.
    let mut req = full(id, 1, &[]);
    req.uses_topic_ids = true;
    assert!(matches!(
        cache.begin(req, 0),
        Begun::Error(ResponseError::FetchSessionTopicIdError)
    ));
    // The refusals left the session at its epoch.
    assert!(matches!(
        incremental(&cache, id, 1, &[], &[]),
        Begun::Incremental { .. }
    ));
}

#[test]
fn an_incremental_request_updates_adds_and_forgets_partitions() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, &[("a", 0, 0), ("a", 1, 0), ("b", 0, 0)], 0);
    let begun = incremental(&cache, id, 1, &[("a", 1, 40), ("c", 3, 9)], &[("b", 0)]);
    assert_eq!(
        read_list(&begun),
        vec![(key("a", 0), 0), (key("a", 1), 40), (key("c", 3), 9)]
    );
}

#[test]
fn a_session_left_empty_is_closed_and_the_request_answered_without_one() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, &[("a", 0, 0)], 0);
    assert!(matches!(
        incremental(&cache, id, 1, &[], &[("a", 0)]),
        Begun::Sessionless(_)
    ));
    assert!(cache.is_empty());
}

#[test]
fn full_fetches_close_the_session_they_name() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, &[("a", 0, 0)], 0);
    assert!(matches!(
        cache.begin(full(id, FINAL_EPOCH, &[]), 0),
        Begun::Sessionless(_)
    ));
    assert!(cache.is_empty());
    let id = open(&cache, &[("a", 0, 0)], 0);
    assert!(matches!(
        cache.begin(full(id, INITIAL_EPOCH, &[("a", 0, 0)]), 0),
        Begun::Full(_)
    ));
    assert!(cache.is_empty());
}

#[test]
fn an_incremental_answer_carries_only_what_changed() {
    let cache = FetchSessionCache::new(10);
    let id = open(
        &cache,
        &[("a", 0, 0), ("a", 1, 0), ("a", 2, 0), ("a", 3, 0)],
        0,
    );
    let Begun::Incremental { epoch, .. } = incremental(&cache, id, 1, &[], &[]) else {
        panic!()
    };
    let answers = [
        // Nothing new: left out.
        (key("a", 0), answer(10)),
        // Records: carried.
        (
            key("a", 1),
            Answer {
                has_records: true,
                ..answer(10)
            },
        ),
        // The high watermark moved: carried.
        (key("a", 2), answer(11)),
        // An error: carried.
        (
            key("a", 3),
            Answer {
                error: true,
                ..answer(-1)
            },
        ),
    ];
    assert_eq!(
        cache.select(id, epoch, &answers),
        Ok(vec![false, true, true, true])
    );
    // Next round, unchanged: only the partition that had the error is sent again once it recovers, since its
    // cached high watermark was forgotten.
    let Begun::Incremental { epoch, .. } = incremental(&cache, id, epoch, &[], &[]) else {
        panic!()
    };
    let answers = [
        (key("a", 0), answer(10)),
        (key("a", 2), answer(11)),
        (key("a", 3), answer(10)),
        (key("a", 1), answer(10)),
    ];
    assert_eq!(
        cache.select(id, epoch, &answers),
        Ok(vec![false, false, true, false])
    );
    // A moved log start offset and a preferred read replica are carried too.
    let Begun::Incremental { epoch, .. } = incremental(&cache, id, epoch, &[], &[]) else {
        panic!()
    };
    let answers = [
        (
            key("a", 0),
            Answer {
                log_start_offset: 3,
                ..answer(10)
            },
        ),
        (
            key("a", 2),
            Answer {
                preferred_replica: true,
                ..answer(11)
            },
        ),
    ];
    assert_eq!(cache.select(id, epoch, &answers), Ok(vec![true, true]));
}

#[test]
fn partitions_answered_with_records_are_read_last_next_time() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, &[("a", 0, 0), ("a", 1, 0), ("a", 2, 0)], 0);
    let Begun::Incremental { epoch, .. } = incremental(&cache, id, 1, &[], &[]) else {
        panic!()
    };
    let with_records = Answer {
        has_records: true,
        ..answer(10)
    };
    let answers = [
        (key("a", 0), with_records),
        (key("a", 1), answer(10)),
        (key("a", 2), answer(10)),
    ];
    assert!(cache.select(id, epoch, &answers).is_ok());
    let order: Vec<_> = read_list(&incremental(&cache, id, epoch, &[], &[]))
        .into_iter()
        .map(|(k, _)| k.partition)
        .collect();
    assert_eq!(order, vec![1, 2, 0]);
}

#[test]
fn a_duplicate_request_is_told_its_epoch_is_stale() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, &[("a", 0, 0)], 0);
    let Begun::Incremental { epoch, .. } = incremental(&cache, id, 1, &[], &[]) else {
        panic!()
    };
    // A second request moved the session on before the first was answered.
    assert!(matches!(
        incremental(&cache, id, epoch, &[], &[]),
        Begun::Incremental { .. }
    ));
    assert_eq!(
        cache.select(id, epoch, &[(key("a", 0), answer(10))]),
        Err(ResponseError::InvalidFetchSessionEpoch)
    );
}

#[test]
fn a_full_cache_evicts_only_as_kafka_does() {
    let cache = FetchSessionCache::new(2);
    let first = open(&cache, &[("a", 0, 0)], 0);
    let second = open(&cache, &[("a", 0, 0), ("a", 1, 0)], 1_000);
    assert!(first > 0 && second > 0 && first != second);
    // Both recently used and recently created: a third consumer gets no session.
    assert_eq!(
        open(&cache, &[("a", 0, 0), ("a", 1, 0), ("a", 2, 0)], 2_000),
        0
    );
    // A follower's session may evict a consumer's, the smallest first; a consumer's may not.
    assert_eq!(cache.open(false, false, Vec::new(), 3_000), 0);
    let answered = vec![(key("a", 0), ask(0, 0), answer(10))];
    assert!(cache.open(true, false, answered, 3_000) > 0);
    assert!(matches!(
        incremental(&cache, first, 1, &[], &[]),
        Begun::Error(ResponseError::FetchSessionIdNotFound)
    ));
    assert_eq!(cache.len(), 2);
}

#[test]
fn sessions_older_than_the_eviction_time_give_way_to_larger_ones_and_stale_ones_to_any() {
    let cache = FetchSessionCache::new(2);
    let small = open(&cache, &[("a", 0, 0)], 0);
    let middle = open(&cache, &[("a", 0, 0), ("a", 1, 0)], 0);
    // Both in use, both created more than the eviction time ago.
    let now = EVICTION_MS + 10;
    for id in [small, middle] {
        assert!(matches!(
            incremental_at(&cache, id, 1, now),
            Begun::Incremental { .. }
        ));
    }
    let large = open(&cache, &[("a", 0, 0), ("a", 1, 0), ("a", 2, 0)], now);
    assert!(large > 0, "a larger session evicts the smallest old one");
    assert!(matches!(
        incremental_at(&cache, small, 2, now),
        Begun::Error(ResponseError::FetchSessionIdNotFound)
    ));
    // A smaller one does not evict the old middle one, nor the new large one.
    assert_eq!(open(&cache, &[("a", 0, 0)], now), 0);
    // Unused for longer than the eviction time, the least recently used goes for anyone.
    let later = now + EVICTION_MS + 1;
    assert!(open(&cache, &[("a", 0, 0)], later) > 0);
    assert_eq!(cache.len(), 2);
}

#[test]
fn no_slots_means_no_sessions() {
    let cache = FetchSessionCache::new(0);
    assert_eq!(open(&cache, &[("a", 0, 0)], 0), 0);
    assert!(cache.is_empty());
}

#[test]
fn epochs_wrap_past_the_sentinels() {
    assert_eq!(next_epoch(1), 2);
    assert_eq!(next_epoch(i32::MAX), 1);
    assert_eq!(next_epoch(FINAL_EPOCH), FINAL_EPOCH);
}
