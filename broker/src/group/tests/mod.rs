//! Unit tests of the group coordinator, driven through its public calls by [`Harness`].
//!
//! The harness checks two invariants on every call: each reply id is answered exactly once, and every
//! reply encodes at the version of its request (the codec rejects fields a version lacks). Every
//! persisted record is encoded and decoded back to itself.

mod admin;
mod load;
mod membership;
mod offsets;
mod ownership;
mod records;
mod static_members;
mod timeouts;
mod versions;

use std::collections::{HashMap, HashSet};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, DescribeGroupsRequest, DescribeGroupsResponse, GroupId,
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError;

use super::{ClientInfo, GroupConfig, GroupCoordinator, GroupRecord, Output, ReplyId, Response};

/// Partition count of `__consumer_offsets` the harness coordinator holds in full.
pub(super) const OFFSETS_PARTITIONS: i32 = 50;
pub(super) const SESSION_MS: i32 = 10_000;
pub(super) const REBALANCE_MS: i32 = 30_000;

pub(super) fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

pub(super) fn code(error: ResponseError) -> i16 {
    error.code()
}

/// A serialized `ConsumerProtocolSubscription` (version 0) for `topics`.
pub(super) fn subscription(topics: &[&str]) -> Bytes {
    let body =
        ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| s(t)).collect());
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    body.encode(&mut buf, 0).expect("subscription encodes");
    buf.freeze()
}

/// A JoinGroup of a consumer subscribed to `t1`, offering the "range" protocol.
pub(super) fn join_request(group: &str, member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member_id))
        .with_session_timeout_ms(SESSION_MS)
        .with_rebalance_timeout_ms(REBALANCE_MS)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![protocol("range", &["t1"])])
}

pub(super) fn protocol(name: &str, topics: &[&str]) -> JoinGroupRequestProtocol {
    JoinGroupRequestProtocol::default()
        .with_name(s(name))
        .with_metadata(subscription(topics))
}

pub(super) struct Harness {
    pub(super) coordinator: GroupCoordinator,
    pub(super) now: i64,
    next_id: ReplyId,
    /// Request version of every reply id handed out, to check replies encode at it.
    versions: HashMap<ReplyId, i16>,
    answered: HashSet<ReplyId>,
    pub(super) replies: HashMap<ReplyId, Response>,
    pub(super) persisted: Vec<GroupRecord>,
    /// Outputs of the last call, in order.
    pub(super) last: Vec<Output>,
}

