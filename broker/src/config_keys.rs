//! Every broker key Kraftwerk accepts, with what it does here: the one list the start-up check, the docs table
//! (`docs/configuration.md`) and the dynamic-config checks agree on.
//!
//! A key is either honoured (its value changes behaviour, and the entry says where), accepted only at Kafka's
//! default because the feature it tunes is not built (any other value stops the start, naming the key, where it
//! came from and why), or — for the few keys that size a topic of a feature Kraftwerk does not have — validated
//! and shown, with the reason it cannot change anything. A key that is in none of these lists is refused at
//! start. The SSL and SASL keys are listed by their own modules (`tls::settings::SSL_KEYS`,
//! `sasl::settings::SASL_KEYS`), and `listener.name.<listener>.<key>` forms follow the key they prefix.

use std::collections::BTreeMap;

/// Kafka's "Dynamic Update Mode" of a broker key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaMode {
    /// `read-only`: only from server.properties; AlterConfigs answers "Cannot update these configs dynamically".
    ReadOnly,
    /// `per-broker`: dynamic for one broker id only.
    PerBroker,
    /// `cluster-wide`: dynamic per broker or as the cluster default.
    ClusterWide,
}

/// What Kraftwerk does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The value is applied; the text says where.
    Honoured(&'static str),
    /// Accepted only at Kafka's default (`default`); any other value is refused with `why`.
    DefaultOnly {
        default: &'static str,
        why: &'static str,
    },
    /// Validated and shown, but it sizes something Kraftwerk never creates; `why` says so.
    Inert(&'static str),
}

impl Status {
    /// The word the docs table uses.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Honoured(_) => "honoured",
            Status::DefaultOnly { .. } => "default-only",
            Status::Inert(_) => "inert",
        }
    }
}

/// One accepted broker key.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub name: &'static str,
    pub kafka_mode: KafkaMode,
    /// Whether Kraftwerk applies a dynamic value (`kafka-configs --entity-type brokers`) at run time. Keys Kafka
    /// allows dynamically that Kraftwerk does not are refused by AlterConfigs with Kafka's "Cannot update these
    /// configs dynamically" message.
    pub dynamic: bool,
    pub status: Status,
}

const fn honoured(name: &'static str, kafka_mode: KafkaMode, where_: &'static str) -> KeySpec {
    KeySpec {
        name,
        kafka_mode,
        dynamic: false,
        status: Status::Honoured(where_),
    }
}

/// A broker setting Kafka changes cluster-wide at run time, and Kraftwerk too.
const fn honoured_dynamic(name: &'static str, where_: &'static str) -> KeySpec {
    KeySpec {
        name,
        kafka_mode: KafkaMode::ClusterWide,
        dynamic: true,
        status: Status::Honoured(where_),
    }
}

/// A key whose dynamic value is applied too (a broker default of a topic config).
const fn dynamic(name: &'static str, where_: &'static str) -> KeySpec {
    KeySpec {
        name,
        kafka_mode: KafkaMode::ClusterWide,
        dynamic: true,
        status: Status::Honoured(where_),
    }
}

const fn default_only(
    name: &'static str,
    kafka_mode: KafkaMode,
    default: &'static str,
    why: &'static str,
) -> KeySpec {
    KeySpec {
        name,
        kafka_mode,
        dynamic: false,
        status: Status::DefaultOnly { default, why },
    }
}

/// A broker default of a topic config whose feature is not built: AlterConfigs accepts it dynamically only at
/// the default too (the controller's topic-config table refuses other values).
const fn dynamic_default_only(
    name: &'static str,
    default: &'static str,
    why: &'static str,
) -> KeySpec {
    KeySpec {
        name,
        kafka_mode: KafkaMode::ClusterWide,
        dynamic: true,
        status: Status::DefaultOnly { default, why },
    }
}

const fn inert(name: &'static str, why: &'static str) -> KeySpec {
    KeySpec {
        name,
        kafka_mode: KafkaMode::ReadOnly,
        dynamic: false,
        status: Status::Inert(why),
    }
}

