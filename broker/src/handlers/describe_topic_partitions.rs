//! DescribeTopicPartitions (KIP-966): what the Java Admin client's `describeTopics` uses from Kafka 3.8 on.
//! Topics (all, or the named ones) in name order with their partitions, at most `response_partition_limit`
//! partitions per answer; the rest is reached through `next_cursor`, as Kafka's
//! `DescribeTopicPartitionsRequestHandler` and `KRaftMetadataCache.getTopicMetadataForDescribeTopicResponse`
//! page them.

use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use kraftwerk_controller::acl::{AclOperation, ResourceType};
use kraftwerk_controller::image::TopicImage;
use kraftwerk_controller::MetadataImage;

use crate::context::{BrokerContext, ConnectionInfo};
use crate::image_ext::ImageExt;

use super::errors::code;
use super::metadata::{is_internal_topic, TOPIC_ALL_OPS};

/// Kafka's `max.request.partition.size.limit` default: the most partitions one answer carries, whatever the
/// request asks for.
pub const MAX_REQUEST_PARTITION_SIZE_LIMIT: i32 = 2000;

pub fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnectionInfo,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = ctx.controller.image();
    let auth = ctx.auth(conn);
    describe(&image, &conn.listener_name, req, |topic| {
        !auth.enabled() || auth.allows(AclOperation::Describe, ResourceType::Topic, topic)
    })
}

/// The answer for `req` from `image`, for a client on `listener` allowed to DESCRIBE the topics `visible`
/// says. As in Kafka the check is made here, before paging: a hidden topic takes no room in a page and is
/// never named by a cursor. Listing all topics leaves hidden ones out; a named one is answered
/// TOPIC_AUTHORIZATION_FAILED with the zero id, whether it exists or not.
pub fn describe(
    image: &MetadataImage,
    listener: &str,
    req: DescribeTopicPartitionsRequest,
    visible: impl Fn(&str) -> bool,
) -> DescribeTopicPartitionsResponse {
    let all_topics = req.topics.is_empty();
    let cursor_topic = req
        .cursor
        .as_ref()
        .map(|c| c.topic_name.0.to_string())
        .unwrap_or_default();
    let mut names: Vec<String> = if all_topics {
        image
            .topics()
            .map(|t| t.name.clone())
            .filter(|n| *n >= cursor_topic)
            .collect()
    } else {
        req.topics
            .iter()
            .map(|t| t.name.0.to_string())
            .filter(|n| *n >= cursor_topic)
            .collect()
    };
    names.sort();
    names.dedup();
    if let Some(c) = &req.cursor {
        // Kafka throws InvalidRequestException; its error answer names every requested topic.
        let cursor_listed = all_topics || names.contains(&cursor_topic);
        if !cursor_listed || c.partition_index < 0 {
            return invalid_request(&req);
        }
    }
    let cursor_partition = req.cursor.as_ref().map_or(0, |c| c.partition_index);
    let limit = req
        .response_partition_limit
        .clamp(1, MAX_REQUEST_PARTITION_SIZE_LIMIT);

    let (names, hidden): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| visible(n));
    let mut resp = DescribeTopicPartitionsResponse::default();
    let mut remaining = limit;
    for name in names {
        if remaining == 0 {
            // The next answer starts at this topic's first partition.
            resp.next_cursor = Some(cursor_at(&name, 0));
            break;
        }
        let start = if name == cursor_topic {
            cursor_partition
        } else {
            0
        };
        match image.topic(&name) {
            Some(topic) => {
                let (partitions, next) = partitions_page(image, topic, listener, start, remaining);
                let count = partitions.len() as i32;
                resp.topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                        .with_topic_id(topic.id)
                        .with_is_internal(is_internal_topic(&name))
                        .with_partitions(partitions)
                        .with_topic_authorized_operations(TOPIC_ALL_OPS),
                );
                if let Some(next) = next {
                    resp.next_cursor = Some(cursor_at(&name, next));
                    break;
                }
                remaining -= count;
            }
            // Listing all topics skips one deleted meanwhile; a named one is answered with its error.
            None if all_topics => {}
            None => {
                let error = if kraftwerk_controller::validate_topic_name(&name).is_ok() {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::InvalidTopicException
                };
                resp.topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(code(error))
                        .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                        .with_topic_id(Uuid::nil())
                        .with_is_internal(is_internal_topic(&name))
                        .with_topic_authorized_operations(TOPIC_ALL_OPS),
                );
            }
        }
    }
    if !all_topics {
        resp.topics.extend(hidden.into_iter().map(|name| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(code(ResponseError::TopicAuthorizationFailed))
                .with_name(Some(TopicName(StrBytes::from_string(name))))
                .with_topic_id(Uuid::nil())
                .with_topic_authorized_operations(i32::MIN)
        }));
    }
    resp
}

