//! Kafka's KIP-853 voter APIs, AddRaftVoter (80), RemoveRaftVoter (81) and UpdateRaftVoter (82), as the
//! controller listener answers them (`kafka-metadata-quorum --bootstrap-controller ... add-controller` /
//! `remove-controller`).
//!
//! The semantics are those of Kafka's `AddVoterHandler`, `RemoveVoterHandler` and `UpdateVoterHandler`: a
//! request naming another cluster is INCONSISTENT_CLUSTER_ID; only the leader answers (NOT_LEADER_OR_FOLLOWER
//! elsewhere, the client then finds the leader); one change at a time and the leader must have committed in
//! its epoch (REQUEST_TIMED_OUT otherwise); an existing voter cannot be added (DUPLICATE_VOTER) and an absent
//! one cannot be removed or updated (VOTER_NOT_FOUND); a new voter must name an endpoint on the controller
//! listener (INVALID_REQUEST) and catch up with the leader's log before it is promoted (REQUEST_TIMED_OUT when
//! it does not within the request's timeout). The answer comes once the change has committed (for AddRaftVoter v1
//! with AckWhenCommitted=false, once the leader has appended the new voter set). AddRaftVoter and RemoveRaftVoter
//! are UNSUPPORTED_VERSION while the quorum is at kraft.version 0 (static voters), as in Kafka.

use std::time::Duration;

use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
    UpdateRaftVoterRequest, UpdateRaftVoterResponse,
};
use kafka_protocol::protocol::StrBytes;

use kraftwerk_controller::error::codes;
use kraftwerk_controller::membership::{Member, KRAFT_VERSION_RANGE};
use kraftwerk_controller::records::kafka_format::VoterEndpoint;
use kraftwerk_controller::ControllerError;

/// NOT_LEADER_OR_FOLLOWER: Kafka's answer to a voter change sent to a controller that is not the leader.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// INCONSISTENT_CLUSTER_ID.
const INCONSISTENT_CLUSTER_ID: i16 = 104;
/// Used when a request gives no positive timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on how long a request may hold the controller's single change slot.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// An error code and message for a voter change's response.
pub type Outcome = (i16, Option<String>);

/// The outcome of a change as the response carries it.
pub fn outcome(result: Result<(), ControllerError>) -> Outcome {
    match result {
        Ok(()) => (codes::NONE, None),
        Err(ControllerError::NotController) => (
            NOT_LEADER_OR_FOLLOWER,
            Some("this controller is not the leader of the quorum".into()),
        ),
        Err(e) => (e.error_code(), Some(e.message())),
    }
}

/// Refuses a request whose cluster id is not ours (a missing one is accepted, as Kafka does).
pub fn check_cluster(ours: &str, theirs: Option<&StrBytes>) -> Result<(), Outcome> {
    match theirs {
        Some(id) if id.as_str() != ours => Err((
            INCONSISTENT_CLUSTER_ID,
            Some(format!(
                "the request is for cluster {}, this is cluster {ours}",
                id.as_str()
            )),
        )),
        _ => Ok(()),
    }
}

/// The timeout an AddRaftVoter asks for, bounded.
pub fn timeout(timeout_ms: i32) -> Duration {
    u64::try_from(timeout_ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
        .min(MAX_TIMEOUT)
}

/// The endpoints a voter request lists, as (listener name, host, port); AddRaftVoter and UpdateRaftVoter carry
/// the same fields in two generated types.
fn voter_endpoints<'a>(
    listeners: impl Iterator<Item = (&'a str, &'a str, u16)>,
) -> Vec<VoterEndpoint> {
    listeners
        .map(|(name, host, port)| VoterEndpoint {
            name: name.to_string(),
            host: host.to_string(),
            port,
        })
        .collect()
}

/// The controller an AddRaftVoter describes; INVALID_REQUEST unless it names an endpoint on `listener`.
pub fn member_to_add(req: &AddRaftVoterRequest, listener: &str) -> Result<Member, Outcome> {
    let endpoints = voter_endpoints(
        req.listeners
            .iter()
            .map(|l| (l.name.as_str(), l.host.as_str(), l.port)),
    );
    check_endpoints(req.voter_id, &endpoints, listener)?;
    Ok(Member {
        id: req.voter_id,
        directory_id: req.voter_directory_id,
        endpoints,
        kraft_version: KRAFT_VERSION_RANGE,
    })
}