use KafkaMode::{ClusterWide, PerBroker, ReadOnly};

const TOPIC_DEFAULT: &str =
    "broker default of the topic config (replica/log_config.rs); a dynamic value applies to \
                             every partition at once";
const CLEANER_THREADS: &str =
    "replica/cleaner.rs, storage/src/cleaner: the cleaner threads' setting; a dynamic value \
                               restarts them (Kafka's LogCleaner.reconfigure)";
const NO_TRANSACTIONS: &str =
    "transactions are not served (InitProducerId with a transactional id and the \
                               transaction APIs answer COORDINATOR_NOT_AVAILABLE)";
const NO_SHARE_GROUPS: &str = "share groups (KIP-932) are not served";
const NO_TIERED: &str = "tiered storage is not built";

/// Every broker key Kraftwerk accepts (besides the SSL and SASL keys), in the docs table's order.
pub const BROKER_KEYS: &[KeySpec] = &[
    // Roles, identity and the quorum.
    honoured("process.roles", ReadOnly, "config.rs: the roles this node starts"),
    honoured("node.id", ReadOnly, "config.rs: the node id in every registration and raft message"),
    honoured("broker.id", ReadOnly, "config.rs: read as node.id when node.id is absent"),
    honoured("broker.rack", ReadOnly, "server.rs: the rack in the broker registration (placement, KIP-392)"),
    honoured("controller.quorum.voters", ReadOnly, "config.rs: the initial voters; quorum/"),
    honoured("controller.listener.names", ReadOnly, "config.rs: the controller listener"),
    honoured("controller.quorum.election.timeout.ms", ReadOnly, "quorum/: raft election timeout"),
    honoured("controller.quorum.fetch.timeout.ms", ReadOnly, "quorum/follower_task.rs: metadata fetch timeout"),
    honoured("broker.session.timeout.ms", ReadOnly, "controller liveness: fencing after this long"),
    honoured("broker.heartbeat.interval.ms", ReadOnly, "quorum/lifecycle.rs: heartbeat period"),
    honoured("metadata.log.max.record.bytes.between.snapshots", ReadOnly, "controller snapshots"),
    // Listeners and sockets.
    honoured("listeners", PerBroker, "server.rs: the sockets bound"),
    honoured("advertised.listeners", PerBroker, "the endpoints registered and given to clients"),
    honoured("listener.security.protocol.map", PerBroker, "config.rs: each listener's protocol"),
    honoured("inter.broker.listener.name", ReadOnly, "replica/fetcher.rs: the listener followers dial"),
    honoured("socket.send.buffer.bytes", ReadOnly, "network/listener.rs: SO_SNDBUF of the listening socket, inherited by every accepted connection (-1: the OS default)"),
    honoured("socket.receive.buffer.bytes", ReadOnly, "network/listener.rs: SO_RCVBUF of the listening socket, inherited by every accepted connection (-1: the OS default)"),
    honoured("max.incremental.fetch.session.cache.slots", ReadOnly, "fetch_session/: fetch sessions (KIP-227) held at most; 0 opens none"),
    honoured("socket.request.max.bytes", ReadOnly, "network/connection.rs: larger frames are refused before they are read"),
    honoured("connections.max.idle.ms", ReadOnly, "network/connection.rs: idle connections are closed"),
    honoured_dynamic("max.connections", "network/limits.rs: accepts pause at the limit; a dynamic value applies to new connections"),
    honoured_dynamic("max.connections.per.ip", "network/limits.rs: a dynamic value applies to new connections"),
    honoured_dynamic("max.connections.per.ip.overrides", "network/limits.rs: a dynamic value applies to new connections"),
    honoured("num.network.threads", ClusterWide, "main.rs: with num.io.threads, the size of the one tokio worker pool that reads sockets and runs requests"),
    honoured("num.io.threads", ClusterWide, "main.rs: with num.network.threads, the size of the one tokio worker pool that reads sockets and runs requests"),
    // Log directories and recovery.
    honoured("log.dirs", ReadOnly, "replica/manager.rs: where partitions live"),
    honoured("log.dir", ReadOnly, "used when log.dirs is absent"),
    honoured("metadata.log.dir", ReadOnly, "where __cluster_metadata lives"),
    KeySpec {
        name: "num.recovery.threads.per.data.dir",
        kafka_mode: ClusterWide,
        dynamic: true,
        status: Status::Honoured("replica/manager.rs: threads per log directory that open (and recover) partitions; a dynamic value applies at once"),
    },
    // Topic creation.
    honoured("num.partitions", ReadOnly, "CreateTopics and auto-creation default"),
    honoured("default.replication.factor", ReadOnly, "CreateTopics and auto-creation default"),
    honoured("auto.create.topics.enable", ReadOnly, "handlers/metadata.rs"),
    honoured("delete.topic.enable", ReadOnly, "handlers/delete_topics.rs"),
    // Broker defaults of topic configs.
    dynamic("log.segment.bytes", TOPIC_DEFAULT),
    dynamic("log.roll.ms", TOPIC_DEFAULT),
    honoured("log.roll.hours", ReadOnly, "log.roll.ms in hours when log.roll.ms is absent"),
    dynamic("log.roll.jitter.ms", TOPIC_DEFAULT),
    honoured("log.roll.jitter.hours", ReadOnly, "log.roll.jitter.ms in hours when log.roll.jitter.ms is absent"),
    dynamic("log.retention.ms", TOPIC_DEFAULT),
    honoured("log.retention.minutes", ReadOnly, "log.retention.ms in minutes"),
    honoured("log.retention.hours", ReadOnly, "log.retention.ms in hours"),
    dynamic("log.retention.bytes", TOPIC_DEFAULT),
    honoured("log.retention.check.interval.ms", ReadOnly, "server.rs: how often retention runs"),
    dynamic("log.index.interval.bytes", TOPIC_DEFAULT),
    dynamic("log.message.timestamp.type", TOPIC_DEFAULT),
    dynamic("log.message.timestamp.before.max.ms", TOPIC_DEFAULT),
    dynamic("log.message.timestamp.after.max.ms", TOPIC_DEFAULT),
    dynamic("log.cleanup.policy", TOPIC_DEFAULT),
    dynamic("message.max.bytes", TOPIC_DEFAULT),
    dynamic("min.insync.replicas", "handlers/produce.rs and group_service/: topic, then dynamic broker, then static value"),
    dynamic("compression.type", TOPIC_DEFAULT),
    dynamic("compression.gzip.level", TOPIC_DEFAULT),
    dynamic("compression.lz4.level", TOPIC_DEFAULT),
    dynamic("compression.zstd.level", TOPIC_DEFAULT),
    dynamic("log.flush.interval.messages", TOPIC_DEFAULT),
    dynamic("log.flush.interval.ms", TOPIC_DEFAULT),
    honoured("log.flush.scheduler.interval.ms", ReadOnly, "server.rs: how often logs are checked against flush.ms (and log.flush.interval.ms when that is absent)"),
    dynamic("unclean.leader.election.enable", "controller ops/election.rs: topic, then dynamic broker, then static value"),
    // The log cleaner.
    honoured("log.cleaner.enable", ReadOnly, "replica/cleaner.rs"),
    KeySpec {
        name: "log.cleaner.threads",
        kafka_mode: ClusterWide,
        dynamic: true,
        status: Status::Honoured(CLEANER_THREADS),
    },
    KeySpec {
        name: "log.cleaner.io.max.bytes.per.second",
        kafka_mode: ClusterWide,
        dynamic: true,
        status: Status::Honoured(CLEANER_THREADS),
    },
    KeySpec {
        name: "log.cleaner.backoff.ms",
        kafka_mode: ClusterWide,
        dynamic: true,
        status: Status::Honoured(CLEANER_THREADS),
    },
    KeySpec {
        name: "log.cleaner.dedupe.buffer.size",
        kafka_mode: ClusterWide,
        dynamic: true,
        status: Status::Honoured(CLEANER_THREADS),
    },
    dynamic("log.cleaner.min.cleanable.ratio", TOPIC_DEFAULT),
    dynamic("log.cleaner.min.compaction.lag.ms", TOPIC_DEFAULT),
    dynamic("log.cleaner.max.compaction.lag.ms", TOPIC_DEFAULT),
    dynamic("log.cleaner.delete.retention.ms", TOPIC_DEFAULT),
    // Replication and leadership.
    honoured("replica.lag.time.max.ms", ReadOnly, "replica/isr.rs"),
    honoured("replica.selector.class", ReadOnly, "replica/read_replica.rs (KIP-392)"),
    honoured("replica.high.watermark.checkpoint.interval.ms", ReadOnly, "replica/hw_checkpoint.rs"),
    honoured("auto.leader.rebalance.enable", ReadOnly, "controller ops/leaders.rs"),
    honoured("leader.imbalance.check.interval.seconds", ReadOnly, "controller ops/leaders.rs"),
    honoured("leader.imbalance.per.broker.percentage", ReadOnly, "controller ops/leaders.rs"),
    // Authorization.
    honoured("authorizer.class.name", ReadOnly, "auth/: StandardAuthorizer rules when set"),
    honoured("super.users", ReadOnly, "auth/"),
    honoured("allow.everyone.if.no.acl.found", ReadOnly, "auth/"),
    // Groups and internal topics.
    honoured("offsets.topic.num.partitions", ReadOnly, "group_service/: partitions of __consumer_offsets"),
    honoured("offsets.topic.replication.factor", ReadOnly, "group_service/: replicas of __consumer_offsets"),
    honoured("group.initial.rebalance.delay.ms", ReadOnly, "group/"),
    honoured("group.min.session.timeout.ms", ReadOnly, "group/"),
    honoured("group.max.session.timeout.ms", ReadOnly, "group/"),
    // Idempotent producers.
    KeySpec {
        name: "producer.id.expiration.ms",
        kafka_mode: ClusterWide,
        dynamic: true,
        status: Status::Honoured("replica/producer_state.rs: a producer whose newest batch is this old is forgotten; a dynamic value applies at once"),
    },
    honoured("producer.id.expiration.check.interval.ms", ReadOnly, "server.rs: how often producers are expired"),
    // Features that are not built.
    inert("transaction.state.log.replication.factor", "sizes __transaction_state, which Kraftwerk never creates: transactions are not served. Validated (at least 1) so Apache's and Bitnami's config files start"),
    inert("transaction.state.log.min.isr", "min.insync.replicas of __transaction_state, which Kraftwerk never creates. Validated (at least 1)"),
    inert("transaction.state.log.num.partitions", "partitions of __transaction_state, which Kraftwerk never creates. Validated (at least 1)"),
    inert("share.coordinator.state.topic.replication.factor", "sizes __share_group_state, which Kraftwerk never creates: share groups are not served. Validated (at least 1) so Apache's config file starts"),
    inert("share.coordinator.state.topic.min.isr", "min.insync.replicas of __share_group_state, which Kraftwerk never creates. Validated (at least 1)"),
    default_only("transactional.id.expiration.ms", ReadOnly, "604800000", NO_TRANSACTIONS),
    default_only("transaction.max.timeout.ms", ReadOnly, "900000", NO_TRANSACTIONS),
    default_only("group.share.enable", ReadOnly, "false", NO_SHARE_GROUPS),
    default_only("remote.log.storage.system.enable", ReadOnly, "false", NO_TIERED),
    dynamic_default_only("log.local.retention.ms", "-2", NO_TIERED),
    dynamic_default_only("log.local.retention.bytes", "-2", NO_TIERED),
    dynamic_default_only("log.remote.copy.lag.ms", "0", NO_TIERED),
    dynamic_default_only("log.remote.copy.lag.bytes", "-1", NO_TIERED),
    dynamic_default_only(
        "max.decompressed.message.bytes",
        "2147483639",
        "the decompressed size of single records is not checked (produce validation, compaction and timestamp \
         lookups would each need it)",
    ),
    dynamic_default_only("log.preallocate", "false", "segment files are not preallocated"),
    dynamic_default_only("log.index.size.max.bytes", "10485760", "index files grow with the segment instead of being preallocated to a fixed size"),
    dynamic_default_only("log.segment.delete.delay.ms", "60000", "segments leave at once: a reader of a deleted segment keeps its own open file handle, which is what Kafka's delay protects"),
];

