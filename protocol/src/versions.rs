//! The api version ranges the broker implements, and the ApiVersions answer built from them.
//!
//! The broker registers one range per handler it has, so the ApiVersions response can never advertise an
//! api without a handler. Each range is clamped to what `kafka-protocol` can decode, so it can never
//! advertise a version we would then reject as undecodable either.

use std::collections::BTreeMap;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// Inclusive `(min, max)` version range per registered api, ordered by api key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupportedApis {
    ranges: BTreeMap<i16, (ApiKey, i16, i16)>,
    /// Served but left out of ApiVersions, as Kafka leaves out the client-telemetry APIs when no metrics
    /// plugin is configured (while still answering them).
    unadvertised: BTreeMap<i16, (ApiKey, i16, i16)>,
    /// A lower first version to advertise than the one served, per api: see [`Self::advertise_from`].
    advertised_floor: BTreeMap<i16, i16>,
}

impl SupportedApis {
    /// No api registered yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares that the broker handles `key` for versions `min..=max`, clamped to
    /// `key.valid_versions()`. Registering a key again replaces its range. A range that is empty after
    /// clamping is not registered (and is logged), since advertising it would promise something we can't do.
    pub fn register(&mut self, key: ApiKey, min: i16, max: i16) {
        let valid = key.valid_versions();
        let (lo, hi) = (min.max(valid.min), max.min(valid.max));
        if lo > hi {
            tracing::warn!(
                ?key,
                min,
                max,
                decodable = %valid,
                "not registering an api whose version range does not overlap what we can decode"
            );
            self.ranges.remove(&(key as i16));
            return;
        }
        if (lo, hi) != (min, max) {
            tracing::debug!(
                ?key,
                min,
                max,
                lo,
                hi,
                "clamped api version range to what we can decode"
            );
        }
        self.ranges.insert(key as i16, (key, lo, hi));
    }

    /// Declares that the broker answers `key` for versions `min..=max` (clamped as [`Self::register`] does)
    /// without listing it in ApiVersions.
    pub fn serve_unadvertised(&mut self, key: ApiKey, min: i16, max: i16) {
        let valid = key.valid_versions();
        let (lo, hi) = (min.max(valid.min), max.min(valid.max));
        if lo <= hi {
            self.unadvertised.insert(key as i16, (key, lo, hi));
        }
    }

    /// Advertises `key` from version `min` although only the registered range is served: a request below it
    /// is still refused as unsupported (the connection is closed). Apache Kafka 4 does this for Produce
    /// (KAFKA-18659): librdkafka before 2.8 enables gzip, snappy and lz4 only when the broker lists Produce
    /// v0, and otherwise silently sends uncompressed batches; since a client picks the highest version both
    /// sides list, no client is led to send the versions that are not served.
    pub fn advertise_from(&mut self, key: ApiKey, min: i16) {
        self.advertised_floor.insert(key as i16, min);
    }

    /// The registered `(min, max)` range of `key`, if any.
    pub fn range(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.ranges.get(&(key as i16)).map(|&(_, lo, hi)| (lo, hi))
    }

    /// Whether the broker handles `key` at `version` (advertised or not).
    pub fn is_supported(&self, key: ApiKey, version: i16) -> bool {
        let served = |m: &BTreeMap<i16, (ApiKey, i16, i16)>| {
            m.get(&(key as i16))
                .is_some_and(|&(_, lo, hi)| (lo..=hi).contains(&version))
        };
        served(&self.ranges) || served(&self.unadvertised)
    }

