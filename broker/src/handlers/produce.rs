//! Produce: validate and append each partition's batches to its log. The record bytes go from the request
//! frame (a `Bytes` slice of the read buffer) to the file in one write; the broker looks only at batch headers.
//!
//! acks=all (-1): refused with NOT_ENOUGH_REPLICAS before anything is written while the ISR is smaller than
//! `min.insync.replicas` (topic config, else the broker's); otherwise appended, then answered once the high
//! watermark has passed the batch (every ISR member has it), REQUEST_TIMED_OUT if the request's timeout passes
//! first, NOT_LEADER_OR_FOLLOWER if leadership moves meanwhile. acks=1 answers after the local append.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::context::{now_ms, BrokerContext};
use crate::image_ext::ImageExt;

use crate::replica::partition::{AppendError, Appended, CommitWait, Partition};

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
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.timeout_ms.max(0) as u64);
    // acks=all appends waiting for the high watermark: (topic, partition in the response, partition, offset
    // the high watermark must reach, leader epoch appended in).
    let mut waits: Vec<(usize, usize, Arc<Partition>, i64, i32)> = Vec::new();
    for (topic_idx, topic) in req.topic_data.into_iter().enumerate() {
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
        for (part_idx, pd) in topic.partition_data.into_iter().enumerate() {
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
                (_, _, Some(p), Some(partition)) => match pd.records.as_deref() {
                    None | Some([]) => code(ResponseError::CorruptMessage),
                    Some(records) => {
                        match partition.append_as_leader(records, now, Some(p.leader_epoch)) {
                            Ok(Appended::Written(r)) => {
                                if acks == -1 {
                                    waits.push((
                                        topic_idx,
                                        part_idx,
                                        partition.clone(),
                                        r.last_offset + 1,
                                        p.leader_epoch,
                                    ));
                                }
                                pr.base_offset = r.base_offset;
                                pr.log_append_time_ms = r.log_append_time;
                                if version >= 5 {
                                    pr.log_start_offset = r.log_start_offset;
                                }
                                0
                            }
                            Ok(Appended::Duplicate {
                                base_offset,
                                last_offset,
                                log_start_offset,
                            }) => {
                                // A retry of a batch that may not be committed yet: acknowledged, like the
                                // original, only once it is.
                                if acks == -1 {
                                    waits.push((
                                        topic_idx,
                                        part_idx,
                                        partition.clone(),
                                        last_offset + 1,
                                        p.leader_epoch,
                                    ));
                                }
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
                        }
                    }
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
    // One deadline for the whole request, so waiting for the partitions one after another takes no longer
    // than waiting for them together.
    for (topic_idx, part_idx, partition, offset, epoch) in waits {
        let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
        let outcome = partition
            .wait_for_commit(offset, Some(epoch), timeout)
            .await;
        let error = match outcome {
            CommitWait::Committed => continue,
            CommitWait::TimedOut => ResponseError::RequestTimedOut,
            CommitWait::NotLeader => ResponseError::NotLeaderOrFollower,
        };
        if let Some(pr) = responses
            .get_mut(topic_idx)
            .and_then(|t: &mut TopicProduceResponse| t.partition_responses.get_mut(part_idx))
        {
            tracing::debug!(topic = %partition.topic, partition = partition.index, offset, ?outcome,
                "acks=all produce not committed");
            pr.error_code = code(error);
            pr.base_offset = -1;
            pr.log_append_time_ms = -1;
        }
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
        AppendError::WrongRole { .. } => code(ResponseError::NotLeaderOrFollower),
    }
}
