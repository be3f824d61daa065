//! The admin APIs' scenarios: configs (incremental and legacy), ACLs (without an authorizer on the shared
//! pair, with one on a second pair), client quotas, SCRAM credentials, DeleteRecords, ElectLeaders,
//! partition reassignments and DescribeQuorum, each at the lowest and highest version both brokers
//! advertise, on the success path and its error paths.
//!
//! A child of `scenarios` so it shares its request builders and setup steps.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    alter_configs_request, alter_user_scram_credentials_request, incremental_alter_configs_request,
    AlterConfigsRequest, AlterPartitionReassignmentsRequest, AlterUserScramCredentialsRequest,
    CreateAclsRequest, DeleteAclsRequest, DeleteAclsResponse, DeleteRecordsRequest,
    DescribeAclsRequest, DescribeAclsResponse, DescribeClientQuotasRequest, DescribeConfigsRequest,
    DescribeQuorumRequest, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse, ElectLeadersRequest, IncrementalAlterConfigsRequest,
    ListPartitionReassignmentsRequest, ProduceRequest,
};
use kafka_protocol::protocol::Request;
use kraftwerk_tests::apache_kafka::ApacheKafka;
use kraftwerk_tests::conformance::compare::{Normalise, Rule};
use kraftwerk_tests::conformance::Pair;
use kraftwerk_tests::Broker;

use super::{
    batch, check, creatable, create_on_both, produce_pair, s, setup_produce, topic_name,
    wait_for_both, TIMEOUT_MS,
};

/// Kafka's class, which Kraftwerk's `authorizer.class.name` accepts too.
const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The scenarios on the shared pair (no authorizer), then the ACL scenarios on a second pair with the
/// StandardAuthorizer, which starts meanwhile.
pub fn run_all(pair: &mut Pair, cluster_id: &'static str) {
    let authorized = std::thread::spawn(move || start_with_authorizer(cluster_id));
    incremental_alter_configs(pair);
    describe_broker_loggers(pair);
    alter_configs(pair);
    acls_without_authorizer(pair);
    describe_client_quotas(pair);
    scram_credentials(pair);
    delete_records(pair);
    describe_log_dirs_all(pair);
    elect_leaders(pair);
    reassignments(pair);
    describe_quorum(pair);
    let (kafka, kraftwerk) = match authorized.join() {
        Ok(brokers) => brokers,
        Err(_) => panic!("the start-up of the pair with an authorizer panicked"),
    };
    let mut acl_pair = Pair::connect(kafka.addr(), kraftwerk.addr()).expect("connect to both");
    acls_with_authorizer(&mut acl_pair);
    let found = std::mem::take(&mut acl_pair.report);
    let report = &mut pair.report;
    report.differences.extend(found.differences);
    report.notes.extend(found.notes);
    report.exchanges += found.exchanges;
    report.scenarios.extend(found.scenarios);
    report.covered.extend(found.covered);
}

/// Apache Kafka and Kraftwerk with the StandardAuthorizer; `super.users` covers the harness's PLAINTEXT
/// principal, User:ANONYMOUS, which is also what the nodes' own requests carry.
fn start_with_authorizer(cluster_id: &'static str) -> (ApacheKafka, Broker) {
    const AUTH: &[(&str, &str)] = &[
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:ANONYMOUS"),
    ];
    let kafka = std::thread::spawn(move || ApacheKafka::start(cluster_id, AUTH));
    let mut builder = Broker::builder().cluster_id(cluster_id).rust_log("warn");
    for (k, v) in AUTH {
        builder = builder.prop(*k, *v);
    }
    let kraftwerk = builder
        .start()
        .expect("kraftwerk with an authorizer starts");
    match kafka.join() {
        Ok(Ok(k)) => (k, kraftwerk),
        Ok(Err(e)) => panic!("Apache Kafka with an authorizer does not start: {e}"),
        Err(_) => panic!("Apache Kafka start-up thread panicked"),
    }
}

// --- IncrementalAlterConfigs, AlterConfigs ------------------------------------------------------------

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

fn incremental(
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(
                ops.iter()
                    .map(|(k, op, v)| {
                        AlterableConfig::default()
                            .with_name(s(k))
                            .with_config_operation(*op)
                            .with_value(v.map(s))
                    })
                    .collect(),
            )])
}

fn legacy(
    resource_type: i8,
    name: &str,
    configs: &[(&str, &str)],
    validate_only: bool,
) -> AlterConfigsRequest {
    use alter_configs_request::{AlterConfigsResource, AlterableConfig};
    AlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(s(k))
                            .with_value(Some(s(v)))
                    })
                    .collect(),
            )])
}

/// After a change, what the resource reports for `keys` (compared, so a change one broker applied
/// and the other did not is a difference).
fn describe_after(pair: &mut Pair, scenario: &str, resource_type: i8, name: &str, keys: &[&str]) {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let v = check(
        "DescribeConfigs version",
        pair.max_version::<DescribeConfigsRequest>(),
    );
    let req = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configuration_keys(Some(keys.iter().map(|k| s(k)).collect()))])
        .with_include_synonyms(true);
    // Kafka's broker applies a committed change from its metadata log a moment after the answer (a value,
    // or a broker default behind a synonym): ask again (for a few seconds) until both report the same,
    // then compare what they report.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (a, b) = loop {
        let (mut a, mut b) = check("DescribeConfigs after", pair.both(v, &req));
        for r in a.results.iter_mut().chain(b.results.iter_mut()) {
            r.configs.sort_by(|x, y| x.name.cmp(&y.name));
        }
        if a.results == b.results || Instant::now() > deadline {
            break (a, b);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let scenario = format!("{scenario} (described)");
    check(
        "compare",
        pair.compare(&scenario, DescribeConfigsRequest::KEY, v, &a, &b, &[]),
    );
}

