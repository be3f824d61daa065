//! AlterPartitionReassignments and ListPartitionReassignments: forwarded to the active controller, which
//! decides and tracks reassignments (Kafka's `ControllerApis`); the replicas move through the metadata image
//! (the new ones are created by `ReplicaManager::reconcile` and fetch from the leader; the old ones are
//! deleted once the controller completes the move).

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use kraftwerk_controller::{ControllerError, ReassignmentQuery, ReassignmentSpec};

use crate::context::BrokerContext;

pub async fn alter(
    ctx: &Arc<BrokerContext>,
    req: AlterPartitionReassignmentsRequest,
    _version: i16,
) -> AlterPartitionReassignmentsResponse {
    let specs: Vec<ReassignmentSpec> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| ReassignmentSpec {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                replicas: p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
            })
        })
        .collect();
    let mut results = ctx
        .controller
        .alter_partition_reassignments(specs, req.allow_replication_factor_change)
        .await
        .into_iter();
    let mut resp = AlterPartitionReassignmentsResponse::default();
    // Kafka answers a null message with success (the codec's default is "").
    resp.error_message = None;
    resp.allow_replication_factor_change = req.allow_replication_factor_change;
    // The results come back in request order, one per partition.
    for t in req.topics {
        let mut topic = ReassignableTopicResponse::default();
        topic.name = t.name;
        for p in t.partitions {
            let mut out = ReassignablePartitionResponse::default();
            out.partition_index = p.partition_index;
            out.error_message = None;
            match results.next().map(|r| r.result) {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    out.error_code = e.error_code();
                    out.error_message = partition_message(&e);
                }
                None => {
                    let e = ControllerError::Internal(
                        "the controller answered fewer partitions than asked".into(),
                    );
                    out.error_code = e.error_code();
                    out.error_message = Some(StrBytes::from_string(e.message()));
                }
            }
            topic.partitions.push(out);
        }
        resp.responses.push(topic);
    }
    // The new replicas are opened as soon as this broker's image has the change.
    ctx.reconcile_now().await;
    resp
}

/// The message of a partition's error as Kafka words it: cancelling where nothing is in progress is
/// answered with the code alone (Kafka's `new ApiError(NO_REASSIGNMENT_IN_PROGRESS)`), the rest with the
/// controller's message.
fn partition_message(e: &ControllerError) -> Option<StrBytes> {
    match e {
        ControllerError::NoReassignmentInProgress(_) => None,
        e => Some(StrBytes::from_string(e.message())),
    }
}

pub async fn list(
    ctx: &Arc<BrokerContext>,
    req: ListPartitionReassignmentsRequest,
    _version: i16,
) -> ListPartitionReassignmentsResponse {
    let query = req.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| ReassignmentQuery {
                topic: t.name.0.to_string(),
                partitions: t.partition_indexes,
            })
            .collect()
    });
    let mut resp = ListPartitionReassignmentsResponse::default();
    resp.error_message = None;
    match ctx.controller.list_partition_reassignments(query).await {
        Err(e) => {
            resp.error_code = e.error_code();
            resp.error_message = Some(StrBytes::from_string(e.message()));
        }
        Ok(ongoing) => {
            for o in ongoing {
                let mut p = OngoingPartitionReassignment::default();
                p.partition_index = o.partition;
                p.replicas = o.replicas.into_iter().map(BrokerId).collect();
                p.adding_replicas = o.adding.into_iter().map(BrokerId).collect();
                p.removing_replicas = o.removing.into_iter().map(BrokerId).collect();
                match resp.topics.last_mut() {
                    Some(t) if t.name.0.as_str() == o.topic => t.partitions.push(p),
                    _ => {
                        let mut t = OngoingTopicReassignment::default();
                        t.name = TopicName(StrBytes::from_string(o.topic));
                        t.partitions.push(p);
                        resp.topics.push(t);
                    }
                }
            }
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelling_nothing_is_answered_without_a_message() {
        let none = ControllerError::NoReassignmentInProgress("no reassignment".into());
        assert_eq!(partition_message(&none), None);
        let other = ControllerError::InvalidReplicaAssignment("broker 2 is not registered".into());
        assert_eq!(
            partition_message(&other).as_deref(),
            Some(other.message().as_str())
        );
    }
}
