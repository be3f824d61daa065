use std::collections::{BTreeMap, BTreeSet};

use kraftwerk_controller::topic_configs::{self, Support};

use super::*;
use crate::config::BrokerConfig;

/// The docs table every accepted key must appear in, with its status.
const DOCS: &str = include_str!("../../../docs/configuration.md");

/// Where each honoured topic config takes effect (the docs table's last column).
const TOPIC_WHERE: &[(&str, &str)] = &[
    ("cleanup.policy", "storage retention (delete) and the log cleaner (compact)"),
    ("compression.gzip.level", "storage/src/log/leader_checks.rs: the level of a recompression to gzip"),
    ("compression.lz4.level", "storage/src/log/leader_checks.rs: the level of a recompression to lz4"),
    ("compression.type", "storage/src/log/leader_checks.rs: leader appends recompressed to it; producer keeps the producer's codec"),
    ("compression.zstd.level", "storage/src/log/leader_checks.rs: the level of a recompression to zstd"),
    ("delete.retention.ms", "storage/src/cleaner: how long tombstones stay"),
    ("flush.messages", "storage/src/log/mod.rs: fsync after this many records"),
    ("flush.ms", "storage flush_if_due, checked every log.flush.scheduler.interval.ms (every second while that is unset)"),
    ("index.interval.bytes", "storage segments: bytes between index entries"),
    ("max.compaction.lag.ms", "storage/src/cleaner"),
    ("max.message.bytes", "storage append: larger batches answer MESSAGE_TOO_LARGE"),
    ("message.timestamp.after.max.ms", "storage/src/log/leader_checks.rs: INVALID_TIMESTAMP per record (KIP-467)"),
    ("message.timestamp.before.max.ms", "storage/src/log/leader_checks.rs: INVALID_TIMESTAMP per record (KIP-467)"),
    ("message.timestamp.type", "storage append: LogAppendTime stamps the broker's time"),
    ("min.cleanable.dirty.ratio", "storage/src/cleaner"),
    ("min.compaction.lag.ms", "storage/src/cleaner"),
    ("min.insync.replicas", "handlers/produce.rs (acks=all) and group_service/ (offset commits)"),
    ("retention.bytes", "storage retention"),
    ("retention.ms", "storage retention"),
    ("segment.bytes", "storage: segment roll by size"),
    ("segment.jitter.ms", "storage: a random share of it, per segment, taken off segment.ms"),
    ("segment.ms", "storage: segment roll by age"),
    ("unclean.leader.election.enable", "controller ops/election.rs"),
];

/// `(section, key) -> status word` of every row of the docs tables (`| key | ... | status | ... |`).
fn docs_rows() -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    let mut section = String::new();
    for line in DOCS.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.trim().to_string();
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `key` | ... | status | why |
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let key = cells[1].trim_matches('`').to_string();
        let status = cells[cells.len() - 3].to_string();
        assert!(
            out.insert((section.clone(), key.clone()), status).is_none(),
            "docs/configuration.md lists {key} twice in {section}"
        );
    }
    out
}

const BROKER_SECTION: &str = "Broker keys";
const SECURITY_SECTION: &str = "SSL and SASL keys";
const TOPIC_SECTION: &str = "Topic keys";

/// The three tables of docs/configuration.md, generated from the lists.
fn generated_tables() -> String {
    let mut out = String::new();
    out.push_str(&format!("## {BROKER_SECTION}\n\n"));
    out.push_str(
        "| key | Kafka's update mode | dynamic here | status | where honoured, or why not |\n",
    );
    out.push_str("|---|---|---|---|---|\n");
    for k in BROKER_KEYS {
        let mode = match k.kafka_mode {
            KafkaMode::ReadOnly => "read-only",
            KafkaMode::PerBroker => "per-broker",
            KafkaMode::ClusterWide => "cluster-wide",
        };
        let why = match k.status {
            Status::Honoured(w) => w.to_string(),
            Status::DefaultOnly { default, why } => format!("only `{default}`: {why}"),
            Status::Inert(why) => why.to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {mode} | {} | {} | {} |\n",
            k.name,
            if k.dynamic { "yes" } else { "no" },
            k.status.word(),
            why.replace('|', "\\|")
        ));
    }
    out.push_str(&format!("\n## {SECURITY_SECTION}\n\n"));
    out.push_str("| key | status | where honoured, or why not |\n|---|---|---|\n");
    for (key, status, why) in SECURITY_KEYS {
        out.push_str(&format!("| `{key}` | {status} | {why} |\n"));
    }
    out.push_str(&format!("\n## {TOPIC_SECTION}\n\n"));
    out.push_str(
        "| key | broker synonyms | status | where honoured, or why not |\n|---|---|---|---|\n",
    );
    for def in topic_configs::definitions() {
        let why = match topic_configs::support(def.name) {
            Support::Honoured => TOPIC_WHERE
                .iter()
                .find(|(k, _)| *k == def.name)
                .map_or("", |(_, w)| w)
                .to_string(),
            Support::DefaultOnly(why) => format!(
                "only `{}`: {why}",
                if def.default.is_empty() {
                    "\"\""
                } else {
                    def.default
                }
            ),
            Support::Inert(why) => why.to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            def.name,
            def.broker_synonyms.join(", "),
            topic_configs::support(def.name).word(),
            why
        ));
    }
    out
}

