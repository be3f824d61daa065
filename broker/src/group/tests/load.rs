//! Rebuilding state from `__consumer_offsets`, and handing groups off.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::*;
use crate::group::records::partition_for;

/// Sends the records through their byte encoding, as a restart would read them back.
fn via_disk(records: &[GroupRecord]) -> Vec<GroupRecord> {
    records
        .iter()
        .map(|r| {
            let key = r.encode_key().expect("key");
            let value = r.encode_value().expect("value");
            GroupRecord::decode(&key, value.as_deref()).expect("decode")
        })
        .collect()
}

#[test]
fn load_restores_offsets_and_groups() {
    let mut before = Harness::new();
    let first = before.join_now("g", "");
    let leader = first.member_id.as_str().to_owned();
    let second = before.join(3, "g", "");
    before.join(3, "g", &leader);
    let follower = before.join_response(second).member_id.as_str().to_owned();
    assert_eq!(before.join_response(second).generation_id, 2);
    before.sync("g", &leader, 2, &[(&leader, b"la"), (&follower, b"fa")]);
    assert_eq!(
        before.commit("g", &leader, 2, "t1", &[(0, 100), (1, 200)]),
        vec![0, 0]
    );
    assert_eq!(before.commit("g", &leader, 2, "t1", &[(0, 150)]), vec![0]);
    before.commit("simple", "", -1, "t2", &[(0, 5)]);
    // A group that emptied, and one deleted.
    let (gone, _) = before.stable_single("emptied", b"x");
    before.leave("emptied", &[(&gone, None)]);
    let (dropped, generation) = before.stable_single("deleted", b"x");
    before.commit("deleted", &dropped, generation, "t1", &[(0, 1)]);
    before.leave("deleted", &[(&dropped, None)]);
    let id = before.next_version_id(2);
    let request = kafka_protocol::messages::DeleteGroupsRequest::default()
        .with_groups_names(vec![kafka_protocol::messages::GroupId(s("deleted"))]);
    let outputs = before.coordinator.delete_groups(id, 2, request, before.now);
    before.absorb(outputs);

    let mut after = Harness::new();
    after.now = before.now + 60_000;
    let loaded = after
        .coordinator
        .load(via_disk(&before.persisted), after.now);
    assert_eq!(loaded, 3);

    assert_eq!(after.fetch_one("g", "t1", 0), 150, "the later commit wins");
    assert_eq!(after.fetch_one("g", "t1", 1), 200);
    assert_eq!(after.fetch_one("simple", "t2", 0), 5);
    assert_eq!(after.state("emptied"), "Empty");
    assert_eq!(after.state("deleted"), "Dead");
    assert_eq!(after.fetch_one("deleted", "t1", 0), -1);

    let described = after.describe(5, &["g"]).groups[0].clone();
    assert_eq!(described.group_state.as_str(), "Stable");
    assert_eq!(described.protocol_data.as_str(), "range");
    let assignments: Vec<(String, Bytes)> = described
        .members
        .iter()
        .map(|m| (m.member_id.as_str().to_owned(), m.member_assignment.clone()))
        .collect();
    assert_eq!(
        assignments,
        vec![
            (leader.clone(), Bytes::from_static(b"la")),
            (follower.clone(), Bytes::from_static(b"fa")),
        ]
    );

    // Members carry on with their generation; the leader is still the leader.
    assert_eq!(after.heartbeat("g", &leader, 2), 0);
    let rejoin = after.join(3, "g", &follower);
    assert_eq!(after.join_response(rejoin).leader.as_str(), leader);
    // Sessions restarted at load; the follower goes quiet and is expired.
    after.advance(i64::from(SESSION_MS));
    assert_eq!(
        after.heartbeat("g", &follower, 2),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn unload_answers_parked_requests_with_not_coordinator() {
    let mut h = Harness::with_config(GroupConfig {
        initial_rebalance_delay_ms: 100,
        ..GroupConfig::default()
    });
    let parked = h.join(3, "g", "");
    h.commit("other", "", -1, "t1", &[(0, 1)]);
    let partitions = 50;
    let partition = partition_for("g", partitions);
    let outputs = h.coordinator.unload_partition(partition, partitions);
    h.absorb(outputs);
    assert_eq!(
        h.join_response(parked).error_code,
        code(ResponseError::NotCoordinator)
    );
    assert_eq!(h.state("g"), "Dead");
    if partition_for("other", partitions) != partition {
        assert_eq!(h.fetch_one("other", "t1", 0), 1, "other partitions stay");
    }
}