/// The SSL and SASL keys (read by `tls::settings` and `sasl::settings`, globally or per listener as
/// `listener.name.<l>.<key>`, for the listeners of those protocols) with their status word and where they are
/// honoured or why not. The drift test checks this covers `SSL_KEYS` and `SASL_KEYS`.
pub const SECURITY_KEYS: &[(&str, &str, &str)] = &[
    ("ssl.keystore.type", "honoured", "tls/settings.rs: JKS, PKCS12 or PEM"),
    ("ssl.keystore.location", "honoured", "tls/settings.rs"),
    ("ssl.keystore.password", "honoured", "tls/settings.rs"),
    ("ssl.key.password", "honoured", "tls/settings.rs"),
    ("ssl.keystore.key", "honoured", "tls/settings.rs: PEM key text"),
    ("ssl.keystore.certificate.chain", "honoured", "tls/settings.rs: PEM chain text"),
    ("ssl.truststore.type", "honoured", "tls/settings.rs"),
    ("ssl.truststore.location", "honoured", "tls/settings.rs"),
    ("ssl.truststore.password", "honoured", "tls/settings.rs"),
    ("ssl.truststore.certificates", "honoured", "tls/settings.rs: PEM certificates text"),
    ("ssl.client.auth", "honoured", "tls/settings.rs: none, requested, required"),
    ("ssl.enabled.protocols", "honoured", "tls/settings.rs: TLSv1.2 and TLSv1.3 (others refused)"),
    ("ssl.protocol", "honoured", "tls/settings.rs: TLS, TLSv1.2 or TLSv1.3 (others refused)"),
    ("ssl.cipher.suites", "refused", "tls/settings.rs: rustls's own suites are used; any value stops the start of an SSL listener"),
    ("ssl.principal.mapping.rules", "default-only", "tls/settings.rs: only DEFAULT (the principal is the certificate subject)"),
    ("ssl.endpoint.identification.algorithm", "honoured", "tls/settings.rs: host name checks when nodes dial each other (empty turns them off)"),
    ("sasl.enabled.mechanisms", "honoured", "sasl/settings.rs: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (GSSAPI and OAUTHBEARER refused)"),
    ("sasl.jaas.config", "honoured", "sasl/settings.rs: PLAIN users and node logins"),
    ("sasl.mechanism.controller.protocol", "honoured", "sasl/client.rs: how nodes log in to controllers"),
    ("sasl.mechanism.inter.broker.protocol", "honoured", "sasl/client.rs: how followers log in to leaders"),
    ("sasl.server.max.receive.size", "honoured", "sasl/: bound on what an unauthenticated client may send"),
    ("connection.failed.authentication.delay.ms", "honoured", "sasl/: delay before a failed login is answered"),
];

