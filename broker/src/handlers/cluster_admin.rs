//! Admin calls whose honest answer on this cluster is short: a preferred-leader election finds every leader already preferred (or elects it through the controller
//! when the replication issue lands), and ACL calls say no authorizer is configured.

use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse, ElectLeadersRequest, ElectLeadersResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::context::BrokerContext;
use crate::image_ext::ImageExt;

use super::errors::code;

const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";
const PREFERRED: i8 = 0;

pub fn elect_leaders(
    ctx: &Arc<BrokerContext>,
    req: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let image = ctx.controller.image();
    let mut resp = ElectLeadersResponse::default();
    let election_type = if version >= 1 {
        req.election_type
    } else {
        PREFERRED
    };
    // With no explicit partitions Kafka reports only partitions where an election happened.
    let Some(topics) = req.topic_partitions else {
        return resp;
    };
    for t in topics {
        let name = t.topic.0.to_string();
        let mut tr = ReplicaElectionResult::default();
        tr.topic = t.topic;
        for p in t.partitions {
            let mut pr = PartitionResult::default();
            pr.partition_id = p;
            match image.partition(&name, p) {
                None => pr.error_code = code(ResponseError::UnknownTopicOrPartition),
                Some(pi) => {
                    let preferred = pi.replicas.first().copied();
                    pr.error_code = match (election_type == PREFERRED, preferred == Some(pi.leader))
                    {
                        (true, true) => code(ResponseError::ElectionNotNeeded),
                        // Moving leadership back to the preferred replica is the controller's job once
                        // replication lands; until then the preferred replica is reported unavailable.
                        (true, false) => code(ResponseError::PreferredLeaderNotAvailable),
                        (false, _) if pi.leader >= 0 => code(ResponseError::ElectionNotNeeded),
                        (false, _) => code(ResponseError::EligibleLeadersNotAvailable),
                    };
                }
            }
            tr.partition_result.push(pr);
        }
        resp.replica_election_results.push(tr);
    }
    resp
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
