use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::api::{AlterConfigOp, CreateTopicSpec};
use crate::error::codes;
use crate::ops::test_support::*;
use crate::ops::topics::create_topics;
use crate::policy::{AlterConfigPolicy, Policies};

fn with_topic() -> MetadataImage {
    let image = image_with_brokers(&[1]);
    let out = create_topics(
        &image,
        &mut ctx(),
        &[CreateTopicSpec::new("t", 1, 1).with_config("retention.ms", "1000")],
        false,
    );
    commit(&image, &out.records)
}

fn spec(resource: ConfigResource, ops: Vec<AlterConfigOp>) -> AlterConfigSpec {
    AlterConfigSpec { resource, ops }
}

fn op(name: &str, op: AlterConfigOpType, value: &str) -> AlterConfigOp {
    AlterConfigOp {
        name: name.into(),
        op,
        value: Some(value.into()),
    }
}

fn codes_of(results: &[ResourceResult]) -> Vec<i16> {
    results
        .iter()
        .map(|r| r.result.as_ref().map_or_else(|e| e.error_code(), |_| 0))
        .collect()
}

fn topic_configs(image: &MetadataImage) -> BTreeMap<String, String> {
    image
        .resource_configs(&ConfigResource::topic("t"))
        .cloned()
        .unwrap_or_default()
}

fn run_incremental(image: &MetadataImage, specs: &[AlterConfigSpec]) -> (MetadataImage, Vec<i16>) {
    let out = incremental_alter_configs(image, &ctx(), specs, false);
    (commit(image, &out.records), codes_of(&out.response))
}

#[test]
fn set_and_delete() {
    let image = with_topic();
    let (image, codes) = run_incremental(
        &image,
        &[spec(
            ConfigResource::topic("t"),
            vec![
                AlterConfigOp::set("cleanup.policy", "compact"),
                AlterConfigOp::delete("retention.ms"),
            ],
        )],
    );
    assert_eq!(codes, vec![0]);
    let configs = topic_configs(&image);
    assert_eq!(
        configs.get("cleanup.policy").map(String::as_str),
        Some("compact")
    );
    assert!(!configs.contains_key("retention.ms"));
}

#[test]
fn append_and_subtract_on_lists() {
    let image = with_topic();
    // APPEND starts from the default ("delete") when there is no override.
    let (image, codes) = run_incremental(
        &image,
        &[spec(
            ConfigResource::topic("t"),
            vec![op("cleanup.policy", AlterConfigOpType::Append, "compact")],
        )],
    );
    assert_eq!(codes, vec![0]);
    assert_eq!(topic_configs(&image)["cleanup.policy"], "delete,compact");
    let (image, _) = run_incremental(
        &image,
        &[spec(
            ConfigResource::topic("t"),
            vec![op("cleanup.policy", AlterConfigOpType::Subtract, "delete")],
        )],
    );
    assert_eq!(topic_configs(&image)["cleanup.policy"], "compact");
    let (_, codes) = run_incremental(
        &image,
        &[spec(
            ConfigResource::topic("t"),
            vec![op("retention.ms", AlterConfigOpType::Append, "5")],
        )],
    );
    assert_eq!(codes, vec![codes::INVALID_CONFIG]);
}

#[test]
fn resource_and_value_errors() {
    let image = with_topic();
    let specs = [
        spec(
            ConfigResource::topic("missing"),
            vec![AlterConfigOp::set("retention.ms", "1")],
        ),
        spec(
            ConfigResource::topic(""),
            vec![AlterConfigOp::set("retention.ms", "1")],
        ),
        spec(
            ConfigResource::topic("t"),
            vec![AlterConfigOp::set("bogus.key", "1")],
        ),
        spec(
            ConfigResource::broker("x"),
            vec![AlterConfigOp::set("log.retention.ms", "1")],
        ),
        spec(
            ConfigResource {
                resource_type: ConfigResourceType::BrokerLogger,
                name: "1".into(),
            },
            vec![AlterConfigOp::set("kafka", "DEBUG")],
        ),
    ];
    let (_, codes) = run_incremental(&image, &specs);
    assert_eq!(
        codes,
        vec![
            codes::UNKNOWN_TOPIC_OR_PARTITION,
            codes::INVALID_REQUEST,
            codes::INVALID_CONFIG,
            codes::INVALID_REQUEST,
            codes::INVALID_REQUEST,
        ]
    );
    let (image2, codes) = run_incremental(
        &image,
        &[spec(
            ConfigResource::topic("t"),
            vec![
                AlterConfigOp::set("segment.ms", "1"),
                AlterConfigOp::set("retention.ms", "-5"),
            ],
        )],
    );
    assert_eq!(codes, vec![codes::INVALID_CONFIG]);
    // Nothing of a rejected resource is applied.
    assert_eq!(topic_configs(&image2), topic_configs(&image));
}

