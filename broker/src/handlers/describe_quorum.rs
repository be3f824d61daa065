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

use crate::config::BrokerConfig;
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
    response(&ctx.config, info, version)
}

/// Whether the request names exactly `__cluster_metadata-0`, the only partition with a quorum.
pub fn asks_for_metadata_partition(req: &DescribeQuorumRequest) -> bool {
    matches!(req.topics.as_slice(), [t] if t.topic_name.0.as_str() == METADATA_TOPIC
        && matches!(t.partitions.as_slice(), [p] if p.partition_index == 0))
}

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
                    partition
                })
                .collect();
            topic
        })
        .collect();
    resp
}

/// Builds the response from the active controller's answer.
pub fn response(
    config: &BrokerConfig,
    info: Result<QuorumInfo, ControllerError>,
    version: i16,
) -> DescribeQuorumResponse {
    let mut partition = PartitionData::default();
    partition.partition_index = 0;
    match info {
        Ok(info) => {
            partition.leader_id = BrokerId(info.leader_id);
            partition.leader_epoch = info.leader_epoch;
            partition.high_watermark = info.high_watermark;
            partition.current_voters = info.voters.iter().map(replica_state).collect();
            partition.observers = info.observers.iter().map(replica_state).collect();
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
        let listener_name = config
            .controller_listener_names
            .first()
            .cloned()
            .unwrap_or_default();
        resp.nodes = config
            .voters
            .iter()
            .map(|v| {
                let mut listener = Listener::default();
                listener.name = StrBytes::from_string(listener_name.clone());
                listener.host = StrBytes::from_string(v.host.clone());
                listener.port = v.port;
                let mut node = Node::default();
                node.node_id = BrokerId(v.id);
                node.listeners = vec![listener];
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
