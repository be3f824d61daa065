//! CreateTopics: validated and committed by the controller; on success the new partitions are opened here
//! before answering, so a client that produces right after the response finds its leader ready.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_controller::{CreateTopicSpec, ReplicaAssignment};

use crate::context::BrokerContext;

use super::describe_configs::topic_config_values;
use super::errors::code;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    let repeated = super::repeated_names(req.topics.iter().map(|t| t.name.0.as_str()));
    let mut specs = Vec::new();
    for t in &req.topics {
        let name = t.name.0.to_string();
        if repeated.contains(&name) {
            let mut r = CreatableTopicResult::default();
            r.name = t.name.clone();
            r.error_code = code(ResponseError::InvalidRequest);
            r.error_message = Some(StrBytes::from_string(format!(
                "Create topics request from client contains multiple entries for topic {name}"
            )));
            if version >= 5 {
                r.num_partitions = -1;
                r.replication_factor = -1;
            }
            resp.topics.push(r);
            continue;
        }
        specs.push(CreateTopicSpec {
            name,
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| ReplicaAssignment {
                    partition: a.partition_index,
                    broker_ids: a.broker_ids.iter().map(|b| b.0).collect(),
                })
                .collect(),
            configs: t
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.as_str().to_string(),
                        c.value.as_ref().map(|v| v.as_str().to_string()),
                    )
                })
                .collect(),
        });
    }
    let requested_configs: HashMap<String, BTreeMap<String, String>> = specs
        .iter()
        .map(|s| {
            let cfg = s
                .configs
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                .collect();
            (s.name.clone(), cfg)
        })
        .collect();
    let results = ctx.controller.create_topics(specs, req.validate_only).await;
    let dynamic_broker =
        super::describe_configs::DynamicBroker::of(&ctx.controller.image(), ctx.node_id);
    if !req.validate_only && results.iter().any(|r| r.result.is_ok()) {
        ctx.reconcile_now().await;
    }
    for r in results {
        let name = r.name.unwrap_or_default();
        let mut out = CreatableTopicResult::default();
        out.name = kafka_protocol::messages::TopicName(StrBytes::from_string(name.clone()));
        match r.result {
            Ok(created) => {
                // The codec's default is an empty string; Kafka answers null on success.
                out.error_message = None;
                if version >= 7 {
                    out.topic_id = created.topic_id;
                }
                if version >= 5 {
                    out.num_partitions = created.num_partitions;
                    out.replication_factor = created.replication_factor;
                    out.configs = Some(
                        topic_config_values(
                            &ctx.config,
                            &dynamic_broker,
                            requested_configs.get(&name).unwrap_or(&BTreeMap::new()),
                        )
                        .into_iter()
                        .map(|(k, v, source)| {
                            let mut c = CreatableTopicConfigs::default();
                            c.name = StrBytes::from_string(k);
                            c.value = Some(StrBytes::from_string(v));
                            c.config_source = source;
                            c
                        })
                        .collect(),
                    );
                }
            }
            Err(e) => {
                out.error_code = e.error_code();
                out.error_message = Some(StrBytes::from_string(e.message()));
                if version >= 5 {
                    out.num_partitions = -1;
                    out.replication_factor = -1;
                }
                tracing::info!(topic = %name, error = %e, "create topic refused");
            }
        }
        resp.topics.push(out);
    }
    resp
}