/// A config scenario: its name, the request, and the resource (type, name) described after it, if any.
type Case<'a, R> = (&'a str, R, Option<(i8, &'a str)>);

fn incremental_alter_configs(pair: &mut Pair) {
    for v in pair.versions::<IncrementalAlterConfigsRequest>() {
        let topic = format!("conf-iac-v{v}");
        create_on_both(pair, vec![creatable(&topic, 1, 1, &[])]);
        let cases: Vec<Case<IncrementalAlterConfigsRequest>> = vec![
            (
                "incremental alter configs topic set",
                incremental(
                    TOPIC,
                    &topic,
                    &[
                        ("retention.ms", SET, Some("7200000")),
                        ("cleanup.policy", SET, Some("delete")),
                    ],
                    false,
                ),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "incremental alter configs topic append",
                incremental(
                    TOPIC,
                    &topic,
                    &[("cleanup.policy", APPEND, Some("compact"))],
                    false,
                ),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "incremental alter configs topic subtract",
                incremental(
                    TOPIC,
                    &topic,
                    &[("cleanup.policy", SUBTRACT, Some("delete"))],
                    false,
                ),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "incremental alter configs topic delete",
                incremental(TOPIC, &topic, &[("retention.ms", DELETE, None)], false),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "incremental alter configs topic validate only",
                incremental(TOPIC, &topic, &[("retention.ms", SET, Some("1000"))], true),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "incremental alter configs unknown topic",
                incremental(
                    TOPIC,
                    "conf-missing",
                    &[("retention.ms", SET, Some("1000"))],
                    false,
                ),
                None,
            ),
            (
                "incremental alter configs invalid value",
                incremental(TOPIC, &topic, &[("retention.ms", SET, Some("soon"))], false),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "incremental alter configs unknown key",
                incremental(TOPIC, &topic, &[("no.such.config", SET, Some("1"))], false),
                None,
            ),
            (
                "incremental alter configs append to a non-list",
                incremental(TOPIC, &topic, &[("retention.ms", APPEND, Some("1"))], false),
                None,
            ),
            (
                "incremental alter configs unknown operation",
                incremental(TOPIC, &topic, &[("retention.ms", 9, Some("1"))], false),
                None,
            ),
            (
                "incremental alter configs broker set",
                incremental(
                    BROKER,
                    "1",
                    &[("log.retention.ms", SET, Some("86400000"))],
                    false,
                ),
                Some((BROKER, "1")),
            ),
            (
                "incremental alter configs broker delete",
                incremental(BROKER, "1", &[("log.retention.ms", DELETE, None)], false),
                Some((BROKER, "1")),
            ),
            (
                "incremental alter configs broker default set",
                incremental(
                    BROKER,
                    "",
                    &[("log.retention.bytes", SET, Some("1073741824"))],
                    false,
                ),
                Some((BROKER, "")),
            ),
            (
                "incremental alter configs broker default delete",
                incremental(BROKER, "", &[("log.retention.bytes", DELETE, None)], false),
                Some((BROKER, "")),
            ),
            (
                "incremental alter configs read-only broker default key",
                incremental(BROKER, "", &[("log.dirs", SET, Some("/tmp/x"))], false),
                None,
            ),
            (
                "incremental alter configs invalid broker default value",
                incremental(
                    BROKER,
                    "",
                    &[("log.retention.ms", SET, Some("soon"))],
                    false,
                ),
                None,
            ),
            (
                "incremental alter configs read-only broker key",
                incremental(BROKER, "1", &[("log.dirs", SET, Some("/tmp/x"))], false),
                None,
            ),
            (
                "incremental alter configs unknown broker",
                incremental(
                    BROKER,
                    "7",
                    &[("log.retention.ms", SET, Some("86400000"))],
                    false,
                ),
                None,
            ),
            (
                "incremental alter configs invalid broker value",
                incremental(
                    BROKER,
                    "1",
                    &[("log.retention.ms", SET, Some("soon"))],
                    false,
                ),
                None,
            ),
        ];
        let mut twice = incremental(TOPIC, &topic, &[("retention.ms", SET, Some("1000"))], false);
        twice.resources.push(twice.resources[0].clone());
        let mut same_key_twice = incremental(
            TOPIC,
            &topic,
            &[
                ("retention.ms", SET, Some("1000")),
                ("retention.ms", DELETE, None),
            ],
            false,
        );
        same_key_twice.validate_only = false;
        let cases = cases.into_iter().chain([
            (
                "incremental alter configs same resource twice",
                twice,
                Some((TOPIC, topic.as_str())),
            ),
            (
                "incremental alter configs same key twice",
                same_key_twice,
                Some((TOPIC, topic.as_str())),
            ),
            (
                "incremental alter configs broker validate only",
                incremental(
                    BROKER,
                    "1",
                    &[("log.retention.ms", SET, Some("86400000"))],
                    true,
                ),
                Some((BROKER, "1")),
            ),
            (
                "incremental alter configs subtract every value",
                incremental(
                    TOPIC,
                    &topic,
                    &[("cleanup.policy", SUBTRACT, Some("compact,delete"))],
                    false,
                ),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "incremental alter configs broker default append",
                incremental(
                    BROKER,
                    "",
                    &[("log.cleanup.policy", APPEND, Some("compact"))],
                    false,
                ),
                None,
            ),
            (
                "incremental alter configs broker default delete the appended",
                incremental(BROKER, "", &[("log.cleanup.policy", DELETE, None)], false),
                None,
            ),
            (
                "incremental alter configs set a null value",
                incremental(TOPIC, &topic, &[("retention.ms", SET, None)], false),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "incremental alter configs append a null value",
                incremental(TOPIC, &topic, &[("cleanup.policy", APPEND, None)], false),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "incremental alter configs broker set a null value",
                incremental(BROKER, "1", &[("log.retention.ms", SET, None)], false),
                None,
            ),
            (
                "incremental alter configs unknown resource type",
                incremental(99, "x", &[("a", SET, Some("1"))], false),
                None,
            ),
            (
                "incremental alter configs group",
                incremental(
                    32,
                    "conf-config-group",
                    &[("consumer.session.timeout.ms", SET, Some("50000"))],
                    false,
                ),
                None,
            ),
            (
                "incremental alter configs client metrics",
                incremental(
                    16,
                    "conf-metrics",
                    &[("interval.ms", SET, Some("60000"))],
                    false,
                ),
                None,
            ),
        ]);
        let cases = cases.chain(broker_logger_cases());
        for (scenario, req, described) in cases {
            check(scenario, pair.exchange(scenario, v, &req));
            if let Some((rt, name)) = described {
                let keys: &[&str] = match rt {
                    TOPIC => &["retention.ms", "cleanup.policy"],
                    // The one logger both brokers have (the others are log4j's on Kafka, tracing
                    // targets here).
                    BROKER_LOGGER => &["root"],
                    _ => &["log.retention.ms", "log.retention.bytes"],
                };
                describe_after(pair, scenario, rt, name, keys);
            }
        }
    }
}

/// BROKER_LOGGER (KIP-412) through IncrementalAlterConfigs, on `root`, the logger both brokers have; both start
/// at WARN, and the level is put back at WARN after the change.
fn broker_logger_cases() -> Vec<Case<'static, IncrementalAlterConfigsRequest>> {
    let own = Some((BROKER_LOGGER, "1"));
    let root = |op, value| incremental(BROKER_LOGGER, "1", &[("root", op, value)], false);
    let mut duplicate_keys = root(SET, Some("INFO"));
    let again = duplicate_keys.resources[0].configs[0].clone();
    duplicate_keys.resources[0].configs.push(again);
    let mut duplicate_resources = root(SET, Some("INFO"));
    let again = duplicate_resources.resources[0].clone();
    duplicate_resources.resources.push(again);
    vec![
        (
            "incremental alter configs broker logger",
            root(SET, Some("WARN")),
            own,
        ),
        (
            "incremental alter configs broker logger change",
            root(SET, Some("ERROR")),
            own,
        ),
        (
            "incremental alter configs broker logger restore",
            root(SET, Some("WARN")),
            own,
        ),
        (
            "incremental alter configs broker logger validate only",
            incremental(BROKER_LOGGER, "1", &[("root", SET, Some("DEBUG"))], true),
            own,
        ),
        (
            "incremental alter configs broker logger invalid level",
            root(SET, Some("LOUD")),
            own,
        ),
        // Kafka's levels are capitals only.
        (
            "incremental alter configs broker logger lower-case level",
            root(SET, Some("debug")),
            own,
        ),
        (
            "incremental alter configs broker logger OFF",
            root(SET, Some("OFF")),
            own,
        ),
        (
            "incremental alter configs broker logger unknown logger",
            incremental(
                BROKER_LOGGER,
                "1",
                &[("no.such.logger", SET, Some("INFO"))],
                false,
            ),
            None,
        ),
        (
            "incremental alter configs broker logger other broker",
            incremental(BROKER_LOGGER, "7", &[("root", SET, Some("INFO"))], false),
            None,
        ),
        (
            "incremental alter configs broker logger not a node id",
            incremental(BROKER_LOGGER, "x", &[("root", SET, Some("INFO"))], false),
            None,
        ),
        (
            "incremental alter configs broker logger delete root",
            root(DELETE, None),
            own,
        ),
        (
            "incremental alter configs broker logger append",
            root(APPEND, Some("INFO")),
            own,
        ),
        (
            "incremental alter configs broker logger subtract",
            root(SUBTRACT, Some("INFO")),
            own,
        ),
        (
            "incremental alter configs broker logger null value",
            root(SET, None),
            own,
        ),
        (
            "incremental alter configs broker logger duplicate keys",
            duplicate_keys,
            own,
        ),
        (
            "incremental alter configs broker logger duplicate resources",
            duplicate_resources,
            own,
        ),
    ]
}