impl Harness {
    /// A coordinator without initial rebalance delay, so a lone joiner completes at once.
    pub(super) fn new() -> Self {
        Self::with_config(GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        })
    }

    pub(super) fn with_config(config: GroupConfig) -> Self {
        let mut coordinator = GroupCoordinator::new(config);
        coordinator.hold_all_partitions(OFFSETS_PARTITIONS);
        Self {
            coordinator,
            now: 1_000_000,
            next_id: 1,
            versions: HashMap::new(),
            answered: HashSet::new(),
            replies: HashMap::new(),
            persisted: Vec::new(),
            last: Vec::new(),
        }
    }

    fn new_id(&mut self, version: i16) -> ReplyId {
        let id = self.next_id;
        self.next_id += 1;
        self.versions.insert(id, version);
        id
    }

    pub(super) fn absorb(&mut self, outputs: Vec<Output>) {
        for output in &outputs {
            match output {
                Output::Reply { id, response } => {
                    assert!(self.answered.insert(*id), "reply {id} answered twice");
                    let version = self.versions[id];
                    encode_at(response, version);
                    self.replies.insert(*id, response.clone());
                }
                Output::Persist(records) => {
                    for record in records {
                        let key = record.encode_key().expect("key encodes");
                        let value = record.encode_value().expect("value encodes");
                        let decoded =
                            GroupRecord::decode(&key, value.as_deref()).expect("record decodes");
                        assert_eq!(&decoded, record, "record round trip");
                    }
                    self.persisted.extend(records.iter().cloned());
                }
            }
        }
        self.last = outputs;
    }

    pub(super) fn advance(&mut self, ms: i64) {
        self.now += ms;
        let outputs = self.coordinator.tick(self.now);
        self.absorb(outputs);
    }

    pub(super) fn is_answered(&self, id: ReplyId) -> bool {
        self.replies.contains_key(&id)
    }

    pub(super) fn join_with(&mut self, version: i16, request: JoinGroupRequest) -> ReplyId {
        let id = self.new_id(version);
        let client = ClientInfo {
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
        };
        let outputs = self
            .coordinator
            .join_group(id, version, &client, request, self.now);
        self.absorb(outputs);
        id
    }

    pub(super) fn join(&mut self, version: i16, group: &str, member_id: &str) -> ReplyId {
        self.join_with(version, join_request(group, member_id))
    }

    pub(super) fn join_response(&self, id: ReplyId) -> &JoinGroupResponse {
        match self.replies.get(&id) {
            Some(Response::JoinGroup(r)) => r,
            other => panic!("reply {id} is not a JoinGroup answer: {other:?}"),
        }
    }

    /// A v3 join (no KIP-394 round trip) that must be answered at once; returns the response.
    pub(super) fn join_now(&mut self, group: &str, member_id: &str) -> JoinGroupResponse {
        let id = self.join(3, group, member_id);
        self.join_response(id).clone()
    }

    pub(super) fn sync_with(&mut self, version: i16, request: SyncGroupRequest) -> ReplyId {
        let id = self.new_id(version);
        let outputs = self.coordinator.sync_group(id, version, request, self.now);
        self.absorb(outputs);
        id
    }

    pub(super) fn sync(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
        assignments: &[(&str, &[u8])],
    ) -> ReplyId {
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(member_id))
            .with_generation_id(generation)
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(m))
                            .with_assignment(Bytes::copy_from_slice(a))
                    })
                    .collect(),
            );
        self.sync_with(3, request)
    }

    pub(super) fn sync_response(&self, id: ReplyId) -> &SyncGroupResponse {
        match self.replies.get(&id) {
            Some(Response::SyncGroup(r)) => r,
            other => panic!("reply {id} is not a SyncGroup answer: {other:?}"),
        }
    }

    pub(super) fn heartbeat_with(&mut self, request: HeartbeatRequest) -> i16 {
        let id = self.new_id(4);
        let outputs = self.coordinator.heartbeat(id, 4, request, self.now);
        self.absorb(outputs);
        match self.replies.get(&id) {
            Some(Response::Heartbeat(r)) => r.error_code,
            other => panic!("reply {id} is not a Heartbeat answer: {other:?}"),
        }
    }

    pub(super) fn heartbeat(&mut self, group: &str, member_id: &str, generation: i32) -> i16 {
        self.heartbeat_with(
            HeartbeatRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_member_id(s(member_id))
                .with_generation_id(generation),
        )
    }

    pub(super) fn leave_with(
        &mut self,
        version: i16,
        request: LeaveGroupRequest,
    ) -> LeaveGroupResponse {
        let id = self.new_id(version);
        let outputs = self.coordinator.leave_group(id, version, request, self.now);
        self.absorb(outputs);
        match self.replies.get(&id) {
            Some(Response::LeaveGroup(r)) => r.clone(),
            other => panic!("reply {id} is not a LeaveGroup answer: {other:?}"),
        }
    }

    pub(super) fn leave(
        &mut self,
        group: &str,
        members: &[(&str, Option<&str>)],
    ) -> LeaveGroupResponse {
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_members(
                members
                    .iter()
                    .map(|(m, i)| {
                        MemberIdentity::default()
                            .with_member_id(s(m))
                            .with_group_instance_id(i.map(s))
                    })
                    .collect(),
            );
        self.leave_with(5, request)
    }

    pub(super) fn commit_with(
        &mut self,
        version: i16,
        request: OffsetCommitRequest,
    ) -> OffsetCommitResponse {
        let id = self.new_id(version);
        let outputs = self
            .coordinator
            .offset_commit(id, version, request, self.now);
        self.absorb(outputs);
        match self.replies.get(&id) {
            Some(Response::OffsetCommit(r)) => r.clone(),
            other => panic!("reply {id} is not an OffsetCommit answer: {other:?}"),
        }
    }

    /// Commits `offset` to each of `partitions` of `topic`; returns the per-partition error codes.
    pub(super) fn commit(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
        topic: &str,
        partitions: &[(i32, i64)],
    ) -> Vec<i16> {
        let request = commit_request(group, member_id, generation, topic, partitions);
        let response = self.commit_with(8, request);
        response.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect()
    }

    pub(super) fn fetch_with(
        &mut self,
        version: i16,
        request: OffsetFetchRequest,
    ) -> OffsetFetchResponse {
        let id = self.new_id(version);
        let outputs = self
            .coordinator
            .offset_fetch(id, version, request, self.now);
        self.absorb(outputs);
        match self.replies.get(&id) {
            Some(Response::OffsetFetch(r)) => r.clone(),
            other => panic!("reply {id} is not an OffsetFetch answer: {other:?}"),
        }
    }

    /// Committed offset of one partition via OffsetFetch v7; -1 when none.
    pub(super) fn fetch_one(&mut self, group: &str, topic: &str, partition: i32) -> i64 {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partition_indexes(vec![partition])]));
        let response = self.fetch_with(7, request);
        response.topics[0].partitions[0].committed_offset
    }

    pub(super) fn describe(&mut self, version: i16, groups: &[&str]) -> DescribeGroupsResponse {
        let id = self.new_id(version);
        let request = DescribeGroupsRequest::default()
            .with_groups(groups.iter().map(|g| GroupId(s(g))).collect());
        let outputs = self
            .coordinator
            .describe_groups(id, version, request, self.now);
        self.absorb(outputs);
        match self.replies.get(&id) {
            Some(Response::DescribeGroups(r)) => r.clone(),
            other => panic!("reply {id} is not a DescribeGroups answer: {other:?}"),
        }
    }

    /// State name of a group as DescribeGroups reports it.
    pub(super) fn state(&mut self, group: &str) -> String {
        self.describe(5, &[group]).groups[0]
            .group_state
            .as_str()
            .to_owned()
    }

    /// Number of members DescribeGroups lists.
    pub(super) fn member_count(&mut self, group: &str) -> usize {
        self.describe(5, &[group]).groups[0].members.len()
    }

    pub(super) fn next_version_id(&mut self, version: i16) -> ReplyId {
        self.new_id(version)
    }

    /// A stable one-member group: join (v3) and sync with `assignment`. Returns (member id, generation).
    pub(super) fn stable_single(&mut self, group: &str, assignment: &[u8]) -> (String, i32) {
        let join = self.join_now(group, "");
        assert_eq!(join.error_code, 0);
        let member = join.member_id.as_str().to_owned();
        let sync = self.sync(group, &member, join.generation_id, &[(&member, assignment)]);
        assert_eq!(self.sync_response(sync).error_code, 0);
        (member, join.generation_id)
    }
}

