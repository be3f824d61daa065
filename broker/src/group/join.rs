//! JoinGroup (v0-v9): new members, rejoining members, KIP-394 member ids and KIP-345 static members.

use kafka_protocol::messages::JoinGroupRequest;
use kafka_protocol::ResponseError;
use tracing::{debug, info};
use uuid::Uuid;

use super::classic_group::Group;
use super::config::GroupConfig;
use super::coordinator::{ClientInfo, GroupCoordinator};
use super::member::{Member, PendingReply, Protocol};
use super::output::{Outbox, Output, ReplyId, Response};
use super::rebalance::{park, touch_session};
use super::responses;
use super::state::GroupState;

/// From v4 a first join without member id gets MEMBER_ID_REQUIRED and a fresh id (KIP-394), so a client
/// that never hears back does not leave a stray member behind.
const MEMBER_ID_REQUIRED_VERSION: i16 = 4;

/// The fields of a JoinGroup the coordinator uses, normalized across versions.
struct JoinRequest {
    reply: PendingReply,
    group_id: String,
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<Protocol>,
}

impl JoinRequest {
    fn new(id: ReplyId, version: i16, client: &ClientInfo, request: JoinGroupRequest) -> Self {
        // v0 has no rebalance timeout; Kafka uses the session timeout for both.
        let rebalance_timeout_ms = if version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        };
        Self {
            reply: PendingReply { id, version },
            group_id: request.group_id.0.as_str().to_owned(),
            member_id: request.member_id.as_str().to_owned(),
            instance_id: request.group_instance_id.map(|s| s.as_str().to_owned()),
            client_id: client.client_id.clone(),
            client_host: client.client_host.clone(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms,
            protocol_type: request.protocol_type.as_str().to_owned(),
            protocols: request
                .protocols
                .into_iter()
                .map(|p| Protocol {
                    name: p.name.as_str().to_owned(),
                    metadata: p.metadata,
                })
                .collect(),
        }
    }

    fn metadata_bytes(&self) -> usize {
        self.protocols.iter().map(|p| p.metadata.len()).sum()
    }
}

impl GroupCoordinator {
    /// Handles JoinGroup. The reply to `id` may come out of this call or of a later one (when the
    /// rebalance completes).
    pub fn join_group(
        &mut self,
        id: ReplyId,
        version: i16,
        client: &ClientInfo,
        request: JoinGroupRequest,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Outbox::default();
        let join = JoinRequest::new(id, version, client, request);
        self.settle_group(&join.group_id, now_ms, &mut out);
        if let Err(error) = self.join(&join, now_ms, &mut out) {
            debug!(group = %join.group_id, member = %join.member_id, ?error, "JoinGroup rejected");
            let response = responses::join_error(version, &join.member_id, error);
            out.reply(id, Response::JoinGroup(response));
        }
        self.settle_group(&join.group_id, now_ms, &mut out);
        out.into_outputs()
    }