/// Keys an integer value of which must be at least 1 (the inert topic-sizing keys).
fn validate_inert(key: &str, value: &str) -> Result<(), String> {
    match value.trim().parse::<i64>() {
        Ok(n) if n >= 1 && n <= i64::from(i32::MAX) => Ok(()),
        Ok(_) => Err(format!("{key} must be at least 1")),
        Err(_) => Err("not a valid number".into()),
    }
}

/// Whether `value` means Kafka's `default`: numbers compared as numbers, anything else ignoring case and
/// surrounding spaces (`FALSE` is `false`).
fn same_value(value: &str, default: &str) -> bool {
    let value = value.trim();
    match (value.parse::<i64>(), default.parse::<i64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => value.eq_ignore_ascii_case(default),
    }
}

/// The spec of a broker key, if Kraftwerk accepts it.
pub fn spec(name: &str) -> Option<&'static KeySpec> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

/// Where a key's value came from, for start-up errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(std::path::PathBuf),
    /// An environment variable, by name.
    Env(String),
    Override,
    /// The built-in single-node defaults.
    Builtin,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "config file {}", p.display()),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Override => write!(f, "--override"),
            Source::Builtin => write!(f, "the built-in defaults"),
        }
    }
}

/// Why a key was refused at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config key '{key}' (from {source_name}) is refused: {reason}")]
pub struct KeyRefused {
    pub key: String,
    pub source_name: String,
    pub reason: String,
}

