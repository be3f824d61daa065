//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup through the rebalance cycle, and their errors.

use bytes::Bytes;
use kafka_protocol::messages::{GroupId, LeaveGroupRequest, SyncGroupRequest};
use kafka_protocol::ResponseError;

use super::*;
use crate::group::records::GroupRecord;

fn delayed(delay_ms: i32) -> Harness {
    Harness::with_config(GroupConfig {
        initial_rebalance_delay_ms: delay_ms,
        ..GroupConfig::default()
    })
}

#[test]
fn single_member_join_sync_heartbeat() {
    let mut h = Harness::new();
    let join = h.join_now("g", "");
    assert_eq!(join.error_code, 0);
    assert_eq!(join.generation_id, 1);
    assert!(join.member_id.as_str().starts_with("client-"));
    assert_eq!(join.leader, join.member_id);
    assert_eq!(join.protocol_name.as_deref(), Some("range"));
    assert_eq!(join.members.len(), 1);
    assert_eq!(join.members[0].metadata, subscription(&["t1"]));
    assert_eq!(h.state("g"), "CompletingRebalance");

    let member = join.member_id.as_str().to_owned();
    let sync = h.sync("g", &member, 1, &[(&member, b"assigned")]);
    // The assignment was persisted before it was handed out.
    assert!(matches!(h.last[0], Output::Persist(_)));
    let response = h.sync_response(sync);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.assignment, Bytes::from_static(b"assigned"));
    assert_eq!(h.state("g"), "Stable");
    match h.persisted.last() {
        Some(GroupRecord::Group {
            value: Some(value), ..
        }) => {
            assert_eq!(value.generation, 1);
            assert_eq!(value.members.len(), 1);
            assert_eq!(value.members[0].assignment, Bytes::from_static(b"assigned"));
            assert_eq!(value.members[0].subscription, subscription(&["t1"]));
        }
        other => panic!("expected a group record, got {other:?}"),
    }
    assert_eq!(h.heartbeat("g", &member, 1), 0);
}

#[test]
fn member_id_required_from_v4() {
    let mut h = Harness::new();
    let first = h.join(4, "g", "");
    let response = h.join_response(first).clone();
    assert_eq!(response.error_code, code(ResponseError::MemberIdRequired));
    assert_eq!(response.generation_id, -1);
    let member = response.member_id.as_str().to_owned();
    assert!(member.starts_with("client-"));
    // The id is reserved but the member is not in the group yet.
    assert_eq!(h.state("g"), "Empty");
    assert_eq!(h.member_count("g"), 0);

    let second = h.join(4, "g", &member);
    let response = h.join_response(second);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_id.as_str(), member);
    assert_eq!(response.generation_id, 1);
}

#[test]
fn reserved_member_id_delays_rebalance_until_used() {
    let mut h = Harness::new();
    let (leader, generation) = h.stable_single("g", b"a");
    let newcomer = h.join(5, "g", "");
    let newcomer_id = h.join_response(newcomer).member_id.as_str().to_owned();
    // Handing out an id does not start a rebalance by itself.
    assert_eq!(h.state("g"), "Stable");

    let leader_join = h.join(5, "g", &leader);
    assert_eq!(h.state("g"), "PreparingRebalance");
    assert!(!h.is_answered(leader_join), "waits for the reserved member");

    let newcomer_join = h.join(5, "g", &newcomer_id);
    let leader_response = h.join_response(leader_join);
    assert_eq!(leader_response.generation_id, generation + 1);
    assert_eq!(leader_response.members.len(), 2);
    assert_eq!(h.join_response(newcomer_join).members.len(), 0);
}

