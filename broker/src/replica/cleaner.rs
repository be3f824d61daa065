//! The broker's side of log compaction: the `log.cleaner.*` settings, and the hosted partitions handed to the
//! storage crate's [`LogCleaner`] threads (which lock a partition only to plan a cleaning and to swap it in).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kraftwerk_storage::cleaner::{CleanableLog, CleanerConfig, CompactedLogs, LogCleaner};
use kraftwerk_storage::{CleanupPolicy, PartitionLog};

use super::{Partition, ReplicaManager};
use crate::config::ConfigError;

/// `log.cleaner.*`: the cleaner threads, and the broker defaults of the topic compaction configs.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerSettings {
    pub threads: CleanerConfig,
    /// `log.cleaner.min.cleanable.ratio` (topic: `min.cleanable.dirty.ratio`).
    pub min_cleanable_ratio: f64,
    /// `log.cleaner.min.compaction.lag.ms` (topic: `min.compaction.lag.ms`).
    pub min_compaction_lag_ms: i64,
    /// `log.cleaner.max.compaction.lag.ms` (topic: `max.compaction.lag.ms`).
    pub max_compaction_lag_ms: i64,
    /// `log.cleaner.delete.retention.ms` (topic: `delete.retention.ms`).
    pub delete_retention_ms: i64,
    /// `log.cleanup.policy` (topic: `cleanup.policy`).
    pub cleanup_policy: CleanupPolicy,
}

/// The broker keys read here (listed in `config_keys::BROKER_KEYS`).
pub const CLEANER_KEYS: &[&str] = &[
    "log.cleaner.enable",
    "log.cleaner.threads",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.delete.retention.ms",
];

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// A number from `props`, or `default`; refused if unparsable or outside `ok`.
fn num<T: std::str::FromStr + Copy>(
    props: &BTreeMap<String, String>,
    key: &str,
    default: T,
    ok: impl Fn(T) -> bool,
    rule: &str,
) -> Result<T, ConfigError> {
    let Some(raw) = props.get(key) else {
        return Ok(default);
    };
    let value: T = raw
        .trim()
        .parse()
        .map_err(|_| invalid(key, raw, "not a valid number"))?;
    if !ok(value) {
        return Err(invalid(key, raw, rule));
    }
    Ok(value)
}

impl CleanerSettings {
    /// Reads and validates the settings with Kafka's defaults and ranges.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let enable = match props.get("log.cleaner.enable").map(|v| v.trim()) {
            None => true,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => return Err(invalid("log.cleaner.enable", v, "expected true or false")),
        };
        let policy_raw = props
            .get("log.cleanup.policy")
            .map_or("delete", String::as_str);
        let cleanup_policy = CleanupPolicy::parse(policy_raw).ok_or_else(|| {
            invalid(
                "log.cleanup.policy",
                policy_raw,
                "expected a list of delete and compact",
            )
        })?;
        Ok(Self {
            threads: CleanerConfig {
                enable,
                threads: num(props, "log.cleaner.threads", 1usize, |_| true, "")?,
                io_max_bytes_per_second: num(
                    props,
                    "log.cleaner.io.max.bytes.per.second",
                    f64::MAX,
                    |v: f64| v > 0.0,
                    "must be a positive number",
                )?,
                backoff_ms: num(props, "log.cleaner.backoff.ms", 15_000u64, |_| true, "")?,
                dedupe_buffer_bytes: num(
                    props,
                    "log.cleaner.dedupe.buffer.size",
                    128u64 << 20,
                    |v| v >= 1 << 20,
                    "must be at least 1048576",
                )?,
            },
            min_cleanable_ratio: num(
                props,
                "log.cleaner.min.cleanable.ratio",
                0.5,
                |v: f64| (0.0..=1.0).contains(&v),
                "must be between 0 and 1",
            )?,
            min_compaction_lag_ms: num(
                props,
                "log.cleaner.min.compaction.lag.ms",
                0i64,
                |v| v >= 0,
                "must be at least 0",
            )?,
            max_compaction_lag_ms: num(
                props,
                "log.cleaner.max.compaction.lag.ms",
                i64::MAX,
                |v| v >= 1,
                "must be at least 1",
            )?,
            delete_retention_ms: num(
                props,
                "log.cleaner.delete.retention.ms",
                86_400_000i64,
                |v| v >= 0,
                "must be at least 0",
            )?,
            cleanup_policy,
        })
    }
}

