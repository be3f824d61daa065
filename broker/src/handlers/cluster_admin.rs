//! Cluster-wide admin calls: leader elections (forwarded to the active controller) and ACL calls (no authorizer
//! is configured). Partition reassignments are in `reassignments.rs`.

use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse, ElectLeadersRequest, ElectLeadersResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_controller::{ControllerError, ElectLeadersTopic, ElectionType};

use crate::context::BrokerContext;

use super::errors::code;

const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

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

pub fn describe_acls(
    _ctx: &Arc<BrokerContext>,
    _req: DescribeAclsRequest,
    _version: i16,
) -> DescribeAclsResponse {
    let mut resp = DescribeAclsResponse::default();
    resp.error_code = code(ResponseError::SecurityDisabled);
    resp.error_message = Some(StrBytes::from_static_str(NO_AUTHORIZER));
    resp
}

pub fn create_acls(
    _ctx: &Arc<BrokerContext>,
    req: CreateAclsRequest,
    _version: i16,
) -> CreateAclsResponse {
    let mut resp = CreateAclsResponse::default();
    resp.results = req
        .creations
        .iter()
        .map(|_| {
            let mut r = AclCreationResult::default();
            r.error_code = code(ResponseError::SecurityDisabled);
            r.error_message = Some(StrBytes::from_static_str(NO_AUTHORIZER));
            r
        })
        .collect();
    resp
}

pub fn delete_acls(
    _ctx: &Arc<BrokerContext>,
    req: DeleteAclsRequest,
    _version: i16,
) -> DeleteAclsResponse {
    let mut resp = DeleteAclsResponse::default();
    resp.filter_results = req
        .filters
        .iter()
        .map(|_| {
            let mut r = DeleteAclsFilterResult::default();
            r.error_code = code(ResponseError::SecurityDisabled);
            r.error_message = Some(StrBytes::from_static_str(NO_AUTHORIZER));
            r
        })
        .collect();
    resp
}
