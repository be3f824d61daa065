//! Turns broker defaults plus a topic's dynamic configs into the storage crate's [`LogConfig`].
//!
//! Kafka's order, highest first: the topic's key (`retention.ms`), the dynamic per-broker value of its broker
//! synonym (`kafka-configs --entity-type brokers --entity-name 1 --add-config log.retention.ms=...`), the
//! dynamic cluster default (`--entity-default`), the static server.properties value, Kafka's default. Values
//! were validated by the controller before they were committed, so an unparsable one here falls back to the
//! broker default with a warning instead of failing the partition.

use std::collections::BTreeMap;

use kraftwerk_controller::records::ConfigResource;
use kraftwerk_controller::topic_configs;
use kraftwerk_controller::MetadataImage;
use kraftwerk_storage::{CleanupPolicy, LogConfig, TargetCompression, TimestampType};

use crate::config::BrokerConfig;

/// The dynamic broker configs that are broker defaults of topic configs, as topic keys: the cluster default
/// (resource "") overlaid with this broker's own (resource `node_id`).
pub fn dynamic_topic_defaults(image: &MetadataImage, node_id: i32) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for resource in [
        ConfigResource::broker(""),
        ConfigResource::broker(node_id.to_string()),
    ] {
        for (key, value) in image.resource_configs(&resource).into_iter().flatten() {
            if let Some(def) = topic_configs::by_broker_synonym(key) {
                out.insert(def.name.to_string(), value.clone());
            }
        }
    }
    out
}

