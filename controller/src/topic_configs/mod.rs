//! Topic-level config definitions: names, types, defaults, broker synonyms and validators.
//!
//! The controller validates every topic config it stores against this table, and the broker's
//! DescribeConfigs reads it to fill in defaults and synonyms, so both agree on what a config is.
//! Error texts follow Kafka's `ConfigDef` so clients see familiar messages.

mod table;

use crate::error::ControllerError;

/// A config's value type, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` / `false`, case-insensitive.
    Boolean,
    /// Free text.
    String,
    /// 32-bit integer.
    Int,
    /// 16-bit integer.
    Short,
    /// 64-bit integer.
    Long,
    /// Floating point.
    Double,
    /// Comma-separated list.
    List,
    /// Java class name.
    Class,
    /// Sensitive text, never described back.
    Password,
}

impl ConfigType {
    /// The `config_type` code in DescribeConfigs responses (v3+).
    pub fn describe_code(self) -> i8 {
        match self {
            Self::Boolean => 1,
            Self::String => 2,
            Self::Int => 3,
            Self::Short => 4,
            Self::Long => 5,
            Self::Double => 6,
            Self::List => 7,
            Self::Class => 8,
            Self::Password => 9,
        }
    }
}

/// What a parsed value must satisfy beyond its type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validator {
    /// Anything of the right type.
    None,
    /// Integer >= the bound.
    AtLeast(i64),
    /// Integer within the inclusive bounds.
    Between(i64, i64),
    /// Double within [0, 1].
    Ratio,
    /// One of the given strings (case-sensitive, as Kafka's `ValidString`).
    OneOf(&'static [&'static str]),
    /// Every list element is one of the given strings.
    ListOf(&'static [&'static str]),
    /// `*` or `partition:broker` pairs.
    ThrottledReplicas,
    /// -1 (codec default) or 1..=9.
    GzipLevel,
    /// A double above 0.
    PositiveDouble,
    /// `address:count` pairs separated by commas (`max.connections.per.ip.overrides`; IP addresses, as the
    /// broker reads them).
    AddressCounts,
}

/// One topic config.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfigDef {
    /// The topic-level key, e.g. `retention.ms`.
    pub name: &'static str,
    /// Value type.
    pub config_type: ConfigType,
    /// Kafka's default, as DescribeConfigs prints it.
    pub default: &'static str,
    /// Broker keys that supply the value when the topic has none, highest priority first.
    pub broker_synonyms: &'static [&'static str],
    /// Constraint on the value.
    pub validator: Validator,
    /// One-line description.
    pub doc: &'static str,
}

/// What Kraftwerk does with a topic config it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// The value is applied (the broker's `replica/log_config.rs`, the produce path, the controller's elections).
    Honoured,
    /// Only Kafka's default is accepted: the feature the key tunes is not built, and the text says which.
    DefaultOnly(&'static str),
    /// Any valid value is accepted and has no effect, as in Apache Kafka 4 itself; the text says why.
    Inert(&'static str),
}

impl Support {
    /// The word the docs table uses.
    pub fn word(self) -> &'static str {
        match self {
            Support::Honoured => "honoured",
            Support::DefaultOnly(_) => "default-only",
            Support::Inert(_) => "inert",
        }
    }
}

const NO_TIERED: &str = "tiered storage is not built";
const NO_THROTTLE: &str =
    "replication throttling is not built (there is no leader/follower.replication.throttled.rate)";

/// What Kraftwerk does with topic config `name` (every key of the table is one of these).
pub fn support(name: &str) -> Support {
    match name {
        "follower.replication.throttled.replicas" | "leader.replication.throttled.replicas" => {
            Support::DefaultOnly(NO_THROTTLE)
        }
        "local.retention.bytes"
        | "local.retention.ms"
        | "remote.copy.lag.bytes"
        | "remote.copy.lag.ms"
        | "remote.log.copy.disable"
        | "remote.log.delete.on.disable"
        | "remote.storage.enable" => Support::DefaultOnly(NO_TIERED),
        "preallocate" => Support::DefaultOnly("segment files are not preallocated"),
        "errors.deadletterqueue.group.enable" => {
            Support::DefaultOnly("share groups (KIP-932), whose dead-letter queues this enables, are not served")
        }
        "max.decompressed.message.bytes" => Support::DefaultOnly(
            "the decompressed size of single records is not checked (produce validation, compaction and timestamp \
             lookups would each need it)",
        ),
        "segment.index.bytes" => Support::DefaultOnly(
            "index files grow with the segment instead of being preallocated to a fixed size",
        ),
        "file.delete.delay.ms" => Support::DefaultOnly(
            "segments leave at once: a reader of a deleted segment keeps its own open file handle, which is \
             what Kafka's delay protects",
        ),
        _ => Support::Honoured,
    }
}

