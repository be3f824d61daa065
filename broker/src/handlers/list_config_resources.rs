//! ListConfigResources (KIP-1142; v0 was ListClientMetricsResources): the resources that configs can be
//! described for, as Kafka's `KafkaApis.handleListConfigResources` lists them. v0 knows client-metrics
//! resources only; v1 also topics, brokers, broker loggers and groups. An empty type list means every type
//! the version knows; a type it does not know answers UNSUPPORTED_VERSION with nothing listed.

use std::sync::Arc;

use kafka_protocol::messages::list_config_resources_response::ConfigResource as Listed;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_controller::records::ConfigResourceType;
use kraftwerk_controller::MetadataImage;

use crate::context::{BrokerContext, ConnectionInfo};

use super::errors::code;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// The resource types a version lists (Kafka's `ListConfigResourcesRequest.supportedResourceTypes`).
fn supported(version: i16) -> &'static [i8] {
    if version == 0 {
        &[CLIENT_METRICS]
    } else {
        &[TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP]
    }
}

pub fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnectionInfo,
    req: ListConfigResourcesRequest,
    version: i16,
) -> ListConfigResourcesResponse {
    let image = ctx.controller.image();
    list(&image, &conn.listener_name, &req.resource_types, version)
}

/// The answer from `image` for a client on `listener` asking for `types` (empty: all the version knows).
pub fn list(
    image: &MetadataImage,
    listener: &str,
    types: &[i8],
    version: i16,
) -> ListConfigResourcesResponse {
    let known = supported(version);
    let wanted: Vec<i8> = if types.is_empty() {
        known.to_vec()
    } else {
        types.to_vec()
    };
    if wanted.iter().any(|t| !known.contains(t)) {
        return ListConfigResourcesResponse::default()
            .with_error_code(code(ResponseError::UnsupportedVersion));
    }
    let entry = |name: String, kind: i8| {
        Listed::default()
            .with_resource_name(StrBytes::from_string(name))
            .with_resource_type(kind)
    };
    // Groups and client-metrics subscriptions are resources because they have dynamic configs.
    let with_configs = |kind: ConfigResourceType| {
        image
            .configs()
            .iter()
            .filter(move |(r, c)| r.resource_type == kind && !c.is_empty())
            .map(|(r, _)| r.name.clone())
            .collect::<Vec<_>>()
    };
    let brokers: Vec<String> = image
        .brokers()
        .values()
        .filter(|b| !b.fenced && b.listener(listener).is_some())
        .map(|b| b.id.to_string())
        .collect();
    // Kafka's order: groups, client metrics, broker loggers, brokers, topics.
    let mut out = Vec::new();
    if wanted.contains(&GROUP) {
        out.extend(
            with_configs(ConfigResourceType::Group)
                .into_iter()
                .map(|n| entry(n, GROUP)),
        );
    }
    if wanted.contains(&CLIENT_METRICS) {
        out.extend(
            with_configs(ConfigResourceType::ClientMetrics)
                .into_iter()
                .map(|n| entry(n, CLIENT_METRICS)),
        );
    }
    if wanted.contains(&BROKER_LOGGER) {
        out.extend(brokers.iter().map(|b| entry(b.clone(), BROKER_LOGGER)));
    }
    if wanted.contains(&BROKER) {
        out.extend(brokers.iter().map(|b| entry(b.clone(), BROKER)));
    }
    if wanted.contains(&TOPIC) {
        out.extend(image.topics().map(|t| entry(t.name.clone(), TOPIC)));
    }
    ListConfigResourcesResponse::default().with_config_resources(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kraftwerk_controller::records::{ConfigRecord, ConfigResource, MetadataRecord};
    use uuid::Uuid;

    fn image() -> MetadataImage {
        MetadataImage::empty("c").apply(
            0,
            &[
                MetadataRecord::Topic {
                    name: "t".into(),
                    id: Uuid::new_v4(),
                },
                MetadataRecord::Config(ConfigRecord {
                    resource: ConfigResource {
                        resource_type: ConfigResourceType::Group,
                        name: "g".into(),
                    },
                    name: "consumer.session.timeout.ms".into(),
                    value: Some("45000".into()),
                }),
            ],
        )
    }

    fn listed(r: &ListConfigResourcesResponse) -> Vec<(String, i8)> {
        r.config_resources
            .iter()
            .map(|c| (c.resource_name.to_string(), c.resource_type))
            .collect()
    }

    #[test]
    fn v0_lists_client_metrics_only() {
        let r = list(&image(), "PLAINTEXT", &[], 0);
        assert_eq!(r.error_code, 0);
        assert!(listed(&r).is_empty());
        let r = list(&image(), "PLAINTEXT", &[TOPIC], 0);
        assert_eq!(r.error_code, code(ResponseError::UnsupportedVersion));
    }

    #[test]
    fn v1_lists_every_known_type_in_kafkas_order() {
        let r = list(&image(), "PLAINTEXT", &[], 1);
        assert_eq!(listed(&r), vec![("g".into(), GROUP), ("t".into(), TOPIC)]);
        let r = list(&image(), "PLAINTEXT", &[TOPIC], 1);
        assert_eq!(listed(&r), vec![("t".into(), TOPIC)]);
        let r = list(&image(), "PLAINTEXT", &[TOPIC, 64], 1);
        assert_eq!(r.error_code, code(ResponseError::UnsupportedVersion));
        assert!(r.config_resources.is_empty());
    }
}
