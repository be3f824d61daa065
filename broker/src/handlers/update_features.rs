//! UpdateFeatures: new finalized feature levels, decided by the active controller (forwarded there, as Kafka's
//! brokers forward it) against the levels this build supports (`kraftwerk_controller::SUPPORTED_FEATURES`). All
//! updates are applied or none: a failure is the top-level error, naming the feature; success lists each feature
//! up to v1 (v2 answers without per-feature results), as Kafka's `QuorumController.updateFeatures` answers.

use std::sync::Arc;

use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_controller::{ControllerError, FeatureUpdate, SAFE_DOWNGRADE, UPGRADE};

use crate::context::BrokerContext;

/// v0 says "downgrade allowed" with a flag; v1 replaced it with the upgrade type.
const UPGRADE_TYPE_VERSION: i16 = 1;
/// From v2 a successful answer carries no per-feature results.
const NO_RESULTS_VERSION: i16 = 2;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    req: UpdateFeaturesRequest,
    version: i16,
) -> UpdateFeaturesResponse {
    let updates = updates(&req, version);
    let result = ctx
        .controller
        .update_features(ctx.node_id, updates, req.validate_only)
        .await;
    response(&req, version, result)
}

/// The request's updates, with v0's flag read as the upgrade type it stands for.
pub fn updates(req: &UpdateFeaturesRequest, version: i16) -> Vec<FeatureUpdate> {
    req.feature_updates
        .iter()
        .map(|f| FeatureUpdate {
            name: f.feature.to_string(),
            level: f.max_version_level,
            upgrade_type: match (version >= UPGRADE_TYPE_VERSION, f.allow_downgrade) {
                (true, _) => f.upgrade_type,
                (false, true) => SAFE_DOWNGRADE,
                (false, false) => UPGRADE,
            },
        })
        .collect()
}

/// The answer for `req` given the controller's decision.
pub fn response(
    req: &UpdateFeaturesRequest,
    version: i16,
    result: Result<(), ControllerError>,
) -> UpdateFeaturesResponse {
    match result {
        Err(e) => UpdateFeaturesResponse::default()
            .with_error_code(e.error_code())
            .with_error_message(Some(StrBytes::from_string(e.message()))),
        Ok(()) if version >= NO_RESULTS_VERSION => {
            UpdateFeaturesResponse::default().with_error_message(None)
        }
        Ok(()) => UpdateFeaturesResponse::default()
            .with_error_message(None)
            .with_results(
                req.feature_updates
                    .iter()
                    .map(|f| {
                        UpdatableFeatureResult::default()
                            .with_feature(f.feature.clone())
                            // Kafka fills in Errors.NONE.message().
                            .with_error_message(Some(StrBytes::from_static_str("NONE")))
                    })
                    .collect(),
            ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::update_features_request::FeatureUpdateKey;

    fn request(downgrade: bool, upgrade_type: i8) -> UpdateFeaturesRequest {
        UpdateFeaturesRequest::default().with_feature_updates(vec![FeatureUpdateKey::default()
            .with_feature(StrBytes::from_static_str("group.version"))
            .with_max_version_level(0)
            .with_allow_downgrade(downgrade)
            .with_upgrade_type(upgrade_type)])
    }

    #[test]
    fn v0_reads_the_downgrade_flag_later_versions_the_upgrade_type() {
        assert_eq!(
            updates(&request(true, 1), 0)[0].upgrade_type,
            SAFE_DOWNGRADE
        );
        assert_eq!(updates(&request(false, 3), 0)[0].upgrade_type, UPGRADE);
        assert_eq!(updates(&request(true, 3), 1)[0].upgrade_type, 3);
    }

    #[test]
    fn success_lists_features_up_to_v1_and_failure_only_the_top_level_error() {
        let req = request(false, 1);
        let ok = response(&req, 1, Ok(()));
        assert_eq!(ok.error_code, 0);
        assert_eq!(ok.results.len(), 1);
        assert_eq!(ok.results[0].error_code, 0);
        assert!(response(&req, 2, Ok(())).results.is_empty());
        assert_eq!(response(&req, 2, Ok(())).error_message, None);
        let failed = response(
            &req,
            1,
            Err(ControllerError::InvalidUpdateVersion("no".into())),
        );
        assert_eq!(failed.error_code, 95);
        assert!(failed.results.is_empty());
        assert!(failed.error_message.is_some());
    }
}