impl CleanableLog for Partition {
    fn topic_partition(&self) -> (String, i32) {
        (self.topic.clone(), self.index)
    }

    fn log_dir(&self) -> PathBuf {
        let dir = self.dir();
        dir.parent().map_or(dir.clone(), |p| p.to_path_buf())
    }

    fn with_log(&self, f: &mut dyn FnMut(&mut PartitionLog, i64)) {
        self.with_log_and_high_watermark(f)
    }
}

impl CompactedLogs for ReplicaManager {
    fn logs(&self) -> Vec<Arc<dyn CleanableLog>> {
        self.all()
            .into_iter()
            .map(|p| p as Arc<dyn CleanableLog>)
            .collect()
    }
}

/// The cleaner threads' keys that may be changed at run time (`kafka-configs --entity-type brokers`).
pub const DYNAMIC_THREAD_KEYS: &[&str] = &[
    "log.cleaner.threads",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
    "log.cleaner.dedupe.buffer.size",
];

/// The log cleaner with its dynamic settings: static `log.cleaner.*` values overlaid with this broker's dynamic
/// configs and the cluster defaults. A change restarts the threads, as Kafka's `LogCleaner.reconfigure` does (a
/// cleaning in progress finishes first; progress is in `cleaner-offset-checkpoint`, so nothing is redone).
pub struct DynamicCleaner {
    /// server.properties, for the values no dynamic config sets.
    static_props: BTreeMap<String, String>,
    replicas: Arc<ReplicaManager>,
    running: parking_lot::Mutex<Option<(CleanerConfig, LogCleaner)>>,
}

impl DynamicCleaner {
    /// Starts the cleaner threads over the hosted partitions with the static settings.
    pub fn start(
        settings: &CleanerSettings,
        static_props: &BTreeMap<String, String>,
        replicas: Arc<ReplicaManager>,
    ) -> std::io::Result<Self> {
        let cleaner = LogCleaner::start(settings.threads.clone(), replicas.clone())?;
        Ok(Self {
            static_props: static_props.clone(),
            replicas,
            running: parking_lot::Mutex::new(Some((settings.threads.clone(), cleaner))),
        })
    }

    /// The thread settings in force with `dynamic` (this broker's dynamic configs over the cluster defaults).
    pub fn effective(
        &self,
        dynamic: &BTreeMap<String, String>,
    ) -> Result<CleanerConfig, ConfigError> {
        let mut props = self.static_props.clone();
        for key in DYNAMIC_THREAD_KEYS {
            if let Some(v) = dynamic.get(*key) {
                props.insert((*key).to_string(), v.clone());
            }
        }
        Ok(CleanerSettings::from_properties(&props)?.threads)
    }

    /// Restarts the threads if `dynamic` changes their settings (blocking: joins the old threads).
    pub fn apply(&self, dynamic: &BTreeMap<String, String>) {
        let wanted = match self.effective(dynamic) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "dynamic log cleaner settings not applied");
                return;
            }
        };
        let mut running = self.running.lock();
        if running.as_ref().is_some_and(|(c, _)| *c == wanted) || running.is_none() {
            return;
        }
        if let Some((_, old)) = running.take() {
            old.stop();
        }
        tracing::info!(config = ?wanted, "log cleaner reconfigured");
        match LogCleaner::start(wanted.clone(), self.replicas.clone()) {
            Ok(cleaner) => *running = Some((wanted, cleaner)),
            Err(e) => tracing::error!(error = %e, "cannot restart the log cleaner"),
        }
    }

    /// The thread settings running now.
    pub fn running_config(&self) -> Option<CleanerConfig> {
        self.running.lock().as_ref().map(|(c, _)| c.clone())
    }

    /// Stops the threads for good (shutdown).
    pub fn stop(&self) {
        if let Some((_, cleaner)) = self.running.lock().take() {
            cleaner.stop();
        }
    }
}

