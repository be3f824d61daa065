//! DeleteRecords: moves a partition's log start offset forward (offset -1 means "up to the high watermark");
//! whole segments below it are removed, and reads below it answer OFFSET_OUT_OF_RANGE. As in Kafka, only a
//! topic whose `cleanup.policy` includes `delete` gives its records up this way.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;
use kraftwerk_storage::CleanupPolicy;

use crate::context::BrokerContext;
use crate::image_ext::ImageExt;

use super::errors::{code, storage_error_code};

/// The offset to delete below, or why not, in the order of Kafka's `Partition.deleteRecordsOnLeader`: a
/// topic whose `cleanup.policy` lacks `delete` (compacted only) keeps its records (POLICY_VIOLATION);
/// -1 means the high watermark; an offset below 0 or above the high watermark is OFFSET_OUT_OF_RANGE.
fn target(policy: CleanupPolicy, offset: i64, high_watermark: i64) -> Result<i64, ResponseError> {
    if !policy.delete {
        return Err(ResponseError::PolicyViolation);
    }
    let target = if offset == -1 { high_watermark } else { offset };
    if target < 0 || target > high_watermark {
        return Err(ResponseError::OffsetOutOfRange);
    }
    Ok(target)
}

pub fn handle(
    ctx: &Arc<BrokerContext>,
    req: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let image = ctx.controller.image();
    let mut resp = DeleteRecordsResponse::default();
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let mut tr = DeleteRecordsTopicResult::default();
        tr.name = topic.name;
        for p in topic.partitions {
            let mut pr = DeleteRecordsPartitionResult::default();
            pr.partition_index = p.partition_index;
            pr.low_watermark = -1;
            match (
                image.partition(&name, p.partition_index),
                ctx.replicas.get(&name, p.partition_index),
            ) {
                (None, _) => pr.error_code = code(ResponseError::UnknownTopicOrPartition),
                (Some(pi), Some(part)) if pi.leader == ctx.node_id => {
                    let hw = part.high_watermark();
                    match target(part.log_config().cleanup_policy, p.offset, hw) {
                        Err(e) => pr.error_code = code(e),
                        Ok(target) => match part.delete_records_before(target) {
                            Ok(Some(low)) => pr.low_watermark = low,
                            Ok(None) => pr.error_code = code(ResponseError::NotLeaderOrFollower),
                            Err(e) => pr.error_code = storage_error_code(&e),
                        },
                    }
                }
                _ => pr.error_code = code(ResponseError::NotLeaderOrFollower),
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
    fn a_compacted_only_topic_refuses_and_others_check_the_high_watermark() {
        let compact = CleanupPolicy::parse("compact").unwrap();
        let both = CleanupPolicy::parse("compact,delete").unwrap();
        assert_eq!(target(compact, 1, 4), Err(ResponseError::PolicyViolation));
        assert_eq!(target(compact, 9, 4), Err(ResponseError::PolicyViolation));
        assert_eq!(target(both, 1, 4), Ok(1));
        assert_eq!(target(CleanupPolicy::DELETE, -1, 4), Ok(4));
        assert_eq!(target(CleanupPolicy::DELETE, 4, 4), Ok(4));
        assert_eq!(
            target(CleanupPolicy::DELETE, 5, 4),
            Err(ResponseError::OffsetOutOfRange)
        );
        assert_eq!(
            target(CleanupPolicy::DELETE, -5, 4),
            Err(ResponseError::OffsetOutOfRange)
        );
    }
}