/// Whether `key` is one of the keys another module reads (`ssl.*`, `sasl.*`, per listener or not).
fn is_security_key(key: &str) -> bool {
    crate::tls::settings::SSL_KEYS.contains(&key) || crate::sasl::settings::SASL_KEYS.contains(&key)
}

/// Whether a `listener.name.<l>.<rest>` key names a key read per listener: SSL, SASL (also
/// `<mechanism>.sasl.jaas.config`) and `max.connections`.
fn is_listener_key(rest: &str) -> bool {
    if is_security_key(rest) || rest == "max.connections" {
        return true;
    }
    // `<mechanism>.sasl.jaas.config`, e.g. `plain.sasl.jaas.config`, `scram-sha-512.sasl.jaas.config`.
    rest.split_once('.')
        .is_some_and(|(_, tail)| tail == "sasl.jaas.config")
}

/// Checks every key against the lists: unknown keys and non-default values of keys whose feature is not built
/// are refused, naming the key, where it came from and why. A `KAFKA_<KEY>` environment variable that does not
/// name a known key is left alone with a warning: the Apache and Bitnami images use that prefix for their own
/// settings too (`KAFKA_CLUSTER_ID`, `KAFKA_ENABLE_KRAFT`, `KAFKA_HEAP_OPTS`), so it may not be meant as a key;
/// `KAFKA_CFG_<KEY>`, the file and `--override` are always meant as keys.
pub fn check(
    props: &BTreeMap<String, String>,
    sources: &BTreeMap<String, Source>,
) -> Result<Vec<String>, KeyRefused> {
    let mut ignored = Vec::new();
    for (key, value) in props {
        let source = sources.get(key).cloned().unwrap_or(Source::Builtin);
        let refuse = |reason: String| KeyRefused {
            key: key.clone(),
            source_name: source.to_string(),
            reason,
        };
        let known_elsewhere = is_security_key(key)
            || key
                .strip_prefix("listener.name.")
                .and_then(|rest| rest.split_once('.'))
                .is_some_and(|(_, rest)| is_listener_key(rest));
        let Some(spec) = spec(key) else {
            if known_elsewhere {
                continue;
            }
            if matches!(&source, Source::Env(var) if !var.starts_with("KAFKA_CFG_")) {
                tracing::warn!(key = %key, source = %source, "not a config key Kraftwerk knows; taken as an image variable and left alone");
                ignored.push(key.clone());
                continue;
            }
            if key == "controller.quorum.bootstrap.servers" {
                // Refused with its own explanation by config.rs.
                continue;
            }
            return Err(refuse(
                "Kraftwerk does not know this key, so it cannot honour it (docs/configuration.md lists every \
                 key it accepts); remove it"
                    .into(),
            ));
        };
        match spec.status {
            Status::Honoured(_) => {}
            Status::DefaultOnly { default, why } => {
                if !same_value(value, default) {
                    return Err(refuse(format!(
                        "{why}, so only Kafka's default {default} is accepted"
                    )));
                }
            }
            Status::Inert(_) => validate_inert(key, value).map_err(refuse)?,
        }
    }
    Ok(ignored)
}

#[cfg(test)]
mod tests;