/// The voter an UpdateRaftVoter describes.
pub fn member_to_update(req: &UpdateRaftVoterRequest, listener: &str) -> Result<Member, Outcome> {
    let endpoints = voter_endpoints(
        req.listeners
            .iter()
            .map(|l| (l.name.as_str(), l.host.as_str(), l.port)),
    );
    check_endpoints(req.voter_id, &endpoints, listener)?;
    // Whether the range includes the quorum's kraft.version is checked by the leader, which knows the level.
    let feature = &req.k_raft_version_feature;
    Ok(Member {
        id: req.voter_id,
        directory_id: req.voter_directory_id,
        endpoints,
        kraft_version: (feature.min_supported_version, feature.max_supported_version),
    })
}

fn check_endpoints(id: i32, endpoints: &[VoterEndpoint], listener: &str) -> Result<(), Outcome> {
    if id < 0 {
        return Err((
            codes::INVALID_REQUEST,
            Some(format!("voter id {id} is negative")),
        ));
    }
    if !endpoints.iter().any(|e| e.name == listener) {
        return Err((
            codes::INVALID_REQUEST,
            Some(format!(
                "voter {id} has no endpoint for the quorum's controller listener {listener} (it names {:?})",
                endpoints.iter().map(|e| e.name.as_str()).collect::<Vec<_>>()
            )),
        ));
    }
    Ok(())
}

pub fn add_response((code, message): Outcome) -> AddRaftVoterResponse {
    let mut resp = AddRaftVoterResponse::default();
    resp.error_code = code;
    resp.error_message = message.map(StrBytes::from_string);
    resp
}

pub fn remove_response((code, message): Outcome) -> RemoveRaftVoterResponse {
    let mut resp = RemoveRaftVoterResponse::default();
    resp.error_code = code;
    resp.error_message = message.map(StrBytes::from_string);
    resp
}

/// UpdateRaftVoter's response has no message field; the code is what the voter acts on.
pub fn update_response(
    (code, _): Outcome,
    leader_id: i32,
    leader_epoch: i32,
) -> UpdateRaftVoterResponse {
    let mut resp = UpdateRaftVoterResponse::default();
    resp.error_code = code;
    resp.current_leader.leader_id = kafka_protocol::messages::BrokerId(leader_id);
    resp.current_leader.leader_epoch = leader_epoch;
    resp
}

/// RemoveRaftVoter's (id, directory id).
pub fn voter_to_remove(req: &RemoveRaftVoterRequest) -> (i32, uuid::Uuid) {
    (req.voter_id, req.voter_directory_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::add_raft_voter_request::Listener;

    #[test]
    fn add_request_needs_the_controller_listener() {
        let mut req = AddRaftVoterRequest::default();
        req.voter_id = 4;
        req.voter_directory_id = uuid::Uuid::from_u128(9);
        let mut l = Listener::default();
        l.name = StrBytes::from_static_str("OTHER");
        l.host = StrBytes::from_static_str("h");
        l.port = 1;
        req.listeners = vec![l.clone()];
        assert_eq!(
            member_to_add(&req, "CONTROLLER").unwrap_err().0,
            codes::INVALID_REQUEST
        );
        l.name = StrBytes::from_static_str("CONTROLLER");
        req.listeners.push(l);
        let m = member_to_add(&req, "CONTROLLER").unwrap();
        assert_eq!(m.id, 4);
        assert_eq!(m.endpoints.len(), 2);
    }

    #[test]
    fn outcomes_and_cluster_ids() {
        assert_eq!(outcome(Ok(())).0, 0);
        assert_eq!(outcome(Err(ControllerError::NotController)).0, 6);
        assert_eq!(
            outcome(Err(ControllerError::DuplicateVoter(String::new()))).0,
            126
        );
        assert!(check_cluster("a", None).is_ok());
        assert!(check_cluster("a", Some(&StrBytes::from_static_str("a"))).is_ok());
        assert_eq!(
            check_cluster("a", Some(&StrBytes::from_static_str("b")))
                .unwrap_err()
                .0,
            104
        );
        assert_eq!(timeout(0), DEFAULT_TIMEOUT);
        assert_eq!(timeout(1500), Duration::from_millis(1500));
    }
}
