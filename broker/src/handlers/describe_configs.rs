//! DescribeConfigs for topics and brokers, with Kafka's value sources and synonyms, so `kafka-configs
//! --describe --all`, AKHQ and the Admin client see where each value comes from.
//!
//! A topic value is its dynamic override (TOPIC_CONFIG), else the broker's static setting of a synonym key
//! (STATIC_BROKER_CONFIG, e.g. `log.retention.hours` for `retention.ms`), else Kafka's default (DEFAULT_CONFIG).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_controller::records::ConfigResource;
use kraftwerk_controller::{topic_configs, MetadataImage};

use crate::broker_configs::BROKER_CONFIGS;
use crate::config::BrokerConfig;
use crate::context::BrokerContext;
use crate::image_ext::ImageExt;
use crate::log_levels::{self, LogLevels};

use super::errors::code;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;

/// DescribeConfigs `config_source` codes.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_DYNAMIC_BROKER_LOGGER: i8 = 6;

struct Entry {
    /// Kafka's `read_only`: a broker config that cannot be changed at run time here.
    read_only: bool,
    name: String,
    value: Option<String>,
    source: i8,
    config_type: i8,
    doc: &'static str,
    /// (synonym name, value, source), most specific first.
    synonyms: Vec<(String, Option<String>, i8)>,
}

pub fn handle(
    ctx: &Arc<BrokerContext>,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let image = ctx.controller.image();
    let mut resp = DescribeConfigsResponse::default();
    for res in req.resources {
        let name = res.resource_name.as_str().to_string();
        let mut out = DescribeConfigsResult::default();
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name.clone();
        let entries = match res.resource_type {
            RESOURCE_TOPIC => {
                if image.topic(&name).is_none() {
                    resp.results.push(unknown_topic(out));
                    continue;
                }
                topic_entries(
                    &ctx.config,
                    &DynamicBroker::of(&image, ctx.node_id),
                    image.topic_configs(&name),
                )
            }
            RESOURCE_BROKER => {
                if !name.is_empty() && name != ctx.node_id.to_string() {
                    out.error_code = code(ResponseError::InvalidRequest);
                    out.error_message = Some(StrBytes::from_string(format!(
                        "broker {} cannot describe the configs of broker {name}",
                        ctx.node_id
                    )));
                    resp.results.push(out);
                    continue;
                }
                if name.is_empty() {
                    default_entries(&ctx.config, &image, ctx.node_id)
                } else {
                    broker_entries(&ctx.config, &image, ctx.node_id)
                }
            }
            RESOURCE_BROKER_LOGGER => {
                let wanted: Option<Vec<&str>> = res
                    .configuration_keys
                    .as_ref()
                    .map(|keys| keys.iter().map(|k| k.as_str()).collect());
                match broker_loggers(ctx.node_id, &name, log_levels::installed(), wanted) {
                    Ok(configs) => out.configs = configs,
                    Err(message) => {
                        out.error_code = code(ResponseError::InvalidRequest);
                        out.error_message = Some(StrBytes::from_string(message));
                    }
                }
                resp.results.push(out);
                continue;
            }
            other => {
                out.error_code = code(ResponseError::InvalidRequest);
                out.error_message = Some(StrBytes::from_string(format!(
                    "config resource type {other} is not supported"
                )));
                resp.results.push(out);
                continue;
            }
        };
        let wanted: Option<Vec<String>> = res
            .configuration_keys
            .map(|keys| keys.iter().map(|k| k.as_str().to_string()).collect());
        out.configs = entries
            .into_iter()
            .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.name)))
            .map(|e| to_wire(e, version, req.include_synonyms, req.include_documentation))
            .collect();
        resp.results.push(out);
    }
    resp
}

/// A broker's loggers (BROKER_LOGGER) with their levels, as Kafka's `ConfigHelper` lists log4j's: each
/// DYNAMIC_BROKER_LOGGER_CONFIG, writable, no synonyms, and the other fields left at the message's defaults
/// (Kafka sets neither a type nor documentation for them). Only this broker's own id is accepted.
fn broker_loggers(
    node_id: i32,
    name: &str,
    levels: Option<&LogLevels>,
    wanted: Option<Vec<&str>>,
) -> Result<Vec<DescribeConfigsResourceResult>, String> {
    if name.is_empty() {
        return Err("Broker id must not be empty".into());
    }
    let id: i32 = name
        .parse()
        .map_err(|_| format!("Broker id must be an integer, but it is: {name}"))?;
    if id != node_id {
        return Err(format!(
            "Unexpected broker id, expected {node_id} but received {name}"
        ));
    }
    let levels = levels.ok_or("this process's log levels are not run-time changeable")?;
    Ok(levels
        .loggers()
        .into_iter()
        .filter(|(logger, _)| wanted.as_ref().is_none_or(|w| w.contains(&logger.as_str())))
        .map(|(logger, level)| {
            let mut r = DescribeConfigsResourceResult::default();
            r.name = StrBytes::from_string(logger);
            r.value = Some(StrBytes::from_static_str(level.name()));
            r.config_source = SOURCE_DYNAMIC_BROKER_LOGGER;
            r.read_only = false;
            r.is_sensitive = false;
            r
        })
        .collect())
}