/// This broker's dynamic configs over the cluster-wide defaults, by broker key.
pub fn dynamic_broker_configs(
    image: &kraftwerk_controller::MetadataImage,
    node_id: i32,
) -> BTreeMap<String, String> {
    use kraftwerk_controller::records::ConfigResource;
    let mut out = BTreeMap::new();
    for resource in [
        ConfigResource::broker(""),
        ConfigResource::broker(node_id.to_string()),
    ] {
        if let Some(configs) = image.resource_configs(&resource) {
            out.extend(configs.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_kafkas_and_bad_values_are_refused() {
        let d = CleanerSettings::from_properties(&BTreeMap::new()).unwrap();
        assert!(d.threads.enable);
        assert_eq!(d.threads.threads, 1);
        assert_eq!(d.threads.backoff_ms, 15_000);
        assert_eq!(d.min_cleanable_ratio, 0.5);
        assert_eq!(d.delete_retention_ms, 86_400_000);
        assert_eq!(d.cleanup_policy, CleanupPolicy::DELETE);
        let s = CleanerSettings::from_properties(&props(&[
            ("log.cleaner.enable", "false"),
            ("log.cleaner.threads", "3"),
            ("log.cleaner.io.max.bytes.per.second", "1048576"),
            ("log.cleaner.min.cleanable.ratio", "0.1"),
            ("log.cleanup.policy", "compact,delete"),
        ]))
        .unwrap();
        assert!(!s.threads.enable);
        assert_eq!(s.threads.threads, 3);
        assert_eq!(s.threads.io_max_bytes_per_second, 1_048_576.0);
        assert_eq!(s.min_cleanable_ratio, 0.1);
        assert!(s.cleanup_policy.compact && s.cleanup_policy.delete);
        for (k, v) in [
            ("log.cleaner.enable", "maybe"),
            ("log.cleaner.threads", "-1"),
            ("log.cleaner.io.max.bytes.per.second", "0"),
            ("log.cleaner.min.cleanable.ratio", "1.5"),
            ("log.cleaner.max.compaction.lag.ms", "0"),
            ("log.cleaner.delete.retention.ms", "-5"),
            ("log.cleaner.dedupe.buffer.size", "1000"),
            ("log.cleanup.policy", "shred"),
        ] {
            assert!(
                CleanerSettings::from_properties(&props(&[(k, v)])).is_err(),
                "{k}={v}"
            );
        }
    }

    #[test]
    fn every_cleaner_key_is_a_known_broker_key() {
        for key in CLEANER_KEYS {
            assert!(crate::config_keys::spec(key).is_some(), "{key}");
        }
    }

    #[test]
    fn dynamic_settings_restart_the_threads() {
        let dir = tempfile::tempdir().unwrap();
        let replicas = Arc::new(
            ReplicaManager::new(1, vec![dir.path().to_path_buf()], Default::default()).unwrap(),
        );
        let static_props = props(&[("log.cleaner.threads", "1")]);
        let settings = CleanerSettings::from_properties(&static_props).unwrap();
        let cleaner = DynamicCleaner::start(&settings, &static_props, replicas).unwrap();
        assert_eq!(cleaner.running_config().unwrap().threads, 1);
        cleaner.apply(&props(&[
            ("log.cleaner.threads", "3"),
            ("log.cleaner.backoff.ms", "50"),
            ("log.retention.ms", "1"),
        ]));
        let c = cleaner.running_config().unwrap();
        assert_eq!((c.threads, c.backoff_ms), (3, 50));
        // Unchanged settings: the same threads keep running; gone: back to the static values.
        cleaner.apply(&props(&[
            ("log.cleaner.threads", "3"),
            ("log.cleaner.backoff.ms", "50"),
        ]));
        cleaner.apply(&BTreeMap::new());
        assert_eq!(cleaner.running_config().unwrap().threads, 1);
        assert_eq!(cleaner.running_config().unwrap().backoff_ms, 15_000);
        // An invalid value (the controller refuses it first) leaves what runs.
        cleaner.apply(&props(&[("log.cleaner.dedupe.buffer.size", "5")]));
        assert_eq!(cleaner.running_config().unwrap().threads, 1);
        cleaner.stop();
        assert!(cleaner.running_config().is_none());
    }
}