/// DescribeConfigs of BROKER_LOGGER: `root` compared field by field, the whole list for its error (the loggers
/// themselves differ by nature, see the allow-list), and the refusals of another broker's loggers.
fn describe_broker_loggers(pair: &mut Pair) {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    for v in pair.versions::<DescribeConfigsRequest>() {
        for (scenario, name, keys) in [
            (
                "describe configs broker logger root",
                "1",
                Some(vec![s("root")]),
            ),
            ("describe configs broker logger all", "1", None),
            ("describe configs broker logger other broker", "7", None),
            ("describe configs broker logger empty name", "", None),
            ("describe configs broker logger not a node id", "x", None),
        ] {
            let mut req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(BROKER_LOGGER)
                    .with_resource_name(s(name))
                    .with_configuration_keys(keys),
            ]);
            if v >= 1 {
                req.include_synonyms = true;
            }
            if v >= 3 {
                req.include_documentation = true;
            }
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
}

fn alter_configs(pair: &mut Pair) {
    for v in pair.versions::<AlterConfigsRequest>() {
        let topic = format!("conf-ac-v{v}");
        create_on_both(
            pair,
            vec![creatable(&topic, 1, 1, &[("segment.ms", "3600000")])],
        );
        let cases: Vec<Case<AlterConfigsRequest>> = vec![
            (
                "alter configs topic replaces overrides",
                legacy(
                    TOPIC,
                    &topic,
                    &[("retention.ms", "7200000"), ("cleanup.policy", "compact")],
                    false,
                ),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "alter configs topic validate only",
                legacy(TOPIC, &topic, &[("retention.ms", "1000")], true),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "alter configs unknown topic",
                legacy(TOPIC, "conf-missing", &[("retention.ms", "1000")], false),
                None,
            ),
            (
                "alter configs invalid value",
                legacy(TOPIC, &topic, &[("cleanup.policy", "bogus")], false),
                Some((TOPIC, topic.as_str())),
            ),
            (
                "alter configs unknown key",
                legacy(TOPIC, &topic, &[("no.such.config", "1")], false),
                None,
            ),
            (
                "alter configs broker",
                legacy(BROKER, "1", &[("log.retention.ms", "86400000")], false),
                Some((BROKER, "1")),
            ),
            (
                "alter configs broker clears",
                legacy(BROKER, "1", &[], false),
                Some((BROKER, "1")),
            ),
            // Not described after: Kafka refuses both (see the allow-list), so the two defaults differ.
            (
                "alter configs broker default",
                legacy(BROKER, "", &[("log.retention.bytes", "1073741824")], false),
                None,
            ),
            (
                "alter configs broker default clears",
                legacy(BROKER, "", &[], false),
                None,
            ),
            (
                "alter configs read-only broker key",
                legacy(BROKER, "1", &[("log.dirs", "/tmp/x")], false),
                None,
            ),
            (
                "alter configs unknown broker",
                legacy(BROKER, "7", &[("log.retention.ms", "86400000")], false),
                None,
            ),
            // Log levels are IncrementalAlterConfigs only (KIP-412): the legacy API knows no such resource.
            (
                "alter configs broker logger",
                legacy(BROKER_LOGGER, "1", &[("root", "WARN")], false),
                None,
            ),
        ];
        let mut null_value = legacy(TOPIC, &topic, &[("retention.ms", "1")], false);
        null_value.resources[0].configs[0].value = None;
        let cases = cases.into_iter().chain([(
            "alter configs null value",
            null_value,
            Some((TOPIC, topic.as_str())),
        )]);
        for (scenario, req, described) in cases {
            check(scenario, pair.exchange(scenario, v, &req));
            if let Some((rt, name)) = described {
                let keys: &[&str] = if rt == TOPIC {
                    &["retention.ms", "cleanup.policy", "segment.ms"]
                } else {
                    &["log.retention.ms", "log.retention.bytes"]
                };
                describe_after(pair, scenario, rt, name, keys);
            }
        }
    }
}