fn to_wire(
    e: Entry,
    version: i16,
    include_synonyms: bool,
    include_doc: bool,
) -> DescribeConfigsResourceResult {
    let mut r = DescribeConfigsResourceResult::default();
    r.name = StrBytes::from_string(e.name);
    r.value = e.value.map(StrBytes::from_string);
    r.read_only = e.read_only;
    r.config_source = e.source;
    r.is_sensitive = false;
    if version >= 3 {
        r.config_type = e.config_type;
        // Not asked for: null, as Kafka sends it (the codec's default is "").
        r.documentation = include_doc.then(|| StrBytes::from_static_str(e.doc));
    }
    if include_synonyms {
        r.synonyms = e
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                let mut s = DescribeConfigsSynonym::default();
                s.name = StrBytes::from_string(name);
                s.value = value.map(StrBytes::from_string);
                s.source = source;
                s
            })
            .collect();
    }
    r
}

/// The broker's effective value for a topic config's synonym keys, in milliseconds/bytes as the topic key
/// expects (so `log.retention.hours=1` describes `retention.ms` as 3600000).
fn static_broker_value(config: &BrokerConfig, synonyms: &[&str]) -> Option<(String, String)> {
    let key = synonyms.iter().find(|k| config.raw.contains_key(**k))?;
    let value = match *key {
        "log.retention.hours" | "log.retention.minutes" | "log.retention.ms" => {
            config.log_retention_ms.to_string()
        }
        "log.roll.hours" | "log.roll.ms" => config.log_roll_ms.to_string(),
        other => config.raw.get(other)?.clone(),
    };
    Some(((*key).to_string(), value))
}

/// Kafka's defaults of `names` (a topic config's broker synonyms, the primary `key` first) as DEFAULT_CONFIG
/// synonyms. Kafka's `ConfigHelper.configSynonyms` lists every source's values of the names and then drops
/// the leading entries not named `key`: unless an entry named `key` came before them (`anchored`), the
/// defaults start at `key`'s own, so a key without a default of its own (`log.retention.ms`, whose value
/// Kafka takes from `log.retention.hours`) lists none. A primary key missing from [`BROKER_CONFIGS`] (one
/// whose feature is not built, such as `log.local.retention.ms`) has the topic config's default.
fn broker_defaults(
    names: &[&str],
    key: Option<&str>,
    topic_default: &str,
    anchored: bool,
) -> Vec<(String, Option<String>, i8)> {
    names
        .iter()
        .filter_map(|name| {
            let default = match BROKER_CONFIGS.iter().find(|d| d.name == *name) {
                Some(def) => def.default?,
                None if Some(*name) == key => topic_default,
                None => return None,
            };
            Some((name.to_string(), Some(default.to_string()), SOURCE_DEFAULT))
        })
        .skip_while(|(name, ..)| !anchored && Some(name.as_str()) != key)
        .collect()
}

/// Kafka's `DynamicBrokerConfig.brokerConfigSynonyms`: the broker keys that set the same thing as `name`, in
/// Kafka's order (`log.retention.ms`, `.minutes`, `.hours`); the key alone for most.
fn broker_config_synonyms(name: &str) -> Vec<&'static str> {
    topic_configs::definitions()
        .iter()
        .find(|d| d.broker_synonyms.len() > 1 && d.broker_synonyms.contains(&name))
        .map(|d| d.broker_synonyms.to_vec())
        .unwrap_or_default()
}

/// This broker's dynamic configs and the cluster-wide dynamic defaults (`kafka-configs --entity-type brokers`).
pub struct DynamicBroker {
    own: BTreeMap<String, String>,
    default: BTreeMap<String, String>,
}

