//! AddRaftVoter and RemoveRaftVoter sent to a broker (`kafka-metadata-quorum --bootstrap-server`): forwarded
//! to the active controller, which runs them as on its controller listener (see `quorum::voter_apis` for the
//! semantics). UpdateRaftVoter is not served here, as in Kafka: controllers send it on the controller listener.

use std::sync::Arc;

use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
};
use kraftwerk_controller::rpc::ControllerRequest;

use crate::context::BrokerContext;
use crate::quorum::voter_apis::{self, Outcome};

fn listener(ctx: &BrokerContext) -> String {
    ctx.config
        .controller_listener_names
        .first()
        .cloned()
        .unwrap_or_default()
}

pub async fn add(ctx: &Arc<BrokerContext>, req: AddRaftVoterRequest) -> AddRaftVoterResponse {
    voter_apis::add_response(add_outcome(ctx, &req).await)
}

async fn add_outcome(ctx: &Arc<BrokerContext>, req: &AddRaftVoterRequest) -> Outcome {
    if let Err(o) = voter_apis::check_cluster(&ctx.cluster_id, req.cluster_id.as_ref()) {
        return o;
    }
    let member = match voter_apis::member_to_add(req, &listener(ctx)) {
        Ok(m) => m,
        Err(o) => return o,
    };
    let wait = voter_apis::timeout(req.timeout_ms);
    let timeout_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
    voter_apis::outcome(
        ctx.controller
            .change_voters(
                ControllerRequest::AddVoter {
                    member,
                    timeout_ms,
                    ack_when_committed: req.ack_when_committed,
                },
                wait,
            )
            .await,
    )
}

pub async fn remove(
    ctx: &Arc<BrokerContext>,
    req: RemoveRaftVoterRequest,
) -> RemoveRaftVoterResponse {
    if let Err(o) = voter_apis::check_cluster(&ctx.cluster_id, req.cluster_id.as_ref()) {
        return voter_apis::remove_response(o);
    }
    let (id, directory_id) = voter_apis::voter_to_remove(&req);
    voter_apis::remove_response(voter_apis::outcome(
        ctx.controller
            .change_voters(
                ControllerRequest::RemoveVoter { id, directory_id },
                voter_apis::timeout(0),
            )
            .await,
    ))
}
