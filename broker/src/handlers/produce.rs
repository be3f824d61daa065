//! Produce: validate and append each partition's batches to its log. The record bytes go from the request
//! frame (a `Bytes` slice of the read buffer) to the file in one write; the broker looks only at batch headers.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::context::{now_ms, BrokerContext};
use crate::image_ext::ImageExt;

use crate::replica::partition::{AppendError, Appended};

use super::errors::{code, storage_error_code};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    req: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let image = ctx.controller.image();
    let now = now_ms();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        // v13 names topics by id.
        let name: Option<String> = if version >= 13 {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.name.0.to_string())
        };
        let topic_image = name.as_deref().and_then(|n| image.topic(n));
        // Only acks=all consults min.insync.replicas.
        let min_isr = match (acks, name.as_deref()) {
            (-1, Some(n)) => image
                .topic_configs(n)
                .get("min.insync.replicas")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(ctx.config.min_insync_replicas.max(1) as usize),
            _ => 1,
        };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let mut pr = PartitionProduceResponse::default();
            pr.index = pd.index;
            pr.base_offset = -1;
            pr.log_append_time_ms = -1;
            pr.log_start_offset = -1;
            let part_image = topic_image.and_then(|t| t.partitions.get(&pd.index));
            let hosted = name.as_deref().and_then(|n| ctx.replicas.get(n, pd.index));
            pr.error_code = match (acks, topic_image, part_image, hosted) {
                (a, _, _, _) if !matches!(a, -1..=1) => code(ResponseError::InvalidRequiredAcks),
                (_, None, _, _) if version >= 13 => code(ResponseError::UnknownTopicId),
                (_, None, _, _) | (_, Some(_), None, _) => {
                    code(ResponseError::UnknownTopicOrPartition)
                }
                (_, _, Some(p), Some(_)) if p.leader != ctx.node_id => {
                    code(ResponseError::NotLeaderOrFollower)
                }
                (_, _, _, None) => code(ResponseError::NotLeaderOrFollower),
                (-1, _, Some(p), Some(_)) if p.isr.len() < min_isr => {
                    code(ResponseError::NotEnoughReplicas)
                }
                (_, _, Some(_), Some(partition)) => match pd.records.as_deref() {
                    None | Some([]) => code(ResponseError::CorruptMessage),
                    Some(records) => match partition.append_as_leader(records, now) {
                        Ok(Appended::Written(r)) => {
                            pr.base_offset = r.base_offset;
                            pr.log_append_time_ms = r.log_append_time;
                            if version >= 5 {
                                pr.log_start_offset = r.log_start_offset;
                            }
                            0
                        }
                        Ok(Appended::Duplicate {
                            base_offset,
                            log_start_offset,
                        }) => {
                            pr.base_offset = base_offset;
                            if version >= 5 {
                                pr.log_start_offset = log_start_offset;
                            }
                            0
                        }
                        Err(e) => {
                            tracing::warn!(topic = %partition.topic, partition = pd.index, error = %e, "produce refused");
                            if version >= 8 {
                                pr.error_message = Some(StrBytes::from_string(e.to_string()));
                            }
                            append_error_code(&e)
                        }
                    },
                },
            };
            partitions.push(pr);
        }
        let mut tr = TopicProduceResponse::default();
        tr.name = topic.name;
        tr.topic_id = topic.topic_id;
        if version < 13 && tr.name.0.is_empty() {
            tr.name = TopicName(StrBytes::from_string(name.unwrap_or_default()));
        }
        tr.partition_responses = partitions;
        responses.push(tr);
    }
    if acks == 0 {
        return None;
    }
    let mut resp = ProduceResponse::default();
    resp.responses = responses;
    Some(resp)
}

fn append_error_code(e: &AppendError) -> i16 {
    match e {
        AppendError::Storage(e) => storage_error_code(e),
        AppendError::MultipleBatches => code(ResponseError::InvalidRecord),
        AppendError::InvalidProducerEpoch { .. } => code(ResponseError::InvalidProducerEpoch),
        AppendError::OutOfOrderSequence { .. } => code(ResponseError::OutOfOrderSequenceNumber),
    }
}