/// Every topic config Kraftwerk knows, sorted by name.
pub fn definitions() -> &'static [TopicConfigDef] {
    table::DEFINITIONS
}

/// The definition of a topic-level key.
pub fn definition(name: &str) -> Option<&'static TopicConfigDef> {
    table::DEFINITIONS.iter().find(|d| d.name == name)
}

/// The topic config whose *primary* broker synonym is `broker_key` (e.g. `log.retention.ms`).
/// Only primary synonyms share the topic config's unit and type, so only they can be set as
/// dynamic cluster-wide defaults.
pub fn by_broker_synonym(broker_key: &str) -> Option<&'static TopicConfigDef> {
    table::DEFINITIONS
        .iter()
        .find(|d| d.broker_synonyms.first() == Some(&broker_key))
}

/// Broker configs that are not topic defaults and that brokers apply at run time (`kafka-configs --entity-type
/// brokers`): the log cleaner's threads, throttle, backoff and key-map memory, which a broker applies by
/// restarting its cleaner threads as Kafka's `LogCleaner.reconfigure` does; the partition-opening threads;
/// the producer-id expiration; the connection limits (for new connections, as Kafka's `DynamicConnectionQuota`).
static BROKER_DYNAMIC: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "max.connections",
        config_type: ConfigType::Int,
        default: "2147483647",
        broker_synonyms: &[],
        validator: Validator::AtLeast(0),
        doc:
            "Connections the broker's client listeners accept together; accepts pause at the limit.",
    },
    TopicConfigDef {
        name: "max.connections.per.ip",
        config_type: ConfigType::Int,
        default: "2147483647",
        broker_synonyms: &[],
        validator: Validator::AtLeast(0),
        doc: "Connections one address may have open; a connection beyond is closed.",
    },
    TopicConfigDef {
        name: "max.connections.per.ip.overrides",
        config_type: ConfigType::String,
        default: "",
        broker_synonyms: &[],
        validator: Validator::AddressCounts,
        doc: "Per-address exceptions to max.connections.per.ip: a list of address:count.",
    },
    TopicConfigDef {
        name: "log.cleaner.backoff.ms",
        config_type: ConfigType::Long,
        default: "15000",
        broker_synonyms: &[],
        validator: Validator::AtLeast(0),
        doc: "Pause of a cleaner thread when no log needs cleaning.",
    },
    TopicConfigDef {
        name: "log.cleaner.dedupe.buffer.size",
        config_type: ConfigType::Long,
        default: "134217728",
        broker_synonyms: &[],
        validator: Validator::AtLeast(1 << 20),
        doc: "Memory for the cleaner threads' key maps together.",
    },
    TopicConfigDef {
        name: "log.cleaner.io.max.bytes.per.second",
        config_type: ConfigType::Double,
        default: "1.7976931348623157E308",
        broker_synonyms: &[],
        validator: Validator::PositiveDouble,
        doc: "Bytes per second the cleaner threads may read and write together.",
    },
    TopicConfigDef {
        name: "num.recovery.threads.per.data.dir",
        config_type: ConfigType::Int,
        default: "2",
        broker_synonyms: &[],
        validator: Validator::AtLeast(1),
        doc: "Threads per log directory that open (and recover) partitions.",
    },
    TopicConfigDef {
        name: "producer.id.expiration.ms",
        config_type: ConfigType::Int,
        default: "86400000",
        broker_synonyms: &[],
        validator: Validator::AtLeast(1),
        doc: "How long an idle idempotent producer's state is kept.",
    },
    TopicConfigDef {
        name: "log.cleaner.threads",
        config_type: ConfigType::Int,
        default: "1",
        broker_synonyms: &[],
        validator: Validator::AtLeast(1),
        doc: "Threads cleaning logs.",
    },
];

/// The definition of a dynamic broker config that is not a topic default (see [`BROKER_DYNAMIC`]).
pub fn broker_dynamic_definition(name: &str) -> Option<&'static TopicConfigDef> {
    BROKER_DYNAMIC.iter().find(|d| d.name == name)
}

