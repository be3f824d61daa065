//! Produce: validate and append each partition's batches to its log. The record bytes go from the request
//! frame (a `Bytes` slice of the read buffer) to the file in one write; the broker looks only at batch headers.
//!
//! acks=all (-1): refused with NOT_ENOUGH_REPLICAS before anything is written while the ISR is smaller than
//! `min.insync.replicas` (topic config, else the broker's); otherwise appended, then answered once the high
//! watermark has passed the batch (every ISR member has it), REQUEST_TIMED_OUT if the request's timeout passes
//! first, NOT_LEADER_OR_FOLLOWER if leadership moves meanwhile, NOT_ENOUGH_REPLICAS_AFTER_APPEND if it was
//! replicated but the ISR shrank below `min.insync.replicas` meanwhile. acks=1 answers after the local append.
//! From v10 a NOT_LEADER_OR_FOLLOWER answer names the current leader and its endpoint (KIP-951).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_controller::MetadataImage;
use kraftwerk_storage::StorageError;

use crate::context::{now_ms, BrokerContext};
use crate::image_ext::ImageExt;

use crate::replica::partition::{AppendError, Appended, CommitWait, Partition};

use super::errors::{code, storage_error_code};
use super::leader_hints;

/// First version whose NOT_LEADER_OR_FOLLOWER answers carry the current leader and its endpoint (KIP-951).
const LEADER_HINT_VERSION: i16 = 10;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    listener: &str,
    req: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let image = ctx.controller.image();
    let now = now_ms();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.timeout_ms.max(0) as u64);
    let mut waits: Vec<AcksAllWait> = Vec::new();
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
                .topic_or_dynamic(
                    n,
                    "min.insync.replicas",
                    ctx.config.node_id,
                    "min.insync.replicas",
                )
                .and_then(|v| v.trim().parse::<usize>().ok())
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
                        match partition.append_from_client(records, now, Some(p.leader_epoch)) {
                            Ok(Appended::Written(r)) => {
                                if acks == -1 {
                                    waits.push(AcksAllWait {
                                        topic_idx,
                                        part_idx,
                                        partition: partition.clone(),
                                        offset: r.last_offset + 1,
                                        leader_epoch: p.leader_epoch,
                                        min_isr,
                                    });
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
                                timestamp,
                            }) => {
                                // A retry of a batch that may not be committed yet: acknowledged, like the
                                // original, only once it is.
                                if acks == -1 {
                                    waits.push(AcksAllWait {
                                        topic_idx,
                                        part_idx,
                                        partition: partition.clone(),
                                        offset: last_offset + 1,
                                        leader_epoch: p.leader_epoch,
                                        min_isr,
                                    });
                                }
                                pr.base_offset = base_offset;
                                // Kafka answers a retry with the original batch's max timestamp here
                                // (UnifiedLog sets the duplicate's timestamp as its log append time).
                                pr.log_append_time_ms = timestamp;
                                if version >= 5 {
                                    pr.log_start_offset = log_start_offset;
                                }
                                0
                            }
                            Err(e) => {
                                tracing::warn!(topic = %partition.topic, partition = pd.index, error = %e, "produce refused");
                                if version >= 8 {
                                    pr.record_errors = record_errors(&e);
                                    pr.error_message = error_message(&e);
                                }
                                let code = append_error_code(&e);
                                if version >= 5 && reports_log_start(code) {
                                    pr.log_start_offset = partition.log_start_offset();
                                }
                                code
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
    for AcksAllWait {
        topic_idx,
        part_idx,
        partition,
        offset,
        leader_epoch,
        min_isr,
    } in waits
    {
        let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
        let outcome = partition
            .wait_for_commit(offset, Some(leader_epoch), timeout)
            .await;
        let Some(error) = acks_all_error(outcome, partition.isr_len(), min_isr) else {
            continue;
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
    if version >= LEADER_HINT_VERSION && has_not_leader(&resp) {
        add_leader_hints(&mut resp, &ctx.controller.image(), listener);
    }
    Some(resp)
}

/// How an acks=all produce ends once its wait is over (`None`: success), as Kafka's `DelayedProduce` decides:
/// replicated to the ISR but with the ISR now below `min.insync.replicas` (it shrank while the produce waited)
/// is NOT_ENOUGH_REPLICAS_AFTER_APPEND — the batch is written, the producer learns it is under-replicated.
fn acks_all_error(outcome: CommitWait, isr_len: usize, min_isr: usize) -> Option<ResponseError> {
    match outcome {
        CommitWait::Committed if isr_len < min_isr => {
            Some(ResponseError::NotEnoughReplicasAfterAppend)
        }
        CommitWait::Committed => None,
        CommitWait::TimedOut => Some(ResponseError::RequestTimedOut),
        CommitWait::NotLeader => Some(ResponseError::NotLeaderOrFollower),
    }
}

/// An acks=all append waiting for the high watermark.
struct AcksAllWait {
    /// Where its answer is in the response: topic, then partition.
    topic_idx: usize,
    part_idx: usize,
    partition: Arc<Partition>,
    /// The offset the high watermark must reach (last offset + 1).
    offset: i64,
    /// The leader epoch it was appended in.
    leader_epoch: i32,
    /// The topic's `min.insync.replicas`, checked again once it is replicated.
    min_isr: usize,
}

/// KIP-951: each partition answered NOT_LEADER_OR_FOLLOWER gets the leader and epoch the image now names,
/// and the response the endpoints of those leaders on the client's listener.
/// Whether any partition was answered NOT_LEADER_OR_FOLLOWER: the common, successful produce skips the hints.
fn has_not_leader(resp: &ProduceResponse) -> bool {
    let not_leader = code(ResponseError::NotLeaderOrFollower);
    resp.responses.iter().any(|t| {
        t.partition_responses
            .iter()
            .any(|p| p.error_code == not_leader)
    })
}

fn add_leader_hints(resp: &mut ProduceResponse, image: &MetadataImage, listener: &str) {
    let not_leader = code(ResponseError::NotLeaderOrFollower);
    let mut leaders = BTreeSet::new();
    for topic in &mut resp.responses {
        let name = if topic.name.0.is_empty() {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.name.0.to_string())
        };
        let Some(name) = name else { continue };
        for pr in &mut topic.partition_responses {
            if pr.error_code != not_leader {
                continue;
            }
            if let Some((leader, epoch)) = leader_hints::current_leader(image, &name, pr.index) {
                pr.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(epoch);
                if leader >= 0 {
                    leaders.insert(leader);
                }
            }
        }
    }
    resp.node_endpoints = leader_hints::endpoints(image, listener, &leaders)
        .into_iter()
        .map(|e| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(e.node_id))
                .with_host(StrBytes::from_string(e.host))
                .with_port(e.port)
                .with_rack(e.rack.map(StrBytes::from_string))
        })
        .collect();
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

/// Whether a refused append still reports the partition's log start offset, as Kafka's
/// `ReplicaManager.appendToLocalLog` does for every error but the ones it answers with no log information
/// (unknown partition, not leader, too large, corrupt, storage error): a sequence or epoch error, or records
/// refused by validation, carry it.
fn reports_log_start(code: i16) -> bool {
    ![
        ResponseError::UnknownTopicOrPartition,
        ResponseError::NotLeaderOrFollower,
        ResponseError::MessageTooLarge,
        ResponseError::RecordListTooLarge,
        ResponseError::CorruptMessage,
        ResponseError::KafkaStorageError,
    ]
    .iter()
    .any(|e| e.code() == code)
}

/// KIP-467's partition-level message. Kafka sends one only with a record validation failure (its
/// `RecordValidationException`: records refused one by one, listed in `record_errors`); a batch-level refusal
/// such as MESSAGE_TOO_LARGE, CORRUPT_MESSAGE or a fenced producer carries none.
fn error_message(e: &AppendError) -> Option<StrBytes> {
    matches!(e, AppendError::Storage(StorageError::InvalidRecords { .. }))
        .then(|| StrBytes::from_string(e.to_string()))
}

/// KIP-467: the records a storage validation refused one by one (a keyless record on a compacted topic), each
/// with its index in the batch, as Kafka's `record_errors`.
fn record_errors(e: &AppendError) -> Vec<BatchIndexAndErrorMessage> {
    let record_errors = match e {
        AppendError::Storage(
            StorageError::InvalidRecords { record_errors, .. }
            | StorageError::InvalidTimestamp { record_errors, .. },
        ) => record_errors,
        _ => return Vec::new(),
    };
    record_errors
        .iter()
        .map(|r| {
            let mut out = BatchIndexAndErrorMessage::default();
            out.batch_index = r.batch_index;
            out.batch_index_error_message = Some(StrBytes::from_string(r.message.clone()));
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusals_report_the_log_start_offset_as_kafka_does() {
        for (error, reported) in [
            (ResponseError::OutOfOrderSequenceNumber, true),
            (ResponseError::InvalidProducerEpoch, true),
            (ResponseError::InvalidRecord, true),
            (ResponseError::InvalidTimestamp, true),
            (ResponseError::NotLeaderOrFollower, false),
            (ResponseError::UnknownTopicOrPartition, false),
            (ResponseError::MessageTooLarge, false),
            (ResponseError::CorruptMessage, false),
        ] {
            assert_eq!(reports_log_start(error.code()), reported, "{error:?}");
        }
    }

    use super::*;

    #[test]
    fn only_record_validation_failures_carry_a_message() {
        let too_large = AppendError::Storage(StorageError::RecordTooLarge {
            size: 2000,
            max: 1000,
        });
        assert_eq!(error_message(&too_large), None);
        assert_eq!(append_error_code(&too_large), 10, "MESSAGE_TOO_LARGE");
        let keyless = AppendError::Storage(StorageError::InvalidRecords {
            message: "Compacted topic cannot accept message without key".into(),
            record_errors: vec![kraftwerk_storage::RecordError {
                batch_index: 0,
                message: "no key".into(),
            }],
        });
        assert!(error_message(&keyless).is_some());
        assert_eq!(record_errors(&keyless).len(), 1);
    }

    #[test]
    fn an_acks_all_produce_reports_an_isr_that_shrank_below_min_insync_while_it_waited() {
        assert_eq!(acks_all_error(CommitWait::Committed, 2, 2), None);
        assert_eq!(
            acks_all_error(CommitWait::Committed, 1, 2),
            Some(ResponseError::NotEnoughReplicasAfterAppend)
        );
        assert_eq!(
            acks_all_error(CommitWait::TimedOut, 3, 2),
            Some(ResponseError::RequestTimedOut)
        );
        assert_eq!(
            acks_all_error(CommitWait::NotLeader, 3, 2),
            Some(ResponseError::NotLeaderOrFollower)
        );
    }
}