    fn join(
        &mut self,
        join: &JoinRequest,
        now_ms: i64,
        out: &mut Outbox,
    ) -> Result<(), ResponseError> {
        let config = &self.config;
        if join.group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        self.check_coordinator(&join.group_id)?;
        if join.session_timeout_ms < config.min_session_timeout_ms
            || join.session_timeout_ms > config.max_session_timeout_ms
        {
            return Err(ResponseError::InvalidSessionTimeout);
        }
        if join.metadata_bytes() > config.max_member_metadata_bytes {
            return Err(ResponseError::MessageTooLarge);
        }
        let is_new_member = join.member_id.is_empty();
        if is_new_member {
            self.groups
                .entry(join.group_id.clone())
                .or_insert_with(|| Group::new(join.group_id.clone()));
        }
        let group = self
            .groups
            .get_mut(&join.group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if !group.accepts_joining_member(
            &join.member_id,
            join.instance_id.as_deref(),
            config.max_group_size,
        ) {
            // A member that missed its place in a full rebalance leaves, so the group cannot
            // exceed its size when the join phase completes.
            group.remove_member_and_rebalance(
                config,
                &join.member_id,
                now_ms,
                out,
                "group is full",
            );
            return Err(ResponseError::GroupMaxSizeReached);
        }
        if is_new_member {
            join_new_member(group, config, join, now_ms, out)
        } else {
            join_known_member(group, config, join, now_ms, out)
        }
    }
}

fn join_new_member(
    group: &mut Group,
    config: &GroupConfig,
    join: &JoinRequest,
    now_ms: i64,
    out: &mut Outbox,
) -> Result<(), ResponseError> {
    if !group.supports_protocols(&join.protocol_type, &join.protocols) {
        return Err(ResponseError::InconsistentGroupProtocol);
    }
    // Kafka prefixes static members' ids with their instance id, dynamic ones' with the client id.
    let prefix = join.instance_id.as_deref().unwrap_or(&join.client_id);
    let new_member_id = format!("{prefix}-{}", Uuid::new_v4());
    match &join.instance_id {
        Some(instance_id) => match group.static_members.get(instance_id).cloned() {
            Some(old_member_id) => rejoin_static_member(
                group,
                config,
                join,
                &old_member_id,
                new_member_id,
                now_ms,
                out,
            ),
            None => {
                add_member_and_rebalance(group, config, join, new_member_id, now_ms, out);
                Ok(())
            }
        },
        None if join.reply.version >= MEMBER_ID_REQUIRED_VERSION => {
            let deadline_ms = now_ms.saturating_add(i64::from(join.session_timeout_ms));
            group
                .pending_members
                .insert(new_member_id.clone(), deadline_ms);
            let response = responses::join_error(
                join.reply.version,
                &new_member_id,
                ResponseError::MemberIdRequired,
            );
            out.reply(join.reply.id, Response::JoinGroup(response));
            Ok(())
        }
        None => {
            add_member_and_rebalance(group, config, join, new_member_id, now_ms, out);
            Ok(())
        }
    }
}

fn join_known_member(
    group: &mut Group,
    config: &GroupConfig,
    join: &JoinRequest,
    now_ms: i64,
    out: &mut Outbox,
) -> Result<(), ResponseError> {
    let member_id = join.member_id.as_str();
    if !group.supports_protocols(&join.protocol_type, &join.protocols) {
        return Err(ResponseError::InconsistentGroupProtocol);
    }
    if group.pending_members.contains_key(member_id) {
        // Ids are only handed out to dynamic members, so a static one presenting it is confused.
        if join.instance_id.is_some() {
            return Err(ResponseError::UnknownMemberId);
        }
        add_member_and_rebalance(group, config, join, member_id.to_owned(), now_ms, out);
        return Ok(());
    }
    if group.is_static_member_fenced(join.instance_id.as_deref(), member_id) {
        return Err(ResponseError::FencedInstanceId);
    }
    let unknown_instance = join
        .instance_id
        .as_ref()
        .is_some_and(|id| !group.static_members.contains_key(id));
    let Some(member) = group.members.get(member_id) else {
        return Err(ResponseError::UnknownMemberId);
    };
    if unknown_instance {
        return Err(ResponseError::UnknownMemberId);
    }
    let unchanged = member.matches(&join.protocols);
    match group.state {
        GroupState::PreparingRebalance => {
            update_member_and_rebalance(group, config, join, now_ms, out);
        }
        // Same metadata: the member missed the JoinGroup answer; repeat it for this generation.
        GroupState::CompletingRebalance if unchanged => {
            let response = responses::join_success(join.reply.version, group, member_id, false);
            out.reply(join.reply.id, Response::JoinGroup(response));
        }
        // A follower with unchanged metadata just gets the current generation to sync with. The
        // leader rejoining always rebalances: that is how it reacts to changes the metadata does not
        // show (for consumers, new partitions of subscribed topics).
        GroupState::Stable if unchanged && !group.is_leader(member_id) => {
            let response = responses::join_success(join.reply.version, group, member_id, false);
            out.reply(join.reply.id, Response::JoinGroup(response));
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            update_member_and_rebalance(group, config, join, now_ms, out);
        }
        // A known member cannot be in an empty group; have the client start over.
        GroupState::Empty | GroupState::Dead => return Err(ResponseError::UnknownMemberId),
    }
    Ok(())
}

/// A restarted static member: it takes over the old member's place under a new member id. If its
/// protocols leave the group's protocol choice unchanged, a stable group keeps its assignment and no
/// rebalance happens (the point of static membership); otherwise the group rebalances.
fn rejoin_static_member(
    group: &mut Group,
    config: &GroupConfig,
    join: &JoinRequest,
    old_member_id: &str,
    new_member_id: String,
    now_ms: i64,
    out: &mut Outbox,
) -> Result<(), ResponseError> {
    let instance_id = join.instance_id.as_deref().unwrap_or_default();
    if !group.replace_static_member(instance_id, old_member_id, &new_member_id, out) {
        return Err(ResponseError::UnknownMemberId);
    }
    if let Some(member) = group.members.get_mut(&new_member_id) {
        touch_session(member, now_ms);
        update_member(member, join, out);
    }
    let protocol_unchanged =
        group.protocol_name.is_some() && group.select_protocol() == group.protocol_name;
    if group.state == GroupState::Stable && protocol_unchanged {
        if let Some(member) = group.members.get_mut(&new_member_id) {
            member.pending_join = None;
        }
        info!(group = %group.id, member = %new_member_id, "static member rejoined; keeping assignment");
        out.persist(vec![group.metadata_record()]);
        let response = responses::join_success(join.reply.version, group, &new_member_id, true);
        out.reply(join.reply.id, Response::JoinGroup(response));
    } else {
        // In CompletingRebalance the leader may be assigning to the old member id, so rebalance too.
        group.maybe_prepare_rebalance(config, now_ms, out, "static member rejoined");
    }
    Ok(())
}

fn add_member_and_rebalance(
    group: &mut Group,
    config: &GroupConfig,
    join: &JoinRequest,
    member_id: String,
    now_ms: i64,
    out: &mut Outbox,
) {
    info!(group = %group.id, member = %member_id, "member joining");
    let member = Member {
        id: member_id,
        instance_id: join.instance_id.clone(),
        client_id: join.client_id.clone(),
        client_host: join.client_host.clone(),
        session_timeout_ms: join.session_timeout_ms,
        rebalance_timeout_ms: join.rebalance_timeout_ms,
        protocol_type: join.protocol_type.clone(),
        protocols: join.protocols.clone(),
        assignment: bytes::Bytes::new(),
        pending_join: Some(join.reply),
        pending_sync: None,
        session_deadline_ms: Some(now_ms.saturating_add(config.new_member_join_timeout_ms)),
        is_new: true,
    };
    // A member arriving during the initial delay earns the group another delay period.
    if group.state == GroupState::PreparingRebalance && group.generation == 0 {
        group.new_member_added = true;
    }
    group.add_member(member);
    group.maybe_prepare_rebalance(config, now_ms, out, "new member joined");
}

fn update_member_and_rebalance(
    group: &mut Group,
    config: &GroupConfig,
    join: &JoinRequest,
    now_ms: i64,
    out: &mut Outbox,
) {
    if let Some(member) = group.members.get_mut(&join.member_id) {
        update_member(member, join, out);
    }
    group.maybe_prepare_rebalance(config, now_ms, out, "member rejoined");
}

/// Takes the rejoin's protocols and timeouts, and parks its reply until the join phase completes.
fn update_member(member: &mut Member, join: &JoinRequest, out: &mut Outbox) {
    member.protocols = join.protocols.clone();
    member.session_timeout_ms = join.session_timeout_ms;
    member.rebalance_timeout_ms = join.rebalance_timeout_ms;
    park(&mut member.pending_join, join.reply, out, |old| {
        let response =
            responses::join_error(old.version, &member.id, ResponseError::RebalanceInProgress);
        Response::JoinGroup(response)
    });
}
