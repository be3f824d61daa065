//! Every API answered at every version the codec supports, so the shell can encode whatever the
//! coordinator returns. The harness encodes each reply at its request's version.

use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, GroupId, LeaveGroupRequest, ListGroupsRequest, OffsetFetchRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::ResponseError;

use super::*;

#[test]
fn join_and_sync_answer_every_version() {
    for version in 0..=9 {
        let mut h = Harness::new();
        let group = format!("g{version}");
        let mut request = join_request(&group, "");
        if version >= 5 {
            request.group_instance_id = Some(s("instance"));
        }
        let first = h.join_with(version, request.clone());
        let mut response = h.join_response(first).clone();
        if response.error_code == code(ResponseError::MemberIdRequired) {
            assert_eq!(
                version, 4,
                "only dynamic members of v4+ need the round trip"
            );
            let id = h.join_with(version, request.clone().with_member_id(response.member_id));
            response = h.join_response(id).clone();
        }
        assert_eq!(response.error_code, 0, "v{version}");
        let member = response.member_id.as_str().to_owned();
        // A rejoin with unchanged metadata while CompletingRebalance repeats the answer.
        let again = h.join_with(version, request.with_member_id(s(&member)));
        assert_eq!(h.join_response(again).error_code, 0, "v{version}");
        for sync_version in 0..=5 {
            let mut sync = SyncGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_member_id(s(&member))
                .with_generation_id(1);
            if sync_version >= 5 {
                sync = sync
                    .with_protocol_type(Some(s("consumer")))
                    .with_protocol_name(Some(s("range")));
            }
            let id = h.sync_with(sync_version, sync);
            assert_eq!(h.sync_response(id).error_code, 0, "sync v{sync_version}");
        }
    }
    let mut h = Harness::new();
    for version in 4..=9 {
        let id = h.join(version, "fresh", "");
        assert_eq!(
            h.join_response(id).error_code,
            code(ResponseError::MemberIdRequired)
        );
    }
    for version in 0..=9 {
        let id = h.join(version, "g", "ghost");
        assert_eq!(
            h.join_response(id).error_code,
            code(ResponseError::UnknownMemberId)
        );
    }
}

#[test]
fn other_apis_answer_every_version() {
    let mut h = Harness::new();
    let (member, generation) = h.stable_single("g", b"a");
    for version in 0..=4 {
        let id = h.next_version_id(version);
        let request = kafka_protocol::messages::HeartbeatRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(&member))
            .with_generation_id(generation);
        let outputs = h.coordinator.heartbeat(id, version, request, h.now);
        h.absorb(outputs);
    }
    for version in 2..=9 {
        let response = h.commit_with(
            version,
            commit_request("g", &member, generation, "t1", &[(0, 1)]),
        );
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "commit v{version}"
        );
    }
    for version in 1..=9 {
        let topics = Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("t1")))
            .with_partition_indexes(vec![0, 1])]);
        let request = if version >= 8 {
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s("g")))
                .with_topics(None)])
        } else {
            OffsetFetchRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_topics(topics)
        };
        h.fetch_with(version, request);
    }
    for version in 0..=5 {
        let id = h.next_version_id(version);
        let outputs = h
            .coordinator
            .list_groups(id, version, ListGroupsRequest::default(), h.now);
        h.absorb(outputs);
    }
    for version in 0..=6 {
        h.describe(version, &["g", "missing"]);
    }
    for version in 0..=2 {
        let id = h.next_version_id(version);
        let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]);
        let outputs = h.coordinator.delete_groups(id, version, request, h.now);
        h.absorb(outputs);
    }
    for version in 0..=5 {
        let request = if version >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_members(vec![MemberIdentity::default().with_member_id(s("ghost"))])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_member_id(s("ghost"))
        };
        h.leave_with(version, request);
    }
}
