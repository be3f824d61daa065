//! Serving only the groups of the `__consumer_offsets` partitions held: loading, serving, handing off.

use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse, OffsetFetchRequest};
use kafka_protocol::ResponseError;

use super::*;
use crate::group::records::partition_for;
use crate::group::Holding;

/// A harness whose coordinator holds no partition of a `__consumer_offsets` of `OFFSETS_PARTITIONS`.
fn holding_nothing() -> Harness {
    let mut h = Harness::new();
    h.coordinator = GroupCoordinator::new(GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    });
    h.coordinator.set_offsets_partitions(OFFSETS_PARTITIONS);
    h
}

fn list(h: &mut Harness) -> ListGroupsResponse {
    let id = h.next_version_id(4);
    let outputs = h
        .coordinator
        .list_groups(id, 4, ListGroupsRequest::default(), h.now);
    h.absorb(outputs);
    match h.replies.get(&id) {
        Some(Response::ListGroups(r)) => r.clone(),
        other => panic!("not a ListGroups answer: {other:?}"),
    }
}

#[test]
fn before_the_topic_exists_no_group_has_a_coordinator() {
    let mut h = Harness::new();
    h.coordinator = GroupCoordinator::new(GroupConfig::default());
    assert_eq!(
        h.commit("g", "", -1, "t1", &[(0, 1)]),
        vec![code(ResponseError::CoordinatorNotAvailable)]
    );
}

#[test]
fn groups_of_partitions_not_held_answer_not_coordinator() {
    let mut h = holding_nothing();
    let not_coordinator = code(ResponseError::NotCoordinator);
    assert_eq!(
        h.commit("g", "", -1, "t1", &[(0, 1)]),
        vec![not_coordinator]
    );
    assert_eq!(h.join_now("g", "").error_code, not_coordinator);
    assert_eq!(h.heartbeat("g", "m", 1), not_coordinator);
    let fetched = h.fetch_with(
        7,
        OffsetFetchRequest::default().with_group_id(kafka_protocol::messages::GroupId(s("g"))),
    );
    assert_eq!(fetched.error_code, not_coordinator);
    assert_eq!(h.describe(5, &["g"]).groups[0].error_code, not_coordinator);
    assert!(
        h.persisted.is_empty(),
        "nothing written for a group not held"
    );
    assert_eq!(h.coordinator.group_ids().count(), 0);
}

#[test]
fn a_loading_partition_answers_load_in_progress_then_serves_what_it_loaded() {
    let mut before = Harness::new();
    before.commit("g", "", -1, "t1", &[(0, 42)]);
    let records = before.persisted.clone();
    let p = partition_for("g", OFFSETS_PARTITIONS);

    let mut h = holding_nothing();
    assert!(h.coordinator.begin_load(p, 7).is_empty());
    assert_eq!(
        h.coordinator.holding(p),
        Some(Holding::Loading { leader_epoch: 7 })
    );
    assert_eq!(
        h.commit("g", "", -1, "t1", &[(0, 43)]),
        vec![code(ResponseError::CoordinatorLoadInProgress)]
    );
    assert_eq!(
        list(&mut h).error_code,
        code(ResponseError::CoordinatorLoadInProgress)
    );
    // Records read for an older leadership are stale.
    assert_eq!(
        h.coordinator.complete_load(p, 6, records.clone(), h.now),
        None
    );
    assert_eq!(h.coordinator.complete_load(p, 7, records, h.now), Some(1));
    assert_eq!(
        h.coordinator.holding(p),
        Some(Holding::Active { leader_epoch: 7 })
    );
    assert_eq!(h.fetch_one("g", "t1", 0), 42);
    assert_eq!(h.commit("g", "", -1, "t1", &[(0, 43)]), vec![0]);
    assert_eq!(list(&mut h).groups.len(), 1);
}

#[test]
fn releasing_a_partition_hands_its_groups_off() {
    let mut h = Harness::new();
    let p = partition_for("g", OFFSETS_PARTITIONS);
    let config = GroupConfig {
        initial_rebalance_delay_ms: 100,
        ..GroupConfig::default()
    };
    h.coordinator = {
        let mut c = GroupCoordinator::new(config);
        c.set_offsets_partitions(OFFSETS_PARTITIONS);
        c.begin_load(p, 1);
        c.complete_load(p, 1, Vec::new(), h.now);
        c
    };
    // A join parked in the initial rebalance delay.
    let parked = h.join(3, "g", "");
    assert!(!h.is_answered(parked));
    let outputs = h.coordinator.release(p);
    h.absorb(outputs);
    assert_eq!(
        h.join_response(parked).error_code,
        code(ResponseError::NotCoordinator)
    );
    assert_eq!(h.coordinator.holding(p), None);
    assert_eq!(
        h.commit("g", "", -1, "t1", &[(0, 1)]),
        vec![code(ResponseError::NotCoordinator)]
    );
    // Becoming leader again in a newer epoch starts a fresh load.
    assert!(h.coordinator.begin_load(p, 2).is_empty());
    assert_eq!(
        h.coordinator.holding(p),
        Some(Holding::Loading { leader_epoch: 2 })
    );
}

#[test]
fn records_of_other_partitions_are_not_loaded() {
    let mut before = Harness::new();
    before.commit("g", "", -1, "t1", &[(0, 1)]);
    let other = (0..1000)
        .map(|i| format!("other-{i}"))
        .find(|g| partition_for(g, OFFSETS_PARTITIONS) != partition_for("g", OFFSETS_PARTITIONS))
        .expect("some group hashes elsewhere");
    before.commit(&other, "", -1, "t1", &[(0, 2)]);
    let p = partition_for("g", OFFSETS_PARTITIONS);
    let mut h = holding_nothing();
    h.coordinator.begin_load(p, 0);
    assert_eq!(
        h.coordinator
            .complete_load(p, 0, before.persisted.clone(), h.now),
        Some(1)
    );
    assert_eq!(h.coordinator.group_ids().collect::<Vec<_>>(), vec!["g"]);
}
