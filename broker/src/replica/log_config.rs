//! Turns broker defaults plus a topic's dynamic configs into the storage crate's [`LogConfig`].
//!
//! A topic key (`retention.ms`) overrides its broker synonym (`log.retention.ms`), exactly as in Kafka; values
//! were validated by the controller before they were committed, so an unparsable one here falls back to the
//! broker default with a warning instead of failing the partition.

use std::collections::BTreeMap;

use kraftwerk_storage::{LogConfig, TimestampType};

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
    }
}