impl DynamicBroker {
    pub fn of(image: &MetadataImage, node_id: i32) -> Self {
        let get = |name: String| {
            image
                .resource_configs(&ConfigResource::broker(name))
                .cloned()
                .unwrap_or_default()
        };
        DynamicBroker {
            own: get(node_id.to_string()),
            default: get(String::new()),
        }
    }
}

fn topic_entries(
    config: &BrokerConfig,
    dynamic_broker: &DynamicBroker,
    overrides: &BTreeMap<String, String>,
) -> Vec<Entry> {
    topic_configs::definitions()
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            let dynamic = overrides.get(def.name).cloned();
            if let Some(v) = &dynamic {
                synonyms.push((def.name.to_string(), Some(v.clone()), SOURCE_TOPIC));
            }
            // The dynamic broker values of the primary synonym (the only one AlterConfigs accepts), which the
            // partitions use before the static value (replica/log_config.rs).
            let primary = def.broker_synonyms.first().copied();
            let mut dynamic_broker_value = None;
            for (map, source) in [
                (&dynamic_broker.own, SOURCE_DYNAMIC_BROKER),
                (&dynamic_broker.default, SOURCE_DYNAMIC_DEFAULT_BROKER),
            ] {
                if let Some((k, v)) = primary.and_then(|k| map.get(k).map(|v| (k, v))) {
                    synonyms.push((k.to_string(), Some(v.clone()), source));
                    dynamic_broker_value.get_or_insert((v.clone(), source));
                }
            }
            let broker = static_broker_value(config, def.broker_synonyms);
            if let Some((k, v)) = &broker {
                synonyms.push((k.clone(), Some(v.clone()), SOURCE_STATIC_BROKER));
            }
            let anchored = synonyms
                .iter()
                .any(|(k, _, source)| *source != SOURCE_TOPIC && Some(k.as_str()) == primary);
            synonyms.extend(broker_defaults(
                def.broker_synonyms,
                primary,
                def.default,
                anchored,
            ));
            let (value, source) = match (dynamic, dynamic_broker_value, broker) {
                (Some(v), _, _) => (v, SOURCE_TOPIC),
                (None, Some((v, source)), _) => (v, source),
                (None, None, Some((_, v))) => (v, SOURCE_STATIC_BROKER),
                (None, None, None) => (def.default.to_string(), SOURCE_DEFAULT),
            };
            Entry {
                read_only: false,
                name: def.name.to_string(),
                value: Some(value),
                source,
                config_type: def.config_type.describe_code(),
                doc: def.doc,
                synonyms,
            }
        })
        .collect()
}

/// (name, value, source) of every config of a topic with the given overrides, for CreateTopics v5+ responses.
pub fn topic_config_values(
    config: &BrokerConfig,
    dynamic_broker: &DynamicBroker,
    overrides: &BTreeMap<String, String>,
) -> Vec<(String, String, i8)> {
    topic_entries(config, dynamic_broker, overrides)
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default(), e.source))
        .collect()
}

fn broker_entries(config: &BrokerConfig, image: &MetadataImage, node_id: i32) -> Vec<Entry> {
    let empty = BTreeMap::new();
    let dynamic = image
        .resource_configs(&ConfigResource::broker(node_id.to_string()))
        .unwrap_or(&empty);
    let dynamic_default = image
        .resource_configs(&ConfigResource::broker(""))
        .unwrap_or(&empty);
    BROKER_CONFIGS
        .iter()
        .map(|def| {
            let candidates = [
                (dynamic.get(def.name).cloned(), SOURCE_DYNAMIC_BROKER),
                (
                    dynamic_default.get(def.name).cloned(),
                    SOURCE_DYNAMIC_DEFAULT_BROKER,
                ),
                (config.raw.get(def.name).cloned(), SOURCE_STATIC_BROKER),
                (def.default.map(str::to_string), SOURCE_DEFAULT),
            ];
            let synonyms = broker_key_synonyms(def.name, config, dynamic, dynamic_default);
            let (value, source) = candidates
                .into_iter()
                .find(|(v, _)| v.is_some())
                .unwrap_or((None, SOURCE_DEFAULT));
            Entry {
                // What AlterConfigs refuses with "Cannot update these configs dynamically".
                read_only: !crate::config_keys::spec(def.name).is_some_and(|k| k.dynamic),
                name: def.name.to_string(),
                value,
                source,
                config_type: def.config_type as i8,
                doc: def.doc,
                synonyms,
            }
        })
        .chain(dynamic_only_entries(dynamic, dynamic_default))
        .collect()
}

