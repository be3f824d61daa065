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
use kraftwerk_controller::{AlterConfigOp, AlterConfigOpType, AlterConfigSpec, ResourceResult};

use crate::context::BrokerContext;

use super::errors::code;

/// One resource's outcome before it is put on the wire.
struct Outcome {
    resource_type: i8,
    resource_name: StrBytes,
    error: Option<(i16, String)>,
}

/// The resources of one request in order: those the broker already refused carry their error, the rest
/// become controller specs whose results are filled in by position.
#[derive(Default)]
struct Plan {
    outcomes: Vec<Outcome>,
    specs: Vec<AlterConfigSpec>,
    slots: Vec<usize>,
}

impl Plan {
    fn add(
        &mut self,
        resource_type: i8,
        resource_name: StrBytes,
        ops: Result<Vec<AlterConfigOp>, (i16, String)>,
    ) {
        let error = match (resource(resource_type, resource_name.as_str()), ops) {
            (Some(resource), Ok(ops)) => {
                self.slots.push(self.outcomes.len());
                self.specs.push(AlterConfigSpec { resource, ops });
                None
            }
            (None, _) => Some(unsupported_resource(resource_type)),
            (_, Err(e)) => Some(e),
        };
        self.outcomes.push(Outcome {
            resource_type,
            resource_name,
            error,
        });
    }

    fn take_specs(&mut self) -> Vec<AlterConfigSpec> {
        std::mem::take(&mut self.specs)
    }

    fn finish(mut self, results: Vec<ResourceResult>) -> Vec<Outcome> {
        for (slot, r) in self.slots.iter().zip(results) {
            if let (Some(o), Err(e)) = (self.outcomes.get_mut(*slot), r.result) {
                o.error = Some((e.error_code(), e.message()));
            }
        }
        self.outcomes
    }
}

/// Both APIs answer with a list of per-resource results of the same shape but different generated types.
macro_rules! to_wire {
    ($outcomes:expr, $ty:ty) => {
        $outcomes
            .into_iter()
            .map(|o| {
                let mut r = <$ty>::default();
                r.resource_type = o.resource_type;
                r.resource_name = o.resource_name;
                if let Some((c, m)) = o.error {
                    r.error_code = c;
                    r.error_message = Some(StrBytes::from_string(m));
                }
                r
            })
            .collect()
    };
}

pub async fn handle_incremental(
    ctx: &Arc<BrokerContext>,
    req: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let mut plan = Plan::default();
    for res in req.resources {
        let ops = res
            .configs
            .iter()
            .map(|c| match AlterConfigOpType::from_id(c.config_operation) {
                Some(op) => Ok(AlterConfigOp {
                    name: c.name.as_str().to_string(),
                    op,
                    value: c.value.as_ref().map(|v| v.as_str().to_string()),
                }),
                None => Err((
                    code(ResponseError::InvalidRequest),
                    format!("unknown config operation {}", c.config_operation),
                )),
            })
            .collect();
        plan.add(res.resource_type, res.resource_name, ops);
    }
    let results = ctx
        .controller
        .incremental_alter_configs(plan.take_specs(), req.validate_only)
        .await;
    if !req.validate_only {
        // The new configs are in force on this broker's partitions before the client is told.
        ctx.reconcile_now().await;
    }
    let mut resp = IncrementalAlterConfigsResponse::default();
    resp.responses = to_wire!(plan.finish(results), AlterConfigsResourceResponse);
    resp
}

pub async fn handle_legacy(
    ctx: &Arc<BrokerContext>,
    req: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let mut plan = Plan::default();
    for res in req.resources {
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
        plan.add(res.resource_type, res.resource_name, Ok(ops));
    }
    let results = ctx
        .controller
        .alter_configs(plan.take_specs(), req.validate_only)
        .await;
    if !req.validate_only {
        // The new configs are in force on this broker's partitions before the client is told.
        ctx.reconcile_now().await;
    }
    let mut resp = AlterConfigsResponse::default();
    resp.responses = to_wire!(plan.finish(results), LegacyResult);
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
