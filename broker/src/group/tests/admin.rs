//! ListGroups, DescribeGroups and DeleteGroups.

use bytes::Bytes;
use kafka_protocol::messages::{
    DeleteGroupsRequest, GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::ResponseError;

use super::*;
use crate::group::records::GroupRecord;

fn list(h: &mut Harness, version: i16, states: &[&str], types: &[&str]) -> Vec<(String, String)> {
    let id = h.next_version_id(version);
    let request = ListGroupsRequest::default()
        .with_states_filter(states.iter().map(|x| s(x)).collect())
        .with_types_filter(types.iter().map(|x| s(x)).collect());
    let outputs = h.coordinator.list_groups(id, version, request, h.now);
    h.absorb(outputs);
    let response: ListGroupsResponse = match h.replies.get(&id) {
        Some(Response::ListGroups(r)) => r.clone(),
        other => panic!("not a ListGroups answer: {other:?}"),
    };
    response
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.0.as_str().to_owned(),
                g.group_state.as_str().to_owned(),
            )
        })
        .collect()
}

fn delete_groups(h: &mut Harness, groups: &[&str]) -> Vec<i16> {
    let id = h.next_version_id(2);
    let request = DeleteGroupsRequest::default()
        .with_groups_names(groups.iter().map(|g| GroupId(s(g))).collect());
    let outputs = h.coordinator.delete_groups(id, 2, request, h.now);
    h.absorb(outputs);
    match h.replies.get(&id) {
        Some(Response::DeleteGroups(r)) => r.results.iter().map(|r| r.error_code).collect(),
        other => panic!("not a DeleteGroups answer: {other:?}"),
    }
}

#[test]
fn list_groups_filters_by_state_and_type() {
    let mut h = Harness::new();
    h.stable_single("active", b"a");
    h.commit("simple", "", -1, "t1", &[(0, 1)]);
    let everything = vec![
        ("active".to_owned(), "Stable".to_owned()),
        ("simple".to_owned(), "Empty".to_owned()),
    ];
    assert_eq!(list(&mut h, 0, &[], &[]), everything);
    assert_eq!(
        list(&mut h, 4, &["stable"], &[]),
        vec![everything[0].clone()]
    );
    assert_eq!(
        list(&mut h, 4, &["Empty", "Dead"], &[]),
        vec![everything[1].clone()]
    );
    assert_eq!(list(&mut h, 5, &[], &["Classic"]), everything);
    assert!(list(&mut h, 5, &[], &["consumer"]).is_empty());
}

#[test]
fn describe_groups_shows_members_and_unknown_groups() {
    let mut h = Harness::new();
    let (member, _) = h.stable_single("g", b"assigned");
    let response = h.describe(5, &["g", "missing"]);
    let group = &response.groups[0];
    assert_eq!(group.error_code, 0);
    assert_eq!(group.group_state.as_str(), "Stable");
    assert_eq!(group.protocol_type.as_str(), "consumer");
    assert_eq!(group.protocol_data.as_str(), "range");
    assert_eq!(group.members[0].member_id.as_str(), member);
    assert_eq!(group.members[0].client_id.as_str(), "client");
    assert_eq!(group.members[0].client_host.as_str(), "/127.0.0.1");
    assert_eq!(group.members[0].member_metadata, subscription(&["t1"]));
    assert_eq!(
        group.members[0].member_assignment,
        Bytes::from_static(b"assigned")
    );
    let missing = &response.groups[1];
    assert_eq!(
        (missing.error_code, missing.group_state.as_str()),
        (0, "Dead")
    );
    let v6 = h.describe(6, &["missing"]);
    assert_eq!(
        v6.groups[0].error_code,
        code(ResponseError::GroupIdNotFound)
    );

    // Outside Stable, members are listed without metadata or assignment.
    h.join(3, "g", "");
    let group = h.describe(0, &["g"]).groups[0].clone();
    assert_eq!(group.group_state.as_str(), "PreparingRebalance");
    assert_eq!(group.protocol_data.as_str(), "");
    assert!(group.members.iter().all(|m| m.member_metadata.is_empty()));
}

#[test]
fn delete_groups_only_deletes_empty_groups() {
    let mut h = Harness::new();
    let (member, generation) = h.stable_single("g", b"a");
    h.commit("g", &member, generation, "t1", &[(0, 7)]);
    assert_eq!(
        delete_groups(&mut h, &["g", "missing"]),
        vec![
            code(ResponseError::NonEmptyGroup),
            code(ResponseError::GroupIdNotFound)
        ]
    );
    h.leave("g", &[(&member, None)]);
    assert_eq!(h.state("g"), "Empty");
    let before = h.persisted.len();
    assert_eq!(delete_groups(&mut h, &["g"]), vec![0]);
    let tombstones: Vec<&GroupRecord> = h.persisted[before..].iter().collect();
    assert_eq!(tombstones.len(), 2, "one offset and the group record");
    assert!(tombstones.iter().all(|r| r.is_tombstone()));
    assert_eq!(h.state("g"), "Dead");
    assert_eq!(h.fetch_one("g", "t1", 0), -1);
}