/// Kafka's synonyms of broker key `name` (`ConfigHelper.configSynonyms` over `brokerConfigSynonyms`): the
/// values of the key and its synonyms from this broker's dynamic configs, the cluster's dynamic defaults,
/// server.properties and Kafka's defaults, in that order, without the leading entries named otherwise than
/// `name` (so `log.retention.ms` set nowhere lists no synonym, and set dynamically lists
/// `log.retention.hours`'s default after it).
fn broker_key_synonyms(
    name: &str,
    config: &BrokerConfig,
    dynamic: &BTreeMap<String, String>,
    dynamic_default: &BTreeMap<String, String>,
) -> Vec<(String, Option<String>, i8)> {
    let mut names = broker_config_synonyms(name);
    if names.is_empty() {
        names.push(name);
    }
    let default_of = |key: &str| {
        BROKER_CONFIGS
            .iter()
            .find(|d| d.name == key)
            .and_then(|d| d.default)
            .map(str::to_string)
    };
    let mut synonyms = Vec::new();
    for source in [
        SOURCE_DYNAMIC_BROKER,
        SOURCE_DYNAMIC_DEFAULT_BROKER,
        SOURCE_STATIC_BROKER,
        SOURCE_DEFAULT,
    ] {
        for key in &names {
            let value = match source {
                SOURCE_DYNAMIC_BROKER => dynamic.get(*key).cloned(),
                SOURCE_DYNAMIC_DEFAULT_BROKER => dynamic_default.get(*key).cloned(),
                SOURCE_STATIC_BROKER => config.raw.get(*key).cloned(),
                _ => default_of(key),
            };
            if value.is_some() {
                synonyms.push((key.to_string(), value, source));
            }
        }
    }
    let start = synonyms
        .iter()
        .position(|(key, ..)| key == name)
        .unwrap_or(synonyms.len());
    synonyms.split_off(start)
}

/// The cluster-wide default resource (BROKER ""), as Kafka describes it: only the keys set as dynamic
/// defaults, each with that value and its DYNAMIC_DEFAULT_BROKER_CONFIG synonyms.
fn default_entries(config: &BrokerConfig, image: &MetadataImage, node_id: i32) -> Vec<Entry> {
    let empty = BTreeMap::new();
    let dynamic_default = image
        .resource_configs(&ConfigResource::broker(""))
        .unwrap_or(&empty);
    broker_entries(config, image, node_id)
        .into_iter()
        .filter_map(|mut e| {
            let value = dynamic_default.get(&e.name)?;
            e.value = Some(value.clone());
            e.source = SOURCE_DYNAMIC_DEFAULT_BROKER;
            e.synonyms
                .retain(|(_, _, source)| *source == SOURCE_DYNAMIC_DEFAULT_BROKER);
            Some(e)
        })
        .collect()
}

/// Dynamic broker configs (broker defaults of topic configs) whose key is not one of [`BROKER_CONFIGS`]: shown
/// with their source, so what `kafka-configs --alter --entity-type brokers` committed is what `--describe` shows.
fn dynamic_only_entries<'a>(
    own: &'a BTreeMap<String, String>,
    default: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = Entry> + 'a {
    let keys: std::collections::BTreeSet<&String> = own
        .keys()
        .chain(default.keys())
        .filter(|k| !BROKER_CONFIGS.iter().any(|d| d.name == k.as_str()))
        .collect();
    keys.into_iter().filter_map(move |key| {
        let def = topic_configs::by_broker_synonym(key)?;
        let mut synonyms = Vec::new();
        for (map, source) in [
            (own, SOURCE_DYNAMIC_BROKER),
            (default, SOURCE_DYNAMIC_DEFAULT_BROKER),
        ] {
            if let Some(v) = map.get(key) {
                synonyms.push((key.clone(), Some(v.clone()), source));
            }
        }
        let (_, value, source) = synonyms.first()?.clone();
        Some(Entry {
            read_only: false,
            name: key.clone(),
            value,
            source,
            config_type: def.config_type.describe_code(),
            doc: def.doc,
            synonyms,
        })
    })
}

/// A topic that does not exist: UNKNOWN_TOPIC_OR_PARTITION with the empty message Kafka's ConfigHelper sends
/// (the exception it answers with has no text).
fn unknown_topic(out: DescribeConfigsResult) -> DescribeConfigsResult {
    out.with_error_code(code(ResponseError::UnknownTopicOrPartition))
        .with_error_message(Some(StrBytes::default()))
}

#[cfg(test)]
mod unknown_topic_tests {
    use super::*;

