//! DescribeProducers (`kafka-transactions.sh describe-producers`): the idempotent producers with state on each
//! partition this broker leads.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
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
            match (
                image.partition(&name, index),
                ctx.replicas.get(&name, index),
            ) {
                (None, _) => pr.error_code = code(ResponseError::UnknownTopicOrPartition),
                (Some(pi), Some(part)) if pi.leader == ctx.node_id => {
                    pr.active_producers = part
                        .producers()
                        .into_iter()
                        .map(|(id, epoch, last_seq, _last_offset)| {
                            let mut s = ProducerState::default();
                            s.producer_id = ProducerId(id);
                            s.producer_epoch = i32::from(epoch);
                            s.last_sequence = last_seq;
                            s.last_timestamp = -1;
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
