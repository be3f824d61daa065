//! OffsetCommit (v2-v9, the versions the codec decodes): members commit for their generation; clients
//! that manage partitions themselves commit with generation -1 into an empty ("simple") group.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::classic_group::Group;
use super::coordinator::GroupCoordinator;
use super::output::{Outbox, Output, ReplyId, Response};
use super::rebalance::touch_session;
use super::records::{GroupRecord, OffsetCommitValue, TopicPartition};
use super::state::GroupState;

/// Last version with a per-request `retention_time_ms`.
const LAST_RETENTION_VERSION: i16 = 4;

impl GroupCoordinator {
    pub fn offset_commit(
        &mut self,
        id: ReplyId,
        version: i16,
        request: OffsetCommitRequest,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Outbox::default();
        let group_id = request.group_id.0.as_str().to_owned();
        self.settle_group(&group_id, now_ms, &mut out);
        let codes = self
            .commit(&group_id, version, &request, now_ms, &mut out)
            .unwrap_or_else(|error| {
                request
                    .topics
                    .iter()
                    .map(|t| vec![error.code(); t.partitions.len()])
                    .collect()
            });
        let topics = request
            .topics
            .into_iter()
            .zip(codes)
            .map(|(topic, codes)| {
                let partitions = topic
                    .partitions
                    .iter()
                    .zip(codes)
                    .map(|(p, code)| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect();
        let response = OffsetCommitResponse::default().with_topics(topics);
        out.reply(id, Response::OffsetCommit(response));
        self.settle_group(&group_id, now_ms, &mut out);
        out.into_outputs()
    }

    /// Stores the offsets; per topic, one error code per partition. An `Err` applies to all.
    fn commit(
        &mut self,
        group_id: &str,
        version: i16,
        request: &OffsetCommitRequest,
        now_ms: i64,
        out: &mut Outbox,
    ) -> Result<Vec<Vec<i16>>, ResponseError> {
        self.check_coordinator(group_id)?;
        let generation = request.generation_id_or_member_epoch;
        if !self.groups.contains_key(group_id) {
            if generation >= 0 {
                // A member of a generation this coordinator never saw.
                return Err(ResponseError::IllegalGeneration);
            }
            let mut group = Group::new(group_id.to_owned());
            group.keep_until_retention_check = true;
            self.groups.insert(group_id.to_owned(), group);
        }
        let config = &self.config;
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let member_id = request.member_id.as_str();
        let instance_id = request.group_instance_id.as_ref().map(|s| s.as_str());
        validate_committer(group, generation, member_id, instance_id)?;
        match group.state {
            GroupState::Empty => {}
            // Commits continue while a rebalance gathers members; the heartbeat tells them to rejoin.
            GroupState::Stable | GroupState::PreparingRebalance => {
                if let Some(member) = group.members.get_mut(member_id) {
                    touch_session(member, now_ms);
                }
            }
            // The member got its JoinGroup answer but not its assignment: nothing to commit for yet.
            GroupState::CompletingRebalance => return Err(ResponseError::RebalanceInProgress),
            GroupState::Dead => return Err(ResponseError::CoordinatorNotAvailable),
        }

        let expire_timestamp_ms = (version <= LAST_RETENTION_VERSION
            && request.retention_time_ms >= 0)
            .then(|| now_ms.saturating_add(request.retention_time_ms));
        let mut records = Vec::new();
        let codes = request
            .topics
            .iter()
            .map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let metadata = p
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.as_str())
                            .unwrap_or_default();
                        if metadata.len() > config.offset_metadata_max_bytes {
                            return ResponseError::OffsetMetadataTooLarge.code();
                        }
                        let topic_partition = TopicPartition {
                            topic: topic.name.0.as_str().to_owned(),
                            partition: p.partition_index,
                        };
                        let value = OffsetCommitValue {
                            offset: p.committed_offset,
                            leader_epoch: Some(p.committed_leader_epoch).filter(|e| *e >= 0),
                            metadata: metadata.to_owned(),
                            commit_timestamp_ms: now_ms,
                            expire_timestamp_ms,
                        };
                        group.offsets.insert(topic_partition.clone(), value.clone());
                        records.push(GroupRecord::Offset {
                            group_id: group_id.to_owned(),
                            topic_partition,
                            value: Some(value),
                        });
                        0
                    })
                    .collect()
            })
            .collect();
        out.persist(records);
        Ok(codes)
    }
}

/// Who may commit: a request naming a member (or a generation) must match the group's current
/// member and generation; an anonymous one (generation -1, no member) only into an empty group, so it
/// cannot overwrite what an active group's members commit.
fn validate_committer(
    group: &Group,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<(), ResponseError> {
    if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
        group.validate_member(instance_id, member_id)?;
        if generation != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    } else if group.state != GroupState::Empty {
        Err(ResponseError::UnknownMemberId)
    } else {
        Ok(())
    }
}
