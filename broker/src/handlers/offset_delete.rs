//! OffsetDelete's broker half, before the group coordinator: as Apache Kafka's `handleOffsetDeleteRequest`
//! does, every partition of a topic the metadata does not know, and a partition a known topic does not have,
//! is answered UNKNOWN_TOPIC_OR_PARTITION and never reaches the coordinator. The coordinator is still asked
//! (with what is left, possibly nothing): a group-level error of its answer replaces the whole response.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::ResponseError;

/// Removes from `request` the partitions that do not exist (`partition_count` gives a topic's number of
/// partitions, `None` for an unknown topic) and returns their answers; topics left without partitions are
/// removed too.
pub fn take_unknown_partitions(
    request: &mut OffsetDeleteRequest,
    partition_count: impl Fn(&str) -> Option<i32>,
) -> Vec<OffsetDeleteResponseTopic> {
    let mut answers = Vec::new();
    for topic in &mut request.topics {
        let count = partition_count(topic.name.0.as_str()).unwrap_or(0);
        let (known, unknown): (Vec<_>, Vec<_>) = std::mem::take(&mut topic.partitions)
            .into_iter()
            .partition(|p| (0..count).contains(&p.partition_index));
        topic.partitions = known;
        if !unknown.is_empty() {
            answers.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_partitions(
                        unknown
                            .iter()
                            .map(|p| {
                                OffsetDeleteResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            })
                            .collect(),
                    ),
            );
        }
    }
    request.topics.retain(|t| !t.partitions.is_empty());
    answers
}

/// The whole answer: the coordinator's if it failed the group, else the unknown partitions first and the
/// coordinator's merged into the same topic entries (Kafka's response builder, in that order).
pub fn merge(
    unknown: Vec<OffsetDeleteResponseTopic>,
    coordinator: OffsetDeleteResponse,
) -> OffsetDeleteResponse {
    if coordinator.error_code != 0 {
        return OffsetDeleteResponse::default().with_error_code(coordinator.error_code);
    }
    let mut response = coordinator;
    response.topics = super::topic_answers::merge_by_topic(
        unknown,
        std::mem::take(&mut response.topics),
        |a, b| a.name == b.name,
        |t, more| t.partitions.extend(more.partitions),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;

    fn topic(name: &'static str, partitions: &[i32]) -> OffsetDeleteRequestTopic {
        OffsetDeleteRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_partitions(
                partitions
                    .iter()
                    .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
                    .collect(),
            )
    }

    fn answers(topic: &OffsetDeleteResponseTopic) -> Vec<(i32, i16)> {
        topic
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code))
            .collect()
    }

    #[test]
    fn unknown_topics_and_partitions_are_answered_and_removed() {
        let mut request = OffsetDeleteRequest::default()
            .with_topics(vec![topic("missing", &[0]), topic("known", &[0, 5, 1])]);
        let unknown = take_unknown_partitions(&mut request, |name| (name == "known").then_some(2));
        let code = ResponseError::UnknownTopicOrPartition.code();
        assert_eq!(unknown.len(), 2);
        assert_eq!(answers(&unknown[0]), vec![(0, code)]);
        assert_eq!(answers(&unknown[1]), vec![(5, code)]);
        assert_eq!(request.topics.len(), 1);
        let left: Vec<i32> = request.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .collect();
        assert_eq!(left, vec![0, 1]);

        // The coordinator's answers join the same topic entry.
        let coordinator =
            OffsetDeleteResponse::default().with_topics(vec![OffsetDeleteResponseTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("known")))
                .with_partitions(vec![
                    OffsetDeleteResponsePartition::default().with_partition_index(0),
                    OffsetDeleteResponsePartition::default().with_partition_index(1),
                ])]);
        let merged = merge(unknown, coordinator);
        assert_eq!(merged.error_code, 0);
        assert_eq!(merged.topics.len(), 2);
        assert_eq!(answers(&merged.topics[1]), vec![(5, code), (0, 0), (1, 0)]);
    }

    #[test]
    fn a_group_error_replaces_the_answer() {
        let mut request = OffsetDeleteRequest::default().with_topics(vec![topic("missing", &[0])]);
        let unknown = take_unknown_partitions(&mut request, |_| None);
        assert!(request.topics.is_empty());
        let error = ResponseError::GroupIdNotFound.code();
        let merged = merge(
            unknown,
            OffsetDeleteResponse::default().with_error_code(error),
        );
        assert_eq!(merged.error_code, error);
        assert!(merged.topics.is_empty());
    }
}
