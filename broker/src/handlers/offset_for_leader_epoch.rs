//! OffsetForLeaderEpoch (API 23): where did a leader epoch end in this partition's log?
//!
//! Followers ask it before fetching after a leader change, to truncate exactly where their log diverged from the
//! leader's (KIP-101); consumers ask it after a leader change to check that their position was not truncated
//! away (KIP-320). Answered from the leader's leader-epoch cache with Kafka's rules: the current leader epoch in
//! the request is checked first (FENCED_LEADER_EPOCH if older than the partition's, UNKNOWN_LEADER_EPOCH if
//! newer), then leadership (NOT_LEADER_OR_FOLLOWER), then the cache answers (see
//! `kraftwerk_storage::LeaderEpochCache::end_offset_for`).

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use kraftwerk_controller::MetadataImage;
use kraftwerk_storage::epoch::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};

use crate::context::BrokerContext;

use super::errors::code;

/// Kafka's `DEBUGGING_REPLICA_ID`: a tool that may read a follower's cache. Consumers send -1 and followers
/// their broker id; both must be answered by the leader.
const DEBUGGING_REPLICA_ID: i32 = -2;

pub fn handle(
    ctx: &Arc<BrokerContext>,
    req: OffsetForLeaderEpochRequest,
    _version: i16,
) -> OffsetForLeaderEpochResponse {
    let image = ctx.controller.image();
    let leader_only = req.replica_id.0 != DEBUGGING_REPLICA_ID;
    let mut resp = OffsetForLeaderEpochResponse::default();
    for topic in req.topics {
        let name = topic.topic.0.to_string();
        let mut tr = OffsetForLeaderTopicResult::default();
        tr.partitions = topic
            .partitions
            .iter()
            .map(|p| answer(ctx, &image, &name, p, leader_only))
            .collect();
        tr.topic = topic.topic;
        resp.topics.push(tr);
    }
    resp
}

fn answer(
    ctx: &BrokerContext,
    image: &MetadataImage,
    topic: &str,
    p: &OffsetForLeaderPartition,
    leader_only: bool,
) -> EpochEndOffset {
    let mut out = EpochEndOffset::default();
    out.partition = p.partition;
    out.leader_epoch = UNDEFINED_EPOCH;
    out.end_offset = UNDEFINED_EPOCH_OFFSET;
    let Some(pi) = image
        .topic(topic)
        .and_then(|t| t.partitions.get(&p.partition))
    else {
        out.error_code = code(ResponseError::UnknownTopicOrPartition);
        return out;
    };
    let Some(part) = ctx.replicas.get(topic, p.partition) else {
        out.error_code = code(ResponseError::NotLeaderOrFollower);
        return out;
    };
    let current = p.current_leader_epoch;
    if current >= 0 && current < pi.leader_epoch {
        out.error_code = code(ResponseError::FencedLeaderEpoch);
        return out;
    }
    if current > pi.leader_epoch {
        out.error_code = code(ResponseError::UnknownLeaderEpoch);
        return out;
    }
    if leader_only && pi.leader != ctx.node_id {
        out.error_code = code(ResponseError::NotLeaderOrFollower);
        return out;
    }
    let end = part.end_offset_for(p.leader_epoch);
    out.leader_epoch = end.leader_epoch;
    out.end_offset = end.end_offset;
    out
}