/// Prints the tables for docs/configuration.md: `cargo test -p kraftwerk-broker print_config_tables --
/// --ignored --nocapture`.
#[test]
#[ignore]
fn print_config_tables() {
    println!("{}", generated_tables());
}

/// The table cannot drift: every accepted key (broker, SSL/SASL, topic) has a row with its status, and every
/// row is an accepted key.
#[test]
fn docs_table_lists_every_accepted_key_with_its_status() {
    let rows = docs_rows();
    let mut expected = BTreeMap::new();
    for k in BROKER_KEYS {
        expected.insert(
            (BROKER_SECTION.to_string(), k.name.to_string()),
            k.status.word().to_string(),
        );
    }
    for (key, status, _) in SECURITY_KEYS {
        expected.insert(
            (SECURITY_SECTION.to_string(), key.to_string()),
            status.to_string(),
        );
    }
    for def in topic_configs::definitions() {
        expected.insert(
            (TOPIC_SECTION.to_string(), def.name.to_string()),
            topic_configs::support(def.name).word().to_string(),
        );
    }
    for (key, status) in &expected {
        assert_eq!(
            rows.get(key),
            Some(status),
            "docs/configuration.md: {} / {} must be listed as {status} (regenerate with print_config_tables)",
            key.0,
            key.1
        );
    }
    for key in rows.keys() {
        assert!(
            expected.contains_key(key),
            "docs/configuration.md lists {} / {}, which is not accepted",
            key.0,
            key.1
        );
    }
}

#[test]
fn every_list_is_consistent() {
    let mut names = BTreeSet::new();
    for k in BROKER_KEYS {
        assert!(names.insert(k.name), "{} twice", k.name);
        assert!(!is_security_key(k.name), "{}", k.name);
    }
    // The security list covers exactly what tls/ and sasl/ read.
    let security: BTreeSet<&str> = SECURITY_KEYS.iter().map(|(k, _, _)| *k).collect();
    let read: BTreeSet<&str> = crate::tls::settings::SSL_KEYS
        .iter()
        .chain(crate::sasl::settings::SASL_KEYS)
        .copied()
        .collect();
    assert_eq!(security, read);
    // A key Kraftwerk applies dynamically is a broker default of a topic config, which the controller's
    // AlterConfigs accepts for broker resources; and every such default is in the list as dynamic.
    for k in BROKER_KEYS.iter().filter(|k| k.dynamic) {
        assert!(
            topic_configs::by_broker_synonym(k.name).is_some()
                || topic_configs::broker_dynamic_definition(k.name).is_some(),
            "{} is marked dynamic but the controller refuses it",
            k.name
        );
    }
    for def in topic_configs::definitions() {
        if let Some(primary) = def.broker_synonyms.first() {
            let spec = spec(primary).unwrap_or_else(|| panic!("{primary} is not listed"));
            assert!(
                spec.dynamic,
                "{primary} is accepted dynamically: mark it so"
            );
        }
        if topic_configs::support(def.name) == Support::Honoured {
            assert!(
                TOPIC_WHERE.iter().any(|(k, _)| *k == def.name),
                "say where {} is honoured",
                def.name
            );
        }
    }
    for def in topic_configs::broker_dynamic_definitions() {
        assert!(spec(def.name).is_some_and(|k| k.dynamic), "{}", def.name);
        assert!(
            !def.name.starts_with("log.cleaner.")
                || crate::replica::cleaner::DYNAMIC_THREAD_KEYS.contains(&def.name)
        );
    }
    // DescribeConfigs shows only keys that are accepted.
    for def in crate::broker_configs::BROKER_CONFIGS {
        assert!(
            spec(def.name).is_some(),
            "DescribeConfigs shows {}",
            def.name
        );
    }
    // Every cleaner key is listed.
    for key in crate::replica::cleaner::CLEANER_KEYS {
        assert!(spec(key).is_some(), "{key}");
    }
}