// --- ACLs ---------------------------------------------------------------------------------------------

const ACL_TOPIC: i8 = 2;
const ACL_ANY: i8 = 1;
const PATTERN_LITERAL: i8 = 3;
const PATTERN_PREFIXED: i8 = 4;
const PATTERN_ANY: i8 = 1;
const PATTERN_MATCH: i8 = 2;
const OP_ANY: i8 = 1;
const OP_READ: i8 = 3;
const OP_WRITE: i8 = 4;
const PERMISSION_ANY: i8 = 1;
const PERMISSION_ALLOW: i8 = 3;
const PERMISSION_DENY: i8 = 2;

fn acl(name: &str, pattern: i8, principal: &str, operation: i8, permission: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(ACL_TOPIC)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

fn describe_acls(name: Option<&str>, pattern: i8, principal: Option<&str>) -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(ACL_ANY)
        .with_resource_name_filter(name.map(s))
        .with_pattern_type_filter(pattern)
        .with_principal_filter(principal.map(s))
        .with_host_filter(None)
        .with_operation(OP_ANY)
        .with_permission_type(PERMISSION_ANY)
}

fn delete_filter(name: Option<&str>, pattern: i8, principal: Option<&str>) -> DeleteAclsFilter {
    DeleteAclsFilter::default()
        .with_resource_type_filter(ACL_ANY)
        .with_resource_name_filter(name.map(s))
        .with_pattern_type_filter(pattern)
        .with_principal_filter(principal.map(s))
        .with_host_filter(None)
        .with_operation(OP_ANY)
        .with_permission_type(PERMISSION_ANY)
}

/// Resources and their ACLs in a fixed order (each broker keeps them in its own map's order).
fn sort_acls(a: &mut DescribeAclsResponse, b: &mut DescribeAclsResponse) {
    for r in [a, b] {
        r.resources.sort_by(|x, y| {
            (x.resource_type, &x.resource_name, x.pattern_type).cmp(&(
                y.resource_type,
                &y.resource_name,
                y.pattern_type,
            ))
        });
        for res in &mut r.resources {
            res.acls.sort_by(|x, y| {
                (&x.principal, &x.host, x.operation, x.permission_type).cmp(&(
                    &y.principal,
                    &y.host,
                    y.operation,
                    y.permission_type,
                ))
            });
        }
    }
}

/// Waits (up to `wait_for_both`'s limit) until both brokers describe `count` ACLs; the comparisons after
/// it show any broker that never does.
fn wait_for_acls(pair: &mut Pair, count: usize) {
    let Some(v) = pair.versions::<DescribeAclsRequest>().last().copied() else {
        return;
    };
    let all = describe_acls(None, PATTERN_ANY, None);
    wait_for_both(pair, v, &all, |r| {
        r.resources.iter().map(|res| res.acls.len()).sum::<usize>() == count
    });
}

/// The ACLs each filter removed, in a fixed order.
fn sort_deleted_acls(a: &mut DeleteAclsResponse, b: &mut DeleteAclsResponse) {
    for r in [a, b] {
        for f in &mut r.filter_results {
            f.matching_acls.sort_by(|x, y| {
                (
                    x.resource_type,
                    &x.resource_name,
                    x.pattern_type,
                    &x.principal,
                    x.operation,
                    x.permission_type,
                )
                    .cmp(&(
                        y.resource_type,
                        &y.resource_name,
                        y.pattern_type,
                        &y.principal,
                        y.operation,
                        y.permission_type,
                    ))
            });
        }
    }
}

/// Without an authorizer both answer SECURITY_DISABLED.
fn acls_without_authorizer(pair: &mut Pair) {
    for v in pair.versions::<DescribeAclsRequest>() {
        let req = describe_acls(None, PATTERN_ANY, None);
        check(
            "DescribeAcls",
            pair.exchange("describe acls without authorizer", v, &req),
        );
    }
    for v in pair.versions::<CreateAclsRequest>() {
        let req = CreateAclsRequest::default().with_creations(vec![acl(
            "conf-topic",
            PATTERN_LITERAL,
            "User:alice",
            OP_READ,
            PERMISSION_ALLOW,
        )]);
        check(
            "CreateAcls",
            pair.exchange("create acls without authorizer", v, &req),
        );
    }
    for v in pair.versions::<DeleteAclsRequest>() {
        let req =
            DeleteAclsRequest::default().with_filters(vec![delete_filter(None, PATTERN_ANY, None)]);
        check(
            "DeleteAcls",
            pair.exchange("delete acls without authorizer", v, &req),
        );
    }
}