#[test]
fn duplicate_keys_and_resources() {
    let image = with_topic();
    let (_, codes) = run_incremental(
        &image,
        &[spec(
            ConfigResource::topic("t"),
            vec![
                AlterConfigOp::set("segment.ms", "1"),
                AlterConfigOp::delete("segment.ms"),
            ],
        )],
    );
    assert_eq!(codes, vec![codes::INVALID_REQUEST]);
    let s = spec(
        ConfigResource::topic("t"),
        vec![AlterConfigOp::set("segment.ms", "1")],
    );
    let (_, codes) = run_incremental(&image, &[s.clone(), s]);
    assert_eq!(codes, vec![codes::INVALID_REQUEST; 2]);
}

#[test]
fn broker_dynamic_defaults() {
    let image = with_topic();
    let (image, codes) = run_incremental(
        &image,
        &[
            spec(
                ConfigResource::broker(""),
                vec![AlterConfigOp::set("log.retention.ms", "5000")],
            ),
            spec(
                ConfigResource::broker("1"),
                vec![AlterConfigOp::set("message.max.bytes", "2000")],
            ),
        ],
    );
    assert_eq!(codes, vec![0, 0]);
    assert_eq!(
        image.resource_configs(&ConfigResource::broker("")).unwrap()["log.retention.ms"],
        "5000"
    );
    let (_, codes) = run_incremental(
        &image,
        &[
            spec(
                ConfigResource::broker(""),
                vec![AlterConfigOp::set("log.retention.ms", "x")],
            ),
            spec(
                ConfigResource::broker("1"),
                vec![AlterConfigOp::set("listeners", "PLAINTEXT://:1")],
            ),
        ],
    );
    // Broker configs are refused as Kafka's receiving broker refuses them: INVALID_REQUEST.
    assert_eq!(codes, vec![codes::INVALID_REQUEST, codes::INVALID_REQUEST]);
}

#[test]
fn validate_only_changes_nothing() {
    let image = with_topic();
    let out = incremental_alter_configs(
        &image,
        &ctx(),
        &[spec(
            ConfigResource::topic("t"),
            vec![AlterConfigOp::set("segment.ms", "1")],
        )],
        true,
    );
    assert_eq!(codes_of(&out.response), vec![0]);
    assert!(out.records.is_empty());
}

#[test]
fn legacy_alter_replaces_everything() {
    let image = with_topic();
    let out = alter_configs(
        &image,
        &ctx(),
        &[spec(
            ConfigResource::topic("t"),
            vec![AlterConfigOp::set("segment.ms", "10")],
        )],
        false,
    );
    assert_eq!(codes_of(&out.response), vec![0]);
    let image = commit(&image, &out.records);
    let expected: BTreeMap<_, _> = [("segment.ms".to_owned(), "10".to_owned())].into();
    assert_eq!(topic_configs(&image), expected);

    let null = AlterConfigOp {
        name: "segment.ms".into(),
        op: AlterConfigOpType::Set,
        value: None,
    };
    let out = alter_configs(
        &image,
        &ctx(),
        &[spec(ConfigResource::topic("t"), vec![null])],
        false,
    );
    assert_eq!(codes_of(&out.response), vec![codes::INVALID_REQUEST]);
}

#[test]
fn unchanged_values_make_no_records() {
    let image = with_topic();
    let out = incremental_alter_configs(
        &image,
        &ctx(),
        &[spec(
            ConfigResource::topic("t"),
            vec![AlterConfigOp::set("retention.ms", "1000")],
        )],
        false,
    );
    assert_eq!(codes_of(&out.response), vec![0]);
    assert!(out.records.is_empty());
}

struct RetentionCap;

impl AlterConfigPolicy for RetentionCap {
    fn validate(
        &self,
        _resource: &ConfigResource,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        match configs
            .get("retention.ms")
            .and_then(|v| v.parse::<i64>().ok())
        {
            Some(ms) if ms > 10_000 => Err("retention.ms is capped at 10000".into()),
            _ => Ok(()),
        }
    }
}

#[test]
fn alter_config_policy_violation() {
    let image = with_topic();
    let ctx = ctx_with(Policies {
        create_topic: None,
        alter_config: Some(Arc::new(RetentionCap)),
    });
    let out = incremental_alter_configs(
        &image,
        &ctx,
        &[spec(
            ConfigResource::topic("t"),
            vec![AlterConfigOp::set("retention.ms", "20000")],
        )],
        false,
    );
    assert_eq!(codes_of(&out.response), vec![codes::POLICY_VIOLATION]);
    assert_eq!(
        out.response[0].result.as_ref().unwrap_err().message(),
        "retention.ms is capped at 10000"
    );
    assert!(out.records.is_empty());
}

