//! IncrementalAlterConfigs (SET/DELETE/APPEND/SUBTRACT per key) and the legacy AlterConfigs (replace every
//! override of a resource). Validation and the durable change happen in the controller; open partitions pick
//! up new topic configs when the committed image reaches the replica manager.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse as LegacyResult;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
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
use crate::log_levels::{self, Change, LevelError, LogLevels};

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
        node_id: i32,
        resource_type: i8,
        resource_name: StrBytes,
        ops: Result<Vec<AlterConfigOp>, (i16, String)>,
    ) {
        let error = match (resource(resource_type, resource_name.as_str()), ops) {
            (Some(resource), _) if other_broker(&resource, node_id) => Some((
                code(ResponseError::InvalidRequest),
                format!(
                    "Unexpected broker id, expected {node_id}, but received {}",
                    resource.name
                ),
            )),
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

    /// A resource the broker decided itself (a BROKER_LOGGER: log levels are this process's, not metadata).
    fn decided(
        &mut self,
        resource_type: i8,
        resource_name: StrBytes,
        error: Option<(i16, String)>,
    ) {
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
                // Kafka sends a null message with success (the codec's default is "").
                r.error_message = None;
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
    let duplicated = duplicated_loggers(&req);
    for res in req.resources {
        if res.resource_type == BROKER_LOGGER {
            let error = if duplicated.contains(res.resource_name.as_str()) {
                Some((
                    code(ResponseError::InvalidRequest),
                    "Each resource must appear at most once.".to_string(),
                ))
            } else {
                broker_logger(
                    ctx.node_id,
                    log_levels::installed(),
                    &res,
                    req.validate_only,
                )
                .err()
            };
            plan.decided(res.resource_type, res.resource_name, error);
            continue;
        }
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
        plan.add(ctx.node_id, res.resource_type, res.resource_name, ops);
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
        plan.add(ctx.node_id, res.resource_type, res.resource_name, Ok(ops));
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

/// Kafka's ConfigResource type id of a broker's loggers.
const BROKER_LOGGER: i8 = 8;

/// The names of BROKER_LOGGER resources that appear more than once in the request (Kafka refuses each copy).
fn duplicated_loggers(req: &IncrementalAlterConfigsRequest) -> HashSet<String> {
    let mut seen = HashSet::new();
    req.resources
        .iter()
        .filter(|r| r.resource_type == BROKER_LOGGER)
        .map(|r| r.resource_name.as_str())
        .filter(|name| !seen.insert(*name))
        .map(str::to_string)
        .collect()
}

/// One BROKER_LOGGER resource, checked as Kafka's `ConfigAdminManager.preprocess` and `RuntimeLoggerManager`
/// (in that order: duplicate keys, null values, the node id, then the changes, all checked before any
/// applies) and applied to this process's log levels unless `validate_only`. The ACL (ALTER_CONFIGS on the
/// cluster) was checked before the handler.
fn broker_logger(
    node_id: i32,
    levels: Option<&LogLevels>,
    res: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let invalid_request = |m: String| (code(ResponseError::InvalidRequest), m);
    let mut names = HashSet::new();
    if !res.configs.iter().all(|c| names.insert(c.name.as_str())) {
        return Err(invalid_request("Error due to duplicate config keys".into()));
    }
    let nulls: Vec<&str> = res
        .configs
        .iter()
        .filter(|c| {
            !matches!(
                AlterConfigOpType::from_id(c.config_operation),
                Some(AlterConfigOpType::Delete)
            ) && c.value.is_none()
        })
        .map(|c| c.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(invalid_request(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    let name = res.resource_name.as_str();
    let id: i32 = name
        .parse()
        .map_err(|_| invalid_request(format!("Node id must be an integer, but it is: {name}")))?;
    if id != node_id {
        return Err(invalid_request(format!(
            "Unexpected node id. Expected {node_id}, but received {id}"
        )));
    }
    let changes = res
        .configs
        .iter()
        .map(|c| {
            let logger = c.name.as_str().to_string();
            match AlterConfigOpType::from_id(c.config_operation) {
                Some(AlterConfigOpType::Set) => Ok(Change::Set {
                    logger,
                    level: c.value.as_ref().map_or("", |v| v.as_str()).to_string(),
                }),
                Some(AlterConfigOpType::Delete) => Ok(Change::Delete { logger }),
                Some(AlterConfigOpType::Append) => Ok(Change::Append { logger }),
                Some(AlterConfigOpType::Subtract) => Ok(Change::Subtract { logger }),
                None => Err(invalid_request(format!(
                    "Unknown operation type {} is not allowed for the BROKER_LOGGER resource",
                    c.config_operation
                ))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let levels = levels.ok_or_else(|| {
        invalid_request("this process's log levels are not run-time changeable".into())
    })?;
    levels.change(&changes, validate_only).map_err(|e| {
        let error = match e {
            LevelError::UnknownLogger(_) | LevelError::InvalidLevel { .. } => {
                ResponseError::InvalidConfig
            }
            LevelError::DeleteRoot | LevelError::Operation(_) => ResponseError::InvalidRequest,
            LevelError::Apply(_) => ResponseError::UnknownServerError,
        };
        (code(error), e.to_string())
    })
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

/// A per-broker resource naming another node. Kafka's admin clients send a broker's configs to that broker,
/// which validates them against its own state (`ConfigAdminManager.validateResourceNameIsCurrentNodeId`), so
/// a broker refuses another's with INVALID_REQUEST; the cluster default ("") is accepted anywhere. A name
/// that is not a node id is left to the controller, which refuses it.
fn other_broker(resource: &ConfigResource, node_id: i32) -> bool {
    resource.resource_type == ConfigResourceType::Broker
        && resource
            .name
            .parse::<i32>()
            .is_ok_and(|id| id >= 0 && id != node_id)
}

fn unsupported_resource(resource_type: i8) -> (i16, String) {
    (
        code(ResponseError::InvalidRequest),
        format!("altering configs of resource type {resource_type} is not supported"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str) -> Result<Vec<AlterConfigOp>, (i16, String)> {
        Ok(vec![AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Set,
            value: Some("1".into()),
        }])
    }

    #[test]
    fn a_broker_refuses_another_brokers_configs_and_takes_its_own_and_the_default() {
        let mut plan = Plan::default();
        for name in ["2", "1", "", "x"] {
            plan.add(
                1,
                4,
                StrBytes::from_static_str(name),
                set("log.retention.ms"),
            );
        }
        plan.add(1, 2, StrBytes::from_static_str("2"), set("retention.ms"));
        let specs = plan.take_specs();
        let names: Vec<&str> = specs.iter().map(|s| s.resource.name.as_str()).collect();
        // "x" goes to the controller, which refuses a name that is not a node id.
        assert_eq!(names, vec!["1", "", "x", "2"]);
        let outcomes = plan.finish(Vec::new());
        let (code, message) = outcomes[0].error.clone().expect("broker 2 refused");
        assert_eq!(code, ResponseError::InvalidRequest.code());
        assert_eq!(message, "Unexpected broker id, expected 1, but received 2");
        assert!(outcomes[1..].iter().all(|o| o.error.is_none()));
    }

    #[test]
    fn success_carries_a_null_message() {
        let outcomes = vec![
            Outcome {
                resource_type: 2,
                resource_name: StrBytes::from_static_str("t"),
                error: None,
            },
            Outcome {
                resource_type: 2,
                resource_name: StrBytes::from_static_str("u"),
                error: Some((40, "bad".into())),
            },
        ];
        let wire: Vec<AlterConfigsResourceResponse> =
            to_wire!(outcomes, AlterConfigsResourceResponse);
        assert_eq!(wire[0].error_message, None);
        assert_eq!(wire[1].error_message.as_deref(), Some("bad"));
    }

    fn logger_resource(name: &str, ops: &[(&str, i8, Option<&str>)]) -> AlterConfigsResource {
        use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
        AlterConfigsResource::default()
            .with_resource_type(BROKER_LOGGER)
            .with_resource_name(StrBytes::from_string(name.into()))
            .with_configs(
                ops.iter()
                    .map(|(k, op, v)| {
                        AlterableConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_config_operation(*op)
                            .with_value(v.map(|v| StrBytes::from_string(v.into())))
                    })
                    .collect(),
            )
    }

    #[test]
    fn broker_loggers_are_checked_as_kafka_checks_them_and_applied_here() {
        use crate::log_levels::{LevelState, ROOT};
        let levels = LogLevels::new(
            LevelState::from_directives(Some("warn")),
            Box::new(|_| Ok(())),
        );
        let run = |name: &str, ops: &[(&str, i8, Option<&str>)], validate_only: bool| {
            broker_logger(1, Some(&levels), &logger_resource(name, ops), validate_only)
                .map_err(|(c, _)| c)
        };
        let invalid_request = ResponseError::InvalidRequest.code();
        let invalid_config = ResponseError::InvalidConfig.code();
        assert_eq!(run("1", &[(ROOT, 0, Some("DEBUG"))], false), Ok(()));
        assert_eq!(levels.loggers()[ROOT].name(), "DEBUG");
        assert_eq!(run("1", &[(ROOT, 0, Some("INFO"))], true), Ok(()));
        assert_eq!(levels.loggers()[ROOT].name(), "DEBUG", "validate only");
        assert_eq!(
            run("2", &[(ROOT, 0, Some("INFO"))], false),
            Err(invalid_request)
        );
        assert_eq!(
            run("b", &[(ROOT, 0, Some("INFO"))], false),
            Err(invalid_request)
        );
        assert_eq!(
            run("1", &[(ROOT, 0, Some("info"))], false),
            Err(invalid_config)
        );
        assert_eq!(
            run("1", &[("nope", 0, Some("INFO"))], false),
            Err(invalid_config)
        );
        assert_eq!(run("1", &[(ROOT, 1, None)], false), Err(invalid_request));
        assert_eq!(
            run("1", &[(ROOT, 2, Some("INFO"))], false),
            Err(invalid_request)
        );
        assert_eq!(
            run("1", &[(ROOT, 9, Some("INFO"))], false),
            Err(invalid_request)
        );
        assert_eq!(run("1", &[(ROOT, 0, None)], false), Err(invalid_request));
        assert_eq!(
            run(
                "1",
                &[(ROOT, 0, Some("INFO")), (ROOT, 0, Some("WARN"))],
                false
            ),
            Err(invalid_request)
        );
        // A refused resource changes nothing, even its valid entries.
        assert_eq!(
            run(
                "1",
                &[
                    ("kraftwerk_broker", 0, Some("TRACE")),
                    ("nope", 0, Some("INFO"))
                ],
                false
            ),
            Err(invalid_config)
        );
        assert_eq!(levels.loggers()["kraftwerk_broker"].name(), "DEBUG");
        // DELETE of a logger: it inherits root's level again.
        assert_eq!(
            run("1", &[("kraftwerk_broker", 0, Some("TRACE"))], false),
            Ok(())
        );
        assert_eq!(levels.loggers()["kraftwerk_broker"].name(), "TRACE");
        assert_eq!(run("1", &[("kraftwerk_broker", 1, None)], false), Ok(()));
        assert_eq!(levels.loggers()["kraftwerk_broker"].name(), "DEBUG");
        // Without run-time levels (a process that did not install them) nothing is accepted.
        let refused = broker_logger(
            1,
            None,
            &logger_resource("1", &[(ROOT, 0, Some("INFO"))]),
            false,
        );
        assert_eq!(refused.map_err(|(c, _)| c), Err(invalid_request));
    }
}