fn acls_with_authorizer(pair: &mut Pair) {
    // How many ACLs Kafka stored, to wait for both brokers to serve them.
    let mut expected = 0;
    for v in pair.versions::<CreateAclsRequest>() {
        let alice = format!("User:alice-v{v}");
        let prefix = format!("conf-acl-v{v}-");
        let creations = vec![
            acl(
                "conf-topic",
                PATTERN_LITERAL,
                &alice,
                OP_READ,
                PERMISSION_ALLOW,
            ),
            acl(
                &prefix,
                PATTERN_PREFIXED,
                &alice,
                OP_WRITE,
                PERMISSION_ALLOW,
            ),
            acl("*", PATTERN_LITERAL, &alice, OP_WRITE, PERMISSION_DENY),
        ];
        let req = CreateAclsRequest::default().with_creations(creations);
        let (created, _) = check("CreateAcls", pair.exchange("create acls", v, &req));
        expected += created.results.iter().filter(|r| r.error_code == 0).count();
        // Other resource types: (type, name, pattern, operation) — the cluster with CLUSTER_ACTION (9), a
        // group with READ, a transactional id with WRITE, a prefixed group, a user (7) with
        // CREATE_TOKENS (14), a delegation token (6) with DESCRIBE (8).
        let others = [
            (4, "kafka-cluster", PATTERN_LITERAL, 9),
            (3, "conf-group", PATTERN_LITERAL, OP_READ),
            (5, "conf-txn", PATTERN_LITERAL, OP_WRITE),
            (3, "conf-", PATTERN_PREFIXED, OP_READ),
            (7, "User:bob", PATTERN_LITERAL, 14),
            (6, "token-1", PATTERN_LITERAL, 8),
        ]
        .map(|(rt, name, pattern, op)| {
            let mut c = acl(name, pattern, &alice, op, PERMISSION_ALLOW);
            c.resource_type = rt;
            c
        });
        let req = CreateAclsRequest::default().with_creations(others.to_vec());
        let scenario = "create acls of other resource types";
        let (created, _) = check(scenario, pair.exchange(scenario, v, &req));
        expected += created.results.iter().filter(|r| r.error_code == 0).count();
        let invalid = vec![
            (
                "create acls any pattern",
                acl("conf-topic", PATTERN_ANY, &alice, OP_READ, PERMISSION_ALLOW),
            ),
            (
                "create acls match pattern",
                acl(
                    "conf-topic",
                    PATTERN_MATCH,
                    &alice,
                    OP_READ,
                    PERMISSION_ALLOW,
                ),
            ),
            (
                "create acls any operation",
                acl(
                    "conf-topic",
                    PATTERN_LITERAL,
                    &alice,
                    OP_ANY,
                    PERMISSION_ALLOW,
                ),
            ),
            (
                "create acls invalid principal",
                acl(
                    "conf-topic",
                    PATTERN_LITERAL,
                    "alice",
                    OP_READ,
                    PERMISSION_ALLOW,
                ),
            ),
            (
                "create acls empty resource name",
                acl("", PATTERN_LITERAL, &alice, OP_READ, PERMISSION_ALLOW),
            ),
            (
                "create acls operation not on topics",
                acl(
                    "conf-topic",
                    PATTERN_LITERAL,
                    &alice,
                    // IDEMPOTENT_WRITE applies to the cluster only.
                    12,
                    PERMISSION_ALLOW,
                ),
            ),
        ];
        let mut wrong_cluster = acl(
            "my-cluster",
            PATTERN_LITERAL,
            &alice,
            OP_READ,
            PERMISSION_ALLOW,
        );
        wrong_cluster.resource_type = 4;
        let no_host = acl(
            "conf-topic",
            PATTERN_LITERAL,
            &alice,
            OP_READ,
            PERMISSION_ALLOW,
        )
        .with_host(s(""));
        let unknown_permission = acl("conf-topic", PATTERN_LITERAL, &alice, OP_READ, 9);
        let invalid = invalid.into_iter().chain([
            (
                "create acls cluster resource not named kafka-cluster",
                wrong_cluster,
            ),
            ("create acls empty host", no_host),
            ("create acls unknown permission type", unknown_permission),
        ]);
        for (scenario, c) in invalid {
            let req = CreateAclsRequest::default().with_creations(vec![c]);
            let (created, _) = check(scenario, pair.exchange(scenario, v, &req));
            expected += created.results.iter().filter(|r| r.error_code == 0).count();
        }
    }
    // Kafka's brokers apply ACLs from the metadata log a moment after CreateAcls answers.
    wait_for_acls(pair, expected);
    // The ACLs created at the lowest version are described by name and principal.
    let first = pair
        .versions::<CreateAclsRequest>()
        .first()
        .copied()
        .unwrap_or(0);
    let (alice, inside_prefix) = (
        format!("User:alice-v{first}"),
        format!("conf-acl-v{first}-x"),
    );
    for v in pair.versions::<DescribeAclsRequest>() {
        for (scenario, req) in [
            ("describe acls all", describe_acls(None, PATTERN_ANY, None)),
            (
                "describe acls literal name",
                describe_acls(Some("conf-topic"), PATTERN_LITERAL, None),
            ),
            (
                "describe acls matching name",
                describe_acls(Some(&inside_prefix), PATTERN_MATCH, None),
            ),
            (
                "describe acls by principal",
                describe_acls(None, PATTERN_ANY, Some(&alice)),
            ),
            (
                "describe acls nothing matches",
                describe_acls(Some("conf-none"), PATTERN_LITERAL, None),
            ),
            (
                "describe acls unknown pattern type",
                describe_acls(None, 9, None),
            ),
            (
                "describe acls denials only",
                describe_acls(None, PATTERN_ANY, None).with_permission_type(PERMISSION_DENY),
            ),
            (
                "describe acls by host",
                describe_acls(None, PATTERN_ANY, None).with_host_filter(Some(s("*"))),
            ),
            (
                "describe acls unknown resource type",
                describe_acls(None, PATTERN_ANY, None).with_resource_type_filter(99),
            ),
            (
                "describe acls unknown operation",
                describe_acls(None, PATTERN_ANY, None).with_operation(99),
            ),
        ] {
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, &[], sort_acls),
            );
        }
    }
    for v in pair.versions::<DeleteAclsRequest>() {
        let alice = format!("User:alice-v{v}");
        for (scenario, filters) in [
            (
                "delete acls literal",
                vec![delete_filter(
                    Some("conf-topic"),
                    PATTERN_LITERAL,
                    Some(&alice),
                )],
            ),
            (
                "delete acls nothing matches",
                vec![delete_filter(Some("conf-none"), PATTERN_LITERAL, None)],
            ),
            (
                "delete acls by principal",
                vec![delete_filter(None, PATTERN_ANY, Some(&alice))],
            ),
            (
                "delete acls unknown pattern type",
                vec![delete_filter(None, 9, None)],
            ),
        ] {
            let req = DeleteAclsRequest::default().with_filters(filters);
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, &[], sort_deleted_acls),
            );
        }
    }
    // What the deletions left: none (every ACL named one of the principals deleted above).
    wait_for_acls(pair, 0);
    for v in pair.versions::<DescribeAclsRequest>() {
        let scenario = "describe acls after deleting";
        let req = describe_acls(None, PATTERN_ANY, None);
        check(
            scenario,
            pair.exchange_with(scenario, v, &req, &[], sort_acls),
        );
    }
}

