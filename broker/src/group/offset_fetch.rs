//! OffsetFetch (v1-v9): committed offsets of one group (v1-v7) or several (v8+); all of a group's
//! partitions when the topic list is null.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::coordinator::GroupCoordinator;
use super::output::{Outbox, Output, ReplyId, Response};
use super::records::{OffsetCommitValue, TopicPartition};
use super::responses::str_bytes;

/// First version with a top-level error code.
const TOP_LEVEL_ERROR_VERSION: i16 = 2;
/// First version that batches groups.
const BATCHED_GROUPS_VERSION: i16 = 8;
/// Offset reported for a partition without a committed offset.
const NO_OFFSET: i64 = -1;
const NO_LEADER_EPOCH: i32 = -1;

struct FetchedTopic {
    name: String,
    partitions: Vec<(i32, Option<OffsetCommitValue>)>,
}

impl GroupCoordinator {
    pub fn offset_fetch(
        &mut self,
        id: ReplyId,
        version: i16,
        request: OffsetFetchRequest,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Outbox::default();
        let response = if version >= BATCHED_GROUPS_VERSION {
            let groups = request
                .groups
                .into_iter()
                .map(|group| {
                    let requested = group.topics.map(|topics| {
                        topics
                            .into_iter()
                            .map(|t| (t.name, t.partition_indexes))
                            .collect::<Vec<_>>()
                    });
                    let fetched =
                        self.fetch(&group.group_id, requested.as_deref(), now_ms, &mut out);
                    let response =
                        OffsetFetchResponseGroup::default().with_group_id(group.group_id);
                    match fetched {
                        Ok(fetched) => {
                            response.with_topics(fetched.into_iter().map(batched_topic).collect())
                        }
                        Err(error) => response.with_error_code(error.code()),
                    }
                })
                .collect();
            OffsetFetchResponse::default().with_groups(groups)
        } else {
            let requested = request.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect::<Vec<_>>()
            });
            match self.fetch(&request.group_id, requested.as_deref(), now_ms, &mut out) {
                Ok(fetched) => OffsetFetchResponse::default()
                    .with_topics(fetched.into_iter().map(single_topic).collect()),
                Err(error) if version >= TOP_LEVEL_ERROR_VERSION => {
                    OffsetFetchResponse::default().with_error_code(error.code())
                }
                // v1 has no top-level error: each partition asked for carries it.
                Err(error) => OffsetFetchResponse::default().with_topics(
                    requested
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(name, partitions)| {
                            let topic = single_topic(FetchedTopic {
                                name: name.0.as_str().to_owned(),
                                partitions: partitions.into_iter().map(|p| (p, None)).collect(),
                            });
                            with_partition_errors(topic, error)
                        })
                        .collect(),
                ),
            }
        };
        out.reply(id, Response::OffsetFetch(response));
        out.into_outputs()
    }

    /// The offsets asked for (or all the group has, topics sorted); `None` for partitions without
    /// one. An unknown group has no offsets, which is not an error; a group this broker does not
    /// coordinate (now) is.
    fn fetch(
        &mut self,
        group_id: &GroupId,
        requested: Option<&[(TopicName, Vec<i32>)]>,
        now_ms: i64,
        out: &mut Outbox,
    ) -> Result<Vec<FetchedTopic>, ResponseError> {
        let group_id = group_id.0.as_str();
        self.check_coordinator(group_id)?;
        self.settle_group(group_id, now_ms, out);
        let offsets = self.groups.get(group_id).map(|g| &g.offsets);
        Ok(match requested {
            Some(topics) => topics
                .iter()
                .map(|(name, partitions)| FetchedTopic {
                    name: name.0.as_str().to_owned(),
                    partitions: partitions
                        .iter()
                        .map(|&partition| {
                            let key = TopicPartition {
                                topic: name.0.as_str().to_owned(),
                                partition,
                            };
                            let committed = offsets.and_then(|o| o.get(&key)).cloned();
                            (partition, committed)
                        })
                        .collect(),
                })
                .collect(),
            None => {
                let mut fetched: Vec<FetchedTopic> = Vec::new();
                for (tp, value) in offsets.into_iter().flatten() {
                    match fetched.last_mut() {
                        Some(last) if last.name == tp.topic => {
                            last.partitions.push((tp.partition, Some(value.clone())));
                        }
                        _ => fetched.push(FetchedTopic {
                            name: tp.topic.clone(),
                            partitions: vec![(tp.partition, Some(value.clone()))],
                        }),
                    }
                }
                fetched
            }
        })
    }
}

/// v1 reports a group-level error on every partition.
fn with_partition_errors(
    mut topic: OffsetFetchResponseTopic,
    error: ResponseError,
) -> OffsetFetchResponseTopic {
    for p in &mut topic.partitions {
        p.error_code = error.code();
    }
    topic
}

fn single_topic(topic: FetchedTopic) -> OffsetFetchResponseTopic {
    let partitions = topic
        .partitions
        .into_iter()
        .map(|(partition, committed)| {
            let (offset, epoch, metadata) = fields(committed);
            OffsetFetchResponsePartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(epoch)
                .with_metadata(Some(metadata))
        })
        .collect();
    OffsetFetchResponseTopic::default()
        .with_name(TopicName(str_bytes(&topic.name)))
        .with_partitions(partitions)
}

fn batched_topic(topic: FetchedTopic) -> OffsetFetchResponseTopics {
    let partitions = topic
        .partitions
        .into_iter()
        .map(|(partition, committed)| {
            let (offset, epoch, metadata) = fields(committed);
            OffsetFetchResponsePartitions::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(epoch)
                .with_metadata(Some(metadata))
        })
        .collect();
    OffsetFetchResponseTopics::default()
        .with_name(TopicName(str_bytes(&topic.name)))
        .with_partitions(partitions)
}

/// Offset, leader epoch and metadata as the protocol reports them; `-1`/`""` when nothing committed.
fn fields(committed: Option<OffsetCommitValue>) -> (i64, i32, StrBytes) {
    match committed {
        Some(value) => (
            value.offset,
            value.leader_epoch.unwrap_or(NO_LEADER_EPOCH),
            StrBytes::from_string(value.metadata),
        ),
        None => (NO_OFFSET, NO_LEADER_EPOCH, StrBytes::default()),
    }
}