/// Every dynamic broker config that is not a topic default.
pub fn broker_dynamic_definitions() -> &'static [TopicConfigDef] {
    BROKER_DYNAMIC
}

/// Validates one topic-level key/value pair: INVALID_CONFIG for unknown keys or bad values.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), ControllerError> {
    match definition(name) {
        Some(def) => def.validate(value),
        None => Err(ControllerError::InvalidConfig(format!(
            "Unknown topic config name: {name}"
        ))),
    }
}

/// Splits a LIST value the way Kafka does: empty (after trimming) means no elements.
pub fn split_list(value: &str) -> Vec<&str> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split(',').map(str::trim).collect()
    }
}

impl TopicConfigDef {
    /// Checks that `value` parses as this config's type and satisfies its validator.
    pub fn validate(&self, value: &str) -> Result<(), ControllerError> {
        self.check(value).map_err(|reason| {
            ControllerError::InvalidConfig(format!(
                "Invalid value {value} for configuration {}: {reason}",
                self.name
            ))
        })
    }

    fn check(&self, value: &str) -> Result<(), String> {
        self.check_type(value)?;
        match support(self.name) {
            Support::DefaultOnly(why) if !self.is_default(value) => Err(format!(
                "{why}, so only the default {} is accepted",
                if self.default.is_empty() {
                    "(empty)"
                } else {
                    self.default
                }
            )),
            _ => Ok(()),
        }
    }

    /// Whether `value` means the same as the default (numbers compared as numbers, booleans and lists
    /// ignoring case and spaces).
    fn is_default(&self, value: &str) -> bool {
        let (a, b) = (value.trim(), self.default.trim());
        match self.config_type {
            ConfigType::Int | ConfigType::Short | ConfigType::Long => {
                a.parse::<i64>().ok() == b.parse::<i64>().ok()
            }
            ConfigType::Boolean => a.eq_ignore_ascii_case(b),
            ConfigType::List => split_list(a) == split_list(b),
            _ => a == b,
        }
    }

    fn check_type(&self, value: &str) -> Result<(), String> {
        let trimmed = value.trim();
        match self.config_type {
            ConfigType::Boolean => {
                if trimmed.eq_ignore_ascii_case("true") || trimmed.eq_ignore_ascii_case("false") {
                    Ok(())
                } else {
                    Err("Expected value to be either true or false".to_owned())
                }
            }
            ConfigType::Int | ConfigType::Short | ConfigType::Long => {
                let n = self.parse_integer(trimmed)?;
                check_integer(self.validator, n)
            }
            ConfigType::Double => {
                let x: f64 = trimmed
                    .parse()
                    .ok()
                    .filter(|x: &f64| x.is_finite())
                    .ok_or_else(|| "Not a number of type DOUBLE".to_owned())?;
                match self.validator {
                    Validator::Ratio if x < 0.0 => Err("Value must be at least 0.0".to_owned()),
                    Validator::Ratio if x > 1.0 => Err("Value must be no more than 1.0".to_owned()),
                    Validator::PositiveDouble if x <= 0.0 => {
                        Err("Value must be above 0".to_owned())
                    }
                    _ => Ok(()),
                }
            }
            ConfigType::String | ConfigType::Class | ConfigType::Password => match self.validator {
                Validator::OneOf(allowed) if !allowed.contains(&trimmed) => {
                    Err(format!("String must be one of: {}", allowed.join(", ")))
                }
                Validator::AddressCounts => check_address_counts(trimmed),
                _ => Ok(()),
            },
            ConfigType::List => {
                let items = split_list(value);
                match self.validator {
                    Validator::ListOf(allowed) => {
                        match items.iter().find(|item| !allowed.contains(item)) {
                            Some(_) => {
                                Err(format!("String must be one of: {}", allowed.join(", ")))
                            }
                            None => Ok(()),
                        }
                    }
                    Validator::ThrottledReplicas => check_throttled_replicas(&items),
                    _ => Ok(()),
                }
            }
        }
    }

    fn parse_integer(&self, trimmed: &str) -> Result<i64, String> {
        let parsed = match self.config_type {
            ConfigType::Int => trimmed.parse::<i32>().map(i64::from).ok(),
            ConfigType::Short => trimmed.parse::<i16>().map(i64::from).ok(),
            _ => trimmed.parse::<i64>().ok(),
        };
        parsed.ok_or_else(|| {
            let ty = match self.config_type {
                ConfigType::Int => "INT",
                ConfigType::Short => "SHORT",
                _ => "LONG",
            };
            format!("Not a number of type {ty}")
        })
    }
}

