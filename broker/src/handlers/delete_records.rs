//! DeleteRecords: moves a partition's log start offset forward (offset -1 means "up to the high watermark");
//! whole segments below it are removed, and reads below it answer OFFSET_OUT_OF_RANGE.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use crate::context::BrokerContext;
use crate::image_ext::ImageExt;

use super::errors::{code, storage_error_code};

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
                    let target = if p.offset == -1 { hw } else { p.offset };
                    if target < 0 || target > hw {
                        pr.error_code = code(ResponseError::OffsetOutOfRange);
                    } else {
                        match part.delete_records_before(target) {
                            Ok(low) => pr.low_watermark = low,
                            Err(e) => pr.error_code = storage_error_code(&e),
                        }
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