/// Keys whose feature is not built take only their default, on topics and as broker defaults; keys Kafka can
/// change at run time that Kraftwerk reads only at start are refused with Kafka's read-only message.
#[test]
fn features_that_are_not_built_and_static_broker_keys_are_refused() {
    let image = with_topic();
    let out = incremental_alter_configs(
        &image,
        &ctx(),
        &[
            spec(
                ConfigResource::topic("t"),
                vec![AlterConfigOp::set("remote.storage.enable", "true")],
            ),
            spec(
                ConfigResource::broker(""),
                vec![AlterConfigOp::set("log.preallocate", "true")],
            ),
            spec(
                ConfigResource::broker("1"),
                vec![AlterConfigOp::set("num.io.threads", "4")],
            ),
        ],
        false,
    );
    assert!(out.records.is_empty());
    let messages: Vec<String> = out
        .response
        .iter()
        .map(|r| r.result.as_ref().unwrap_err().to_string())
        .collect();
    assert_eq!(
        codes_of(&out.response),
        vec![
            codes::INVALID_CONFIG,
            codes::INVALID_REQUEST,
            codes::INVALID_REQUEST
        ],
        "{messages:?}"
    );
    assert!(
        messages[0].contains("tiered storage is not built"),
        "{messages:?}"
    );
    assert!(messages[1].contains("not preallocated"), "{messages:?}");
    assert!(
        messages[2].contains("Cannot update these configs dynamically: num.io.threads"),
        "{messages:?}"
    );
    // At their defaults they are accepted.
    let (_, codes) = run_incremental(
        &image,
        &[
            spec(
                ConfigResource::topic("t"),
                vec![AlterConfigOp::set("remote.storage.enable", "false")],
            ),
            spec(
                ConfigResource::broker(""),
                vec![
                    AlterConfigOp::set("log.preallocate", "FALSE"),
                    AlterConfigOp::set("log.flush.interval.ms", "1000"),
                    AlterConfigOp::set("compression.type", "zstd"),
                    AlterConfigOp::set("log.cleaner.threads", "2"),
                    AlterConfigOp::set("log.cleaner.io.max.bytes.per.second", "1048576"),
                ],
            ),
        ],
    );
    assert_eq!(codes, vec![0, 0]);
    let (_, codes) = run_incremental(
        &image,
        &[
            spec(
                ConfigResource::broker("1"),
                vec![AlterConfigOp::set("log.cleaner.threads", "0")],
            ),
            spec(
                ConfigResource::broker(""),
                vec![AlterConfigOp::set(
                    "log.cleaner.io.max.bytes.per.second",
                    "-1",
                )],
            ),
        ],
    );
    assert_eq!(codes, vec![codes::INVALID_REQUEST, codes::INVALID_REQUEST]);
}

/// Only DELETE may go without a value: a null SET, APPEND or SUBTRACT is INVALID_REQUEST (Kafka's
/// "Null value not supported for : <key>"), not a deletion.
#[test]
fn null_values_are_refused_except_for_delete() {
    let image = with_topic();
    let (image, codes) = run_incremental(
        &image,
        &[spec(
            ConfigResource::topic("t"),
            vec![AlterConfigOp::set("retention.ms", "1000")],
        )],
    );
    assert_eq!(codes, vec![0]);
    for op in [
        AlterConfigOpType::Set,
        AlterConfigOpType::Append,
        AlterConfigOpType::Subtract,
    ] {
        let null = AlterConfigOp {
            name: "retention.ms".into(),
            op,
            value: None,
        };
        let out = incremental_alter_configs(
            &image,
            &ctx(),
            &[spec(ConfigResource::topic("t"), vec![null])],
            false,
        );
        assert_eq!(
            codes_of(&out.response),
            vec![codes::INVALID_REQUEST],
            "{op}"
        );
        assert!(out.records.is_empty());
        assert!(out.response[0]
            .result
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("Null value not supported for : retention.ms"));
    }
    assert_eq!(topic_configs(&image)["retention.ms"], "1000");
    let (image, codes) = run_incremental(
        &image,
        &[spec(
            ConfigResource::topic("t"),
            vec![AlterConfigOp {
                name: "retention.ms".into(),
                op: AlterConfigOpType::Delete,
                value: None,
            }],
        )],
    );
    assert_eq!(codes, vec![0]);
    assert!(!topic_configs(&image).contains_key("retention.ms"));
}
