//! Static membership (KIP-345): restarts without rebalances, and fencing of replaced instances.

use bytes::Bytes;
use kafka_protocol::messages::{GroupId, HeartbeatRequest};
use kafka_protocol::ResponseError;

use super::*;

fn static_join(group: &str, member: &str, instance: &str) -> JoinGroupRequest {
    join_request(group, member).with_group_instance_id(Some(s(instance)))
}

/// A stable group with one static member `i1`; returns its member id.
fn stable_static(h: &mut Harness) -> String {
    // Static members skip the member-id round trip even on v5.
    let id = h.join_with(5, static_join("g", "", "i1"));
    let response = h.join_response(id).clone();
    assert_eq!(response.error_code, 0);
    let member = response.member_id.as_str().to_owned();
    assert!(
        member.starts_with("i1-"),
        "static member ids start with the instance id"
    );
    let sync = h.sync("g", &member, 1, &[(&member, b"mine")]);
    assert_eq!(h.sync_response(sync).error_code, 0);
    member
}

fn static_heartbeat(h: &mut Harness, member: &str, instance: &str, generation: i32) -> i16 {
    h.heartbeat_with(
        HeartbeatRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(member))
            .with_group_instance_id(Some(s(instance)))
            .with_generation_id(generation),
    )
}

#[test]
fn restarted_static_member_keeps_its_assignment_without_rebalance() {
    let mut h = Harness::new();
    let old = stable_static(&mut h);

    let rejoin = h.join_with(9, static_join("g", "", "i1"));
    // The new member id is persisted before the answer.
    assert!(matches!(h.last[0], Output::Persist(_)));
    let response = h.join_response(rejoin).clone();
    assert_eq!(response.error_code, 0);
    assert_eq!(response.generation_id, 1, "no new generation");
    let new = response.member_id.as_str().to_owned();
    assert_ne!(new, old);
    assert_eq!(
        response.leader.as_str(),
        new,
        "leadership moves to the new id"
    );
    assert!(
        response.skip_assignment,
        "v9 leader keeps the current assignment"
    );
    assert_eq!(response.members.len(), 1);
    assert_eq!(h.state("g"), "Stable");

    assert_eq!(
        static_heartbeat(&mut h, &old, "i1", 1),
        code(ResponseError::FencedInstanceId)
    );
    assert_eq!(static_heartbeat(&mut h, &new, "i1", 1), 0);
    let sync = h.sync("g", &new, 1, &[]);
    assert_eq!(
        h.sync_response(sync).assignment,
        Bytes::from_static(b"mine")
    );

    let zombie = h.join_with(5, static_join("g", &old, "i1"));
    assert_eq!(
        h.join_response(zombie).error_code,
        code(ResponseError::FencedInstanceId)
    );
    let mut commit = commit_request("g", &old, 1, "t1", &[(0, 1)]);
    commit.group_instance_id = Some(s("i1"));
    let response = h.commit_with(8, commit);
    assert_eq!(
        response.topics[0].partitions[0].error_code,
        code(ResponseError::FencedInstanceId)
    );
}

#[test]
fn restarted_static_member_with_other_protocols_rebalances() {
    let mut h = Harness::new();
    stable_static(&mut h);
    let changed = static_join("g", "", "i1").with_protocols(vec![
        protocol("roundrobin", &["t1"]),
        protocol("range", &["t1"]),
    ]);
    let rejoin = h.join_with(5, changed);
    let response = h.join_response(rejoin);
    assert_eq!(response.generation_id, 2);
    assert_eq!(response.protocol_name.as_deref(), Some("roundrobin"));
}

