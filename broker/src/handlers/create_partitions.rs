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
            out.error_message = Some(StrBytes::from_string(e.message()));
        }
        resp.results.push(out);
    }
    resp
}