// --- DescribeClientQuotas ----------------------------------------------------------------------------

fn describe_client_quotas(pair: &mut Pair) {
    let component = |entity: &str, match_type: i8, m: Option<&str>| {
        ComponentData::default()
            .with_entity_type(s(entity))
            .with_match_type(match_type)
            .with_match(m.map(s))
    };
    for v in pair.versions::<DescribeClientQuotasRequest>() {
        for (scenario, components, strict) in [
            ("describe client quotas all", vec![], false),
            (
                "describe client quotas exact user",
                vec![component("user", 0, Some("alice"))],
                true,
            ),
            (
                "describe client quotas default client id",
                vec![component("client-id", 1, None)],
                false,
            ),
            (
                "describe client quotas exact without a name",
                vec![component("user", 0, None)],
                false,
            ),
            (
                "describe client quotas unknown entity type",
                vec![component("topic", 2, None)],
                false,
            ),
            (
                "describe client quotas ip with user",
                vec![component("ip", 2, None), component("user", 2, None)],
                false,
            ),
        ] {
            let req = DescribeClientQuotasRequest::default()
                .with_components(components)
                .with_strict(strict);
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
}

// --- SCRAM credentials --------------------------------------------------------------------------------

const SCRAM_SHA_256: i8 = 1;
const SCRAM_SHA_512: i8 = 2;

fn upsertion(
    name: &str,
    mechanism: i8,
    iterations: i32,
) -> alter_user_scram_credentials_request::ScramCredentialUpsertion {
    alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
        .with_name(s(name))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from_static(b"conformance-salt"))
        .with_salted_password(Bytes::from(vec![7u8; 32]))
}

fn deletion(
    name: &str,
    mechanism: i8,
) -> alter_user_scram_credentials_request::ScramCredentialDeletion {
    alter_user_scram_credentials_request::ScramCredentialDeletion::default()
        .with_name(s(name))
        .with_mechanism(mechanism)
}

/// Each user's mechanisms in a fixed order (Kafka lists them in its hash map's order).
fn sort_mechanisms(
    a: &mut DescribeUserScramCredentialsResponse,
    b: &mut DescribeUserScramCredentialsResponse,
) {
    for r in [a, b] {
        for u in &mut r.results {
            u.credential_infos.sort_by_key(|c| c.mechanism);
        }
    }
}

fn describe_users(names: Option<&[&str]>) -> DescribeUserScramCredentialsRequest {
    DescribeUserScramCredentialsRequest::default().with_users(names.map(|ns| {
        ns.iter()
            .map(|n| UserName::default().with_name(s(n)))
            .collect()
    }))
}

fn scram_credentials(pair: &mut Pair) {
    for v in pair.versions::<AlterUserScramCredentialsRequest>() {
        let user = format!("conf-user-v{v}");
        let alter = |upsertions, deletions| {
            AlterUserScramCredentialsRequest::default()
                .with_upsertions(upsertions)
                .with_deletions(deletions)
        };
        for (scenario, req) in [
            (
                "alter scram credentials upsert",
                alter(vec![upsertion(&user, SCRAM_SHA_256, 8192)], vec![]),
            ),
            (
                "alter scram credentials upsert another mechanism",
                alter(vec![upsertion(&user, SCRAM_SHA_512, 4096)], vec![]),
            ),
            (
                "alter scram credentials too few iterations",
                alter(vec![upsertion("conf-weak", SCRAM_SHA_256, 1000)], vec![]),
            ),
            (
                "alter scram credentials too many iterations",
                alter(vec![upsertion("conf-slow", SCRAM_SHA_256, 20000)], vec![]),
            ),
            (
                "alter scram credentials unknown mechanism",
                alter(vec![upsertion("conf-odd", 9, 8192)], vec![]),
            ),
            (
                "alter scram credentials empty user",
                alter(vec![upsertion("", SCRAM_SHA_256, 8192)], vec![]),
            ),
            (
                "alter scram credentials same user twice",
                alter(
                    vec![upsertion("conf-twice", SCRAM_SHA_256, 8192)],
                    vec![deletion("conf-twice", SCRAM_SHA_256)],
                ),
            ),
            (
                "alter scram credentials delete unknown",
                alter(vec![], vec![deletion("conf-nobody", SCRAM_SHA_256)]),
            ),
        ] {
            check(scenario, pair.exchange(scenario, v, &req));
        }
        for dv in pair.versions::<DescribeUserScramCredentialsRequest>() {
            for (scenario, req) in [
                (
                    "describe scram credentials named",
                    describe_users(Some(&[user.as_str()])),
                ),
                (
                    "describe scram credentials unknown user",
                    describe_users(Some(&["conf-nobody"])),
                ),
                (
                    "describe scram credentials empty list",
                    describe_users(Some(&[])),
                ),
                (
                    "describe scram credentials duplicate user",
                    describe_users(Some(&[user.as_str(), user.as_str()])),
                ),
            ] {
                check(
                    scenario,
                    pair.exchange_with(scenario, dv, &req, &[], sort_mechanisms),
                );
            }
        }
        for (scenario, mechanism) in [
            ("alter scram credentials delete", SCRAM_SHA_256),
            (
                "alter scram credentials delete the other mechanism",
                SCRAM_SHA_512,
            ),
        ] {
            let req = alter(vec![], vec![deletion(&user, mechanism)]);
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
    for v in pair.versions::<DescribeUserScramCredentialsRequest>() {
        check(
            "describe all",
            pair.exchange(
                "describe scram credentials all (none left)",
                v,
                &describe_users(None),
            ),
        );
    }
}

// --- DeleteRecords ------------------------------------------------------------------------------------

fn delete_records_request(topic: &str, partition: i32, offset: i64) -> DeleteRecordsRequest {
    DeleteRecordsRequest::default()
        .with_timeout_ms(TIMEOUT_MS)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset)])])
}