    /// The APIs served without being advertised, as `(key, min, max)`.
    pub fn unadvertised(&self) -> impl Iterator<Item = (ApiKey, i16, i16)> + '_ {
        self.unadvertised.values().copied()
    }

    /// Registered apis as `(key, min, max)`, ordered by api key.
    pub fn iter(&self) -> impl Iterator<Item = (ApiKey, i16, i16)> + '_ {
        self.ranges.values().copied()
    }

    /// Number of registered apis.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether no api is registered.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// A successful ApiVersions body listing every registered api. Throttle 0, error 0; for v3+ the
    /// feature lists are empty and `finalized_features_epoch` is -1 (no finalized features). The same body
    /// serves every ApiVersions version: the encoder writes only the fields that version has.
    pub fn api_versions_response(&self) -> ApiVersionsResponse {
        ApiVersionsResponse::default()
            .with_error_code(0)
            .with_throttle_time_ms(0)
            .with_finalized_features_epoch(-1)
            .with_api_keys(
                self.iter()
                    .map(|(key, lo, hi)| {
                        let floor = self.advertised_floor.get(&(key as i16)).copied();
                        ApiVersion::default()
                            .with_api_key(key as i16)
                            .with_min_version(floor.map_or(lo, |f| f.min(lo)))
                            .with_max_version(hi)
                    })
                    .collect(),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_clamped_to_what_we_can_decode() {
        let mut apis = SupportedApis::new();
        apis.register(ApiKey::Produce, 0, 99); // kafka-protocol decodes 3..=13
        apis.register(ApiKey::Metadata, 1, 12);
        assert_eq!(apis.range(ApiKey::Produce), Some((3, 13)));
        assert_eq!(apis.range(ApiKey::Metadata), Some((1, 12)));
        assert_eq!(apis.range(ApiKey::Fetch), None);
    }

    #[test]
    fn a_range_with_nothing_decodable_is_not_advertised() {
        let mut apis = SupportedApis::new();
        apis.register(ApiKey::Produce, 0, 2);
        apis.register(ApiKey::Fetch, 9, 4);
        assert!(apis.is_empty());
        // Re-registering with an empty range withdraws an earlier one.
        apis.register(ApiKey::Fetch, 4, 12);
        apis.register(ApiKey::Fetch, 0, 1);
        assert_eq!(apis.range(ApiKey::Fetch), None);
    }

    #[test]
    fn re_registering_replaces_the_range() {
        let mut apis = SupportedApis::new();
        apis.register(ApiKey::ApiVersions, 0, 4);
        apis.register(ApiKey::ApiVersions, 0, 3);
        assert_eq!(apis.range(ApiKey::ApiVersions), Some((0, 3)));
        assert_eq!(apis.len(), 1);
    }

    #[test]
    fn unadvertised_apis_are_served_but_not_listed() {
        let mut apis = SupportedApis::new();
        apis.register(ApiKey::ApiVersions, 0, 4);
        apis.serve_unadvertised(ApiKey::PushTelemetry, 0, 0);
        assert!(apis.is_supported(ApiKey::PushTelemetry, 0));
        assert!(!apis.is_supported(ApiKey::PushTelemetry, 1));
        assert_eq!(apis.range(ApiKey::PushTelemetry), None);
        let listed: Vec<i16> = apis
            .api_versions_response()
            .api_keys
            .iter()
            .map(|k| k.api_key)
            .collect();
        assert_eq!(listed, vec![18]);
    }

    #[test]
    fn an_advertised_floor_is_listed_but_not_served() {
        let mut apis = SupportedApis::new();
        apis.register(ApiKey::Produce, 3, 13);
        apis.advertise_from(ApiKey::Produce, 0);
        let listed: Vec<(i16, i16, i16)> = apis
            .api_versions_response()
            .api_keys
            .iter()
            .map(|v| (v.api_key, v.min_version, v.max_version))
            .collect();
        assert_eq!(listed, vec![(0, 0, 13)]);
        assert_eq!(apis.range(ApiKey::Produce), Some((3, 13)));
        assert!(!apis.is_supported(ApiKey::Produce, 2));
        assert!(apis.is_supported(ApiKey::Produce, 3));
    }

    #[test]
    fn is_supported_checks_both_ends() {
        let mut apis = SupportedApis::new();
        apis.register(ApiKey::Fetch, 4, 12);
        assert!(!apis.is_supported(ApiKey::Fetch, 3));
        assert!(apis.is_supported(ApiKey::Fetch, 4));
        assert!(apis.is_supported(ApiKey::Fetch, 12));
        assert!(!apis.is_supported(ApiKey::Fetch, 13));
        assert!(!apis.is_supported(ApiKey::Produce, 9));
    }

    #[test]
    fn api_versions_response_lists_registered_apis_in_key_order() {
        let mut apis = SupportedApis::new();
        apis.register(ApiKey::Metadata, 0, 12);
        apis.register(ApiKey::ApiVersions, 0, 4);
        apis.register(ApiKey::Produce, 3, 9);
        let response = apis.api_versions_response();
        assert_eq!(response.error_code, 0);
        assert_eq!(response.throttle_time_ms, 0);
        assert_eq!(response.finalized_features_epoch, -1);
        assert!(response.supported_features.is_empty());
        assert!(response.finalized_features.is_empty());
        let listed: Vec<(i16, i16, i16)> = response
            .api_keys
            .iter()
            .map(|v| (v.api_key, v.min_version, v.max_version))
            .collect();
        assert_eq!(listed, vec![(0, 3, 9), (3, 0, 12), (18, 0, 4)]);
    }
}