    #[test]
    fn an_unknown_topic_has_an_empty_message() {
        let out = unknown_topic(DescribeConfigsResult::default());
        assert_eq!(out.error_code, 3);
        assert_eq!(out.error_message.as_deref(), Some(""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            read_only: false,
            name: "retention.ms".into(),
            value: Some("1".into()),
            source: 1,
            config_type: 5,
            doc: "How long a log is kept.",
            synonyms: Vec::new(),
        }
    }

    fn config() -> BrokerConfig {
        BrokerConfig::from_properties(BrokerConfig::single_node_defaults()).expect("defaults")
    }

    /// An image with `(resource, key, value)` dynamic broker configs.
    fn image(configs: &[(&str, &str, &str)]) -> MetadataImage {
        use kraftwerk_controller::records::{ConfigRecord, MetadataRecord};
        let records: Vec<MetadataRecord> = configs
            .iter()
            .map(|(resource, name, value)| {
                MetadataRecord::Config(ConfigRecord {
                    resource: ConfigResource::broker(*resource),
                    name: name.to_string(),
                    value: Some(value.to_string()),
                })
            })
            .collect();
        MetadataImage::empty("c").apply(1, &records)
    }

    fn synonyms_of<'a>(entries: &'a [Entry], name: &str) -> Vec<(&'a str, i8)> {
        entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| {
                e.synonyms
                    .iter()
                    .map(|(k, _, s)| (k.as_str(), *s))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kafka's ConfigHelper: a topic key lists its primary broker synonym's default only when that key has
    /// one (`log.cleanup.policy`), not another synonym's (`log.retention.hours` for `retention.ms`), unless
    /// the primary key is set.
    #[test]
    fn topic_synonyms_start_at_the_primary_broker_key() {
        let overrides = BTreeMap::new();
        let plain = topic_entries(&config(), &DynamicBroker::of(&image(&[]), 1), &overrides);
        assert_eq!(
            synonyms_of(&plain, "cleanup.policy"),
            vec![("log.cleanup.policy", SOURCE_DEFAULT)]
        );
        for key in [
            "retention.ms",
            "segment.ms",
            "flush.ms",
            "segment.jitter.ms",
        ] {
            assert!(synonyms_of(&plain, key).is_empty(), "{key}");
        }
        let dynamic = topic_entries(
            &config(),
            &DynamicBroker::of(&image(&[("1", "log.retention.ms", "5000")]), 1),
            &overrides,
        );
        assert_eq!(
            synonyms_of(&dynamic, "retention.ms"),
            vec![
                ("log.retention.ms", SOURCE_DYNAMIC_BROKER),
                ("log.retention.hours", SOURCE_DEFAULT)
            ]
        );
    }

    #[test]
    fn broker_synonyms_follow_kafkas_synonym_lists() {
        let config = config();
        let plain = broker_entries(&config, &image(&[]), 1);
        assert!(synonyms_of(&plain, "log.retention.ms").is_empty());
        assert_eq!(
            synonyms_of(&plain, "log.retention.hours"),
            vec![("log.retention.hours", SOURCE_DEFAULT)]
        );
        let set = broker_entries(&config, &image(&[("1", "log.retention.ms", "5000")]), 1);
        assert_eq!(
            synonyms_of(&set, "log.retention.ms"),
            vec![
                ("log.retention.ms", SOURCE_DYNAMIC_BROKER),
                ("log.retention.hours", SOURCE_DEFAULT)
            ]
        );
    }

    /// BROKER "" lists only what is set as a cluster-wide dynamic default, from that source only.
    #[test]
    fn the_default_resource_lists_the_dynamic_defaults_only() {
        let image = image(&[
            ("", "log.retention.bytes", "1024"),
            ("1", "log.retention.ms", "5000"),
        ]);
        let entries = default_entries(&config(), &image, 1);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["log.retention.bytes"]);
        assert_eq!(entries[0].value.as_deref(), Some("1024"));
        assert_eq!(entries[0].source, SOURCE_DYNAMIC_DEFAULT_BROKER);
        assert_eq!(
            synonyms_of(&entries, "log.retention.bytes"),
            vec![("log.retention.bytes", SOURCE_DYNAMIC_DEFAULT_BROKER)]
        );
    }

    #[test]
    fn documentation_is_null_unless_asked_for() {
        assert_eq!(to_wire(entry(), 4, false, false).documentation, None);
        assert_eq!(
            to_wire(entry(), 4, false, true).documentation.as_deref(),
            Some("How long a log is kept.")
        );
    }
}
