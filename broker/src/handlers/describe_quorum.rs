//! DescribeQuorum: the raft state of `__cluster_metadata` (leader, epoch, high watermark, voters and observers
//! with their log end offsets), as `kafka-metadata-quorum describe --status / --replication` shows it.
//!
//! A broker forwards the question to the active controller (only it knows every voter's progress); a
//! controller answers on its controller listener the same way. Both build the response here.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_controller::rpc::{QuorumInfo, ReplicaProgress};
use kraftwerk_controller::{ControllerError, METADATA_TOPIC};

use crate::context::BrokerContext;

use super::errors::code;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    req: DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    if !asks_for_metadata_partition(&req) {
        return unknown_partition(&req);
    }
    let info = ctx.controller.describe_quorum().await;
    response(info, version)
}

/// Whether the request names exactly `__cluster_metadata-0`, the only partition with a quorum.
pub fn asks_for_metadata_partition(req: &DescribeQuorumRequest) -> bool {
    matches!(req.topics.as_slice(), [t] if t.topic_name.0.as_str() == METADATA_TOPIC
        && matches!(t.partitions.as_slice(), [p] if p.partition_index == 0))
}

/// Kafka's `Errors.UNKNOWN_TOPIC_OR_PARTITION.message()`.
const UNKNOWN_TOPIC_OR_PARTITION_MESSAGE: &str = "This server does not host this topic-partition.";

/// The answer to a request for any other partition.
pub fn unknown_partition(req: &DescribeQuorumRequest) -> DescribeQuorumResponse {
    let mut resp = DescribeQuorumResponse::default();
    resp.topics = req
        .topics
        .iter()
        .map(|t| {
            let mut topic = TopicData::default();
            topic.topic_name = t.topic_name.clone();
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = PartitionData::default();
                    partition.partition_index = p.partition_index;
                    partition.error_code = code(ResponseError::UnknownTopicOrPartition);
                    // Kafka's `singletonErrorResponse` carries the error's default message.
                    partition.error_message = Some(StrBytes::from_static_str(
                        UNKNOWN_TOPIC_OR_PARTITION_MESSAGE,
                    ));
                    partition
                })
                .collect();
            topic
        })
        .collect();
    resp
}

/// Builds the response from the active controller's answer: the voters (as the quorum's membership has them,
/// not as any configuration file lists them), their directory ids, and at v2 every member's endpoints.
pub fn response(info: Result<QuorumInfo, ControllerError>, version: i16) -> DescribeQuorumResponse {
    let mut partition = PartitionData::default();
    partition.partition_index = 0;
    let mut members = Vec::new();
    match info {
        Ok(info) => {
            partition.leader_id = BrokerId(info.leader_id);
            partition.leader_epoch = info.leader_epoch;
            partition.high_watermark = info.high_watermark;
            let state = |p: &ReplicaProgress| {
                let mut s = replica_state(p);
                if let Some(m) = info.members.iter().find(|m| m.id == p.node_id) {
                    s.replica_directory_id = m.directory_id;
                }
                s
            };
            partition.current_voters = info.voters.iter().map(state).collect();
            partition.observers = info.observers.iter().map(state).collect();
            members = info.members;
        }
        Err(e) => {
            // No active controller could be reached: Kafka's answer from a replica that is not the leader.
            partition.error_code = code(ResponseError::NotLeaderOrFollower);
            if version >= 2 {
                partition.error_message = Some(StrBytes::from_string(e.to_string()));
            }
            partition.leader_id = BrokerId(-1);
            partition.leader_epoch = -1;
            partition.high_watermark = -1;
        }
    }
    let mut topic = TopicData::default();
    topic.topic_name = StrBytes::from_static_str(METADATA_TOPIC).into();
    topic.partitions = vec![partition];
    let mut resp = DescribeQuorumResponse::default();
    resp.topics = vec![topic];
    if version >= 2 {
        resp.nodes = members
            .iter()
            .map(|m| {
                let mut node = Node::default();
                node.node_id = BrokerId(m.id);
                node.listeners = m
                    .endpoints
                    .iter()
                    .map(|e| {
                        let mut listener = Listener::default();
                        listener.name = StrBytes::from_string(e.name.clone());
                        listener.host = StrBytes::from_string(e.host.clone());
                        listener.port = e.port;
                        listener
                    })
                    .collect();
                node
            })
            .collect();
    }
    resp
}

fn replica_state(p: &ReplicaProgress) -> ReplicaState {
    let mut state = ReplicaState::default();
    state.replica_id = BrokerId(p.node_id);
    state.log_end_offset = p.log_end_offset;
    state.last_fetch_timestamp = p.last_fetch_ms;
    state.last_caught_up_timestamp = p.last_caught_up_ms;
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_quorum_request;

    #[test]
    fn another_partition_is_unknown_with_kafkas_message() {
        let req = DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(StrBytes::from_static_str("orders").into())
                .with_partitions(vec![
                    describe_quorum_request::PartitionData::default().with_partition_index(0)
                ]),
        ]);
        assert!(!asks_for_metadata_partition(&req));
        let resp = unknown_partition(&req);
        let p = &resp.topics[0].partitions[0];
        assert_eq!(p.error_code, code(ResponseError::UnknownTopicOrPartition));
        assert_eq!(
            p.error_message.as_deref(),
            Some("This server does not host this topic-partition.")
        );
    }
}
