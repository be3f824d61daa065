//! OffsetCommit's broker half, before the group coordinator: as Apache Kafka does, a partition the metadata
//! does not know (its topic does not exist, or it has fewer partitions) is answered
//! UNKNOWN_TOPIC_OR_PARTITION (from v10, a topic id it does not know UNKNOWN_TOPIC_ID) and never reaches the
//! coordinator, so no offset is stored for it.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

/// Removes from `request` the partitions that do not exist (`partition_count` gives a topic's number of
/// partitions, `None` for an unknown topic) and returns their answers; topics left without partitions are
/// removed too.
pub fn take_unknown_partitions(
    request: &mut OffsetCommitRequest,
    partition_count: impl Fn(&str) -> Option<i32>,
) -> Vec<OffsetCommitResponseTopic> {
    let mut answers = Vec::new();
    for topic in &mut request.topics {
        // From v10 topics are named by id: an id the metadata does not know left the name empty.
        let error = if topic.name.0.is_empty() && !topic.topic_id.is_nil() {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        let count = partition_count(topic.name.0.as_str()).unwrap_or(0);
        let (known, unknown): (Vec<_>, Vec<_>) = std::mem::take(&mut topic.partitions)
            .into_iter()
            .partition(|p| (0..count).contains(&p.partition_index));
        topic.partitions = known;
        if !unknown.is_empty() {
            let partitions = unknown
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.code())
                })
                .collect();
            answers.push(
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_topic_id(topic.topic_id)
                    .with_partitions(partitions),
            );
        }
    }
    request.topics.retain(|t| !t.partitions.is_empty());
    answers
}

/// The whole answer: the unknown partitions first, then the coordinator's merged into the same topic
/// entries (Kafka's response builder adds them in that order, grouped by topic).
pub fn merge(
    unknown: Vec<OffsetCommitResponseTopic>,
    coordinator: OffsetCommitResponse,
) -> OffsetCommitResponse {
    let mut response = coordinator;
    response.topics = super::topic_answers::merge_by_topic(
        unknown,
        std::mem::take(&mut response.topics),
        |a, b| a.name == b.name && a.topic_id == b.topic_id,
        |t, more| t.partitions.extend(more.partitions),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;

    fn topic(name: &'static str, partitions: &[i32]) -> OffsetCommitRequestTopic {
        OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_partitions(
                partitions
                    .iter()
                    .map(|p| OffsetCommitRequestPartition::default().with_partition_index(*p))
                    .collect(),
            )
    }

    fn two_partitions(name: &str) -> Option<i32> {
        (name == "known").then_some(2)
    }

    fn answers(topic: &OffsetCommitResponseTopic) -> Vec<(i32, i16)> {
        topic
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code))
            .collect()
    }

    #[test]
    fn unknown_topics_and_partitions_are_answered_and_removed() {
        let mut request = OffsetCommitRequest::default().with_topics(vec![
            topic("known", &[0, 7, 1, -1]),
            topic("missing", &[0, 3]),
        ]);
        let unknown = take_unknown_partitions(&mut request, two_partitions);
        assert_eq!(request.topics.len(), 1);
        assert_eq!(request.topics[0].name.0.as_str(), "known");
        let left: Vec<i32> = request.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .collect();
        assert_eq!(left, vec![0, 1]);
        let code = ResponseError::UnknownTopicOrPartition.code();
        assert_eq!(unknown.len(), 2);
        assert_eq!(unknown[0].name.0.as_str(), "known");
        assert_eq!(answers(&unknown[0]), vec![(7, code), (-1, code)]);
        assert_eq!(unknown[1].name.0.as_str(), "missing");
        assert_eq!(answers(&unknown[1]), vec![(0, code), (3, code)]);
    }

    #[test]
    fn an_unknown_topic_id_is_answered_unknown_topic_id() {
        let id = uuid::Uuid::from_u128(7);
        let mut request =
            OffsetCommitRequest::default().with_topics(vec![topic("", &[0, 1]).with_topic_id(id)]);
        let unknown = take_unknown_partitions(&mut request, two_partitions);
        assert!(request.topics.is_empty());
        assert_eq!(unknown[0].topic_id, id);
        let code = ResponseError::UnknownTopicId.code();
        assert_eq!(answers(&unknown[0]), vec![(0, code), (1, code)]);
    }

    #[test]
    fn merged_answer_lists_unknown_partitions_first_grouped_by_topic() {
        let mut request = OffsetCommitRequest::default()
            .with_topics(vec![topic("known", &[0, 9]), topic("missing", &[1])]);
        let unknown = take_unknown_partitions(&mut request, two_partitions);
        let coordinator = OffsetCommitResponse::default()
            .with_throttle_time_ms(5)
            .with_topics(vec![OffsetCommitResponseTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("known")))
                .with_partitions(vec![
                    OffsetCommitResponsePartition::default().with_partition_index(0)
                ])]);
        let merged = merge(unknown, coordinator);
        let names: Vec<&str> = merged.topics.iter().map(|t| t.name.0.as_str()).collect();
        assert_eq!(names, vec!["known", "missing"]);
        let code = ResponseError::UnknownTopicOrPartition.code();
        assert_eq!(answers(&merged.topics[0]), vec![(9, code), (0, 0)]);
        assert_eq!(merged.throttle_time_ms, 5);
    }
}
