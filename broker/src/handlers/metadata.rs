//! Metadata: brokers (as seen from the client's listener), topics with their partitions, leaders and ISR, and
//! topic auto-creation when both the request and `auto.create.topics.enable` allow it.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use kraftwerk_controller::image::TopicImage;
use kraftwerk_controller::{CreateTopicSpec, MetadataImage, USE_DEFAULT};

use crate::context::{BrokerContext, ConnectionInfo};
use crate::image_ext::ImageExt;

use super::errors::code;

/// Kafka's "not requested" value for authorized-operations fields.
const OPS_NOT_REQUESTED: i32 = i32::MIN;
/// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS: what a topic allows with no
/// authorizer configured.
pub(crate) const TOPIC_ALL_OPS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ...
const CLUSTER_ALL_OPS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

pub fn is_internal_topic(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnectionInfo,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let mut image = ctx.controller.image();
    // v0 asks for all topics with an empty list; v1+ with a null one.
    let requested: Option<Vec<(Option<String>, Uuid)>> = match req.topics {
        None => None,
        Some(ref t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    // v4+ lets the client opt out of auto-creation; before that it was implied.
    let allow_auto_create =
        ctx.config.auto_create_topics_enable && (version < 4 || req.allow_auto_topic_creation);

    if let (Some(topics), true) = (&requested, allow_auto_create) {
        let missing: Vec<CreateTopicSpec> = topics
            .iter()
            .filter_map(|(name, _)| name.as_ref())
            .filter(|n| {
                image.topic(n).is_none() && kraftwerk_controller::validate_topic_name(n).is_ok()
            })
            .map(|n| CreateTopicSpec::new(n.clone(), USE_DEFAULT, USE_DEFAULT as i16))
            .collect();
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(|s| s.name.clone()).collect();
            tracing::info!(topics = ?names, "auto-creating topics");
            for r in ctx.controller.create_topics(missing, false).await {
                if let Err(e) = r.result {
                    tracing::warn!(topic = ?r.name, error = %e, "auto-create failed");
                }
            }
            ctx.reconcile_now().await;
            image = ctx.controller.image();
        }
    }

    let mut resp = MetadataResponse::default();
    resp.brokers = brokers_for_listener(&image, &conn.listener_name, version);
    if version >= 2 {
        resp.cluster_id = Some(StrBytes::from_string(ctx.cluster_id.clone()));
    }
    if version >= 1 {
        resp.controller_id = BrokerId(ctx.controller.controller_id_for_clients(ctx.node_id));
    }
    resp.cluster_authorized_operations =
        if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
            CLUSTER_ALL_OPS
        } else {
            OPS_NOT_REQUESTED
        };
    let include_ops = req.include_topic_authorized_operations;
    resp.topics = match requested {
        None => image
            .topics()
            .map(|t| topic_response(&image, t, include_ops, version))
            .collect(),
        Some(topics) => topics
            .into_iter()
            .map(|(name, id)| {
                let found = match &name {
                    Some(n) => image.topic(n),
                    None => image.topic_by_id(&id),
                };
                match found {
                    Some(t) => topic_response(&image, t, include_ops, version),
                    None => {
                        let mut t = MetadataResponseTopic::default();
                        t.error_code = match &name {
                            Some(n) if kraftwerk_controller::validate_topic_name(n).is_err() => {
                                code(ResponseError::InvalidTopicException)
                            }
                            Some(_) => code(ResponseError::UnknownTopicOrPartition),
                            None => code(ResponseError::UnknownTopicId),
                        };
                        t.name = name.map(|n| TopicName(StrBytes::from_string(n)));
                        if version >= 10 {
                            t.topic_id = id;
                        }
                        t.topic_authorized_operations = OPS_NOT_REQUESTED;
                        t
                    }
                }
            })
            .collect(),
    };
    resp
}

/// Every registered broker that has an endpoint for `listener_name`.
pub fn brokers_for_listener(
    image: &MetadataImage,
    listener_name: &str,
    version: i16,
) -> Vec<MetadataResponseBroker> {
    image
        .brokers()
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let ep = b.listener(listener_name)?;
            let mut out = MetadataResponseBroker::default();
            out.node_id = BrokerId(b.id);
            out.host = StrBytes::from_string(ep.host.clone());
            out.port = i32::from(ep.port);
            if version >= 1 {
                out.rack = b.rack.clone().map(StrBytes::from_string);
            }
            Some(out)
        })
        .collect()
}

fn topic_response(
    image: &MetadataImage,
    t: &TopicImage,
    include_ops: bool,
    version: i16,
) -> MetadataResponseTopic {
    let mut out = MetadataResponseTopic::default();
    out.name = Some(TopicName(StrBytes::from_string(t.name.clone())));
    if version >= 10 {
        out.topic_id = t.id;
    }
    if version >= 1 {
        out.is_internal = is_internal_topic(&t.name);
    }
    out.topic_authorized_operations = if include_ops && version >= 8 {
        TOPIC_ALL_OPS
    } else {
        OPS_NOT_REQUESTED
    };
    out.partitions = t
        .partitions
        .iter()
        .map(|(index, p)| {
            let mut mp = MetadataResponsePartition::default();
            mp.partition_index = *index;
            mp.leader_id = BrokerId(p.leader);
            if version >= 7 {
                mp.leader_epoch = p.leader_epoch;
            }
            mp.replica_nodes = p.replicas.iter().copied().map(BrokerId).collect();
            mp.isr_nodes = p.isr.iter().copied().map(BrokerId).collect();
            if version >= 5 {
                mp.offline_replicas = p
                    .replicas
                    .iter()
                    .copied()
                    .filter(|r| !image.is_broker_alive(*r))
                    .map(BrokerId)
                    .collect();
            }
            mp.error_code = if p.leader < 0 {
                code(ResponseError::LeaderNotAvailable)
            } else {
                0
            };
            mp
        })
        .collect();
    out
}
