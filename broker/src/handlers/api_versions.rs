//! ApiVersions: the table comes from the registered handlers, nothing else. As Kafka's `KafkaApis` answers it,
//! a v3+ request naming its client software with characters Kafka does not allow is INVALID_REQUEST, and a
//! v5+ request for another cluster or another node (KIP-1242: a client whose bootstrap address now reaches a
//! different broker) is REBOOTSTRAP_REQUIRED; both answers list no APIs. From v3 the answer lists the feature
//! levels this build supports and the ones the cluster finalized (from the metadata image).

use std::collections::BTreeMap;

use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kraftwerk_controller::SUPPORTED_FEATURES;
use kraftwerk_protocol::versions::SupportedApis;

use crate::context::BrokerContext;

/// First version with the client's software name and version.
const SOFTWARE_VERSION: i16 = 3;
/// First version with the cluster and node the client means to reach.
const TARGET_VERSION: i16 = 5;

pub fn handle(ctx: &BrokerContext, req: ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    if version >= SOFTWARE_VERSION {
        tracing::debug!(
            client_software = %req.client_software_name.as_str(),
            client_version = %req.client_software_version.as_str(),
            "api versions"
        );
    }
    let image = ctx.controller.image();
    let response = answer(&ctx.apis, &ctx.cluster_id, ctx.node_id, &req, version);
    if response.error_code != 0 {
        return response;
    }
    with_features(
        response,
        image.features(),
        image.last_applied_offset(),
        version,
    )
}

/// First version before which (KAFKA-17011) a supported feature whose minimum is 0 is left out, because
/// older clients refused such a range.
const FEATURE_LEVEL_0_VERSION: i16 = 4;

/// `response` with the supported features of this build and the cluster's `finalized` levels as of metadata
/// offset `epoch`.
pub fn with_features(
    response: ApiVersionsResponse,
    finalized: &BTreeMap<String, i16>,
    epoch: i64,
    version: i16,
) -> ApiVersionsResponse {
    let supported = SUPPORTED_FEATURES
        .iter()
        .filter(|(_, min, _)| version >= FEATURE_LEVEL_0_VERSION || *min != 0)
        .map(|&(name, min, max)| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(name))
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    let finalized_keys = finalized
        .iter()
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_min_version_level(*level)
                .with_max_version_level(*level)
        })
        .collect();
    response
        .with_supported_features(supported)
        .with_finalized_features_epoch(epoch)
        .with_finalized_features(finalized_keys)
}

/// The answer of a broker of `cluster_id` with id `node_id` serving `apis`.
pub fn answer(
    apis: &SupportedApis,
    cluster_id: &str,
    node_id: i32,
    req: &ApiVersionsRequest,
    version: i16,
) -> ApiVersionsResponse {
    let error = |e: ResponseError| ApiVersionsResponse::default().with_error_code(e.code());
    if version >= SOFTWARE_VERSION
        && !(valid_software_field(req.client_software_name.as_str())
            && valid_software_field(req.client_software_version.as_str()))
    {
        return error(ResponseError::InvalidRequest);
    }
    if version >= TARGET_VERSION {
        if let Some(wanted) = &req.cluster_id {
            if wanted.as_str() != cluster_id || req.node_id != node_id {
                return error(ResponseError::RebootstrapRequired);
            }
        }
    }
    apis.api_versions_response()
}

/// Kafka's `ApiVersionsRequest.isValid` pattern, `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`: letters, digits,
/// `-` and `.`, starting and ending with a letter or digit.
fn valid_software_field(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;
    use kafka_protocol::protocol::StrBytes;

    fn apis() -> SupportedApis {
        let mut apis = SupportedApis::new();
        apis.register(ApiKey::ApiVersions, 0, 5);
        apis
    }

    fn request(name: &'static str, version: &'static str) -> ApiVersionsRequest {
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(name))
            .with_client_software_version(StrBytes::from_static_str(version))
    }

    #[test]
    fn features_are_listed_with_level_0_ranges_left_out_before_v4() {
        let finalized = BTreeMap::from([("metadata.version".to_string(), 25)]);
        let v4 = with_features(ApiVersionsResponse::default(), &finalized, 7, 4);
        let names: Vec<&str> = v4
            .supported_features
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert!(names.contains(&"metadata.version") && names.contains(&"group.version"));
        assert_eq!(v4.finalized_features_epoch, 7);
        assert_eq!(v4.finalized_features[0].name.as_str(), "metadata.version");
        assert_eq!(v4.finalized_features[0].max_version_level, 25);
        let v3 = with_features(ApiVersionsResponse::default(), &finalized, 7, 3);
        let names: Vec<&str> = v3
            .supported_features
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, vec!["metadata.version"]);
    }

    #[test]
    fn software_names_follow_kafkas_pattern() {
        for ok in ["a", "librdkafka", "apache-kafka-java", "4.4.0", "v1-rc.2"] {
            assert!(valid_software_field(ok), "{ok}");
        }
        for bad in ["", "-a", "a.", "bad name!", "a_b", "ä"] {
            assert!(!valid_software_field(bad), "{bad}");
        }
        let invalid = answer(&apis(), "c", 1, &request("bad name!", "1.0"), 3);
        assert_eq!(invalid.error_code, ResponseError::InvalidRequest.code());
        assert!(invalid.api_keys.is_empty());
        // Before v3 there is no name to check.
        assert_eq!(answer(&apis(), "c", 1, &request("", ""), 2).error_code, 0);
    }

    #[test]
    fn a_client_meaning_another_cluster_or_node_must_rebootstrap() {
        let target = |cluster: Option<&'static str>, node: i32| {
            request("client", "1.0")
                .with_cluster_id(cluster.map(StrBytes::from_static_str))
                .with_node_id(node)
        };
        let rebootstrap = ResponseError::RebootstrapRequired.code();
        assert_eq!(
            answer(&apis(), "c", 1, &target(Some("other"), 1), 5).error_code,
            rebootstrap
        );
        assert_eq!(
            answer(&apis(), "c", 1, &target(Some("c"), 2), 5).error_code,
            rebootstrap
        );
        let ok = answer(&apis(), "c", 1, &target(Some("c"), 1), 5);
        assert_eq!(ok.error_code, 0);
        assert!(!ok.api_keys.is_empty());
        // No cluster id: the client does not know yet, nothing to check.
        assert_eq!(answer(&apis(), "c", 1, &target(None, 7), 5).error_code, 0);
        // Before v5 the fields do not exist.
        assert_eq!(
            answer(&apis(), "c", 1, &target(Some("other"), 1), 4).error_code,
            0
        );
    }
}