fn delete_records(pair: &mut Pair) {
    for v in pair.versions::<DeleteRecordsRequest>() {
        let topic = format!("conf-delrec-v{v}");
        let compacted = format!("conf-delrec-compact-v{v}");
        // Kept without time limit: the records' timestamps (1970) are older than any retention, and Kafka's
        // first retention pass (30 s after start) would otherwise delete them on its own schedule.
        create_on_both(
            pair,
            vec![
                creatable(&topic, 1, 1, &[("retention.ms", "-1")]),
                creatable(
                    &compacted,
                    1,
                    1,
                    &[("retention.ms", "-1"), ("cleanup.policy", "compact")],
                ),
            ],
        );
        let pv = check("Produce version", pair.max_version::<ProduceRequest>());
        for name in [&topic, &compacted] {
            let (ka, kw) =
                produce_pair(pair, pv, name, 0, -1, batch(&[1000, 2000, 3000, 4000], 10));
            setup_produce(pair, pv, &ka, &kw);
        }
        for (scenario, name, partition, offset) in [
            ("delete records before an offset", topic.as_str(), 0, 2),
            ("delete records below the log start", topic.as_str(), 0, 1),
            (
                "delete records beyond the high watermark",
                topic.as_str(),
                0,
                9,
            ),
            (
                "delete records up to the high watermark",
                topic.as_str(),
                0,
                -1,
            ),
            ("delete records invalid offset", topic.as_str(), 0, -5),
            ("delete records unknown partition", topic.as_str(), 3, 0),
            ("delete records unknown topic", "conf-missing", 0, 0),
            (
                "delete records of a compacted topic",
                compacted.as_str(),
                0,
                1,
            ),
        ] {
            let req = delete_records_request(name, partition, offset);
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
}

// --- DescribeLogDirs ----------------------------------------------------------------------------------

/// Every partition each broker holds, compared by topic and index. The log dir's path and its volume's
/// sizes are each broker's own, and the partitions' sizes are not compared here: the shared topics hold
/// records stamped 1970, which Kafka's first retention pass (30 s after its start) deletes on its own
/// schedule, and each group coordinator writes its own record versions to `__consumer_offsets`. Sizes are
/// compared where they are stable, in `scenarios::describe_log_dirs`' named partitions.
fn describe_log_dirs_all(pair: &mut Pair) {
    use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
    let [dir, total, usable] = super::LOG_DIR_OF_EACH_BROKER;
    let local = [
        dir,
        total,
        usable,
        Rule {
            path: "results[].topics[].partitions[].partition_size",
            how: Normalise::Any,
        },
    ];
    fn sort(a: &mut DescribeLogDirsResponse, b: &mut DescribeLogDirsResponse) {
        for r in [a, b] {
            for d in &mut r.results {
                d.topics.sort_by(|x, y| x.name.cmp(&y.name));
                for t in &mut d.topics {
                    t.partitions.sort_by_key(|p| p.partition_index);
                }
            }
        }
    }
    for v in pair.versions::<DescribeLogDirsRequest>() {
        for (scenario, topics) in [
            ("describe log dirs all", None),
            ("describe log dirs none", Some(Vec::new())),
        ] {
            let req = DescribeLogDirsRequest::default().with_topics(topics);
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, &local, sort),
            );
        }
    }
}

// --- ElectLeaders -------------------------------------------------------------------------------------