#[test]
fn replaced_instance_parked_join_is_fenced() {
    let mut h = Harness::with_config(GroupConfig {
        initial_rebalance_delay_ms: 10,
        ..GroupConfig::default()
    });
    let s1 = h.join_with(5, static_join("g", "", "i1"));
    let d1 = h.join(3, "g", "");
    h.advance(20);
    let old = h.join_response(s1).member_id.as_str().to_owned();
    let dynamic_id = h.join_response(d1).member_id.as_str().to_owned();

    h.join(3, "g", "");
    let parked = h.join_with(5, static_join("g", &old, "i1"));
    assert!(!h.is_answered(parked), "waits for the dynamic member");
    let restarted = h.join_with(5, static_join("g", "", "i1"));
    assert_eq!(
        h.join_response(parked).error_code,
        code(ResponseError::FencedInstanceId)
    );
    assert!(!h.is_answered(restarted));
    h.join(3, "g", &dynamic_id);
    let response = h.join_response(restarted);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.generation_id, 2);
    assert_ne!(response.member_id.as_str(), old);
}

#[test]
fn static_member_keeps_its_place_through_a_rebalance_it_sits_out() {
    let mut h = Harness::with_config(GroupConfig {
        initial_rebalance_delay_ms: 10,
        ..GroupConfig::default()
    });
    let quick = |r: JoinGroupRequest| r.with_rebalance_timeout_ms(5_000);
    let s1 = h.join_with(5, quick(static_join("g", "", "i1")));
    let d1 = h.join_with(3, quick(join_request("g", "")));
    h.advance(20);
    let static_id = h.join_response(s1).member_id.as_str().to_owned();
    let dynamic_id = h.join_response(d1).member_id.as_str().to_owned();
    h.sync("g", &dynamic_id, 1, &[]);
    h.sync("g", &static_id, 1, &[]);

    let newcomer = h.join_with(3, quick(join_request("g", "")));
    let dynamic_rejoin = h.join_with(3, quick(join_request("g", &dynamic_id)));
    h.advance(4_000);
    assert_eq!(
        static_heartbeat(&mut h, &static_id, "i1", 1),
        code(ResponseError::RebalanceInProgress)
    );
    h.advance(1_000);
    let response = h.join_response(dynamic_rejoin).clone();
    assert_eq!(response.generation_id, 2);
    assert_eq!(
        response.leader.as_str(),
        dynamic_id,
        "leadership passes to a member that rejoined"
    );
    assert_eq!(
        response.members.len(),
        3,
        "the static member stays without rejoining"
    );
    assert!(h.is_answered(newcomer));

    // An administrator removes it by instance id alone.
    let leave = h.leave("g", &[("", Some("i1"))]);
    assert_eq!(leave.members[0].error_code, 0);
    assert_eq!(h.member_count("g"), 2);
}

#[test]
fn replaced_instance_cannot_sync_or_leave() {
    let mut h = Harness::new();
    let old = stable_static(&mut h);
    let rejoin = h.join_with(5, static_join("g", "", "i1"));
    let new = h.join_response(rejoin).member_id.as_str().to_owned();

    let sync = kafka_protocol::messages::SyncGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(&old))
        .with_group_instance_id(Some(s("i1")))
        .with_generation_id(1);
    let id = h.sync_with(3, sync);
    assert_eq!(
        h.sync_response(id).error_code,
        code(ResponseError::FencedInstanceId)
    );

    let leave = h.leave("g", &[(&old, Some("i1")), (&new, Some("i1"))]);
    let codes: Vec<i16> = leave.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![code(ResponseError::FencedInstanceId), 0]);
    assert_eq!(h.state("g"), "Empty");
}

/// Kafka's `validateMember`: an instance id no member holds is UNKNOWN_MEMBER_ID, even from a member that
/// exists (a static member naming another instance, a dynamic member naming one); the right pair passes.
#[test]
fn an_instance_id_no_member_holds_is_an_unknown_member() {
    let mut h = Harness::new();
    let member = stable_static(&mut h);
    assert_eq!(
        static_heartbeat(&mut h, &member, "i2", 1),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(static_heartbeat(&mut h, &member, "i1", 1), 0);
    // The same rule for commits and leaves.
    let mut commit = commit_request("g", &member, 1, "t1", &[(0, 5)]);
    commit.group_instance_id = Some(s("i2"));
    let response = h.commit_with(8, commit);
    assert_eq!(
        response.topics[0].partitions[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
    let leave = h.leave("g", &[(&member, Some("i2"))]);
    assert_eq!(
        leave.members[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(h.member_count("g"), 1);
}