#[test]
fn three_members_join_one_leaves_and_the_other_two_rejoin() {
    let mut h = delayed(100);
    let joins = [h.join(3, "g", ""), h.join(3, "g", ""), h.join(3, "g", "")];
    assert!(
        joins.iter().all(|id| !h.is_answered(*id)),
        "initial delay holds the joins"
    );
    h.advance(100);
    // Members arrived during the delay, so it was extended once more.
    assert!(joins.iter().all(|id| !h.is_answered(*id)));
    h.advance(100);
    let responses: Vec<_> = joins
        .iter()
        .map(|id| h.join_response(*id).clone())
        .collect();
    let ids: Vec<String> = responses
        .iter()
        .map(|r| r.member_id.as_str().to_owned())
        .collect();
    assert!(responses
        .iter()
        .all(|r| r.error_code == 0 && r.generation_id == 1));
    assert!(
        responses.iter().all(|r| r.leader.as_str() == ids[0]),
        "first joiner leads"
    );
    assert_eq!(responses[0].members.len(), 3);
    assert_eq!(responses[1].members.len(), 0);

    // Followers wait for the leader's assignment.
    let follower_syncs = [h.sync("g", &ids[1], 1, &[]), h.sync("g", &ids[2], 1, &[])];
    assert!(follower_syncs.iter().all(|id| !h.is_answered(*id)));
    let leader_sync = h.sync(
        "g",
        &ids[0],
        1,
        &[(&ids[0], b"p0"), (&ids[1], b"p1"), (&ids[2], b"p2")],
    );
    assert_eq!(
        h.sync_response(leader_sync).assignment,
        Bytes::from_static(b"p0")
    );
    assert_eq!(
        h.sync_response(follower_syncs[0]).assignment,
        Bytes::from_static(b"p1")
    );
    assert_eq!(
        h.sync_response(follower_syncs[1]).assignment,
        Bytes::from_static(b"p2")
    );
    assert_eq!(h.state("g"), "Stable");

    let leave = h.leave("g", &[(&ids[2], None)]);
    assert_eq!(leave.error_code, 0);
    assert_eq!(leave.members[0].error_code, 0);
    assert_eq!(h.state("g"), "PreparingRebalance");
    assert_eq!(
        h.heartbeat("g", &ids[0], 1),
        code(ResponseError::RebalanceInProgress)
    );

    let rejoin_a = h.join(3, "g", &ids[0]);
    assert!(!h.is_answered(rejoin_a), "waits for the other member");
    let rejoin_b = h.join(3, "g", &ids[1]);
    let a = h.join_response(rejoin_a).clone();
    let b = h.join_response(rejoin_b).clone();
    assert_eq!((a.generation_id, b.generation_id), (2, 2));
    let listed: Vec<&str> = a.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(listed, vec![ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(
        h.heartbeat("g", &ids[2], 1),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn initial_delay_extends_while_members_arrive() {
    let mut h = delayed(100);
    let a = h.join(3, "g", "");
    h.advance(50);
    let b = h.join(3, "g", "");
    h.advance(50);
    assert!(
        !h.is_answered(a),
        "a member arrived during the delay, so it is extended"
    );
    h.advance(99);
    assert!(!h.is_answered(a));
    h.advance(1);
    assert_eq!(h.join_response(a).members.len(), 2);
    assert_eq!(h.join_response(b).generation_id, 1);
}

#[test]
fn leader_rejoin_rebalances_but_unchanged_follower_rejoin_does_not() {
    let mut h = delayed(10);
    let (a, b) = (h.join(3, "g", ""), h.join(3, "g", ""));
    h.advance(20);
    let leader = h.join_response(a).member_id.as_str().to_owned();
    let follower = h.join_response(b).member_id.as_str().to_owned();
    h.sync("g", &follower, 1, &[]);
    h.sync("g", &leader, 1, &[]);
    assert_eq!(h.state("g"), "Stable");

    let follower_rejoin = h.join(3, "g", &follower);
    let response = h.join_response(follower_rejoin);
    assert_eq!((response.error_code, response.generation_id), (0, 1));
    assert_eq!(h.state("g"), "Stable");

    // A follower with new metadata triggers a rebalance, as does the leader rejoining at all.
    let changed =
        join_request("g", &follower).with_protocols(vec![protocol("range", &["t1", "t2"])]);
    let follower_rejoin = h.join_with(3, changed);
    assert!(!h.is_answered(follower_rejoin));
    assert_eq!(h.state("g"), "PreparingRebalance");
    let leader_rejoin = h.join(3, "g", &leader);
    assert_eq!(h.join_response(leader_rejoin).generation_id, 2);
}

#[test]
fn protocol_is_chosen_by_vote() {
    let mut h = delayed(10);
    let with_protocols = |names: &[&str]| {
        join_request("g", "").with_protocols(names.iter().map(|n| protocol(n, &["t1"])).collect())
    };
    let a = h.join_with(3, with_protocols(&["range", "roundrobin"]));
    h.join_with(3, with_protocols(&["roundrobin", "range"]));
    h.join_with(3, with_protocols(&["roundrobin", "sticky", "range"]));
    h.advance(20);
    let response = h.join_response(a);
    assert_eq!(response.protocol_name.as_deref(), Some("roundrobin"));
}

#[test]
fn join_errors() {
    let mut h = Harness::new();
    let error = |h: &mut Harness, request| {
        let id = h.join_with(5, request);
        h.join_response(id).error_code
    };
    assert_eq!(
        error(&mut h, join_request("", "")),
        code(ResponseError::InvalidGroupId)
    );
    let short = join_request("g", "").with_session_timeout_ms(5_999);
    assert_eq!(
        error(&mut h, short),
        code(ResponseError::InvalidSessionTimeout)
    );
    let long = join_request("g", "").with_session_timeout_ms(1_800_001);
    assert_eq!(
        error(&mut h, long),
        code(ResponseError::InvalidSessionTimeout)
    );
    assert_eq!(
        error(&mut h, join_request("g", "ghost")),
        code(ResponseError::UnknownMemberId)
    );
    let no_protocols = join_request("g", "").with_protocols(Vec::new());
    assert_eq!(
        error(&mut h, no_protocols),
        code(ResponseError::InconsistentGroupProtocol)
    );
    // None of the failed joins left a group behind.
    assert_eq!(h.state("g"), "Dead");

    h.stable_single("g", b"a");
    assert_eq!(
        error(&mut h, join_request("g", "ghost")),
        code(ResponseError::UnknownMemberId)
    );
    let other_type = join_request("g", "").with_protocol_type(s("connect"));
    assert_eq!(
        error(&mut h, other_type),
        code(ResponseError::InconsistentGroupProtocol)
    );
    let no_common = join_request("g", "").with_protocols(vec![protocol("roundrobin", &["t1"])]);
    assert_eq!(
        error(&mut h, no_common),
        code(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(h.state("g"), "Stable", "rejected joins change nothing");
}

#[test]
fn oversized_metadata_is_rejected_without_state_change() {
    let mut h = Harness::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        max_member_metadata_bytes: 1024,
        ..GroupConfig::default()
    });
    let huge = join_request("g", "").with_protocols(vec![JoinGroupRequestProtocol::default()
        .with_name(s("range"))
        .with_metadata(Bytes::from(vec![0u8; 1025]))]);
    let id = h.join_with(5, huge);
    assert_eq!(
        h.join_response(id).error_code,
        code(ResponseError::MessageTooLarge)
    );
    assert_eq!(h.state("g"), "Dead");

    let (member, generation) = h.stable_single("g", b"a");
    let big_assignment = vec![0u8; 1025];
    let sync = h.sync("g", &member, generation, &[(&member, &big_assignment)]);
    assert_eq!(
        h.sync_response(sync).error_code,
        code(ResponseError::MessageTooLarge)
    );
    let sync = h.sync("g", &member, generation, &[]);
    assert_eq!(h.sync_response(sync).assignment, Bytes::from_static(b"a"));
}

#[test]
fn group_max_size_is_enforced() {
    let mut h = Harness::with_config(GroupConfig {
        initial_rebalance_delay_ms: 100,
        max_group_size: 2,
        ..GroupConfig::default()
    });
    let a = h.join(3, "g", "");
    h.join(3, "g", "");
    let third = h.join(3, "g", "");
    assert_eq!(
        h.join_response(third).error_code,
        code(ResponseError::GroupMaxSizeReached)
    );
    h.advance(200);
    assert_eq!(h.join_response(a).members.len(), 2);
    let fourth = h.join(3, "g", "");
    assert_eq!(
        h.join_response(fourth).error_code,
        code(ResponseError::GroupMaxSizeReached)
    );
    assert_eq!(h.member_count("g"), 2);
}

#[test]
fn sync_errors() {
    let mut h = Harness::new();
    let (member, generation) = h.stable_single("g", b"a");
    let error = |h: &mut Harness, group: &str, member: &str, generation: i32| {
        let id = h.sync(group, member, generation, &[]);
        h.sync_response(id).error_code
    };
    assert_eq!(
        error(&mut h, "g", &member, generation + 1),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        error(&mut h, "g", "ghost", generation),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        error(&mut h, "nope", &member, generation),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        error(&mut h, "", &member, generation),
        code(ResponseError::InvalidGroupId)
    );

    let v5 = |protocol_type: &str, protocol_name: &str| {
        SyncGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(&member))
            .with_generation_id(generation)
            .with_protocol_type(Some(s(protocol_type)))
            .with_protocol_name(Some(s(protocol_name)))
    };
    let id = h.sync_with(5, v5("connect", "range"));
    assert_eq!(
        h.sync_response(id).error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let id = h.sync_with(5, v5("consumer", "roundrobin"));
    assert_eq!(
        h.sync_response(id).error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let id = h.sync_with(5, v5("consumer", "range"));
    let response = h.sync_response(id);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(response.protocol_name.as_deref(), Some("range"));

    h.join(3, "g", "");
    assert_eq!(h.state("g"), "PreparingRebalance");
    assert_eq!(
        error(&mut h, "g", &member, generation),
        code(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn new_rebalance_answers_parked_sync_with_rebalance_in_progress() {
    let mut h = delayed(10);
    let (a, b) = (h.join(3, "g", ""), h.join(3, "g", ""));
    h.advance(20);
    let follower = h.join_response(b).member_id.as_str().to_owned();
    assert!(h.join_response(a).members.len() == 2);
    let parked = h.sync("g", &follower, 1, &[]);
    assert!(!h.is_answered(parked));
    h.join(3, "g", "");
    assert_eq!(
        h.sync_response(parked).error_code,
        code(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn heartbeat_errors() {
    let mut h = Harness::new();
    let (member, generation) = h.stable_single("g", b"a");
    assert_eq!(
        h.heartbeat("g", &member, generation + 1),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        h.heartbeat("g", "ghost", generation),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.heartbeat("nope", &member, generation),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.heartbeat("", &member, generation),
        code(ResponseError::InvalidGroupId)
    );
    h.join(3, "g", "");
    assert_eq!(
        h.heartbeat("g", &member, generation),
        code(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn leave_group_single_member_versions() {
    let mut h = Harness::new();
    let (member, _) = h.stable_single("g", b"a");
    let single = |member: &str| {
        LeaveGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(member))
    };
    let response = h.leave_with(1, single("ghost"));
    assert_eq!(response.error_code, code(ResponseError::UnknownMemberId));
    let response = h.leave_with(1, single(&member));
    assert_eq!(response.error_code, 0);
    // The last member left: the rebalance completes at once into an empty generation.
    assert_eq!(h.state("g"), "Empty");
    match h.persisted.last() {
        Some(GroupRecord::Group {
            value: Some(value), ..
        }) => {
            assert_eq!(value.generation, 2);
            assert!(value.members.is_empty());
            assert_eq!(value.protocol, None);
        }
        other => panic!("expected the empty generation to be persisted, got {other:?}"),
    }
    let invalid = LeaveGroupRequest::default().with_member_id(s("x"));
    assert_eq!(
        h.leave_with(0, invalid).error_code,
        code(ResponseError::InvalidGroupId)
    );
}

#[test]
fn leave_group_batch_reports_each_member() {
    let mut h = delayed(10);
    let (a, b) = (h.join(3, "g", ""), h.join(3, "g", ""));
    h.advance(20);
    let a = h.join_response(a).member_id.as_str().to_owned();
    let b = h.join_response(b).member_id.as_str().to_owned();
    let response = h.leave(
        "g",
        &[
            (&a, None),
            ("ghost", None),
            ("", Some("no-such-instance")),
            (&b, None),
        ],
    );
    assert_eq!(response.error_code, 0);
    let codes: Vec<i16> = response.members.iter().map(|m| m.error_code).collect();
    let unknown = code(ResponseError::UnknownMemberId);
    assert_eq!(codes, vec![0, unknown, unknown, 0]);
    assert_eq!(h.state("g"), "Empty");

    let response = h.leave("missing", &[(&a, None)]);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.members[0].error_code, unknown);
}
