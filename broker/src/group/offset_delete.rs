//! OffsetDelete (v0): drops committed offsets of partitions the group no longer consumes.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::ResponseError;
use tracing::info;

use super::classic_group::CONSUMER_PROTOCOL_TYPE;
use super::coordinator::GroupCoordinator;
use super::output::{Outbox, Output, ReplyId, Response};
use super::records::{GroupRecord, TopicPartition};
use super::state::GroupState;

impl GroupCoordinator {
    pub fn offset_delete(
        &mut self,
        id: ReplyId,
        _version: i16,
        request: OffsetDeleteRequest,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Outbox::default();
        let group_id = request.group_id.0.as_str().to_owned();
        self.settle_group(&group_id, now_ms, &mut out);
        let response = match self.delete_offsets(&group_id, &request, &mut out) {
            Ok(codes) => {
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
                                OffsetDeleteResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                            })
                            .collect();
                        OffsetDeleteResponseTopic::default()
                            .with_name(topic.name)
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetDeleteResponse::default().with_topics(topics)
            }
            Err(error) => OffsetDeleteResponse::default().with_error_code(error.code()),
        };
        out.reply(id, Response::OffsetDelete(response));
        self.settle_group(&group_id, now_ms, &mut out);
        out.into_outputs()
    }

    /// Deletes what may be deleted; per topic, one code per partition. An empty group may lose any
    /// offset; an active consumer group only those of topics no member subscribes to (it would
    /// otherwise reset a live consumer); other active groups none, since their subscriptions are
    /// opaque.
    fn delete_offsets(
        &mut self,
        group_id: &str,
        request: &OffsetDeleteRequest,
        out: &mut Outbox,
    ) -> Result<Vec<Vec<i16>>, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        self.check_coordinator(group_id)?;
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or(ResponseError::GroupIdNotFound)?;
        let only_unsubscribed = match group.state {
            GroupState::Empty => false,
            GroupState::Dead => return Err(ResponseError::GroupIdNotFound),
            _ if group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE) => true,
            _ => return Err(ResponseError::NonEmptyGroup),
        };
        let mut tombstones = Vec::new();
        let codes = request
            .topics
            .iter()
            .map(|topic| {
                let name = topic.name.0.as_str();
                let subscribed = only_unsubscribed && group.is_subscribed_to(name);
                topic
                    .partitions
                    .iter()
                    .map(|p| {
                        if subscribed {
                            return ResponseError::GroupSubscribedToTopic.code();
                        }
                        let topic_partition = TopicPartition {
                            topic: name.to_owned(),
                            partition: p.partition_index,
                        };
                        if group.offsets.remove(&topic_partition).is_some() {
                            tombstones.push(GroupRecord::Offset {
                                group_id: group_id.to_owned(),
                                topic_partition,
                                value: None,
                            });
                        }
                        0
                    })
                    .collect()
            })
            .collect();
        if !tombstones.is_empty() {
            info!(
                group = group_id,
                offsets = tombstones.len(),
                "offsets deleted"
            );
        }
        out.persist(tombstones);
        Ok(codes)
    }
}
