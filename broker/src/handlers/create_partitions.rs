//! CreatePartitions: adds partitions to existing topics (never removes), optionally with explicit replicas.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_controller::CreatePartitionsSpec;

use crate::context::BrokerContext;

use super::errors::code;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    req: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let mut resp = CreatePartitionsResponse::default();
    let repeated = super::repeated_names(req.topics.iter().map(|t| t.name.0.as_str()));
    let mut specs = Vec::new();
    for t in &req.topics {
        let name = t.name.0.to_string();
        if repeated.contains(&name) {
            let mut r = CreatePartitionsTopicResult::default();
            r.name = t.name.clone();
            r.error_code = code(ResponseError::InvalidRequest);
            r.error_message = Some(StrBytes::from_string(format!(
                "Duplicate topic {name} in request"
            )));
            resp.results.push(r);
            continue;
        }
        specs.push(CreatePartitionsSpec {
            name,
            count: t.count,
            assignments: t.assignments.as_ref().map(|a| {
                a.iter()
                    .map(|x| x.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            }),
        });
    }
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let results = ctx
        .controller
        .create_partitions(specs, req.validate_only)
        .await;
    if !req.validate_only && results.iter().any(|r| r.result.is_ok()) {
        ctx.reconcile_now().await;
    }
    for (r, asked) in results.into_iter().zip(names) {
        let mut out = CreatePartitionsTopicResult::default();
        out.name =
            kafka_protocol::messages::TopicName(StrBytes::from_string(r.name.unwrap_or(asked)));
        if let Err(e) = r.result {
            out.error_code = e.error_code();
            out.error_message = wire_message(&e);
        }
        resp.results.push(out);
    }
    resp
}

/// The message a failed topic carries. Kafka's controller answers an unknown topic with a bare
/// UNKNOWN_TOPIC_OR_PARTITION (`new ApiError(UNKNOWN_TOPIC_OR_PARTITION)`, no message); every other refusal
/// explains itself.
fn wire_message(e: &kraftwerk_controller::ControllerError) -> Option<StrBytes> {
    match e {
        kraftwerk_controller::ControllerError::UnknownTopicOrPartition(_) => None,
        other => Some(StrBytes::from_string(other.message())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kraftwerk_controller::ControllerError;

    #[test]
    fn an_unknown_topic_is_answered_without_a_message() {
        assert_eq!(
            wire_message(&ControllerError::UnknownTopicOrPartition(
                "no topic t".into()
            )),
            None
        );
        assert!(wire_message(&ControllerError::InvalidPartitions("fewer".into())).is_some());
    }
}