/// A topic's configs over the dynamic broker defaults: what [`for_topic`] reads.
pub fn with_dynamic_defaults(
    dynamic: &BTreeMap<String, String>,
    topic: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut merged = dynamic.clone();
    merged.extend(topic.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

/// The broker-wide defaults every partition starts from.
pub fn broker_defaults(config: &BrokerConfig) -> LogConfig {
    LogConfig {
        segment_bytes: config.log_segment_bytes,
        segment_ms: config.log_roll_ms,
        retention_ms: config.log_retention_ms,
        retention_bytes: config.log_retention_bytes,
        index_interval_bytes: config.log_index_interval_bytes,
        max_message_bytes: config.message_max_bytes,
        timestamp_type: if config.log_message_timestamp_type == "LogAppendTime" {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        cleanup_policy: config.log_cleaner.cleanup_policy,
        min_cleanable_dirty_ratio: config.log_cleaner.min_cleanable_ratio,
        min_compaction_lag_ms: config.log_cleaner.min_compaction_lag_ms,
        max_compaction_lag_ms: config.log_cleaner.max_compaction_lag_ms,
        delete_retention_ms: config.log_cleaner.delete_retention_ms,
        flush_interval_messages: config.log_flush_interval_messages,
        flush_ms: config.log_flush_interval_ms,
        segment_jitter_ms: config.log_roll_jitter_ms,
        timestamp_before_max_ms: config.log_message_timestamp_before_max_ms,
        timestamp_after_max_ms: config.log_message_timestamp_after_max_ms,
        // Validated when the config was read.
        compression: TargetCompression::parse(&config.compression_type).unwrap_or_default(),
        compression_levels: config.compression_levels,
    }
}

fn num<T: std::str::FromStr + Copy>(topic: &BTreeMap<String, String>, key: &str, default: T) -> T {
    match topic.get(key) {
        None => default,
        Some(v) => v.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(key, value = %v, "unparsable topic config, using broker default");
            default
        }),
    }
}

/// The effective log config of a topic.
pub fn for_topic(defaults: &LogConfig, topic: &BTreeMap<String, String>) -> LogConfig {
    let mut c = defaults.clone();
    c.segment_bytes = num(topic, "segment.bytes", c.segment_bytes);
    c.segment_ms = num(topic, "segment.ms", c.segment_ms);
    c.retention_ms = num(topic, "retention.ms", c.retention_ms);
    c.retention_bytes = num(topic, "retention.bytes", c.retention_bytes);
    c.index_interval_bytes = num(topic, "index.interval.bytes", c.index_interval_bytes);
    c.max_message_bytes = num(topic, "max.message.bytes", c.max_message_bytes);
    c.flush_interval_messages = num(topic, "flush.messages", c.flush_interval_messages);
    c.flush_ms = num(topic, "flush.ms", c.flush_ms);
    c.segment_jitter_ms = num(topic, "segment.jitter.ms", c.segment_jitter_ms);
    c.timestamp_before_max_ms = num(
        topic,
        "message.timestamp.before.max.ms",
        c.timestamp_before_max_ms,
    );
    c.timestamp_after_max_ms = num(
        topic,
        "message.timestamp.after.max.ms",
        c.timestamp_after_max_ms,
    );
    if let Some(t) = topic.get("compression.type") {
        c.compression = TargetCompression::parse(t).unwrap_or_else(|| {
            tracing::warn!(value = %t, "unparsable compression.type, using broker default");
            c.compression
        });
    }
    c.compression_levels.gzip = num(topic, "compression.gzip.level", c.compression_levels.gzip);
    c.compression_levels.lz4 = num(topic, "compression.lz4.level", c.compression_levels.lz4);
    c.compression_levels.zstd = num(topic, "compression.zstd.level", c.compression_levels.zstd);
    c.min_cleanable_dirty_ratio = num(
        topic,
        "min.cleanable.dirty.ratio",
        c.min_cleanable_dirty_ratio,
    );
    c.min_compaction_lag_ms = num(topic, "min.compaction.lag.ms", c.min_compaction_lag_ms);
    c.max_compaction_lag_ms = num(topic, "max.compaction.lag.ms", c.max_compaction_lag_ms);
    c.delete_retention_ms = num(topic, "delete.retention.ms", c.delete_retention_ms);
    if let Some(p) = topic.get("cleanup.policy") {
        c.cleanup_policy = CleanupPolicy::parse(p).unwrap_or_else(|| {
            tracing::warn!(value = %p, "unparsable cleanup.policy, using broker default");
            c.cleanup_policy
        });
    }
    if let Some(t) = topic.get("message.timestamp.type") {
        c.timestamp_type = if t == "LogAppendTime" {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        };
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_overrides_broker_defaults() {
        let broker = BrokerConfig::from_properties(BrokerConfig::single_node_defaults()).unwrap();
        let d = broker_defaults(&broker);
        let mut t = BTreeMap::new();
        t.insert("retention.ms".to_string(), "1000".to_string());
        t.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        t.insert("segment.bytes".to_string(), "garbage".to_string());
        let c = for_topic(&d, &t);
        assert_eq!(c.retention_ms, 1000);
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(c.segment_bytes, d.segment_bytes);
        assert_eq!(c.cleanup_policy, CleanupPolicy::DELETE);
    }

    #[test]
    fn compaction_configs_override_the_log_cleaner_defaults() {
        let mut props = BrokerConfig::single_node_defaults();
        props.insert("log.cleaner.min.cleanable.ratio".into(), "0.2".into());
        props.insert("log.cleaner.delete.retention.ms".into(), "1000".into());
        let d = broker_defaults(&BrokerConfig::from_properties(props).unwrap());
        assert_eq!(d.min_cleanable_dirty_ratio, 0.2);
        assert_eq!(d.delete_retention_ms, 1000);
        let t: BTreeMap<String, String> = [
            ("cleanup.policy", "compact"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("min.compaction.lag.ms", "5"),
            ("max.compaction.lag.ms", "60000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = for_topic(&d, &t);
        assert_eq!(c.cleanup_policy, CleanupPolicy::COMPACT);
        assert_eq!(c.min_cleanable_dirty_ratio, 0.01);
        assert_eq!(c.min_compaction_lag_ms, 5);
        assert_eq!(c.max_compaction_lag_ms, 60_000);
        assert_eq!(c.delete_retention_ms, 1000);
    }

    /// Kafka's order: topic, this broker's dynamic value, the cluster default, the static value.
    #[test]
    fn dynamic_broker_configs_sit_between_the_topic_and_the_static_config() {
        use kraftwerk_controller::records::{ConfigRecord, MetadataRecord};
        let record = |broker: &str, name: &str, value: &str| {
            MetadataRecord::Config(ConfigRecord {
                resource: ConfigResource::broker(broker),
                name: name.into(),
                value: Some(value.into()),
            })
        };
        let image = MetadataImage::empty("c").apply(
            0,
            &[
                record("", "log.retention.ms", "1000"),
                record("1", "log.retention.ms", "2000"),
                record("", "compression.type", "zstd"),
                record("", "compression.zstd.level", "7"),
                record("2", "log.segment.bytes", "999"),
                record("", "log.flush.interval.ms", "50"),
                // Not a topic default: not read here.
                record("", "max.connections", "5"),
            ],
        );
        let mut props = BrokerConfig::single_node_defaults();
        props.insert("log.roll.jitter.ms".into(), "77".into());
        props.insert("compression.type".into(), "lz4".into());
        props.insert("compression.lz4.level".into(), "4".into());
        props.insert(
            "log.message.timestamp.before.max.ms".into(),
            "3600000".into(),
        );
        let static_defaults = broker_defaults(&BrokerConfig::from_properties(props).unwrap());
        assert_eq!(static_defaults.segment_jitter_ms, 77);
        assert_eq!(
            static_defaults.compression,
            TargetCompression::Codec(kraftwerk_storage::batch::Compression::Lz4)
        );
        assert_eq!(static_defaults.compression_levels.lz4, 4);
        assert_eq!(static_defaults.timestamp_before_max_ms, 3_600_000);
        let dynamic = dynamic_topic_defaults(&image, 1);
        assert_eq!(
            dynamic.get("retention.ms").map(String::as_str),
            Some("2000")
        );
        assert!(!dynamic.contains_key("segment.bytes"), "broker 2's own");
        let c = for_topic(
            &static_defaults,
            &with_dynamic_defaults(&dynamic, &BTreeMap::new()),
        );
        assert_eq!(c.retention_ms, 2000);
        assert_eq!(
            c.compression,
            TargetCompression::Codec(kraftwerk_storage::batch::Compression::Zstd)
        );
        assert_eq!(c.compression_levels.zstd, 7);
        assert_eq!(c.flush_ms, 50);
        assert_eq!(c.segment_bytes, static_defaults.segment_bytes);
        let on_broker_3 = for_topic(
            &static_defaults,
            &with_dynamic_defaults(&dynamic_topic_defaults(&image, 3), &BTreeMap::new()),
        );
        assert_eq!(on_broker_3.retention_ms, 1000, "the cluster default");
        let topic: BTreeMap<String, String> = [
            ("retention.ms", "5"),
            ("compression.type", "producer"),
            ("message.timestamp.before.max.ms", "10"),
            ("message.timestamp.after.max.ms", "10"),
            ("segment.jitter.ms", "9"),
            ("flush.messages", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = for_topic(&static_defaults, &with_dynamic_defaults(&dynamic, &topic));
        assert_eq!(c.retention_ms, 5);
        assert_eq!(c.compression, TargetCompression::Producer);
        assert_eq!(
            (c.timestamp_before_max_ms, c.timestamp_after_max_ms),
            (10, 10)
        );
        assert_eq!((c.segment_jitter_ms, c.flush_interval_messages), (9, 3));
    }
}
