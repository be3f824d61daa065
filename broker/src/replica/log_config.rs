//! Turns broker defaults plus a topic's dynamic configs into the storage crate's [`LogConfig`].
//!
//! A topic key (`retention.ms`) overrides its broker synonym (`log.retention.ms`), exactly as in Kafka; values
//! were validated by the controller before they were committed, so an unparsable one here falls back to the
//! broker default with a warning instead of failing the partition.

use std::collections::BTreeMap;

use kraftwerk_storage::{CleanupPolicy, LogConfig, TimestampType};

use crate::config::BrokerConfig;

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
        ..LogConfig::default()
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
}
