//! Group administration: ListGroups (v0-v5), DescribeGroups (v0-v6), DeleteGroups (v0-v2).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::info;

use super::classic_group::Group;
use super::coordinator::GroupCoordinator;
use super::output::{Outbox, Output, ReplyId, Response};
use super::records::GroupRecord;
use super::responses::str_bytes;
use super::state::GroupState;

/// Type of every group this coordinator holds, as ListGroups v5 reports it (KIP-848).
const CLASSIC_GROUP_TYPE: &str = "classic";
/// From v6, DescribeGroups reports unknown groups as GROUP_ID_NOT_FOUND instead of "Dead".
const DESCRIBE_NOT_FOUND_VERSION: i16 = 6;

impl GroupCoordinator {
    /// Lists groups, optionally only those in the given states (v4+) or of the given types (v5+);
    /// both filters match case-insensitively.
    pub fn list_groups(
        &mut self,
        id: ReplyId,
        _version: i16,
        request: ListGroupsRequest,
        _now_ms: i64,
    ) -> Vec<Output> {
        let state_wanted = |state: GroupState| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.as_str().eq_ignore_ascii_case(state.as_str()))
        };
        let classic_wanted = request.types_filter.is_empty()
            || request
                .types_filter
                .iter()
                .any(|t| t.as_str().eq_ignore_ascii_case(CLASSIC_GROUP_TYPE));
        let mut groups: Vec<ListedGroup> = self
            .groups
            .values()
            .filter(|g| classic_wanted && state_wanted(g.state))
            .map(|g| {
                ListedGroup::default()
                    .with_group_id(GroupId(str_bytes(&g.id)))
                    .with_protocol_type(str_bytes(g.protocol_type.as_deref().unwrap_or_default()))
                    .with_group_state(StrBytes::from_static_str(g.state.as_str()))
                    .with_group_type(StrBytes::from_static_str(CLASSIC_GROUP_TYPE))
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.0.as_str().cmp(b.group_id.0.as_str()));
        // Kafka lists nothing while a partition loads: the list would silently miss its groups.
        let response = if self.any_loading() {
            ListGroupsResponse::default()
                .with_error_code(ResponseError::CoordinatorLoadInProgress.code())
        } else {
            ListGroupsResponse::default().with_groups(groups)
        };
        let mut out = Outbox::default();
        out.reply(id, Response::ListGroups(response));
        out.into_outputs()
    }

    pub fn describe_groups(
        &mut self,
        id: ReplyId,
        version: i16,
        request: DescribeGroupsRequest,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Outbox::default();
        let mut described = Vec::with_capacity(request.groups.len());
        for group_id in request.groups {
            self.settle_group(group_id.0.as_str(), now_ms, &mut out);
            if let Err(error) = self.check_coordinator(group_id.0.as_str()) {
                described.push(
                    DescribedGroup::default()
                        .with_group_id(group_id)
                        .with_error_code(error.code()),
                );
                continue;
            }
            let entry = match self.groups.get(group_id.0.as_str()) {
                Some(group) => describe(group),
                None if version >= DESCRIBE_NOT_FOUND_VERSION => DescribedGroup::default()
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Group {} not found.",
                        group_id.0.as_str()
                    ))))
                    .with_group_state(StrBytes::from_static_str(GroupState::Dead.as_str())),
                None => DescribedGroup::default()
                    .with_group_state(StrBytes::from_static_str(GroupState::Dead.as_str())),
            };
            described.push(entry.with_group_id(group_id));
        }
        out.reply(
            id,
            Response::DescribeGroups(DescribeGroupsResponse::default().with_groups(described)),
        );
        out.into_outputs()
    }

    /// Deletes empty groups with their offsets; groups with members get NON_EMPTY_GROUP.
    pub fn delete_groups(
        &mut self,
        id: ReplyId,
        _version: i16,
        request: DeleteGroupsRequest,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Outbox::default();
        let mut results = Vec::with_capacity(request.groups_names.len());
        for group_id in request.groups_names {
            let name = group_id.0.as_str().to_owned();
            self.settle_group(&name, now_ms, &mut out);
            let state = self
                .check_coordinator(&name)
                .map(|()| self.groups.get(&name).map(|g| g.state));
            let error = match state {
                Err(error) => error.code(),
                Ok(None | Some(GroupState::Dead)) => ResponseError::GroupIdNotFound.code(),
                Ok(Some(GroupState::Empty)) => {
                    if let Some(group) = self.groups.remove(&name) {
                        info!(group = %name, "group deleted");
                        out.persist(deletion_records(&group));
                    }
                    0
                }
                Ok(Some(_)) => ResponseError::NonEmptyGroup.code(),
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(group_id)
                    .with_error_code(error),
            );
        }
        out.reply(
            id,
            Response::DeleteGroups(DeleteGroupsResponse::default().with_results(results)),
        );
        out.into_outputs()
    }
}

/// Tombstones erasing a group from `__consumer_offsets`: its offsets, and its membership record if
/// one was ever written (only groups that had a generation have one).
pub(super) fn deletion_records(group: &Group) -> Vec<GroupRecord> {
    let mut records: Vec<GroupRecord> = group
        .offsets
        .keys()
        .map(|tp| GroupRecord::Offset {
            group_id: group.id.clone(),
            topic_partition: tp.clone(),
            value: None,
        })
        .collect();
    if group.generation > 0 {
        records.push(GroupRecord::Group {
            group_id: group.id.clone(),
            value: None,
        });
    }
    records
}

/// A group as DescribeGroups reports it. Member metadata and assignments are only meaningful for the
/// current generation once it is stable, so other states list members without them.
fn describe(group: &Group) -> DescribedGroup {
    let stable_protocol = match group.state {
        GroupState::Stable => group.protocol_name.as_deref(),
        _ => None,
    };
    let members = group
        .members
        .values()
        .map(|m| {
            let (metadata, assignment) = match stable_protocol {
                Some(protocol) => (
                    m.metadata_for(protocol).cloned().unwrap_or_default(),
                    m.assignment.clone(),
                ),
                None => Default::default(),
            };
            DescribedGroupMember::default()
                .with_member_id(str_bytes(&m.id))
                .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                .with_client_id(str_bytes(&m.client_id))
                .with_client_host(str_bytes(&m.client_host))
                .with_member_metadata(metadata)
                .with_member_assignment(assignment)
        })
        .collect();
    DescribedGroup::default()
        .with_group_state(StrBytes::from_static_str(group.state.as_str()))
        .with_protocol_type(str_bytes(
            group.protocol_type.as_deref().unwrap_or_default(),
        ))
        .with_protocol_data(str_bytes(stable_protocol.unwrap_or_default()))
        .with_members(members)
}