/// `max.connections.per.ip.overrides`: `address:count,...` with IP addresses (`[v6]` allowed) and INT counts >= 0.
fn check_address_counts(value: &str) -> Result<(), String> {
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, count) = item
            .rsplit_once(':')
            .ok_or_else(|| format!("{item} is not address:count"))?;
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .map_err(|_| format!("{host} is not an IP address"))?;
        if !count.parse::<i32>().is_ok_and(|n| n >= 0) {
            return Err(format!("{count} is not a connection count"));
        }
    }
    Ok(())
}

fn check_integer(validator: Validator, n: i64) -> Result<(), String> {
    match validator {
        Validator::AtLeast(min) if n < min => Err(format!("Value must be at least {min}")),
        Validator::Between(min, _) if n < min => Err(format!("Value must be at least {min}")),
        Validator::Between(_, max) if n > max => Err(format!("Value must be no more than {max}")),
        Validator::GzipLevel if n != -1 && !(1..=9).contains(&n) => {
            Err("Value must be -1 (the codec default) or between 1 and 9".to_owned())
        }
        _ => Ok(()),
    }
}

fn check_throttled_replicas(items: &[&str]) -> Result<(), String> {
    let is_pair = |item: &str| {
        item.split_once(':').is_some_and(|(p, b)| {
            p.trim().parse::<i32>().is_ok_and(|p| p >= 0)
                && b.trim().parse::<i32>().is_ok_and(|b| b >= 0)
        })
    };
    if items == ["*"] || items.iter().all(|item| is_pair(item)) {
        Ok(())
    } else {
        Err(
            "must be the literal '*' or a list of replicas in the following format: \
             [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(name: &str, value: &str) -> String {
        match validate_topic_config(name, value) {
            Err(ControllerError::InvalidConfig(msg)) => msg,
            other => panic!("{name}={value}: expected INVALID_CONFIG, got {other:?}"),
        }
    }

    #[test]
    fn kafka_4_topic_configs_are_accepted_at_their_default_only() {
        // Kafka 4.4's defaults (LogConfig, RemoteLogManagerConfig); the features they tune are not built.
        for (name, default, other, why) in [
            (
                "errors.deadletterqueue.group.enable",
                "false",
                "true",
                "share groups",
            ),
            (
                "max.decompressed.message.bytes",
                "2147483639",
                "1048576",
                "not checked",
            ),
            ("remote.copy.lag.bytes", "-1", "1000", "tiered storage"),
            ("remote.copy.lag.ms", "0", "60000", "tiered storage"),
        ] {
            validate_topic_config(name, default).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let msg = invalid(name, other);
            assert!(msg.contains(why) && msg.contains(default), "{name}: {msg}");
        }
        // Kafka's ranges are checked before the default-only rule.
        assert!(invalid("max.decompressed.message.bytes", "0").contains("at least 1"));
        assert!(invalid("remote.copy.lag.ms", "-2").contains("at least -1"));
    }

    #[test]
    fn table_is_sorted_unique_and_defaults_validate() {
        let defs = definitions();
        for pair in defs.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} !< {}",
                pair[0].name,
                pair[1].name
            );
        }
        for def in defs {
            def.validate(def.default)
                .unwrap_or_else(|e| panic!("default of {}: {e}", def.name));
            assert!(!def.doc.is_empty());
        }
        for name in [
            "cleanup.policy",
            "compression.type",
            "delete.retention.ms",
            "file.delete.delay.ms",
            "flush.messages",
            "flush.ms",
            "index.interval.bytes",
            "max.compaction.lag.ms",
            "max.message.bytes",
            "message.timestamp.type",
            "message.timestamp.before.max.ms",
            "message.timestamp.after.max.ms",
            "min.cleanable.dirty.ratio",
            "min.compaction.lag.ms",
            "min.insync.replicas",
            "preallocate",
            "retention.bytes",
            "retention.ms",
            "segment.bytes",
            "segment.index.bytes",
            "segment.jitter.ms",
            "segment.ms",
            "unclean.leader.election.enable",
        ] {
            assert!(definition(name).is_some(), "{name} missing");
        }
    }

    #[test]
    fn unknown_key() {
        assert_eq!(
            invalid("retention.mss", "1"),
            "Unknown topic config name: retention.mss"
        );
    }

    #[test]
    fn numbers() {
        validate_topic_config("retention.ms", "-1").unwrap();
        validate_topic_config("retention.ms", " 1000 ").unwrap();
        assert_eq!(
            invalid("retention.ms", "abc"),
            "Invalid value abc for configuration retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            invalid("retention.ms", "-2"),
            "Invalid value -2 for configuration retention.ms: Value must be at least -1"
        );
        assert_eq!(
            invalid("segment.bytes", "3000000000"),
            "Invalid value 3000000000 for configuration segment.bytes: Not a number of type INT"
        );
        invalid("min.insync.replicas", "0");
        invalid("compression.lz4.level", "18");
        validate_topic_config("compression.gzip.level", "-1").unwrap();
        validate_topic_config("compression.gzip.level", "9").unwrap();
        invalid("compression.gzip.level", "0");
        validate_topic_config("retention.bytes", "-12345").unwrap();
    }

    #[test]
    fn doubles_booleans_strings() {
        validate_topic_config("min.cleanable.dirty.ratio", "0.9").unwrap();
        invalid("min.cleanable.dirty.ratio", "1.5");
        invalid("min.cleanable.dirty.ratio", "NaN");
        validate_topic_config("preallocate", "FALSE").unwrap();
        assert_eq!(
            invalid("preallocate", "yes"),
            "Invalid value yes for configuration preallocate: Expected value to be either true or false"
        );
        validate_topic_config("compression.type", "zstd").unwrap();
        assert_eq!(
            invalid("compression.type", "brotli"),
            "Invalid value brotli for configuration compression.type: String must be one of: \
             uncompressed, zstd, lz4, snappy, gzip, producer"
        );
        invalid("message.timestamp.type", "createtime");
    }

    #[test]
    fn lists() {
        validate_topic_config("cleanup.policy", "compact,delete").unwrap();
        validate_topic_config("cleanup.policy", "compact , delete").unwrap();
        invalid("cleanup.policy", "compact,shred");
        // Well-formed, and refused only because throttling is not built.
        assert!(invalid("leader.replication.throttled.replicas", "*").contains("not built"));
        assert!(invalid("leader.replication.throttled.replicas", "0:1,1:2").contains("not built"));
        validate_topic_config("leader.replication.throttled.replicas", "").unwrap();
        assert!(invalid("follower.replication.throttled.replicas", "0-1")
            .contains("must be the literal"));
        assert_eq!(split_list(" a, b ,c "), vec!["a", "b", "c"]);
        assert!(split_list("  ").is_empty());
    }

    #[test]
    fn synonyms() {
        assert_eq!(
            by_broker_synonym("log.retention.ms").unwrap().name,
            "retention.ms"
        );
        assert!(by_broker_synonym("log.retention.hours").is_none());
        assert_eq!(
            by_broker_synonym("message.max.bytes").unwrap().name,
            "max.message.bytes"
        );
        assert_eq!(ConfigType::Long.describe_code(), 5);
    }

    #[test]
    fn features_that_are_not_built_take_only_their_default() {
        validate_topic_config("remote.storage.enable", "false").unwrap();
        validate_topic_config("leader.replication.throttled.replicas", " ").unwrap();
        validate_topic_config("local.retention.ms", "-2").unwrap();
        validate_topic_config("segment.index.bytes", "10485760").unwrap();
        assert_eq!(
            invalid("remote.storage.enable", "true"),
            "Invalid value true for configuration remote.storage.enable: tiered storage is not built, so \
             only the default false is accepted"
        );
        assert!(invalid("leader.replication.throttled.replicas", "*").contains("throttling"));
        assert!(invalid("preallocate", "true").contains("preallocated"));
        invalid("file.delete.delay.ms", "0");
        // Bad types are still reported as such.
        assert!(invalid("local.retention.ms", "x").contains("Not a number"));
        // Inert and honoured keys take any valid value.
        // Removed in Kafka 4, as here.
        invalid("message.downconversion.enable", "false");
        invalid("message.timestamp.difference.max.ms", "1000");
        validate_topic_config("flush.ms", "10").unwrap();
        assert_eq!(support("retention.ms"), Support::Honoured);
    }
}