fn elect_leaders(pair: &mut Pair) {
    for v in pair.versions::<ElectLeadersRequest>() {
        if v >= 1 {
            let scenario = "elect leaders unknown election type";
            let req = ElectLeadersRequest::default()
                .with_election_type(5)
                .with_timeout_ms(TIMEOUT_MS)
                .with_topic_partitions(Some(vec![TopicPartitions::default()
                    .with_topic(topic_name("conf-topic"))
                    .with_partitions(vec![0])]));
            check(scenario, pair.exchange(scenario, v, &req));
        }
        let types: &[(&str, i8)] = if v == 0 {
            &[("preferred", 0)]
        } else {
            &[("preferred", 0), ("unclean", 1)]
        };
        for (kind, election_type) in types {
            for (what, partitions) in [
                ("led partition", Some(vec![("conf-topic", vec![0])])),
                ("unknown partition", Some(vec![("conf-topic", vec![5])])),
                ("unknown topic", Some(vec![("conf-missing", vec![0])])),
                ("all partitions", None),
                (
                    "same partition twice",
                    Some(vec![("conf-topic", vec![0]), ("conf-topic", vec![0])]),
                ),
            ] {
                let scenario = format!("elect leaders {kind} {what}");
                let req = ElectLeadersRequest::default()
                    .with_election_type(*election_type)
                    .with_timeout_ms(TIMEOUT_MS)
                    .with_topic_partitions(partitions.map(|tps| {
                        tps.into_iter()
                            .map(|(t, ps)| {
                                TopicPartitions::default()
                                    .with_topic(topic_name(t))
                                    .with_partitions(ps)
                            })
                            .collect()
                    }));
                check(&scenario, pair.exchange(&scenario, v, &req));
            }
        }
    }
}

// --- AlterPartitionReassignments, ListPartitionReassignments ----------------------------------------

fn reassignment(
    v: i16,
    topic: &str,
    partition: i32,
    replicas: Option<&[i32]>,
) -> AlterPartitionReassignmentsRequest {
    use kafka_protocol::messages::BrokerId;
    let mut req = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(TIMEOUT_MS)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(partition)
                .with_replicas(
                    replicas.map(|r| r.iter().map(|b| BrokerId(*b)).collect()),
                )])]);
    if v >= 1 {
        req.allow_replication_factor_change = true;
    }
    req
}

fn reassignments(pair: &mut Pair) {
    for v in pair.versions::<AlterPartitionReassignmentsRequest>() {
        for (scenario, topic, partition, replicas) in [
            (
                "reassign to the same replica",
                "conf-topic",
                0,
                Some(&[1][..]),
            ),
            (
                "reassign to an unknown broker",
                "conf-topic",
                0,
                Some(&[2][..]),
            ),
            ("reassign to no replicas", "conf-topic", 0, Some(&[][..])),
            (
                "reassign to a repeated broker",
                "conf-topic",
                0,
                Some(&[1, 1][..]),
            ),
            (
                "reassign cancel with none in progress",
                "conf-topic",
                0,
                None,
            ),
            (
                "reassign unknown partition",
                "conf-topic",
                7,
                Some(&[1][..]),
            ),
            ("reassign unknown topic", "conf-missing", 0, Some(&[1][..])),
        ] {
            let req = reassignment(v, topic, partition, replicas);
            check(scenario, pair.exchange(scenario, v, &req));
        }
        if v >= 1 {
            // Without permission to change the replication factor, a longer list is refused.
            let mut req = reassignment(v, "conf-topic", 0, Some(&[1, 2]));
            req.allow_replication_factor_change = false;
            let scenario = "reassign to more replicas when the replication factor may not change";
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
    for v in pair.versions::<ListPartitionReassignmentsRequest>() {
        for (scenario, topics) in [
            ("list reassignments all", None),
            (
                "list reassignments named",
                Some(vec![ListPartitionReassignmentsTopics::default()
                    .with_name(topic_name("conf-topic"))
                    .with_partition_indexes(vec![0])]),
            ),
            (
                "list reassignments unknown partition",
                Some(vec![ListPartitionReassignmentsTopics::default()
                    .with_name(topic_name("conf-topic"))
                    .with_partition_indexes(vec![7])]),
            ),
            (
                "list reassignments unknown topic",
                Some(vec![ListPartitionReassignmentsTopics::default()
                    .with_name(topic_name("conf-missing"))
                    .with_partition_indexes(vec![0])]),
            ),
        ] {
            let req = ListPartitionReassignmentsRequest::default()
                .with_timeout_ms(TIMEOUT_MS)
                .with_topics(topics);
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
}

// --- DescribeQuorum -----------------------------------------------------------------------------------

/// The two metadata logs hold different records (so different offsets), the fetch times are each node's
/// own clock, and the leader epoch counts the elections each quorum went through since it was formatted
/// (Kafka's start-up passes through several): they are compared for being set, not for their values.
const QUORUM_STATE: &[Rule] = &[
    Rule {
        path: "topics[].partitions[].leader_epoch",
        how: Normalise::Generated,
    },
    Rule {
        path: "*high_watermark",
        how: Normalise::Generated,
    },
    Rule {
        path: "*log_end_offset",
        how: Normalise::Generated,
    },
    Rule {
        path: "*last_fetch_timestamp",
        how: Normalise::Generated,
    },
    Rule {
        path: "*last_caught_up_timestamp",
        how: Normalise::Generated,
    },
    Rule {
        path: "*replica_directory_id",
        how: Normalise::Generated,
    },
];

fn describe_quorum(pair: &mut Pair) {
    for v in pair.versions::<DescribeQuorumRequest>() {
        for (scenario, topic, partition) in [
            ("describe quorum", "__cluster_metadata", 0),
            ("describe quorum unknown partition", "__cluster_metadata", 1),
            ("describe quorum other topic", "conf-topic", 0),
        ] {
            let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
                .with_topic_name(topic_name(topic))
                .with_partitions(vec![
                    PartitionData::default().with_partition_index(partition)
                ])]);
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, QUORUM_STATE, |_, _| {}),
            );
        }
        let two = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(topic_name("__cluster_metadata"))
            .with_partitions(vec![
                PartitionData::default().with_partition_index(0),
                PartitionData::default().with_partition_index(1),
            ])]);
        for (scenario, req) in [
            (
                "describe quorum no topics",
                DescribeQuorumRequest::default(),
            ),
            ("describe quorum two partitions", two),
        ] {
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, QUORUM_STATE, |_, _| {}),
            );
        }
    }
}
