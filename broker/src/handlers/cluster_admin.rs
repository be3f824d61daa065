//! ElectLeaders: a preferred-leader election finds every leader already preferred (or elects it through the
//! controller when the replication issue lands).

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::ResponseError;

use crate::context::BrokerContext;
use crate::image_ext::ImageExt;

use super::errors::code;

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