fn sources(pairs: &[(&str, Source)]) -> BTreeMap<String, Source> {
    pairs
        .iter()
        .map(|(k, s)| (k.to_string(), s.clone()))
        .collect()
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut p = BrokerConfig::single_node_defaults();
    for (k, v) in pairs {
        p.insert(k.to_string(), v.to_string());
    }
    p
}

#[test]
fn unknown_keys_are_refused_naming_key_and_source() {
    let file = Source::File("/etc/kafka/server.properties".into());
    let err = check(
        &props(&[("log.retention.hourz", "1")]),
        &sources(&[("log.retention.hourz", file)]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("'log.retention.hourz'")
            && err.contains("config file /etc/kafka/server.properties"),
        "{err}"
    );
    let err = check(
        &props(&[("zookeeper.connect", "zk:2181")]),
        &sources(&[("zookeeper.connect", Source::Override)]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("zookeeper.connect") && err.contains("--override"),
        "{err}"
    );
    let err = check(
        &props(&[("foo.bar", "1")]),
        &sources(&[("foo.bar", Source::Env("KAFKA_CFG_FOO_BAR".into()))]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("environment variable KAFKA_CFG_FOO_BAR"),
        "{err}"
    );
    // KAFKA_<X> may be an image variable: left alone, and reported.
    let ignored = check(
        &props(&[("cluster.id", "abc")]),
        &sources(&[("cluster.id", Source::Env("KAFKA_CLUSTER_ID".into()))]),
    )
    .unwrap();
    assert_eq!(ignored, vec!["cluster.id".to_string()]);
    // Per-listener forms of the keys tls/, sasl/ and limits read.
    check(
        &props(&[
            ("listener.name.client.ssl.keystore.location", "/k"),
            ("listener.name.client.plain.sasl.jaas.config", "x"),
            ("listener.name.client.scram-sha-512.sasl.jaas.config", "x"),
            ("listener.name.client.max.connections", "5"),
        ]),
        &BTreeMap::new(),
    )
    .unwrap();
    let err = check(
        &props(&[("listener.name.client.num.io.threads", "5")]),
        &BTreeMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("listener.name.client.num.io.threads"), "{err}");
}

#[test]
fn features_that_are_not_built_take_only_their_default() {
    for (key, default, other) in [
        ("transactional.id.expiration.ms", "604800000", "1000"),
        ("group.share.enable", "false", "true"),
        ("log.preallocate", "false", "true"),
        ("log.local.retention.ms", "-2", "1000"),
    ] {
        check(&props(&[(key, default)]), &BTreeMap::new()).unwrap();
        let err = check(
            &props(&[(key, other)]),
            &sources(&[(key, Source::Override)]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(key) && err.contains("only Kafka's default") && err.contains("--override"),
            "{err}"
        );
    }
    // The default however it is spelt.
    check(&props(&[("log.preallocate", " FALSE ")]), &BTreeMap::new()).unwrap();
    check(
        &props(&[("transactional.id.expiration.ms", "+604800000")]),
        &BTreeMap::new(),
    )
    .unwrap();
    // The sizes of topics that are never created are validated.
    check(
        &props(&[("transaction.state.log.replication.factor", "1")]),
        &BTreeMap::new(),
    )
    .unwrap();
    let err = check(
        &props(&[("transaction.state.log.min.isr", "0")]),
        &BTreeMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("at least 1"), "{err}");
}

/// Apache Kafka 4's config/server.properties (its keys and values; the voters instead of
/// controller.quorum.bootstrap.servers, which is refused with its own explanation) starts, and the keys it
/// sets are applied.
#[test]
fn apache_and_bitnami_config_files_start() {
    let apache = crate::config::parse_properties(
        "process.roles=broker,controller\n\
         node.id=1\n\
         controller.quorum.voters=1@localhost:9093\n\
         listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
         inter.broker.listener.name=PLAINTEXT\n\
         advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
         num.network.threads=3\n\
         num.io.threads=8\n\
         socket.send.buffer.bytes=102400\n\
         socket.receive.buffer.bytes=102400\n\
         socket.request.max.bytes=104857600\n\
         log.dirs=/tmp/kraft-combined-logs\n\
         num.partitions=1\n\
         num.recovery.threads.per.data.dir=1\n\
         offsets.topic.replication.factor=1\n\
         share.coordinator.state.topic.replication.factor=1\n\
         share.coordinator.state.topic.min.isr=1\n\
         transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         log.flush.interval.messages=10000\n\
         log.flush.interval.ms=1000\n\
         log.retention.hours=168\n\
         log.retention.bytes=1073741824\n\
         log.segment.bytes=1073741824\n\
         log.retention.check.interval.ms=300000\n",
    );
    let c = BrokerConfig::from_properties(apache).expect("Apache's file starts");
    assert_eq!(c.worker_threads, Some(11));
    assert_eq!(c.socket_send_buffer_bytes, Some(102_400));
    assert_eq!(c.socket_receive_buffer_bytes, Some(102_400));
    assert_eq!(c.num_recovery_threads_per_data_dir, 1);
    assert_eq!(c.log_flush_interval_messages, 10_000);
    assert_eq!(c.log_flush_interval_ms, 1000);
    assert_eq!(c.log_retention_bytes, 1_073_741_824);
    let log = crate::replica::log_config::broker_defaults(&c);
    assert_eq!((log.flush_interval_messages, log.flush_ms), (10_000, 1000));
    // Bitnami's image sets these through KAFKA_CFG_* and its own KAFKA_* variables.
    let env = crate::config::env_overrides(
        [
            ("KAFKA_CFG_NODE_ID", "0"),
            ("KAFKA_CFG_PROCESS_ROLES", "controller,broker"),
            (
                "KAFKA_CFG_LISTENERS",
                "PLAINTEXT://:9092,CONTROLLER://:9093",
            ),
            ("KAFKA_CFG_ADVERTISED_LISTENERS", "PLAINTEXT://kafka:9092"),
            (
                "KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ),
            ("KAFKA_CFG_CONTROLLER_QUORUM_VOTERS", "0@localhost:9093"),
            ("KAFKA_CFG_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_CFG_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            ("KAFKA_CFG_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
            ("KAFKA_CFG_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
            ("KAFKA_CFG_AUTO_CREATE_TOPICS_ENABLE", "true"),
            ("KAFKA_CFG_LOG_DIRS", "/bitnami/kafka/data"),
            ("KAFKA_KRAFT_CLUSTER_ID", "abcdefghijklmnopqrstuv"),
            ("KAFKA_ENABLE_KRAFT", "yes"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.properties");
    std::fs::write(&file, "").unwrap();
    let c = BrokerConfig::load(Some(&file), env, &[]).expect("Bitnami's settings start");
    assert_eq!(c.node_id, 0);
    assert_eq!(
        c.ignored_env_keys,
        vec!["enable.kraft".to_string(), "kraft.cluster.id".to_string()]
    );
}

#[test]
fn start_errors_name_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.properties");
    let mut text = String::new();
    for (k, v) in BrokerConfig::single_node_defaults() {
        text.push_str(&format!("{k}={v}\n"));
    }
    text.push_str("log.cleaner.io.buffer.size=524288\n");
    std::fs::write(&file, &text).unwrap();
    let err = BrokerConfig::load(Some(&file), BTreeMap::new(), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("log.cleaner.io.buffer.size") && err.contains(&file.display().to_string()),
        "{err}"
    );
    std::fs::write(
        &file,
        text.replace("log.cleaner.io.buffer.size=524288\n", ""),
    )
    .unwrap();
    let err = BrokerConfig::load(
        Some(&file),
        BTreeMap::new(),
        &["group.share.enable=true".to_string()],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("group.share.enable")
            && err.contains("--override")
            && err.contains("share groups"),
        "{err}"
    );
    BrokerConfig::load(Some(&file), BTreeMap::new(), &[]).expect("the file alone starts");
}