fn cursor_at(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_index(partition)
}

/// Kafka's error answer: every requested topic with INVALID_REQUEST and no partitions.
fn invalid_request(req: &DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let mut resp = DescribeTopicPartitionsResponse::default();
    resp.topics = req
        .topics
        .iter()
        .map(|t| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(code(ResponseError::InvalidRequest))
                .with_name(Some(t.name.clone()))
                .with_topic_authorized_operations(i32::MIN)
        })
        .collect();
    resp
}

/// Partitions `start..start+max` of `topic` (by index), and the index the next page starts at if any remain.
fn partitions_page(
    image: &MetadataImage,
    topic: &TopicImage,
    listener: &str,
    start: i32,
    max: i32,
) -> (Vec<DescribeTopicPartitionsResponsePartition>, Option<i32>) {
    let count = topic.partitions.len() as i32;
    let upper = count.min(start.saturating_add(max));
    let next = (upper < count).then_some(upper);
    let partitions = (start..upper)
        .filter_map(|index| {
            let p = topic.partitions.get(&index)?;
            let leader_reachable = image.is_broker_alive(p.leader)
                && image
                    .brokers()
                    .get(&p.leader)
                    .is_some_and(|b| b.listener(listener).is_some());
            let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
            Some(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(index)
                    .with_leader_id(BrokerId(if leader_reachable { p.leader } else { -1 }))
                    .with_leader_epoch(p.leader_epoch)
                    .with_replica_nodes(ids(&p.replicas))
                    .with_isr_nodes(ids(&p.isr))
                    .with_eligible_leader_replicas(Some(ids(p
                        .eligible_leader_replicas
                        .as_deref()
                        .unwrap_or_default())))
                    .with_last_known_elr(Some(ids(p.last_known_elr.as_deref().unwrap_or_default())))
                    .with_offline_replicas(
                        p.replicas
                            .iter()
                            .copied()
                            .filter(|r| !image.is_broker_alive(*r))
                            .map(BrokerId)
                            .collect(),
                    ),
            )
        })
        .collect();
    (partitions, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_topic_partitions_request::{
        Cursor as RequestCursor, TopicRequest,
    };
    use kraftwerk_controller::records::{MetadataRecord, PartitionRecord};

    fn image_with(topics: &[(&str, i32)]) -> MetadataImage {
        let mut records = Vec::new();
        for (name, partitions) in topics {
            let id = Uuid::new_v4();
            records.push(MetadataRecord::Topic {
                name: name.to_string(),
                id,
            });
            for p in 0..*partitions {
                records.push(MetadataRecord::Partition(PartitionRecord {
                    topic_id: id,
                    partition: p,
                    replicas: vec![1],
                    isr: vec![1],
                    leader: 1,
                    ..Default::default()
                }));
            }
        }
        MetadataImage::empty("c").apply(0, &records)
    }

    fn request(
        topics: &[&str],
        limit: i32,
        cursor: Option<(&str, i32)>,
    ) -> DescribeTopicPartitionsRequest {
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        TopicRequest::default()
                            .with_name(TopicName(StrBytes::from_string(t.to_string())))
                    })
                    .collect(),
            )
            .with_response_partition_limit(limit)
            .with_cursor(cursor.map(|(t, p)| {
                RequestCursor::default()
                    .with_topic_name(TopicName(StrBytes::from_string(t.to_string())))
                    .with_partition_index(p)
            }))
    }

    fn describe_all(
        image: &MetadataImage,
        req: DescribeTopicPartitionsRequest,
    ) -> DescribeTopicPartitionsResponse {
        describe(image, "PLAINTEXT", req, |_| true)
    }

    #[test]
    fn hidden_topics_take_no_room_and_named_ones_are_denied() {
        let image = image_with(&[("a", 2), ("b", 2), ("c", 1)]);
        let all = describe(&image, "PLAINTEXT", request(&[], 3, None), |t| t != "a");
        assert_eq!(
            shape(&all),
            (
                vec![("b".into(), 0, vec![0, 1]), ("c".into(), 0, vec![0])],
                None
            )
        );
        let named = describe(&image, "PLAINTEXT", request(&["a", "b"], 10, None), |t| {
            t != "a"
        });
        let (topics, _) = shape(&named);
        assert_eq!(
            topics,
            vec![
                ("b".into(), 0, vec![0, 1]),
                (
                    "a".into(),
                    code(ResponseError::TopicAuthorizationFailed),
                    vec![]
                ),
            ]
        );
        assert!(named.topics[1].topic_id.is_nil());
    }

    /// Each topic's (name, error, partition indexes), and the next cursor.
    type Shape = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

    fn shape(r: &DescribeTopicPartitionsResponse) -> Shape {
        (
            r.topics
                .iter()
                .map(|t| {
                    (
                        t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                        t.error_code,
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    )
                })
                .collect(),
            r.next_cursor
                .as_ref()
                .map(|c| (c.topic_name.0.to_string(), c.partition_index)),
        )
    }

    #[test]
    fn pages_through_all_topics_in_name_order() {
        let image = image_with(&[("b", 3), ("a", 2)]);
        let first = describe_all(&image, request(&[], 4, None));
        assert_eq!(
            shape(&first),
            (
                vec![("a".into(), 0, vec![0, 1]), ("b".into(), 0, vec![0, 1])],
                Some(("b".into(), 2))
            )
        );
        let second = describe_all(&image, request(&[], 4, Some(("b", 2))));
        assert_eq!(shape(&second), (vec![("b".into(), 0, vec![2])], None));
        // A page that ends exactly at a topic's end points the cursor at the next topic.
        let exact = describe_all(&image, request(&[], 2, None));
        assert_eq!(
            shape(&exact),
            (vec![("a".into(), 0, vec![0, 1])], Some(("b".into(), 0)))
        );
    }

    #[test]
    fn named_topics_carry_their_errors() {
        let image = image_with(&[("a", 1)]);
        let r = describe_all(&image, request(&["missing", "a", "bad name!"], 10, None));
        assert_eq!(
            shape(&r).0,
            vec![
                ("a".into(), 0, vec![0]),
                (
                    "bad name!".into(),
                    code(ResponseError::InvalidTopicException),
                    vec![]
                ),
                (
                    "missing".into(),
                    code(ResponseError::UnknownTopicOrPartition),
                    vec![]
                ),
            ]
        );
    }

    #[test]
    fn a_cursor_outside_the_named_topics_or_negative_is_an_invalid_request() {
        let image = image_with(&[("a", 1), ("b", 1)]);
        for cursor in [("c", 0), ("a", -1)] {
            let r = describe_all(&image, request(&["a", "b"], 10, Some(cursor)));
            assert!(r
                .topics
                .iter()
                .all(|t| t.error_code == code(ResponseError::InvalidRequest)));
            assert_eq!(r.topics.len(), 2);
        }
    }

    #[test]
    fn the_limit_is_at_least_one_and_at_most_kafkas_cap() {
        let image = image_with(&[("a", 3)]);
        let r = describe_all(&image, request(&[], 0, None));
        assert_eq!(
            shape(&r),
            (vec![("a".into(), 0, vec![0])], Some(("a".into(), 1)))
        );
    }
}
