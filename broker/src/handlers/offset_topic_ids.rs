//! OffsetCommit and OffsetFetch v10 (KIP-848) name topics by id, not by name. The group coordinator keys
//! offsets by topic name (as `__consumer_offsets` does), so the broker half translates around it, as Kafka's
//! `KafkaApis` does: ids become names before the coordinator (and before the ACL gate checks topics), and the
//! coordinator's answer gets each topic's id back. A topic whose id the metadata does not know is answered
//! UNKNOWN_TOPIC_ID for each of its partitions and never reaches the coordinator. Names stay in the answer's
//! structs (v10 does not encode them) so later steps can match topics by name.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

/// First version of OffsetCommit and OffsetFetch that names topics by id.
pub const TOPIC_ID_VERSION: i16 = 10;

fn topic_name(name: String) -> TopicName {
    TopicName(StrBytes::from_string(name))
}

/// Sets each topic's name from its id (an unknown id leaves the name empty, for
/// [`super::offset_commit::take_unknown_partitions`] to answer UNKNOWN_TOPIC_ID).
pub fn commit_names_from_ids(
    request: &mut OffsetCommitRequest,
    name_of: impl Fn(&Uuid) -> Option<String>,
) {
    for topic in &mut request.topics {
        topic.name = topic_name(name_of(&topic.topic_id).unwrap_or_default());
    }
}

/// The topics of an OffsetFetch v10 group whose ids are unknown: where they were asked for, with their answer.
pub type UnknownFetchTopics = Vec<(usize, OffsetFetchResponseTopics)>;

/// Sets each requested topic's name from its id and takes the topics with unknown ids out of the request;
/// returns, per group (in request order), their answers and where they were in the group's list.
pub fn fetch_names_from_ids(
    request: &mut OffsetFetchRequest,
    name_of: impl Fn(&Uuid) -> Option<String>,
) -> Vec<UnknownFetchTopics> {
    request
        .groups
        .iter_mut()
        .map(|group| {
            let Some(topics) = group.topics.as_mut() else {
                return Vec::new();
            };
            let mut unknown = Vec::new();
            let mut kept = Vec::with_capacity(topics.len());
            for (index, mut topic) in std::mem::take(topics).into_iter().enumerate() {
                match name_of(&topic.topic_id) {
                    Some(name) => {
                        topic.name = topic_name(name);
                        kept.push(topic);
                    }
                    None => unknown.push((
                        index,
                        OffsetFetchResponseTopics::default()
                            .with_topic_id(topic.topic_id)
                            .with_partitions(
                                topic
                                    .partition_indexes
                                    .iter()
                                    .map(|p| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(*p)
                                            .with_committed_offset(-1)
                                            .with_committed_leader_epoch(-1)
                                            .with_metadata(Some(StrBytes::default()))
                                            .with_error_code(ResponseError::UnknownTopicId.code())
                                    })
                                    .collect(),
                            ),
                    )),
                }
            }
            *topics = kept;
            unknown
        })
        .collect()
}

/// Gives each topic of the coordinator's OffsetFetch answer its id, drops topics that no longer exist (they
/// have no id to be named by; only a fetch of all topics can return them), and puts the unknown-id answers
/// back where they were asked for. A group answered with an error gets no topics.
pub fn fetch_ids_from_names(
    response: &mut OffsetFetchResponse,
    unknown: Vec<UnknownFetchTopics>,
    id_of: impl Fn(&str) -> Option<Uuid>,
) {
    let mut unknown = unknown.into_iter();
    for group in &mut response.groups {
        let missing = unknown.next().unwrap_or_default();
        group.topics.retain_mut(|t| match id_of(t.name.0.as_str()) {
            Some(id) => {
                t.topic_id = id;
                true
            }
            None => false,
        });
        if group.error_code != 0 {
            continue;
        }
        for (index, topic) in missing {
            let at = index.min(group.topics.len());
            group.topics.insert(at, topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic;
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
    use kafka_protocol::messages::GroupId;

    const KNOWN: Uuid = Uuid::from_u128(1);
    const UNKNOWN: Uuid = Uuid::from_u128(2);

    fn name_of(id: &Uuid) -> Option<String> {
        (*id == KNOWN).then(|| "t".to_string())
    }

    fn id_of(name: &str) -> Option<Uuid> {
        (name == "t").then_some(KNOWN)
    }

    #[test]
    fn commit_topics_are_named_from_their_ids() {
        let mut request = OffsetCommitRequest::default().with_topics(vec![
            OffsetCommitRequestTopic::default().with_topic_id(KNOWN),
            OffsetCommitRequestTopic::default().with_topic_id(UNKNOWN),
        ]);
        commit_names_from_ids(&mut request, name_of);
        assert_eq!(request.topics[0].name.0.as_str(), "t");
        assert_eq!(request.topics[1].name.0.as_str(), "");
    }

    #[test]
    fn fetch_unknown_ids_are_answered_in_place_and_known_ones_get_their_ids_back() {
        let topics = vec![
            OffsetFetchRequestTopics::default()
                .with_topic_id(UNKNOWN)
                .with_partition_indexes(vec![0, 1]),
            OffsetFetchRequestTopics::default()
                .with_topic_id(KNOWN)
                .with_partition_indexes(vec![0]),
        ];
        let mut request =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_topics(Some(topics))]);
        let unknown = fetch_names_from_ids(&mut request, name_of);
        let left = request.groups[0].topics.as_ref().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].name.0.as_str(), "t");

        // The coordinator answers by name, including a deleted topic's offsets in a fetch of all.
        let mut response =
            OffsetFetchResponse::default().with_groups(vec![OffsetFetchResponseGroup::default()
                .with_topics(vec![
                    OffsetFetchResponseTopics::default().with_name(topic_name("t".into())),
                    OffsetFetchResponseTopics::default().with_name(topic_name("gone".into())),
                ])]);
        fetch_ids_from_names(&mut response, unknown, id_of);
        let topics = &response.groups[0].topics;
        let ids: Vec<Uuid> = topics.iter().map(|t| t.topic_id).collect();
        assert_eq!(ids, vec![UNKNOWN, KNOWN]);
        let errors: Vec<i16> = topics[0].partitions.iter().map(|p| p.error_code).collect();
        assert_eq!(errors, vec![ResponseError::UnknownTopicId.code(); 2]);
    }

    #[test]
    fn a_group_answered_with_an_error_gets_no_topics() {
        let mut request =
            OffsetFetchRequest::default()
                .with_groups(vec![OffsetFetchRequestGroup::default().with_topics(Some(
                    vec![OffsetFetchRequestTopics::default().with_topic_id(UNKNOWN)],
                ))]);
        let unknown = fetch_names_from_ids(&mut request, name_of);
        let mut response = OffsetFetchResponse::default()
            .with_groups(vec![OffsetFetchResponseGroup::default()
                .with_error_code(ResponseError::NotCoordinator.code())]);
        fetch_ids_from_names(&mut response, unknown, id_of);
        assert!(response.groups[0].topics.is_empty());
    }
}
