//! Differential conformance: Apache Kafka (the jars of tests/tools/pom.xml) and Kraftwerk, started with the
//! same configuration and the same cluster id, get the same wire requests at the lowest and highest
//! version both advertise; their answers are compared field by field (kraftwerk_tests::conformance). A
//! difference not listed in tests/conformance/intended-differences.md fails the test.
//!
//! Needs java (as scripts/test.sh's JVM suite does); mvn fetches the jars once into tests/tools/lib.

#[path = "conformance/group_scenarios.rs"]
mod group_scenarios;
#[path = "conformance/scenarios.rs"]
mod scenarios;

use kraftwerk_tests::apache_kafka::ApacheKafka;
use kraftwerk_tests::conformance::compare::parse_allow_list;
use kraftwerk_tests::conformance::{allow_list_path, Pair};
use kraftwerk_tests::Broker;

/// Confluent's documented example id. Its last character has non-zero padding bits: Kafka accepts it
/// (Java's lenient base64), and so must `kraftwerk format`. Both brokers get it, so DescribeCluster's
/// cluster_id is compared as is.
const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";

/// The settings both brokers get beyond the harness's single-node defaults (num.partitions=1,
/// offsets.topic.replication.factor=1, auto.create.topics.enable=true).
const SHARED: &[(&str, &str)] = &[("group.initial.rebalance.delay.ms", "0")];

#[test]
fn kraftwerk_answers_as_apache_kafka_does() {
    let allow_text = std::fs::read_to_string(allow_list_path()).expect("reading the allow-list");
    let allowed = parse_allow_list(&allow_text).expect("allow-list is a valid table");

    // Both start at once: the JVM's start-up dominates.
    let kafka = std::thread::spawn(|| ApacheKafka::start(CLUSTER_ID, SHARED));
    let mut builder = Broker::builder().cluster_id(CLUSTER_ID).rust_log("warn");
    for (k, v) in SHARED {
        builder = builder.prop(*k, *v);
    }
    let kraftwerk = builder.start().expect("kraftwerk starts");
    let kafka = match kafka.join() {
        Ok(Ok(k)) => k,
        Ok(Err(e)) => panic!("Apache Kafka does not start: {e}"),
        Err(_) => panic!("Apache Kafka start-up thread panicked"),
    };

    let mut pair = Pair::connect(kafka.addr(), kraftwerk.addr()).expect("connect to both");
    scenarios::run_all(&mut pair);
    group_scenarios::run_all(&mut pair);

    let report = &pair.report;
    for note in &report.notes {
        println!("note: {note}");
    }
    let (intended, unexpected) = report.judge(&allowed);
    for (d, a) in &intended {
        println!("listed as {:?}: {d} ({})", a.kind, a.reason);
    }
    let unused: Vec<_> = allowed
        .iter()
        .filter(|a| !intended.iter().any(|(_, b)| b == a))
        .collect();
    for a in &unused {
        println!(
            "allow-list row matched nothing: {} / {} / {}",
            a.scenario, a.api, a.path
        );
    }
    println!(
        "conformance: {} scenarios, {} exchanges, {} API versions ({}), {} differences ({} listed, {} not)",
        report.scenarios.len(),
        report.exchanges,
        report.covered.len(),
        report
            .covered
            .iter()
            .map(|(api, v)| format!("{api} v{v}"))
            .collect::<Vec<_>>()
            .join(", "),
        report.differences.len(),
        intended.len(),
        unexpected.len()
    );
    if !unexpected.is_empty() {
        let lines: Vec<String> = unexpected.iter().map(|d| d.to_string()).collect();
        panic!(
            "{} differences from Apache Kafka not listed in {}:\n{}",
            lines.len(),
            allow_list_path().display(),
            lines.join("\n")
        );
    }
    assert!(
        unused.is_empty(),
        "allow-list rows that matched no difference (remove them): {unused:?}"
    );
}
