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

    /// The registered `(min, max)` range of `key`, if any.
    pub fn range(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.ranges.get(&(key as i16)).map(|&(_, lo, hi)| (lo, hi))
    }

    /// Whether the broker handles `key` at `version`.
    pub fn is_supported(&self, key: ApiKey, version: i16) -> bool {
        self.range(key)
            .is_some_and(|(lo, hi)| (lo..=hi).contains(&version))
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
                        ApiVersion::default()
                            .with_api_key(key as i16)
                            .with_min_version(lo)
                            .with_max_version(hi)
                    })
                    .collect(),
            )
    }
}
