//! Taking over and handing off `__consumer_offsets` partitions: rebuilding groups from their records,
//! and dropping them when another broker becomes their coordinator.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::ResponseError;
use tracing::{info, warn};

use super::classic_group::Group;
use super::coordinator::GroupCoordinator;
use super::member::{Member, Protocol};
use super::output::{Outbox, Output};
use super::rebalance::{answer_parked_requests, touch_session};
use super::records::{
    partition_for, GroupMetadataValue, GroupRecord, OffsetCommitValue, TopicPartition,
};
use super::state::GroupState;

impl GroupCoordinator {
    /// Rebuilds groups from the records of `__consumer_offsets` partitions, in log order (later
    /// records win, tombstones delete). Groups named in the records replace any held copy. Members
    /// come back in a Stable group with fresh sessions, as after a Kafka coordinator failover: live
    /// members keep heartbeating, dead ones expire. Returns how many groups are now held from these
    /// records.
    pub fn load(&mut self, records: impl IntoIterator<Item = GroupRecord>, now_ms: i64) -> usize {
        let mut metadata: HashMap<String, Option<GroupMetadataValue>> = HashMap::new();
        let mut offsets: HashMap<String, BTreeMap<TopicPartition, Option<OffsetCommitValue>>> =
            HashMap::new();
        for record in records {
            match record {
                GroupRecord::Offset {
                    group_id,
                    topic_partition,
                    value,
                } => {
                    offsets
                        .entry(group_id)
                        .or_default()
                        .insert(topic_partition, value);
                }
                GroupRecord::Group { group_id, value } => {
                    metadata.insert(group_id, value);
                }
            }
        }
        let mut ids: Vec<String> = metadata.keys().chain(offsets.keys()).cloned().collect();
        ids.sort();
        ids.dedup();
        let mut loaded = 0;
        for id in ids {
            let group_offsets: BTreeMap<TopicPartition, OffsetCommitValue> = offsets
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(tp, value)| value.map(|v| (tp, v)))
                .collect();
            let group = match metadata.remove(&id).flatten() {
                Some(value) => Some(group_from_record(id.clone(), value, now_ms)),
                None if !group_offsets.is_empty() => Some(Group::new(id.clone())),
                None => None,
            };
            match group {
                Some(mut group) => {
                    group.keep_until_retention_check = !group_offsets.is_empty();
                    group.offsets = group_offsets;
                    self.groups.insert(id, group);
                    loaded += 1;
                }
                None => {
                    self.groups.remove(&id);
                }
            }
        }
        info!(groups = loaded, "loaded groups from __consumer_offsets");
        loaded
    }

    /// Drops the groups of one `__consumer_offsets` partition (another broker coordinates them now).
    /// Requests still parked are answered NOT_COORDINATOR so their clients look up the new one.
    pub fn unload_partition(&mut self, partition: i32, num_partitions: i32) -> Vec<Output> {
        let mut out = Outbox::default();
        let ids: Vec<String> = self
            .groups
            .keys()
            .filter(|id| partition_for(id, num_partitions) == partition)
            .cloned()
            .collect();
        for id in &ids {
            if let Some(group) = self.groups.remove(id) {
                for member in group.members.into_values() {
                    answer_parked_requests(member, ResponseError::NotCoordinator, &mut out);
                }
            }
        }
        info!(partition, groups = ids.len(), "unloaded groups");
        out.into_outputs()
    }
}

/// A group as its last membership record describes it.
fn group_from_record(id: String, value: GroupMetadataValue, now_ms: i64) -> Group {
    let mut group = Group::new(id);
    group.generation = value.generation;
    group.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
    group.protocol_name = value.protocol;
    group.state_timestamp_ms = value.current_state_timestamp_ms;
    let protocol_type = group.protocol_type.clone().unwrap_or_default();
    match group.protocol_name.clone() {
        Some(protocol) => {
            for m in value.members {
                let mut member = Member {
                    id: m.member_id,
                    instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocol_type: protocol_type.clone(),
                    protocols: vec![Protocol {
                        name: protocol.clone(),
                        metadata: m.subscription,
                    }],
                    assignment: m.assignment,
                    pending_join: None,
                    pending_sync: None,
                    session_deadline_ms: None,
                    is_new: false,
                };
                touch_session(&mut member, now_ms);
                group.add_member(member);
            }
        }
        None if !value.members.is_empty() => {
            warn!(group = %group.id, "membership record has members but no protocol; loading it empty");
        }
        None => {}
    }
    // `add_member` made the first member leader; the record's leader wins if it is a member.
    if let Some(leader) = value.leader.filter(|l| group.members.contains_key(l)) {
        group.leader = Some(leader);
    }
    if group.members.is_empty() {
        group.leader = None;
        group.protocol_name = None;
        group.state = GroupState::Empty;
    } else {
        group.state = GroupState::Stable;
    }
    group.subscribed_topics = group.compute_subscribed_topics();
    group
}
