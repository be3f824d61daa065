//! DescribeProducers (`kafka-transactions.sh describe-producers`): the idempotent producers with state on each
//! partition this broker leads.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::context::BrokerContext;
use crate::image_ext::ImageExt;

use super::errors::code;

pub fn handle(
    ctx: &Arc<BrokerContext>,
    req: DescribeProducersRequest,
    _version: i16,
) -> DescribeProducersResponse {
    let image = ctx.controller.image();
    let mut resp = DescribeProducersResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut tr = TopicResponse::default();
        tr.name = t.name;
        for index in t.partition_indexes {
            let mut pr = PartitionResponse::default();
            pr.partition_index = index;
            let topic_exists = image.topics_by_name().contains_key(&name);
            match (
                image.partition(&name, index),
                ctx.replicas.get(&name, index),
            ) {
                (None, _) => {
                    let (error, message) = unknown_partition_error(&name, topic_exists);
                    pr.error_code = error;
                    pr.error_message = message.map(StrBytes::from_string);
                }
                (Some(pi), Some(part)) if pi.leader == ctx.node_id => {
                    pr.active_producers = part
                        .producers()
                        .into_iter()
                        .map(|p| {
                            let mut s = ProducerState::default();
                            s.producer_id = ProducerId(p.producer_id);
                            s.producer_epoch = i32::from(p.epoch);
                            s.last_sequence = p.last_sequence;
                            s.last_timestamp = p.last_timestamp;
                            // No transactions: no coordinator epoch, no open transaction.
                            s.coordinator_epoch = -1;
                            s.current_txn_start_offset = -1;
                            s
                        })
                        .collect();
                }
                _ => pr.error_code = code(ResponseError::NotLeaderOrFollower),
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}

/// The answer for a partition the image does not have, as Kafka gives it: an illegal topic name is
/// INVALID_TOPIC_EXCEPTION and an unknown topic UNKNOWN_TOPIC_OR_PARTITION, both with a message; an
/// unknown partition of a known topic is UNKNOWN_TOPIC_OR_PARTITION without one.
fn unknown_partition_error(topic: &str, topic_exists: bool) -> (i16, Option<String>) {
    if topic_exists {
        return (code(ResponseError::UnknownTopicOrPartition), None);
    }
    match kraftwerk_controller::validate_topic_name(topic) {
        Err(e) => (e.error_code(), Some(e.message())),
        Ok(()) => (
            code(ResponseError::UnknownTopicOrPartition),
            Some("This server does not host this topic-partition.".to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_partitions_are_answered_as_kafka_answers_them() {
        assert_eq!(unknown_partition_error("known", true), (3, None));
        let (error, message) = unknown_partition_error("missing", false);
        assert_eq!(error, 3);
        assert_eq!(
            message.as_deref(),
            Some("This server does not host this topic-partition.")
        );
        let (error, message) = unknown_partition_error("bad name!", false);
        assert_eq!(error, 17);
        assert!(message.is_some_and(|m| m.contains("illegal")));
    }
}