pub(super) fn commit_request(
    group: &str,
    member_id: &str,
    generation: i32,
    topic: &str,
    partitions: &[(i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member_id))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(
                partitions
                    .iter()
                    .map(|(p, o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                            .with_committed_metadata(Some(s("meta")))
                    })
                    .collect(),
            )])
}

/// Encodes a response at `version`, failing the test if the codec rejects it.
fn encode_at(response: &Response, version: i16) {
    let mut buf = BytesMut::new();
    let result = match response {
        Response::JoinGroup(r) => r.encode(&mut buf, version),
        Response::SyncGroup(r) => r.encode(&mut buf, version),
        Response::Heartbeat(r) => r.encode(&mut buf, version),
        Response::LeaveGroup(r) => r.encode(&mut buf, version),
        Response::OffsetCommit(r) => r.encode(&mut buf, version),
        Response::OffsetFetch(r) => r.encode(&mut buf, version),
        Response::OffsetDelete(r) => r.encode(&mut buf, version),
        Response::ListGroups(r) => r.encode(&mut buf, version),
        Response::DescribeGroups(r) => r.encode(&mut buf, version),
        Response::DeleteGroups(r) => r.encode(&mut buf, version),
    };
    if let Err(error) = result {
        panic!("{response:?} does not encode at v{version}: {error}");
    }
}
