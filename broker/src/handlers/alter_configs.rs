//! IncrementalAlterConfigs (SET/DELETE/APPEND/SUBTRACT per key) and the legacy AlterConfigs (replace every
//! override of a resource). Validation and the durable change happen in the controller; open partitions pick
//! up new topic configs when the committed image reaches the replica manager.

use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse as LegacyResult;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_controller::records::{ConfigResource, ConfigResourceType};
use kraftwerk_controller::{
    AlterConfigOp, AlterConfigOpType, AlterConfigSpec, ControllerError, ResourceResult,
};

use crate::context::BrokerContext;

use super::errors::code;

/// One resource's outcome before it is put on the wire.
struct Outcome {
    resource_type: i8,
    resource_name: StrBytes,
    error: Option<(i16, String)>,
}

pub async fn handle_incremental(
    ctx: &Arc<BrokerContext>,
    req: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let mut outcomes = Vec::new();
    let mut specs = Vec::new();
    let mut slots = Vec::new();
    for res in req.resources {
        let mut ops = Vec::new();
        let mut bad_op = None;
        for c in &res.configs {
            match AlterConfigOpType::from_id(c.config_operation) {
                Some(op) => ops.push(AlterConfigOp {
                    name: c.name.as_str().to_string(),
                    op,
                    value: c.value.as_ref().map(|v| v.as_str().to_string()),
                }),
                None => bad_op = Some(c.config_operation),
            }
        }
        let resource = resource(res.resource_type, res.resource_name.as_str());
        let error = match (&resource, bad_op) {
            (_, Some(op)) => Some((
                code(ResponseError::InvalidRequest),
                format!("unknown config operation {op}"),
            )),
            (None, _) => Some(unsupported_resource(res.resource_type)),
            _ => None,
        };
        if let (Some(resource), None) = (resource, &error) {
            slots.push(outcomes.len());
            specs.push(AlterConfigSpec { resource, ops });
        }
        outcomes.push(Outcome {
            resource_type: res.resource_type,
            resource_name: res.resource_name,
            error,
        });
    }
    let results = ctx
        .controller
        .incremental_alter_configs(specs, req.validate_only)
        .await;
    fill(&mut outcomes, &slots, results);
    let mut resp = IncrementalAlterConfigsResponse::default();
    resp.responses = outcomes
        .into_iter()
        .map(|o| {
            let mut r = AlterConfigsResourceResponse::default();
            r.resource_type = o.resource_type;
            r.resource_name = o.resource_name;
            if let Some((c, m)) = o.error {
                r.error_code = c;
                r.error_message = Some(StrBytes::from_string(m));
            }
            r
        })
        .collect();
    resp
}

pub async fn handle_legacy(
    ctx: &Arc<BrokerContext>,
    req: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let mut outcomes = Vec::new();
    let mut specs = Vec::new();
    let mut slots = Vec::new();
    for res in req.resources {
        let resource = resource(res.resource_type, res.resource_name.as_str());
        let error = if resource.is_none() {
            Some(unsupported_resource(res.resource_type))
        } else {
            None
        };
        if let Some(resource) = resource {
            slots.push(outcomes.len());
            // Legacy semantics: the listed keys become the whole set of overrides.
            let ops = res
                .configs
                .iter()
                .map(|c| AlterConfigOp {
                    name: c.name.as_str().to_string(),
                    op: AlterConfigOpType::Set,
                    value: c.value.as_ref().map(|v| v.as_str().to_string()),
                })
                .collect();
            specs.push(AlterConfigSpec { resource, ops });
        }
        outcomes.push(Outcome {
            resource_type: res.resource_type,
            resource_name: res.resource_name,
            error,
        });
    }
    let results = ctx.controller.alter_configs(specs, req.validate_only).await;
    fill(&mut outcomes, &slots, results);
    let mut resp = AlterConfigsResponse::default();
    resp.responses = outcomes
        .into_iter()
        .map(|o| {
            let mut r = LegacyResult::default();
            r.resource_type = o.resource_type;
            r.resource_name = o.resource_name;
            if let Some((c, m)) = o.error {
                r.error_code = c;
                r.error_message = Some(StrBytes::from_string(m));
            }
            r
        })
        .collect();
    resp
}

fn resource(resource_type: i8, name: &str) -> Option<ConfigResource> {
    match ConfigResourceType::from_id(resource_type)? {
        t @ (ConfigResourceType::Topic | ConfigResourceType::Broker) => Some(ConfigResource {
            resource_type: t,
            name: name.to_string(),
        }),
        _ => None,
    }
}

fn unsupported_resource(resource_type: i8) -> (i16, String) {
    (
        code(ResponseError::InvalidRequest),
        format!("altering configs of resource type {resource_type} is not supported"),
    )
}

fn fill(outcomes: &mut [Outcome], slots: &[usize], results: Vec<ResourceResult>) {
    for (slot, r) in slots.iter().zip(results) {
        if let (Some(o), Err(e)) = (outcomes.get_mut(*slot), r.result) {
            o.error = Some((e.error_code(), message(&e)));
        }
    }
}

fn message(e: &ControllerError) -> String {
    e.message()
}
