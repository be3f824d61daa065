//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), earliest pending upload
//! (-5, no tiered storage here: answered like earliest local), or the first offset at/after a timestamp.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use crate::context::BrokerContext;

use super::errors::{code, storage_error_code};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const EARLIEST_PENDING_UPLOAD: i64 = -5;

pub fn handle(
    ctx: &Arc<BrokerContext>,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let image = ctx.controller.image();
    let mut resp = ListOffsetsResponse::default();
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = topic.name;
        for p in topic.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            pr.leader_epoch = -1;
            let part_image = image
                .topic(&name)
                .and_then(|t| t.partitions.get(&p.partition_index));
            match (part_image, ctx.replicas.get(&name, p.partition_index)) {
                (None, _) => pr.error_code = code(ResponseError::UnknownTopicOrPartition),
                (Some(pi), Some(_)) | (Some(pi), None) if pi.leader != ctx.node_id => {
                    pr.error_code = code(ResponseError::NotLeaderOrFollower)
                }
                (Some(_), None) => pr.error_code = code(ResponseError::NotLeaderOrFollower),
                (Some(pi), Some(part)) => {
                    if version >= 4 {
                        pr.leader_epoch = pi.leader_epoch;
                    }
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch < pi.leader_epoch {
                        pr.error_code = code(ResponseError::FencedLeaderEpoch);
                    } else if p.current_leader_epoch > pi.leader_epoch {
                        pr.error_code = code(ResponseError::UnknownLeaderEpoch);
                    } else {
                        match p.timestamp {
                            LATEST => pr.offset = part.high_watermark(),
                            EARLIEST | EARLIEST_LOCAL | EARLIEST_PENDING_UPLOAD => {
                                pr.offset = part.log_start_offset()
                            }
                            MAX_TIMESTAMP => match part.max_timestamp() {
                                Some((ts, off)) => {
                                    pr.timestamp = ts;
                                    pr.offset = off;
                                }
                                // Kafka: no offset found, no epoch either.
                                None => pr.leader_epoch = -1,
                            },
                            ts if ts >= 0 => match part.offset_for_timestamp(ts) {
                                Ok(Some((off, found_ts))) if off < part.high_watermark() => {
                                    pr.offset = off;
                                    pr.timestamp = found_ts;
                                }
                                // No record at or after `ts`: Kafka answers offset and epoch -1.
                                Ok(_) => pr.leader_epoch = -1,
                                Err(e) => pr.error_code = storage_error_code(&e),
                            },
                            _ => pr.error_code = code(ResponseError::InvalidRequest),
                        }
                    }
                }
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}
