//! ElectLeaders, decided by the active controller. (Partition reassignments are in `reassignments.rs`, the ACL
//! APIs in `acls.rs`.)

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use kraftwerk_controller::{ControllerError, ElectLeadersTopic, ElectionType};

use crate::context::BrokerContext;

/// ElectLeaders (v0-v2), decided by the active controller: PREFERRED moves leadership to the preferred replica
/// when it is live and in sync, UNCLEAN gives a leaderless partition any live replica (whatever the topic's
/// `unclean.leader.election.enable` says). Per-partition results carry Kafka's codes; with no partitions
/// named, every partition is tried and only those where something happened are reported.
pub async fn elect_leaders(
    ctx: &Arc<BrokerContext>,
    req: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let mut resp = ElectLeadersResponse::default();
    // v0 has no election type: it is always a preferred election.
    let wire_type = if version >= 1 { req.election_type } else { 0 };
    let Some(election_type) = ElectionType::from_id(wire_type) else {
        let e = ControllerError::InvalidRequest(format!("Unknown election type {wire_type}"));
        return refused(req.topic_partitions, &e);
    };
    let topics: Option<Vec<ElectLeadersTopic>> = req.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .map(|t| ElectLeadersTopic {
                topic: t.topic.0.to_string(),
                partitions: t.partitions.clone(),
            })
            .collect()
    });
    match ctx.controller.elect_leaders(election_type, topics).await {
        Ok(results) => {
            resp.replica_election_results = results
                .into_iter()
                .map(|t| {
                    let mut tr = ReplicaElectionResult::default();
                    tr.topic = TopicName(StrBytes::from_string(t.topic));
                    tr.partition_result = t
                        .partitions
                        .into_iter()
                        .map(|p| partition_result(p.partition, p.result.err()))
                        .collect();
                    tr
                })
                .collect();
        }
        Err(e) => return refused(req.topic_partitions, &e),
    }
    resp
}

/// The whole request refused with `e`: the top-level code, and (as v0 has no top-level error) every
/// partition named carrying it too, as Kafka answers.
fn refused(
    topic_partitions: Option<Vec<TopicPartitions>>,
    e: &ControllerError,
) -> ElectLeadersResponse {
    let mut resp = ElectLeadersResponse::default();
    resp.error_code = e.error_code();
    for t in topic_partitions.into_iter().flatten() {
        let mut tr = ReplicaElectionResult::default();
        tr.topic = t.topic;
        tr.partition_result = t
            .partitions
            .iter()
            .map(|&p| partition_result(p, Some(e.clone())))
            .collect();
        resp.replica_election_results.push(tr);
    }
    resp
}

fn partition_result(partition: i32, error: Option<ControllerError>) -> PartitionResult {
    let mut pr = PartitionResult::default();
    pr.partition_id = partition;
    pr.error_message = None;
    if let Some(e) = error {
        pr.error_code = e.error_code();
        pr.error_message = Some(StrBytes::from_string(e.message()));
    }
    pr
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::ResponseError;

    #[test]
    fn a_refused_request_names_every_partition_with_the_error() {
        let topics = vec![TopicPartitions::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![0, 1])];
        let e = ControllerError::InvalidRequest("Unknown election type 5".into());
        let resp = refused(Some(topics), &e);
        assert_eq!(resp.error_code, ResponseError::InvalidRequest.code());
        let results = &resp.replica_election_results[0].partition_result;
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|p| p.error_code == resp.error_code
            && p.error_message.as_deref() == Some("Unknown election type 5")));
        // All partitions (null): only the top-level code.
        assert!(refused(None, &e).replica_election_results.is_empty());
    }
}
