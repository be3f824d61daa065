//! ElectLeaders, decided by the active controller. (Partition reassignments are in `reassignments.rs`, the ACL
//! APIs in `acls.rs`.)

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_controller::{ControllerError, ElectLeadersTopic, ElectionType};

use crate::context::BrokerContext;

use super::errors::code;

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
        resp.error_code = code(ResponseError::InvalidRequest);
        return resp;
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
        Err(e) => {
            // v0 has no top-level error: every partition named carries it.
            resp.error_code = e.error_code();
            for t in req.topic_partitions.into_iter().flatten() {
                let mut tr = ReplicaElectionResult::default();
                tr.topic = t.topic;
                tr.partition_result = t
                    .partitions
                    .iter()
                    .map(|&p| partition_result(p, Some(e.clone())))
                    .collect();
                resp.replica_election_results.push(tr);
            }
        }
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
