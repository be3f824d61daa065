//! Builders for JoinGroup/SyncGroup responses, which several transitions produce. Each response is
//! shaped for the request version: the codec rejects fields a version does not have, and older
//! versions need non-null strings where newer ones allow null.

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::classic_group::Group;

/// Generation id sent with errors; clients reset their generation on it.
pub(super) const NO_GENERATION: i32 = -1;
/// First JoinGroup version whose response carries the protocol type (and a nullable protocol name).
const JOIN_PROTOCOL_TYPE_VERSION: i16 = 7;
/// First JoinGroup version with `skip_assignment` (KIP-814).
pub(super) const JOIN_SKIP_ASSIGNMENT_VERSION: i16 = 9;

pub(super) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A failed JoinGroup. `member_id` is echoed (MEMBER_ID_REQUIRED uses it to hand out the new id).
pub(super) fn join_error(version: i16, member_id: &str, error: ResponseError) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(error.code())
        .with_generation_id(NO_GENERATION)
        .with_protocol_name(protocol_name(version, None))
        .with_member_id(str_bytes(member_id))
}

/// A successful JoinGroup for `member_id` in the group's current generation. Only the leader gets the
/// member list (it computes the assignment); `skip_assignment` tells a leader of v9+ that the current
/// assignment stands (a static member rejoined without changes).
pub(super) fn join_success(
    version: i16,
    group: &Group,
    member_id: &str,
    skip_assignment: bool,
) -> JoinGroupResponse {
    let is_leader = group.is_leader(member_id);
    let members = if is_leader {
        leader_member_list(group)
    } else {
        Vec::new()
    };
    let protocol_type = if version >= JOIN_PROTOCOL_TYPE_VERSION {
        group.protocol_type.as_deref().map(str_bytes)
    } else {
        None
    };
    JoinGroupResponse::default()
        .with_generation_id(group.generation)
        .with_protocol_type(protocol_type)
        .with_protocol_name(protocol_name(version, group.protocol_name.as_deref()))
        .with_leader(str_bytes(group.leader.as_deref().unwrap_or_default()))
        .with_skip_assignment(
            skip_assignment && is_leader && version >= JOIN_SKIP_ASSIGNMENT_VERSION,
        )
        .with_member_id(str_bytes(member_id))
        .with_members(members)
}

/// Members with their metadata for the chosen protocol, in join order, for the leader's assignor.
fn leader_member_list(group: &Group) -> Vec<JoinGroupResponseMember> {
    let protocol = group.protocol_name.as_deref().unwrap_or_default();
    group
        .members
        .values()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(&m.id))
                .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                .with_metadata(m.metadata_for(protocol).cloned().unwrap_or_default())
        })
        .collect()
}

/// Versions before 7 have a non-nullable protocol name; Kafka sends `""` there.
fn protocol_name(version: i16, name: Option<&str>) -> Option<StrBytes> {
    match name {
        Some(name) => Some(str_bytes(name)),
        None if version < JOIN_PROTOCOL_TYPE_VERSION => Some(StrBytes::default()),
        None => None,
    }
}

pub(super) fn sync_error(error: ResponseError) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(error.code())
}

/// A member's assignment; protocol type and name (v5+) let the client check it got what it expects.
pub(super) fn sync_success(group: &Group, assignment: Bytes) -> SyncGroupResponse {
    SyncGroupResponse::default()
        .with_protocol_type(group.protocol_type.as_deref().map(str_bytes))
        .with_protocol_name(group.protocol_name.as_deref().map(str_bytes))
        .with_assignment(assignment)
}
