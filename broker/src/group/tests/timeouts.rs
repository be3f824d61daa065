//! Session expiry, rebalance and sync timeouts, all driven by `tick`.

use kafka_protocol::ResponseError;

use super::*;

/// Joins with a rebalance timeout shorter than the session, so the rebalance timer fires first.
fn quick_rebalance(group: &str, member: &str) -> JoinGroupRequest {
    join_request(group, member).with_rebalance_timeout_ms(5_000)
}

#[test]
fn session_expires_without_heartbeats() {
    let mut h = Harness::new();
    let (member, generation) = h.stable_single("g", b"a");
    assert_eq!(
        h.coordinator.next_deadline_ms(),
        Some(h.now + i64::from(SESSION_MS))
    );
    h.advance(i64::from(SESSION_MS) - 1);
    assert_eq!(
        h.heartbeat("g", &member, generation),
        0,
        "heartbeat restarts the session"
    );
    h.advance(i64::from(SESSION_MS) - 1);
    assert_eq!(h.member_count("g"), 1);
    h.advance(1);
    assert_eq!(h.member_count("g"), 0);
    assert_eq!(h.state("g"), "Empty");
    assert_eq!(
        h.heartbeat("g", &member, generation),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn expired_member_triggers_rebalance_for_the_others() {
    let mut h = Harness::with_config(GroupConfig {
        initial_rebalance_delay_ms: 10,
        ..GroupConfig::default()
    });
    let (a, b) = (h.join(3, "g", ""), h.join(3, "g", ""));
    h.advance(20);
    let a = h.join_response(a).member_id.as_str().to_owned();
    let b = h.join_response(b).member_id.as_str().to_owned();
    h.sync("g", &a, 1, &[]);
    h.sync("g", &b, 1, &[]);
    h.advance(i64::from(SESSION_MS) / 2);
    assert_eq!(h.heartbeat("g", &a, 1), 0);
    h.advance(i64::from(SESSION_MS) / 2);
    // b missed its session; a is told to rejoin and gets a generation of its own.
    assert_eq!(
        h.heartbeat("g", &a, 1),
        code(ResponseError::RebalanceInProgress)
    );
    let rejoin = h.join(3, "g", &a);
    let response = h.join_response(rejoin);
    assert_eq!(response.generation_id, 2);
    assert_eq!(response.members.len(), 1);
    assert_eq!(
        h.heartbeat("g", &b, 1),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn rebalance_timeout_drops_members_that_did_not_rejoin() {
    let mut h = Harness::with_config(GroupConfig {
        initial_rebalance_delay_ms: 10,
        ..GroupConfig::default()
    });
    let a = h.join_with(3, quick_rebalance("g", ""));
    let b = h.join_with(3, quick_rebalance("g", ""));
    h.advance(20);
    let a = h.join_response(a).member_id.as_str().to_owned();
    let b = h.join_response(b).member_id.as_str().to_owned();
    h.sync("g", &a, 1, &[]);
    h.sync("g", &b, 1, &[]);

    let c = h.join_with(3, quick_rebalance("g", ""));
    let a_rejoin = h.join_with(3, quick_rebalance("g", &a));
    h.advance(4_999);
    // b keeps its session alive but does not rejoin.
    assert_eq!(
        h.heartbeat("g", &b, 1),
        code(ResponseError::RebalanceInProgress)
    );
    assert!(!h.is_answered(a_rejoin));
    h.advance(1);
    let response = h.join_response(a_rejoin);
    assert_eq!(response.generation_id, 2);
    assert_eq!(response.members.len(), 2);
    assert_eq!(h.join_response(c).generation_id, 2);
    assert_eq!(
        h.heartbeat("g", &b, 2),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn new_member_stuck_in_a_rebalance_times_out() {
    let mut h = Harness::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        new_member_join_timeout_ms: 1_000,
        ..GroupConfig::default()
    });
    let (a, generation) = h.stable_single("g", b"a");
    let newcomer = h.join(3, "g", "");
    h.advance(999);
    assert_eq!(
        h.heartbeat("g", &a, generation),
        code(ResponseError::RebalanceInProgress)
    );
    assert!(!h.is_answered(newcomer));
    h.advance(1);
    let response = h.join_response(newcomer);
    assert_eq!(response.error_code, code(ResponseError::UnknownMemberId));
    let rejoin = h.join(3, "g", &a);
    assert_eq!(h.join_response(rejoin).members.len(), 1);
}

#[test]
fn members_that_never_sync_are_removed() {
    let mut h = Harness::with_config(GroupConfig {
        initial_rebalance_delay_ms: 10,
        ..GroupConfig::default()
    });
    let a = h.join_with(3, quick_rebalance("g", ""));
    let b = h.join_with(3, quick_rebalance("g", ""));
    h.advance(20);
    let leader = h.join_response(a).member_id.as_str().to_owned();
    let follower = h.join_response(b).member_id.as_str().to_owned();
    h.sync("g", &leader, 1, &[(&leader, b"x"), (&follower, b"y")]);
    assert_eq!(h.state("g"), "Stable");
    h.advance(4_999);
    assert_eq!(h.heartbeat("g", &leader, 1), 0);
    h.advance(1);
    // The follower never sent SyncGroup within the rebalance timeout.
    assert_eq!(
        h.heartbeat("g", &leader, 1),
        code(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        h.heartbeat("g", &follower, 1),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn unused_member_id_expires_and_the_attempt_leaves_no_group() {
    let mut h = Harness::new();
    let id = h.join(5, "g", "");
    let reserved = h.join_response(id).member_id.as_str().to_owned();
    h.advance(i64::from(SESSION_MS));
    assert_eq!(h.state("g"), "Dead");
    let late = h.join(5, "g", &reserved);
    assert_eq!(
        h.join_response(late).error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn late_tick_fires_timers_in_deadline_order() {
    // A newcomer's join timeout (+1s) falls before the end of the join phase (+5s). One late tick
    // must expire the newcomer first; completing the join first would admit it instead.
    let mut h = Harness::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        new_member_join_timeout_ms: 1_000,
        ..GroupConfig::default()
    });
    let first = h.join_with(3, quick_rebalance("g", ""));
    let a = h.join_response(first).member_id.as_str().to_owned();
    h.sync("g", &a, 1, &[]);
    let newcomer = h.join_with(3, quick_rebalance("g", ""));
    h.advance(6_000);
    let response = h.join_response(newcomer);
    assert_eq!(response.error_code, code(ResponseError::UnknownMemberId));
    // a never rejoined either, so the rebalance ended with nobody.
    assert_eq!(h.state("g"), "Empty");
}
