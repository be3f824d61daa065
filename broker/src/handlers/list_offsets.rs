//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4: with no tiered storage the
//! log start offset, as Kafka answers), latest tiered (-5) and earliest pending upload (-6: with no tiered
//! storage no offset, -1 with epoch -1, as Kafka's `UnifiedLog` answers), or the first offset at/after a timestamp.

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
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

/// Whether `timestamp` means something at `version`: each sentinel exists from the version that introduced it
/// (Kafka answers UNSUPPORTED_VERSION for the partition otherwise).
fn timestamp_supported(timestamp: i64, version: i16) -> bool {
    let since = match timestamp {
        MAX_TIMESTAMP => 7,
        EARLIEST_LOCAL => 8,
        LATEST_TIERED => 9,
        EARLIEST_PENDING_UPLOAD => 11,
        _ => 0,
    };
    version >= since
}

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
                    if !timestamp_supported(p.timestamp, version) {
                        pr.error_code = code(ResponseError::UnsupportedVersion);
                        pr.leader_epoch = -1;
                    } else if p.current_leader_epoch >= 0
                        && p.current_leader_epoch < pi.leader_epoch
                    {
                        pr.error_code = code(ResponseError::FencedLeaderEpoch);
                    } else if p.current_leader_epoch > pi.leader_epoch {
                        pr.error_code = code(ResponseError::UnknownLeaderEpoch);
                    } else {
                        match p.timestamp {
                            LATEST => pr.offset = part.high_watermark(),
                            EARLIEST | EARLIEST_LOCAL => pr.offset = part.log_start_offset(),
                            // Nothing is tiered: Kafka answers no offset and epoch -1.
                            LATEST_TIERED | EARLIEST_PENDING_UPLOAD => pr.leader_epoch = -1,
                            // The record itself with the largest timestamp (KAFKA-16310), with its batch's
                            // leader epoch, and only below the high watermark, as Kafka's ReplicaManager.
                            MAX_TIMESTAMP => match part.max_timestamp() {
                                Ok(Some(found)) if found.offset < part.high_watermark() => {
                                    pr.timestamp = found.timestamp;
                                    pr.offset = found.offset;
                                    pr.leader_epoch = if version >= 4 {
                                        found.leader_epoch.max(-1)
                                    } else {
                                        -1
                                    };
                                }
                                // Kafka: no offset found, no epoch either.
                                Ok(_) => pr.leader_epoch = -1,
                                Err(e) => pr.error_code = storage_error_code(&e),
                            },
                            // With its batch's leader epoch, as Kafka's FileRecords.searchForTimestamp.
                            ts if ts >= 0 => match part.record_for_timestamp(ts) {
                                Ok(Some(found)) if found.offset < part.high_watermark() => {
                                    pr.offset = found.offset;
                                    pr.timestamp = found.timestamp;
                                    pr.leader_epoch = if version >= 4 {
                                        found.leader_epoch.max(-1)
                                    } else {
                                        -1
                                    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinels_need_the_version_that_introduced_them() {
        assert!(timestamp_supported(LATEST, 1));
        assert!(timestamp_supported(EARLIEST, 1));
        assert!(timestamp_supported(1000, 1));
        assert!(!timestamp_supported(MAX_TIMESTAMP, 6));
        assert!(timestamp_supported(MAX_TIMESTAMP, 7));
        assert!(!timestamp_supported(EARLIEST_LOCAL, 7));
        assert!(timestamp_supported(EARLIEST_LOCAL, 8));
        assert!(!timestamp_supported(LATEST_TIERED, 8));
        assert!(timestamp_supported(LATEST_TIERED, 9));
        assert!(!timestamp_supported(EARLIEST_PENDING_UPLOAD, 10));
        assert!(timestamp_supported(EARLIEST_PENDING_UPLOAD, 11));
    }
}
